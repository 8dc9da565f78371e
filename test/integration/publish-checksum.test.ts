// Issue 18.5: `sha256sum -c` must pass on every published CHECKSUM at every moment, during a
// publish and after a kill at any point, and no rsync temp file may appear under the published
// tree. A reader process runs `sha256sum -c` on every checksum list (and the repomd check) the
// whole time; after each kill the test checks the tree itself too. Kill points are counted by
// phase events (the publisher runs in its own process, publish-child.ts): at the start of every
// phase, and in the middle of every phase (when its rsync reports its first entry), for a first
// publish and for a respin (new media under new names, the old ones deleted).
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PublishRefusedError, publishTree, type PublishOptions } from '@rocky/publish';
import { repoRoot } from '../helpers/workspace';
import { rsyncVersion, snapshotTree, synthRepo, withReader } from './publish-helpers';

let tmp: string;
/** publishTree's work dir: under the test's dir, so a killed publish leaves nothing behind. */
const work = () => join(tmp, 'publish-work');
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'publish-checksum-'));
  console.log(`rsync: ${rsyncVersion('rsync')}`);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const put = (file: string, data: string | Buffer, mtime = 1_763_000_000) => {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, data);
  utimesSync(file, mtime, mtime);
};

/** A media dir as finalize leaves it: files, alias links, per-file .CHECKSUM, the combined CHECKSUM naming them all. */
function media(dir: string, files: Record<string, Buffer>, aliases: Record<string, string>, mtime = 1_763_000_000) {
  const entry = (name: string, data: Buffer) => `# ${name}: ${data.length} bytes\nSHA256 (${name}) = ${sha(data)}\n`;
  let all = '';
  for (const [name, data] of Object.entries(files)) {
    put(join(dir, name), data, mtime);
    put(join(dir, `${name}.CHECKSUM`), entry(name, data), mtime);
    all += entry(name, data);
  }
  for (const [alias, target] of Object.entries(aliases)) {
    symlinkSync(target, join(dir, alias));
    all += entry(alias, files[target]);
  }
  put(join(dir, 'CHECKSUM'), all, mtime);
}

/** Generation 1 or 2 of a compose: a repo (packages change), an ISO and a cloud image (new names in generation 2, the old ones gone). */
function compose(dir: string, gen: 1 | 2) {
  synthRepo(join(dir, 'BaseOS/x86_64/os'), Array.from({ length: 30 }, (_, i) => ({ name: `p${i + (gen - 1) * 10}`, version: `${gen}`, size: 2000 + i })), { mtime: 1_763_000_000 + gen });
  symlinkSync('BaseOS', join(dir, 'baseos'));
  const iso = gen === 1 ? 'Rocky-9.7-x86_64-dvd.iso' : 'Rocky-9.7-x86_64-dvd-r1.iso';
  media(join(dir, 'isos/x86_64'), { [iso]: Buffer.alloc(1 << 20, gen) }, { [gen === 1 ? 'Rocky-9-latest-x86_64-dvd.iso' : 'Rocky-9-latest-x86_64-dvd-r1.iso']: iso });
  // A new cloud image build: new name, and the `latest` alias (which CHECKSUM lists) moves to it.
  const img = `Rocky-9-GenericCloud-Base-9.7-2025112${gen}.0.x86_64.qcow2`;
  media(join(dir, 'images/x86_64'), { [img]: Buffer.alloc(256 << 10, 10 + gen) }, { 'Rocky-9-GenericCloud-Base.latest.x86_64.qcow2': img });
}

/** Every line `sha256sum -c` fails on, over every checksum list under `dir`. */
function checksumFailures(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (/(^|\.)CHECKSUM(\.asc)?$/.test(e.name)) {
        const r = spawnSync('sha256sum', ['-c', '--quiet', e.name], { cwd: d, encoding: 'utf8' });
        if (r.status !== 0) out.push(`${join(d, e.name)}: ${r.stdout.trim()} ${r.stderr.trim()}`);
      }
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

/** rsync temp names (`.~tmp~`, `.<name>.XXXXXX`) anywhere under `dir`. */
function tempNames(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (/^\.~tmp~|^\.[^/]+\.[A-Za-z0-9]{6}$/.test(e.name)) out.push(join(d, e.name));
      if (e.isDirectory()) walk(join(d, e.name));
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

/** Runs publish-child.ts; resolves with how it ended ('done', 'killed', or the failure). */
function child(options: PublishOptions, events: string, killAt: { phase: number; mid: boolean }): Promise<'done' | 'killed'> {
  const p = spawn(process.execPath, ['-r', '@swc-node/register', join(__dirname, 'publish-child.ts'), JSON.stringify({ options, events, killAt })], {
    cwd: repoRoot,
    env: { ...process.env, SWC_NODE_PROJECT: join(repoRoot, 'tsconfig.base.json') },
    detached: true, // its own process group, which it kills
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d));
  p.stderr.on('data', (d: Buffer) => (out += d));
  return new Promise((resolve, reject) =>
    p.on('exit', (code, signal) => {
      // Whatever happened, nothing of that group may live on (rsync children included).
      try {
        process.kill(-p.pid!, 'SIGKILL');
      } catch {
        /* all gone */
      }
      if (signal === 'SIGKILL') resolve('killed');
      else if (code === 0 && out.includes('done')) resolve('done');
      else reject(new Error(`publish child exited ${code ?? signal}: ${out}`));
    }),
  );
}

describe('CHECKSUM files always match what they name (sha256sum -c)', () => {
  it('refuses, before changing anything, new bytes under a name a published CHECKSUM lists', async () => {
    const src = join(tmp, 'refuse-src');
    const dest = join(tmp, 'refuse-dest/9.7');
    compose(src, 1);
    await publishTree({ workDir: work(), source: src, dest, delete: true, tempDir: join(tmp, 'refuse-tmp') });
    const oldSum = sha(readFileSync(join(src, 'isos/x86_64/Rocky-9.7-x86_64-dvd.iso')));
    // The compose is rebuilt with a changed ISO under the same name (and CHECKSUMs that match it).
    rmSync(join(src, 'isos'), { recursive: true });
    media(join(src, 'isos/x86_64'), { 'Rocky-9.7-x86_64-dvd.iso': Buffer.alloc(1 << 20, 9) }, { 'Rocky-9-latest-x86_64-dvd.iso': 'Rocky-9.7-x86_64-dvd.iso' }, 1_763_100_000);
    const newSum = sha(Buffer.alloc(1 << 20, 9));
    const before = snapshotTree(dest);
    const { value: err, stats } = await withReader([dest], join(tmp, 'reader-refuse.json'), () =>
      publishTree({ workDir: work(), source: src, dest, delete: true, tempDir: join(tmp, 'refuse-tmp') }).then(
        () => undefined,
        (e: Error) => e,
      ),
    );
    expect(err?.message ?? 'it was published').toContain(`isos/x86_64/Rocky-9.7-x86_64-dvd.iso: its bytes would change (sha256 ${oldSum} -> ${newSum}) but the destination's isos/x86_64/CHECKSUM names it with ${oldSum}`);
    expect(err!.message).toMatch(/changed media must be published under new names/);
    expect(err).toBeInstanceOf(PublishRefusedError);
    expect(snapshotTree(dest)).toEqual(before);
    expect(stats.otherSamples).toEqual([]);
    expect(stats.checksumLists).toBeGreaterThan(0);
  });

  it('killed at the start and in the middle of every phase of a first publish and of a respin: no mismatch, no temp file, the rerun finishes', async () => {
    const gen1 = join(tmp, 'gen1');
    const gen2 = join(tmp, 'gen2');
    const empty = join(tmp, 'empty');
    compose(gen1, 1);
    compose(gen2, 2);
    mkdirSync(empty);
    const dest = join(tmp, 'mirror/pub/rocky/9.7');
    const tempDir = join(tmp, 'publish-tmp'); // outside the published tree, on its filesystem
    // rsync, which with PUBLISH_KILL_ON_OUTPUT kills its process group at its first output line.
    const wrapper = join(tmp, 'rsync-killer');
    writeFileSync(wrapper, '#!/bin/bash\n[ -n "$PUBLISH_KILL_ON_OUTPUT" ] || exec rsync "$@"\nrsync "$@" | { IFS= read -r line; kill -KILL 0; }\n');
    chmodSync(wrapper, 0o755);
    const opts = (source: string): PublishOptions => ({ workDir: work(), source, dest, delete: true, deletionGraceMs: 0, tempDir, rsync: wrapper });
    const events = join(tmp, 'child-events.jsonl');
    const lastPhase = () => {
      const lines = readFileSync(events, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; phase?: string });
      return lines.filter((l) => l.type === 'publish-phase-start').at(-1)?.phase;
    };
    const seen: string[] = [];
    const problems: string[] = [];
    const { stats } = await withReader([dirname(dest)], join(tmp, 'reader-kills.json'), async () => {
      for (const [from, to, label] of [
        [empty, gen1, 'first publish'],
        [gen1, gen2, 'respin'],
      ] as const) {
        for (const mid of [false, true]) {
          for (let k = 1; ; k++) {
            rmSync(events, { force: true });
            const how = await child(opts(to), events, { phase: k, mid });
            const at = `${label}, killed ${mid ? 'in the middle' : 'at the start'} of phase ${k} (${lastPhase() ?? '-'})`;
            if (how === 'killed') seen.push(at);
            for (const f of checksumFailures(dirname(dest))) problems.push(`${at}: ${f}`);
            for (const f of tempNames(dirname(dest))) problems.push(`${at}: temp file ${f}`);
            // The rerun finishes the publish; then back to where this kill point started.
            const rerun = await publishTree(opts(to));
            expect(rerun.verified || !rerun.changed).toBe(true);
            expect(checksumFailures(dirname(dest))).toEqual([]);
            await publishTree(opts(from));
            if (how === 'done') break;
          }
        }
      }
    });
    console.log(`kill points: ${seen.length}\n  ${seen.join('\n  ')}`);
    console.log(`reader: ${stats.iterations} passes, ${stats.checksumLists} checksum lists checked, ${stats.reads} repomd.xml reads`);
    expect(problems).toEqual([]);
    expect(stats.otherSamples).toEqual([]);
    expect(stats.mismatches + stats.temps + stats.dangling + stats.torn).toBe(0);
    // Every phase of both publishes was a kill point, both ways.
    const phases = {
      'first publish': ['content', 'metadata', 'repomd', 'links', 'attrs'],
      // The cloud image's `latest` alias moves: the lists that name it go out without it first.
      respin: ['content', 'metadata', 'interim-lists', 'aliases', 'checksums', 'repomd', 'delete-indexes', 'delete', 'attrs'],
    };
    for (const [label, names] of Object.entries(phases))
      for (const phase of names)
        for (const when of ['at the start', 'in the middle']) expect(seen.filter((s) => s.startsWith(`${label}, killed ${when} of phase`) && s.endsWith(`(${phase})`)), `${label} ${when} of ${phase}`).toHaveLength(1);
    expect(stats.checksumLists).toBeGreaterThan(100);
  });
});
