// Publishing against the rsync receivers in the field (issue 19.3): the system rsync (3.5 here)
// and Debian 12's 3.2.7-1+deb12u6, which carries the 2025 security fixes that refuse
// --delete-missing-args with --files-from ("invalid file mode 00 ... protocol incompatibility").
// The old rsync is the receiver as a local tool (for a local copy one binary plays both sides)
// and as an rsync daemon behind the system client; the old client against the system daemon
// covers the other direction. Each publishes a tree, then a new one with deletions of every
// kind (packages, whole directories, wildcard and newline names, dir <-> file changes), and
// checks that only the planned paths went: a file that appears after the plan survives.
import { createHash } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EventLog } from '@rocky/exec';
import { PublishRefusedError, publishTree } from '@rocky/publish';
import { oldRsync, OLD_RSYNC_DEB, rsyncVersion, snapshotTree, startRsyncDaemon, synthRepo, type Daemon } from './publish-helpers';

type Which = 'system' | 'old';
interface Receiver {
  name: string;
  /** The rsync publishTree runs. */
  client: Which;
  /** The daemon's rsync; none: a local destination. */
  daemon?: Which;
}
const RECEIVERS: Receiver[] = [
  { name: 'local destination, system rsync', client: 'system' },
  { name: `local destination, ${OLD_RSYNC_DEB}`, client: 'old' },
  { name: `system rsync to a ${OLD_RSYNC_DEB} daemon`, client: 'system', daemon: 'old' },
  { name: 'system rsync to a system rsync daemon', client: 'system', daemon: 'system' },
  { name: `${OLD_RSYNC_DEB} to a system rsync daemon`, client: 'old', daemon: 'system' },
];

let tmp: string;
/** publishTree's work dir: under the test's dir, so a killed publish leaves nothing behind. */
const work = () => join(tmp, 'publish-work');
let old: Awaited<ReturnType<typeof oldRsync>>;
let daemon: Daemon | undefined;
const bin = (w: Which) => (w === 'old' ? old.bin! : 'rsync');
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'publish-versions-'));
  old = await oldRsync();
  console.log(`rsync versions: system ${rsyncVersion('rsync')}; old ${old.bin ? rsyncVersion(old.bin) : `(skipped: ${old.skip})`}`);
});
afterEach(async () => {
  await daemon?.kill();
  daemon = undefined;
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const put = (file: string, data: string | Buffer, mtime = 1_700_000_000) => {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, data);
  utimesSync(file, mtime, mtime);
};
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const ISO = 'isos/x86_64/Rocky-9.7-x86_64-dvd.iso';

function iso(src: string, data: Buffer, mtime: number) {
  put(join(src, ISO), data, mtime);
  const link = join(src, 'isos/x86_64/Rocky-9-latest-x86_64-dvd.iso');
  if (!existsSync(link)) symlinkSync('Rocky-9.7-x86_64-dvd.iso', link);
  const lines = ['Rocky-9.7-x86_64-dvd.iso', 'Rocky-9-latest-x86_64-dvd.iso'].map((n) => `# ${n}: ${data.length} bytes\nSHA256 (${n}) = ${sha(data)}\n`);
  put(join(src, 'isos/x86_64/CHECKSUM'), lines.join(''), 1_700_000_000);
}

/** v1: a repo, an ISO with its alias and CHECKSUM, odd names, a dir that becomes a file and back, hardlinks. */
function v1(src: string) {
  synthRepo(join(src, 'BaseOS/x86_64/os'), Array.from({ length: 10 }, (_, i) => ({ name: `p${i}`, version: '1', size: 700 + i })), { mtime: 1_763_000_000 });
  iso(src, Buffer.alloc(64 << 10, 7), 1_700_000_000);
  for (const n of ['a b.rpm', 'we[i]rd*?.txt', 'ünï.txt', 'back\\slash', '-dash', '#hash']) put(join(src, 'odd', n), n);
  put(join(src, 'X/inner/f'), 'dir first');
  put(join(src, 'Y'), 'file first');
  put(join(src, 'gone/sub/deep.rpm'), 'deep');
  put(join(src, 'gone/top.rpm'), 'top');
  put(join(src, 'shared/a.rpm'), 'shared');
  mkdirSync(join(src, 'shared2'));
  linkSync(join(src, 'shared/a.rpm'), join(src, 'shared2/a.rpm'));
}

/** v2: packages replaced (and the old repodata gone), odd names and a whole tree deleted, X and Y change type, the ISO only touched. */
function v2(src: string) {
  for (let i = 0; i < 4; i++) rmSync(join(src, `BaseOS/x86_64/os/Packages/p/p${i}-1-1.el9.x86_64.rpm`));
  rmSync(join(src, 'BaseOS/x86_64/os/repodata'), { recursive: true });
  synthRepo(join(src, 'BaseOS/x86_64/os'), [...Array.from({ length: 6 }, (_, i) => ({ name: `p${i + 4}`, version: '1', size: 704 + i })), { name: 'q1', version: '2', size: 900 }], { mtime: 1_763_100_000 });
  for (const n of ['we[i]rd*?.txt', 'back\\slash', '-dash']) rmSync(join(src, 'odd', n));
  rmSync(join(src, 'X'), { recursive: true });
  put(join(src, 'X'), 'now a file');
  rmSync(join(src, 'Y'));
  put(join(src, 'Y/z'), 'now a dir');
  rmSync(join(src, 'gone'), { recursive: true });
  utimesSync(join(src, ISO), 1_700_000_500, 1_700_000_500); // same bytes, new time: allowed under its CHECKSUM
}

/** path -> file size:sha256 / link target / dir, of everything under `dir`. */
const content = (dir: string) => snapshotTree(dir, { contentOnly: true });
const temps = (dir: string) => Object.keys(content(dir)).filter((p) => p.split('/').some((x) => x.startsWith('.~tmp~') || /^\.[^/]+\.[A-Za-z0-9]{6}$/.test(x)));

describe.each(RECEIVERS)('publishing with deletions: $name', (rc) => {
  it('publishes, deletes exactly the planned paths, refuses a changed ISO', async (ctx) => {
    if ((rc.client === 'old' || rc.daemon === 'old') && old.skip) return ctx.skip(old.skip);
    const case_ = join(tmp, rc.name.replace(/[^A-Za-z0-9]+/g, '-'));
    const src = join(case_, 'src');
    let physical: string;
    let dest: string;
    if (rc.daemon) {
      const root = join(case_, 'daemon-root');
      daemon = await startRsyncDaemon(case_, 'mirror', root, bin(rc.daemon));
      physical = join(root, 'pub/rocky/9.7');
      dest = daemon.url('pub/rocky/9.7');
    } else {
      physical = dest = join(case_, 'mirror/pub/rocky/9.7'); // parents missing: created without --mkpath (3.2.3+)
    }
    const opts = { dest, delete: true, rsync: bin(rc.client), deletionGraceMs: 0 };

    v1(src);
    const r1 = await publishTree({ workDir: work(), source: src, ...opts });
    expect(r1.verified).toBe(true);
    expect(content(physical)).toEqual(content(src));
    expect((await publishTree({ workDir: work(), source: src, ...opts })).changed).toBe(false);
    // A name published before names were checked, to be deleted now.
    put(join(physical, 'odd', 'stale\nname.rpm'), 'stale');

    v2(src);
    const dry = await publishTree({ workDir: work(), source: src, ...opts, dryRun: true });
    const planned = dry.deletes.map((d) => d.path);
    expect(planned).toEqual(expect.arrayContaining(['odd/we[i]rd*?.txt', 'odd/back\\slash', 'odd/-dash', 'odd/stale\nname.rpm', 'gone', 'gone/sub', 'gone/sub/deep.rpm', 'gone/top.rpm', 'BaseOS/x86_64/os/Packages/p/p0-1-1.el9.x86_64.rpm']));
    expect(dry.deletes.find((d) => d.path === 'gone/top.rpm')!.bytes).toBe(3);
    expect(content(physical)['odd/a b.rpm']).toBeDefined();

    // A file that appears in a directory being deleted, after the plan: not planned, so not deleted.
    const log: EventLog = {
      info: () => {},
      event: (type, data) => {
        if (type === 'publish-phase-start' && data?.phase === 'delete') put(join(physical, 'gone/sub/late.rpm'), 'late');
      },
    };
    await expect(publishTree({ workDir: work(), source: src, ...opts, log })).rejects.toThrow(/did not verify[\s\S]*gone\/sub\/late\.rpm/);
    expect(readdirSync(join(physical, 'gone'))).toEqual(['sub']);
    expect(readdirSync(join(physical, 'gone/sub'))).toEqual(['late.rpm']);
    const { gone: _g, 'gone/sub': _s, 'gone/sub/late.rpm': _l, ...rest } = content(physical);
    expect(rest).toEqual(content(src));

    // The rerun plans the newcomer and deletes it.
    const r2 = await publishTree({ workDir: work(), source: src, ...opts });
    expect(r2.verified).toBe(true);
    expect(r2.deletes.map((d) => d.path).sort()).toEqual(['gone', 'gone/sub', 'gone/sub/late.rpm']);
    expect(content(physical)).toEqual(content(src));
    expect(temps(physical)).toEqual([]);
    expect((await publishTree({ workDir: work(), source: src, ...opts })).changed).toBe(false);

    // The ISO's bytes change under its name while the destination's CHECKSUM names it: refused, dry run or not.
    const before = content(physical);
    const oldSum = sha(readFileSync(join(src, ISO)));
    iso(src, Buffer.alloc(64 << 10, 8), 1_700_001_000);
    const newSum = sha(readFileSync(join(src, ISO)));
    for (const dryRun of [true, false]) {
      const err = await publishTree({ workDir: work(), source: src, ...opts, dryRun }).catch((e) => e);
      expect(err).toBeInstanceOf(PublishRefusedError);
      expect(err.message).toContain(`${ISO}: its bytes would change (sha256 ${oldSum} -> ${newSum}) but the destination's isos/x86_64/CHECKSUM names it with ${oldSum}`);
    }
    expect(content(physical)).toEqual(before);
  });
});
