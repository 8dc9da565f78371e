// publishTree to an rsync daemon destination (rsync://host:port/module/path), and a destination
// that disappears mid-publish.
import { createHash, randomFillSync } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventLog, type EventLog } from '@rocky/exec';
import { PublishError, PublishRefusedError, publishTree } from '@rocky/publish';
import { snapshotTree, startRsyncDaemon, synthRepo, type Daemon } from './publish-helpers';

let tmp: string;
/** publishTree's work dir: under the test's dir, so a killed publish leaves nothing behind. */
const work = () => join(tmp, 'publish-work');
let daemon: Daemon | undefined;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'publish-remote-'));
});
afterEach(async () => {
  await daemon?.kill();
  daemon = undefined;
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const content = (dir: string) => Object.fromEntries(Object.entries(snapshotTree(dir)).map(([p, v]) => [p, v.startsWith('f:') ? `f:${v.split(':')[1]}:${v.split(':')[4]}` : v.startsWith('d:') ? 'd' : v]));

describe('publishTree to an rsync daemon', () => {
  it('publishes, verifies and is idempotent over rsync://', async () => {
    const root = join(tmp, 'daemon-root');
    daemon = await startRsyncDaemon(tmp, 'mirror', root);
    const src = join(tmp, 'src');
    synthRepo(join(src, 'BaseOS/x86_64/os'), Array.from({ length: 30 }, (_, i) => ({ name: `p${i}`, version: '1', size: 1000 + i })));
    symlinkSync('BaseOS', join(src, 'baseos'));
    const dest = daemon.url('pub/rocky/9.7');
    const r = await publishTree({ workDir: work(), source: src, dest, delete: true });
    expect(r.verified).toBe(true);
    expect(r.dest).toBe(dest);
    expect(content(join(root, 'pub/rocky/9.7'))).toEqual(content(src));
    expect((await publishTree({ workDir: work(), source: src, dest, delete: true })).changed).toBe(false);

    // An update with deletions; deletion sizes come from the remote listing.
    synthRepo(join(src, 'BaseOS/x86_64/os'), Array.from({ length: 20 }, (_, i) => ({ name: `q${i}`, version: '1', size: 500 })), { mtime: 1_763_700_000 });
    for (let i = 0; i < 30; i++) rmSync(join(src, `BaseOS/x86_64/os/Packages/p/p${i}-1-1.el9.x86_64.rpm`));
    // A dry run never touches the caller's work dir (a stage's plan is pure): one that cannot be made.
    writeFileSync(join(tmp, 'a-file'), '');
    const dry = await publishTree({ workDir: join(tmp, 'a-file/work'), source: src, dest, delete: true, dryRun: true });
    const pkgDeletes = dry.deletes.filter((d) => d.path.endsWith('.rpm'));
    expect(pkgDeletes).toHaveLength(30);
    expect(pkgDeletes.find((d) => d.path.endsWith('/p7-1-1.el9.x86_64.rpm'))!.bytes).toBe(1007);
    const r2 = await publishTree({ workDir: work(), source: src, dest, delete: true, deletionGraceMs: 0 });
    expect(r2.phases.map((p) => p.name)).toEqual(['content', 'metadata', 'repomd', 'delete', 'attrs']);
    expect(content(join(root, 'pub/rocky/9.7'))).toEqual(content(src));
  });

  it('a dry run checks the destination CHECKSUM lists without writing to the work dir, and refuses changed bytes a list names', async () => {
    const root = join(tmp, 'daemon-root-sums');
    daemon = await startRsyncDaemon(tmp, 'mirror', root);
    const src = join(tmp, 'src-sums');
    mkdirSync(join(src, 'isos/x86_64'), { recursive: true });
    const iso = join(src, 'isos/x86_64/Rocky-9.7-x86_64-minimal.iso');
    writeFileSync(iso, 'the published bytes');
    const sha = createHash('sha256').update('the published bytes').digest('hex');
    writeFileSync(join(src, 'isos/x86_64/CHECKSUM'), `SHA256 (Rocky-9.7-x86_64-minimal.iso) = ${sha}\n`);
    const dest = daemon.url('pub/rocky/9.7');
    await publishTree({ workDir: work(), source: src, dest, delete: true });
    writeFileSync(iso, 'other bytes under the same name');
    writeFileSync(join(tmp, 'b-file'), '');
    const err = await publishTree({ workDir: join(tmp, 'b-file/work'), source: src, dest, delete: true, dryRun: true }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(PublishRefusedError);
    expect((err as Error).message).toContain(`isos/x86_64/Rocky-9.7-x86_64-minimal.iso: its bytes would change (sha256 ${sha}`);
    expect(readFileSync(join(root, 'pub/rocky/9.7/isos/x86_64/Rocky-9.7-x86_64-minimal.iso'), 'utf8')).toBe('the published bytes');
  });

  it('a dry run writes nothing anywhere (no list file, no pulled CHECKSUM, no temp dir) and plans the same figures', async () => {
    const root = join(tmp, 'daemon-root-dry');
    daemon = await startRsyncDaemon(tmp, 'mirror', root);
    const src = join(tmp, 'src-dry');
    synthRepo(join(src, 'BaseOS/x86_64/os'), Array.from({ length: 12 }, (_, i) => ({ name: `p${i}`, version: '1', size: 2000 + i })));
    mkdirSync(join(src, 'isos/x86_64'), { recursive: true });
    const iso = join(src, 'isos/x86_64/Rocky-9.7-x86_64-dvd.iso');
    const sha = (s: string) => createHash('sha256').update(s).digest('hex');
    const checksum = (s: string) => writeFileSync(join(src, 'isos/x86_64/CHECKSUM'), `# Rocky-9.7-x86_64-dvd.iso: ${s.length} bytes\nSHA256 (Rocky-9.7-x86_64-dvd.iso) = ${sha(s)}\n`);
    writeFileSync(iso, 'the published dvd');
    checksum('the published dvd');
    const dest = daemon.url('pub/rocky/9.7');
    await publishTree({ workDir: work(), source: src, dest, delete: true });
    const published = snapshotTree(root);

    // Nowhere to write: the work dir and the OS temp dir (TMPDIR, which os.tmpdir() reads) lie under a file.
    writeFileSync(join(tmp, 'c-file'), '');
    const nowhere = join(tmp, 'c-file/nowhere');
    const dry = async () => {
      const saved = process.env.TMPDIR;
      process.env.TMPDIR = nowhere;
      try {
        return await publishTree({ workDir: nowhere, source: src, dest, delete: true, dryRun: true });
      } finally {
        process.env.TMPDIR = saved;
      }
    };
    for (let i = 0; i < 5; i++) rmSync(join(src, `BaseOS/x86_64/os/Packages/p/p${i}-1-1.el9.x86_64.rpm`));
    const plan = await dry();
    expect(plan.deletes.map((d) => [d.path, d.bytes]).sort()).toEqual(Array.from({ length: 5 }, (_, i) => [`BaseOS/x86_64/os/Packages/p/p${i}-1-1.el9.x86_64.rpm`, 2000 + i]));
    expect(plan.bytes.delete).toBe(10010);

    // The ISO changes under its name while the published CHECKSUM (the same in the source) names the old bytes.
    writeFileSync(iso, 'other dvd bytes');
    const err = await dry().catch((e: Error) => e);
    expect(err).toBeInstanceOf(PublishRefusedError);
    expect((err as Error).message).toContain(`isos/x86_64/Rocky-9.7-x86_64-dvd.iso: its bytes would change (sha256 ${sha('the published dvd')} -> ${sha('other dvd bytes')})`);
    // With a new CHECKSUM in the source too (a respin): the destination's list is read, not the source's; the real run agrees.
    checksum('other dvd bytes');
    const refusal = `isos/x86_64/Rocky-9.7-x86_64-dvd.iso: its bytes would change (sha256 ${sha('the published dvd')} -> ${sha('other dvd bytes')}) but the destination's isos/x86_64/CHECKSUM names it with ${sha('the published dvd')}`;
    expect(((await dry().catch((e: Error) => e)) as Error).message).toContain(refusal);
    const real = await publishTree({ workDir: work(), source: src, dest, delete: true }).catch((e: Error) => e);
    expect(real).toBeInstanceOf(PublishRefusedError);
    expect((real as Error).message).toContain(refusal);
    expect(snapshotTree(root)).toEqual(published);
    expect(existsSync(join(tmp, 'publish-work'))).toBe(false);
  });

  it('fails clearly, reporting nothing as published, when the destination disappears mid-publish', async () => {
    const root = join(tmp, 'daemon-root-2');
    daemon = await startRsyncDaemon(tmp, 'mirror', root);
    const src = join(tmp, 'src-big');
    mkdirSync(join(src, 'isos/x86_64'), { recursive: true });
    writeFileSync(join(src, 'isos/x86_64/Rocky-9.7-x86_64-dvd.iso'), randomFillSync(Buffer.alloc(24 << 20)));
    synthRepo(join(src, 'BaseOS/x86_64/os'), Array.from({ length: 10 }, (_, i) => ({ name: `p${i}`, version: '1', size: 1000 })));
    const eventsFile = join(tmp, 'events-kill.jsonl');
    const base = eventLog(eventsFile);
    let killed = false;
    const log: EventLog = {
      info: base.info,
      event(type, data) {
        base.event(type, data);
        // Pull the plug once the content phase is under way (2 MiB/s: ~12 s of transfer).
        if (type === 'publish-phase-start' && data?.phase === 'content')
          setTimeout(() => {
            killed = true;
            void daemon!.kill();
          }, 1500);
      },
    };
    const err = await publishTree({ workDir: work(), source: src, dest: daemon.url('pub/rocky/9.7'), delete: true, bwlimitKiB: 2048, log }).catch((e) => e);
    expect(killed).toBe(true);
    expect(err).toBeInstanceOf(PublishError);
    expect(err.phase).toBe('content');
    expect(err.completed).toEqual([]);
    expect(err.message).toMatch(/failed in phase 'content' \(completed: none\): rsync exited \d+.*Nothing is reported as published/s);
    const types = readFileSync(eventsFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l).type);
    expect(types).toContain('publish-failed');
    expect(types).not.toContain('publish-done');
    expect(types).not.toContain('publish-verified');
    // No metadata reached the destination: whatever landed is content nothing names yet.
    expect(existsSync(join(root, 'pub/rocky/9.7/BaseOS/x86_64/os/repodata/repomd.xml'))).toBe(false);
  });
});
