// The key publishing property (DESIGN §6): a reader never sees a repomd.xml naming a file that
// is not there, nor an rsync temp file in the tree (temp files go to a directory outside it),
// while a new compose replaces an old one WITH deletions, first into staging and then from
// staging into production. The same harness run against a plain one-pass `rsync -a --delete`
// must find dangling references, which shows the harness can fail.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventLog } from '@rocky/exec';
import { publishTree } from '@rocky/publish';
import { synthRepo, withReader, type SynthPackage } from './publish-helpers';

const REPOS = ['BaseOS', 'AppStream', 'CRB'];
const BW = 400; // KiB/s for the transfers: long enough phases for the reader to run through them

let tmp: string;
/** publishTree's work dir: under the test's dir, so a killed publish leaves nothing behind. */
const work = () => join(tmp, 'publish-work');
let oldTree: string;
let newTree: string;

/** old: 200 packages per repo. new: 80 of them gone, 60 updated (new version, new file), 100 new names. */
function buildTrees() {
  const oldPkgs: SynthPackage[] = Array.from({ length: 200 }, (_, i) => ({ name: `pkg${String(i).padStart(3, '0')}`, version: '1.0', size: 2048 + ((i * 37) % 3000) }));
  const newPkgs: SynthPackage[] = [
    ...oldPkgs.slice(80, 140).map((p) => ({ ...p, version: '1.1', size: p.size + 100 })),
    ...oldPkgs.slice(140),
    ...Array.from({ length: 100 }, (_, i) => ({ name: `new${String(i).padStart(3, '0')}`, version: '2.0', size: 3000 + i })),
  ];
  for (const r of REPOS) {
    synthRepo(join(oldTree, r, 'x86_64', 'os'), oldPkgs, { mtime: 1_763_000_000 });
    synthRepo(join(newTree, r, 'x86_64', 'os'), newPkgs, { mtime: 1_763_100_000 });
  }
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'publish-consistency-'));
  oldTree = join(tmp, 'compose-old');
  newTree = join(tmp, 'compose-new');
  buildTrees();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('mirror-safe publishing under a concurrent reader', () => {
  it('staging and then production never show a dangling reference', async () => {
    const staging = join(tmp, 'staging/9.7-RC2');
    const prod = join(tmp, 'production/9.7');
    // rsync's temp files go beside the trees, outside what mirrors read.
    const tempDir = (name: string) => join(tmp, `publish-tmp-${name}`);
    await publishTree({ workDir: work(), source: oldTree, dest: staging, delete: true, tempDir: tempDir('staging') });
    await publishTree({ workDir: work(), source: staging, dest: prod, delete: true, tempDir: tempDir('prod') });
    const log = eventLog(join(tmp, 'events.jsonl'));
    const {
      value: [r1, r2],
      stats,
    } = await withReader([staging, prod], join(tmp, 'reader-ours.json'), async () => [
      await publishTree({ workDir: work(), source: newTree, dest: staging, delete: true, bwlimitKiB: BW, deletionGraceMs: 1000, log, tempDir: tempDir('staging') }),
      await publishTree({ workDir: work(), source: staging, dest: prod, delete: true, bwlimitKiB: BW, deletionGraceMs: 1000, log, tempDir: tempDir('prod') }),
    ]);
    console.log(`ours: ${stats.reads} repomd.xml reads, ${stats.refs} references checked in ${stats.iterations} passes; dangling ${stats.dangling}, torn ${stats.torn}, temp names ${stats.temps}`);
    for (const r of [r1, r2]) {
      expect(r.verified).toBe(true);
      expect(r.deletes.filter((d) => d.type === 'file').length).toBe(3 * (80 + 60 + 3)); // packages + old primary/filelists/other
      expect(r.phases.map((p) => p.name)).toEqual(['content', 'metadata', 'repomd', 'delete', 'attrs']);
    }
    expect(stats.samples).toEqual([]);
    expect(stats.dangling).toBe(0);
    expect(stats.torn).toBe(0);
    expect(stats.otherSamples).toEqual([]);
    expect(stats.temps).toBe(0);
    expect(stats.iterations).toBeGreaterThan(20);
    expect(stats.reads).toBeGreaterThan(100);
    // The reader saw both generations in both trees.
    const seen = new Map<string, Set<string>>();
    for (const p of stats.pairs) seen.set(p.path, (seen.get(p.path) ?? new Set()).add(p.repomd));
    expect(seen.size).toBe(2 * REPOS.length);
    for (const [path, hashes] of seen) expect(hashes.size, path).toBe(2);
  });

  it('the same harness catches a plain rsync -a --delete', async () => {
    let found = 0;
    const attempts: string[] = [];
    for (let attempt = 1; attempt <= 5 && !found; attempt++) {
      const dest = join(tmp, `plain-${attempt}/9.7`);
      mkdirSync(dest, { recursive: true });
      execFileSync('rsync', ['-a', '--delete', `${oldTree}/`, `${dest}/`]);
      const { stats } = await withReader([dest], join(tmp, `reader-plain-${attempt}.json`), async () => {
        execFileSync('rsync', ['-a', '--delete', `--bwlimit=${BW}`, `${newTree}/`, `${dest}/`]);
      });
      attempts.push(`attempt ${attempt}: ${stats.reads} reads, ${stats.dangling} dangling, e.g. ${stats.samples[0] ?? '-'}`);
      found = stats.dangling;
    }
    console.log(`plain rsync: ${attempts.join('; ')}`);
    expect(found).toBeGreaterThan(0);
  });
});
