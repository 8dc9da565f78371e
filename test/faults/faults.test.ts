// Issue 8, fault suite: every stage killed (SIGKILL, whole process group) at a random point and
// rerun; disk full during a download and an ISO write; upstream serving signed garbage XML; two
// sync processes on one compose; clock skew in the mirror file lists.
//
// Not repeated here (already covered elsewhere):
//   test/integration/sync-faults.test.ts     500 retries, persistent 404, corrupt body, ../ href,
//                                            kill -9 after 15 slow downloads, two syncs in one process
//   test/integration/publish-remote.test.ts  rsync destination (daemon) disappearing mid-publish
//   libs/publish/src/filelist.test.ts        a future mtime listed as is, a clock a day ahead
//
// Kill points are op counts, not times (see run-stage.ts): an uninterrupted run of the same stage
// on a reference site counts its ops M, and the victim is killed at a seeded random op in
// [0.2 M, 0.8 M]. Replay a failure with FAULT_SEED=<seed printed below>.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, utimesSync, writeFileSync, mkdirSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import cacache from 'cacache';
import { composeRoot, distDir, publishLayout, stagingNames, upstreamArch, type Arch, type Site } from '@rocky/config';
import { isDeadScratch, sha256File } from '@rocky/exec';
import { openStore } from '@rocky/store';
import { parseChecksum } from '@rocky/compose';
import { generateFileLists, parseFileTimeList } from '@rocky/publish';
import { readCloudManifest, readComposeRef, readExtraManifest, readIsoManifest, readSyncManifest, type FinalizeManifest, type StageContext, type StagingResult } from '@rocky/stages';
import { killAgent } from '../../apps/upstream-fixture/src/gpg';
import { privateFixture, rpmGets, testSite, type TestSite } from '../helpers/fixture';
import {
  badStoreObjects,
  canMountTmpfs,
  garbagePrimary,
  inodes,
  isMounted,
  mismatches,
  mountTmpfs,
  resizeTmpfs,
  rng,
  rsyncDiff,
  runStageChild,
  signedRepomd,
  storeObjects,
  tempFiles,
  usedKiB,
} from './helpers';

const REL = 'rocky-8'; // 2 arches: the smallest full release
const SEED = Number(process.env.FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** One stream per scenario, so replaying a seed gives each stage its kill point whatever ran before. */
const random = (name: string) => rng(SEED ^ Number.parseInt(createHash('sha256').update(name).digest('hex').slice(0, 8), 16));
const MOUNT = canMountTmpfs();

// Scenario → outcome, printed at the end for the team lead's closing note.
const outcomes: { scenario: string; outcome: string; detail: string }[] = [];
async function scenario(name: string, fn: () => Promise<string>): Promise<void> {
  try {
    outcomes.push({ scenario: name, outcome: 'pass', detail: await fn() });
  } catch (e) {
    outcomes.push({ scenario: name, outcome: 'FAIL', detail: (e as Error).message.split('\n')[0].slice(0, 160) });
    throw e;
  }
}

let fx: { root: string; cleanup(): void };
const sites: TestSite[] = [];
const mounts: string[] = [];
beforeAll(async () => {
  console.log(`fault suite seed ${SEED} (replay: FAULT_SEED=${SEED})`);
  fx = await privateFixture();
});
afterAll(async () => {
  for (const s of sites) await s.close().catch(() => undefined);
  for (const m of mounts) {
    if (isMounted(m)) execFileSync('umount', [m]);
    rmSync(m, { recursive: true, force: true });
  }
  if (fx) {
    await killAgent(join(fx.root, 'gnupg')); // finalize and the helpers sign: their agent outlives gpg
    fx.cleanup();
  }
  const w = Math.max(...outcomes.map((o) => o.scenario.length));
  console.log(
    [`fault suite (seed ${SEED}):`, ...outcomes.map((o) => `  ${o.scenario.padEnd(w)}  ${o.outcome.padEnd(7)}  ${o.detail}`)].join('\n'),
  );
});

/** The suite's sites use a local store. */
const storeDir = (site: Site) => (site.store.type === 's3' ? site.store.cache : site.store.path);

const newSite = async (overrides = {}) => {
  const t = await testSite(fx.root, overrides);
  sites.push(t);
  return t;
};

/** Runs `fn` with console.log captured: stages report what they reused or built in log lines. */
async function logged<T>(fn: () => Promise<T>): Promise<{ value: T; lines: string[] }> {
  const lines: string[] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
  try {
    return { value: await fn(), lines };
  } finally {
    spy.mockRestore();
  }
}

// --- manifests → files with their sha256 ---------------------------------------------------------

function syncEntries(ctx: StageContext) {
  const ref = readComposeRef(ctx.root, ctx.project);
  const groups = readdirSync(distDir(ctx.root, ctx.project, 'sync'))
    .filter((f) => f !== 'compose.json')
    .map((f) => f.replace(/\.json\.gz$/, '') as Arch | 'source');
  return groups.flatMap((g) =>
    readSyncManifest(ctx.root, ctx.project, g).trees.flatMap((t) =>
      [...t.packages, ...t.repodata].map((e) => ({ file: join(ctx.site.roots.compose, ref.dir, 'compose', t.path, e.path), sha256: e.sha256, tree: t, path: e.path })),
    ),
  );
}
const inStore = (ctx: StageContext, shas: string[]) => shas.map((sha256) => ({ file: openStore(ctx.site).pathOf(sha256), sha256 }));
function finalizeEntries(ctx: StageContext, base: string) {
  const m = JSON.parse(readFileSync(join(distDir(ctx.root, ctx.project, 'finalize'), 'manifest.json'), 'utf8')) as FinalizeManifest;
  return Object.entries(m.checksums).flatMap(([dir, text]) => parseChecksum(text).map((e) => ({ file: join(base, dir, e.name), sha256: e.sha256 })));
}
const composeDir = (ctx: StageContext) => join(ctx.site.roots.compose, readComposeRef(ctx.root, ctx.project).dir, 'compose');

/** Directories that hold only final names once a stage is done. */
const finalDirs = (t: TestSite, ctx: StageContext) => [t.site.roots.compose, join(ctx.root, 'dist'), join(storeDir(t.site), 'content-v2'), t.site.roots.staging];
const listDir = (d: string) => (existsSync(d) ? readdirSync(d) : []);
/** Work dirs and partial store objects of killed runs: the rerun must have removed them. */
const deadScratch = (t: TestSite) => [join(storeDir(t.site), 'tmp'), join(t.site.state, 'tmp')].flatMap((d) => listDir(d).filter(isDeadScratch).map((n) => join(d, n)));
/** What killed runs leave in TMPDIR (small: file lists, gpgv homes): reported. */
const tmpdirLeft = (t: TestSite) => listDir(join(t.dir, 'tmp'));

// --- 1. SIGKILL at a random point of every stage, then rerun ------------------------------------

describe('every stage killed at a random point, then rerun', () => {
  let ref: TestSite; // uninterrupted runs: count each stage's ops
  let vic: TestSite; // the victim: killed, rerun in-process, checked
  const rctx = (stage: string) => ref.ctx(REL, stage);
  const vctx = (stage: string) => vic.ctx(REL, stage);
  beforeAll(async () => {
    ref = await newSite();
    vic = await newSite();
  });

  /**
   * Counts the stage's ops on the reference site, kills the victim's run of it at a random op,
   * snapshots the victim (`atKill`), reruns in-process and hands everything to `check`, which
   * returns the redone-work detail for the summary.
   */
  async function killAndRerun<S>(
    stage: string,
    atKill: () => Promise<S> | S,
    check: (a: { snap: S; lines: string[]; ctx: StageContext; value: unknown }) => Promise<string>,
  ): Promise<void> {
    await scenario(`kill ${stage}`, async () => {
      const counted = await runStageChild(stage, rctx(stage), { count: true, tmpdir: join(ref.dir, 'tmp') });
      expect(counted.code, `uninterrupted ${stage} on the reference site: ${counted.stderr.slice(-800)}`).toBe(0);
      const m = counted.ops!;
      const lo = Math.ceil(0.2 * m);
      const at = lo + Math.floor(random(stage)() * (Math.floor(0.8 * m) - lo + 1));
      const killed = await runStageChild(stage, vctx(stage), { faultAt: at, tmpdir: join(vic.dir, 'tmp') });
      expect(killed.signal, `${stage} was to be killed at op ${at} of ${m} but ended with ${killed.code}: ${killed.stderr.slice(-800)}`).toBe('SIGKILL');
      const snap = await atKill();
      const { value, lines } = await logged(() => vic.run(stage, REL));
      const ctx = vctx(stage);
      expect(tempFiles(finalDirs(vic, ctx)), 'temp files left under final names').toEqual([]);
      expect(deadScratch(vic), 'scratch of killed runs left after the rerun').toEqual([]);
      const detail = await check({ snap, lines, ctx, value });
      const left = tmpdirLeft(vic);
      return `killed at op ${killed.killedAt} of ${m}; ${detail}${left.length ? `; ${left.length} TMPDIR leftovers so far` : ''}`;
    });
  }

  it('sync: packages already in the store are not fetched again; compose matches the manifests', async () => {
    const store = () => new Set(storeObjects(storeDir(vic.site)).keys());
    let before = 0;
    await killAndRerun(
      'sync',
      () => {
        before = rpmGets(vic.server).filter((r) => r.status === 200).length;
        vic.server.clearRequests();
        return store();
      },
      async ({ snap, ctx }) => {
        const entries = syncEntries(ctx);
        const byUrl = new Map(entries.map((e) => [`/v1/projects/${REL}/repo/hashed-${e.tree.repo}/${upstreamArch(e.tree)}/${e.path}`, e.sha256]));
        const gets = rpmGets(vic.server).filter((r) => r.status === 200);
        expect(gets.filter((r) => !byUrl.has(r.path)).map((r) => r.path), 'every fetched package is one of the compose').toEqual([]);
        const redone = gets.filter((r) => snap.has(byUrl.get(r.path)!));
        expect(redone.map((r) => r.path), 'fetched again although in the store at the kill').toEqual([]);
        expect(new Set(gets.map((r) => r.path)).size, 'each package fetched once').toBe(gets.length);
        expect(await mismatches(entries)).toEqual([]);
        expect(existsSync(composeRoot(vic.site, ctx.release).latest)).toBe(true);
        return `${before} packages fetched before the kill, ${gets.length} on the rerun, 0 fetched twice; ${entries.length} files checksummed`;
      },
    );
  });

  it('iso-x86_64: the rerun builds only if the killed run had not stored its ISO; a third run reuses it', async () => {
    const isoKeys = async (site: Site) => Object.keys((await cacache.ls(storeDir(site))) as Record<string, unknown>).filter((k) => k.startsWith(`iso:${REL}:x86_64:`));
    await killAndRerun(
      'iso-x86_64',
      async () => (await isoKeys(vic.site)).length > 0,
      async ({ snap: keyed, lines, ctx }) => {
        const built = !lines.some((l) => /reused from the artifact store/.test(l));
        expect(built, `the key ${keyed ? 'was' : 'was not'} stored at the kill`).toBe(!keyed);
        const m = readIsoManifest(ctx.root, REL, 'x86_64');
        expect(await mismatches(inStore(ctx, [m.iso.sha256, m.listing.sha256, ...m.tree.map((f) => f.sha256)]))).toEqual([]);
        const third = await logged(() => vic.run('iso-x86_64', REL));
        expect(third.lines.some((l) => /reused from the artifact store/.test(l)), 'a completed build is not redone').toBe(true);
        return `ISO ${keyed ? 'stored before the kill: reused' : 'not stored at the kill: built once'}; third run reused it`;
      },
    );
  });

  it('iso-aarch64 (setup for iso-extra, not killed)', async () => {
    await vic.run('iso-aarch64', REL);
    const r = await runStageChild('iso-aarch64', rctx('iso-aarch64'), { tmpdir: join(ref.dir, 'tmp') });
    expect(r.code, r.stderr).toBe(0);
  });

  it('iso-extra: only the DVDs not stored at the kill are built again', async () => {
    const keys = async () => (await cacache.ls(storeDir(vic.site))) as Record<string, { key: string }>;
    await killAndRerun(
      'iso-extra',
      async () => Object.keys(await keys()).filter((k) => k.startsWith(`extra-iso:${REL}:`)).length,
      async ({ snap: keyed, lines, ctx }) => {
        const m = readExtraManifest(ctx.root, REL);
        const built = lines.filter((l) => /iso-extra\] \S+ built \(/.test(l)).length;
        const reused = lines.filter((l) => /unchanged, reused from the artifact store/.test(l)).length;
        expect({ built, reused }).toEqual({ built: m.images.length - keyed, reused: keyed });
        expect(await mismatches(inStore(ctx, m.images.flatMap((i) => [i.sha256, i.listing.sha256])))).toEqual([]);
        return `${keyed} of ${m.images.length} DVDs stored before the kill and reused, ${built} built`;
      },
    );
  });

  it('cloud: images in the store at the kill are not ingested again', async () => {
    await killAndRerun(
      'cloud',
      () => storeObjects(storeDir(vic.site)),
      async ({ snap, ctx }) => {
        const m = readCloudManifest(ctx.root, REL);
        const now = storeObjects(storeDir(vic.site));
        const rewritten = m.images.filter((i) => snap.has(i.sha256) && snap.get(i.sha256)!.ino !== now.get(i.sha256)?.ino);
        expect(rewritten.map((i) => i.name)).toEqual([]);
        expect(await mismatches(inStore(ctx, m.images.map((i) => i.sha256)))).toEqual([]);
        return `${m.images.filter((i) => snap.has(i.sha256)).length} of ${m.images.length} images stored before the kill, none rewritten`;
      },
    );
  });

  it('finalize: placed ISOs and images are not placed again; every CHECKSUM entry matches its file', async () => {
    const placed = () => inodes(composeDir(vctx('finalize')), /^(?!isos|images)|CHECKSUM/);
    await killAndRerun('finalize', placed, async ({ snap, lines, ctx }) => {
      const now = placed();
      const replaced = [...snap].filter(([p, ino]) => now.get(p) !== ino).map(([p]) => p);
      expect(replaced, 'placed files replaced on the rerun').toEqual([]);
      expect(lines.filter((l) => /materialized \d+ files/.test(l)), 'compose trees rebuilt from the store').toEqual([]);
      const entries = finalizeEntries(ctx, composeDir(ctx));
      expect(await mismatches(entries)).toEqual([]);
      expect(readFileSync(join(composeDir(ctx), '..', 'STATUS'), 'utf8')).toMatch(/^FINISHED/);
      return `${snap.size} files placed before the kill, none replaced; ${entries.length} CHECKSUM entries verified`;
    });
  });

  it('staging: files staged and repodata prepared before the kill are not redone; the staged tree equals the compose', async () => {
    const paths = () => publishLayout(vic.site, vctx('staging').release);
    const releaseDir = () => join(paths().stagingCategory, stagingNames(vctx('staging').release).dir);
    // rocky-8 regenerates and signs its repodata in staging: those files differ from the compose by design.
    const staged = () => inodes(releaseDir(), /(^|\/)repodata(\/|$)/);
    // Repodata the killed run had prepared (complete dirs only; temps have a leading dot), by tree path.
    const prepared = () => {
      const d = join(paths().stagingWork, 'prepared');
      return existsSync(d) ? readdirSync(d).filter((n) => !n.startsWith('.')).map((n) => decodeURIComponent(n.slice(0, n.lastIndexOf('.')))) : [];
    };
    await killAndRerun('staging', () => ({ files: staged(), repodata: prepared() }), async ({ snap, ctx, value }) => {
      const r = value as StagingResult;
      expect(r.ok).toBe(true);
      const now = staged();
      const resent = [...snap.files].filter(([p, ino]) => now.has(p) && now.get(p) !== ino).map(([p]) => p);
      expect(resent, 'staged files replaced on the rerun').toEqual([]);
      // Prepared repodata is taken over, unless the killed run had published it already (then nothing is redone).
      expect(r.resumed.filter((t) => !snap.repodata.includes(t)), 'taken over but not prepared at the kill').toEqual([]);
      const rebuilt = r.regenerated.filter((t) => !r.resumed.includes(t));
      expect(rebuilt.filter((t) => snap.repodata.includes(t)), 'repodata rebuilt although prepared at the kill').toEqual([]);
      expect(prepared(), 'prepared repodata is dropped once published').toEqual([]);
      expect(rsyncDiff(composeDir(ctx), r.stagingDir, ['repodata/']), 'rsync -n compose → staging').toEqual([]);
      expect(await mismatches(finalizeEntries(ctx, r.stagingDir))).toEqual([]);
      return `${snap.files.size} files staged and ${snap.repodata.length} repodata trees prepared before the kill, none redone (${r.resumed.length} taken over); ${rebuilt.length} trees regenerated on the rerun; rsync -n shows nothing`;
    });
  });
});

// --- 2. disk full -------------------------------------------------------------------------------

describe('disk full (tmpfs under the compose root, store and state)', () => {
  it.skipIf(!MOUNT.ok)('a sync and an ISO write that run out of space fail naming ENOSPC, leave no partial file, and a rerun with space succeeds', async () => {
    await scenario('disk full: sync, then ISO write', async () => {
      const mnt = mkdtempSync(join(tmpdir(), 'rocky-diskfull-'));
      mounts.push(mnt);
      mountTmpfs(mnt, '8m');
      const t = await newSite({
        roots: { compose: join(mnt, 'compose'), staging: join(mnt, 'staging'), production: join(mnt, 'production') },
        store: { type: 'local', path: join(mnt, 'store') },
        state: join(mnt, 'state'),
      });
      const ctx = t.ctx(REL, 'sync');
      const iso = () => t.run('iso-x86_64', REL);
      const latest = composeRoot(t.site, ctx.release).latest;

      // A download that does not fit.
      const err = await t.run('sync', REL).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err?.message).toMatch(/ENOSPC|[Nn]o space left on device/);
      expect(existsSync(latest), 'latest link created by a failed sync').toBe(false);
      expect(existsSync(join(distDir(ctx.root, REL, 'sync'), 'compose.json'))).toBe(false);
      expect(tempFiles([t.site.roots.compose]), 'temp files under the compose').toEqual([]);
      expect(await badStoreObjects(storeDir(t.site)), 'store objects that are not their sha256').toEqual([]);
      // Every package already in the compose is a whole, verified file: the same bytes as upstream's.
      const upstream = new Map<string, string>();
      for (const f of execFileSync('find', [join(fx.root, 'v1/projects', REL), '-name', '*.rpm'], { encoding: 'utf8' }).split('\n').filter(Boolean)) upstream.set(f.split('/').pop()!, f);
      const rpms = execFileSync('find', [t.site.roots.compose, '-name', '*.rpm'], { encoding: 'utf8' }).split('\n').filter(Boolean);
      const partial: string[] = [];
      for (const f of rpms) if ((await sha256File(f)) !== (await sha256File(upstream.get(f.split('/').pop()!)!))) partial.push(f);
      expect(partial).toEqual([]);
      const syncMsg = err!.message.split('\n')[0];

      resizeTmpfs(mnt, '256m');
      await t.run('sync', REL);
      expect(existsSync(latest)).toBe(true);
      expect(await mismatches(syncEntries(ctx))).toEqual([]);

      // An ISO write that does not fit: room for the boot tree (~10 MiB here) but not also for
      // the 12 MiB boot ISO. xorriso checks the free space before writing and says so.
      resizeTmpfs(mnt, `${usedKiB(mnt) + 18 * 1024}k`);
      const isoErr = await iso().then(
        () => undefined,
        (e: Error) => e,
      );
      expect(isoErr?.message).toMatch(/ENOSPC|[Nn]o space left on device|exceeds free space/);
      const isoWhy = isoErr!.message.split('\n').find((l) => /ENOSPC|[Nn]o space left on device|exceeds free space/.test(l))!;
      expect(existsSync(join(distDir(ctx.root, REL, 'iso/x86_64'), 'manifest.json'))).toBe(false);
      expect(Object.keys((await cacache.ls(storeDir(t.site))) as Record<string, unknown>).filter((k) => k.startsWith(`iso:${REL}:x86_64:`))).toEqual([]);
      expect(await badStoreObjects(storeDir(t.site))).toEqual([]);
      expect(tempFiles([t.site.roots.compose, join(ctx.root, 'dist')])).toEqual([]);
      resizeTmpfs(mnt, '256m');
      const m = await iso();
      expect(await mismatches(inStore(ctx, [m.iso.sha256, m.listing.sha256]))).toEqual([]);
      return `sync: "…${syncMsg.slice(-75)}"; ISO: "${isoErr!.message.split('\n')[0].slice(0, 30)}… ${isoWhy.slice(0, 60)}"; reruns with room succeeded`;
    });
  });
  if (!MOUNT.ok) {
    console.log(`disk-full scenario skipped: cannot mount a tmpfs here (${MOUNT.why})`);
    outcomes.push({ scenario: 'disk full: sync, then ISO write', outcome: 'skipped', detail: `cannot mount a tmpfs: ${MOUNT.why}` });
  }
});

// --- 3. upstream serving garbage metadata ---------------------------------------------------------

describe('upstream returns garbage XML (signed, so the signature check passes)', () => {
  let t: TestSite;
  let ctx: StageContext;
  let latest: string;
  const tree = () => join(fx.root, 'v1/projects', REL, 'repo/hashed-BaseOS/x86_64');
  const composes = () => readdirSync(join(t.site.roots.compose, String(ctx.release.major))).filter((n) => n.startsWith('Rocky-')).sort();
  beforeAll(async () => {
    t = await newSite();
    ctx = t.ctx(REL, 'sync');
    latest = composeRoot(t.site, ctx.release).latest;
    await t.run('sync', REL); // a good compose, so "latest untouched" means something
  });

  for (const [name, body, want] of [
    ['garbage repomd.xml', 'Zm9vYmFy\u0000<<< definitely not xml', /rocky-8 BaseOS-x86_64-os: repomd\.xml: not valid XML/],
    ['an HTML error page as repomd.xml', '<html><body><h1>502 Bad Gateway</h1></body></html>\n', /rocky-8 BaseOS-x86_64-os: repomd\.xml: not a repomd document/],
  ] as const) {
    it(`${name}: sync fails naming the tree, latest untouched`, async () => {
      await scenario(`upstream ${name}`, async () => {
        const before = [readlinkSync(latest), composes()];
        const restore = await signedRepomd(fx.root, tree(), body);
        try {
          const err = await t.run('sync', REL).then(() => undefined, (e: Error) => e);
          expect(err?.message).toMatch(want);
          expect([readlinkSync(latest), composes()]).toEqual(before);
          return err!.message.split('\n')[0].slice(0, 110);
        } finally {
          restore();
        }
      });
    });
  }

  it('a garbage primary.xml.gz named by a valid, signed repomd.xml: sync fails naming the tree and file, latest untouched', async () => {
    await scenario('upstream garbage primary.xml.gz', async () => {
      const before = [readlinkSync(latest), composes()];
      const restore = await garbagePrimary(fx.root, tree());
      try {
        const err = await t.run('sync', REL).then(() => undefined, (e: Error) => e);
        expect(err?.message).toMatch(/rocky-8 BaseOS-x86_64-os: repodata\/[0-9a-f]{64}-primary\.xml\.gz: not valid XML/);
        expect([readlinkSync(latest), composes()]).toEqual(before);
        return err!.message.split('\n')[0].slice(0, 110);
      } finally {
        restore();
      }
    });
    // Upstream fixed: the next sync finds nothing changed.
    const again = await logged(() => t.run('sync', REL));
    expect(again.lines.join('\n')).toMatch(/up to date with upstream/);
  });
});

// --- 4. two sync processes on one compose ------------------------------------------------------------

describe('two syncs of one release at once, in two processes', () => {
  it('exactly one runs; the other refuses naming the running process; the compose is consistent', async () => {
    await scenario('two sync processes at once', async () => {
      const t = await newSite();
      const ctx = t.ctx(REL, 'sync');
      // Slow packages keep the first sync holding the lock while the second starts. The second
      // starts once the lock is taken: two processes starting together may otherwise not overlap
      // at all on a loaded machine (the second finding an up-to-date compose).
      t.server.setFaults([{ match: /\.rpm$/, kind: 'slow', delayMs: 40 }]);
      const tmp = { tmpdir: join(t.dir, 'tmp') };
      let firstEnded = false;
      const first = runStageChild('sync', ctx, tmp).finally(() => (firstEnded = true));
      const locked = () => listDir(join(t.site.roots.compose, '8')).some((n) => n.includes('.lock'));
      while (!locked() && !firstEnded) await new Promise((r) => setTimeout(r, 10));
      const [won, lost] = await Promise.all([first, runStageChild('sync', ctx, tmp)]);
      expect([won.code, lost.code]).toEqual([0, 1]);
      const m = /locked by running process (\d+)/.exec(lost.stderr);
      expect(m, lost.stderr).not.toBeNull();
      expect(Number(m![1]), 'the refusal names the running sync').toBe(won.pid);
      expect(won.stdout).not.toMatch(/locked/);
      const composes = readdirSync(join(t.site.roots.compose, '8')).filter((n) => n.startsWith('Rocky-'));
      expect(composes, 'compose directories').toHaveLength(1);
      expect(readdirSync(join(t.site.roots.compose, '8')).filter((n) => n.includes('.lock')), 'lock left behind').toEqual([]);
      const entries = syncEntries(ctx);
      expect(await mismatches(entries)).toEqual([]);
      expect(tempFiles([t.site.roots.compose])).toEqual([]);
      return `second refused ("${m![0]}"); one compose, ${entries.length} files checksummed`;
    });
  });
});

// --- 5. clock skew in the file lists -------------------------------------------------------------------

describe('clock skew in file times for the mirror file lists', () => {
  it('lists carry max(mtime, ctime), count future times, and a rerun with nothing changed rewrites nothing', async () => {
    await scenario('file lists under clock skew', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'rocky-skew-'));
      try {
        const mod = join(dir, 'pub', 'rocky');
        mkdirSync(join(mod, '9.7', 'BaseOS'), { recursive: true });
        const file = (p: string, body: string) => (writeFileSync(join(mod, p), body), join(mod, p));
        // File times come from the kernel's coarse clock, which lags Date.now() by up to a tick: read that clock.
        const probe = join(dir, 'clock-probe');
        const fsSecond = () => (writeFileSync(probe, ''), Math.floor(statSync(probe).ctimeMs / 1000));
        const now = fsSecond();
        const future = file('9.7/BaseOS/future.rpm', 'from a host whose clock runs a year ahead');
        const past = file('9.7/BaseOS/past.rpm', 'rsync -t from a host whose clock ran behind');
        file('9.7/BaseOS/now.rpm', 'written now');
        utimesSync(future, now + 365 * 86400, now + 365 * 86400);
        utimesSync(past, 631152000, 631152000); // 1990
        const opts = { lockFile: join(dir, 'filelist.lock'), cacheFile: join(dir, 'sha1-cache.json') };
        const listFile = join(mod, 'fullfiletimelist-rocky');
        const listed = () => new Map(parseFileTimeList(readFileSync(listFile, 'utf8')).files.map((e) => [e.path, e.mtime]));
        const expected = (p: string) => {
          const st = statSync(join(mod, p));
          return Math.floor(Math.max(st.mtimeMs, st.ctimeMs) / 1000);
        };

        const r1 = await generateFileLists([{ name: 'rocky', dir: mod }], opts);
        const l1 = listed();
        for (const p of ['9.7/BaseOS/future.rpm', '9.7/BaseOS/past.rpm', '9.7/BaseOS/now.rpm']) expect(l1.get(p), p).toBe(expected(p));
        expect(l1.get('9.7/BaseOS/future.rpm')).toBe(now + 365 * 86400); // listed as is, not clamped
        expect(l1.get('9.7/BaseOS/past.rpm')).toBeGreaterThanOrEqual(now); // its ctime, not 1990: a mirror sees it as new
        expect(r1.futureTimes).toBe(1);
        expect(r1.futurePaths).toEqual(['rocky:9.7/BaseOS/future.rpm']);

        // Nothing changed: no list rewritten, whatever the generating host's clock says.
        const ino = statSync(listFile).ino;
        const r2 = await generateFileLists([{ name: 'rocky', dir: mod }], opts);
        const r3 = await generateFileLists([{ name: 'rocky', dir: mod }], { ...opts, now: () => (now - 2 * 86400) * 1000 });
        expect([r2.written, r3.written]).toEqual([[], []]);
        expect(statSync(listFile).ino).toBe(ino);
        expect(r3.futureTimes, 'a clock two days behind sees every entry in the future').toBe(l1.size);

        // A file replaced by an older copy of the same size (a skewed sender): still a change.
        // Wait for the file system's clock to pass the listed second: a replacement within that second carries
        // the same time, a change no file list can show.
        while (fsSecond() <= expected('9.7/BaseOS/past.rpm')) await new Promise((r) => setTimeout(r, 100));
        const tmp = join(mod, '9.7/BaseOS/.past.rpm.new');
        writeFileSync(tmp, 'rsync -t from a host whose clock ran behinD');
        utimesSync(tmp, 631152000 - 86400, 631152000 - 86400);
        renameSync(tmp, past);
        const r4 = await generateFileLists([{ name: 'rocky', dir: mod }], opts);
        expect(r4.written).toContain(listFile);
        expect(listed().get('9.7/BaseOS/past.rpm')).toBeGreaterThan(l1.get('9.7/BaseOS/past.rpm')!);
        return `future entry listed as is (futureTimes 1), past mtime listed by ctime, reruns rewrote nothing (also with the clock 2 days behind), an older same-size replacement was picked up`;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
