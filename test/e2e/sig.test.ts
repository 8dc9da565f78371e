// Issue 16.1 at the Nx level, in ONE temporary workspace on the local site: the two SIG releases
// (sig-cloud-9, sig-altarch-9) synced from their own Peridot projects (signed with the SIG key),
// staged under pub/sig/9/<sig> with vetting, refused by prod without approval, promoted and
// listed in one `nx run-many -t filelist` (the lists written once, after both prods); a mirror of
// pub/sig made with rsync from production matches it; and `nx affected` after a change to one
// SIG release file names that SIG only.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseFileTimeList, treeDigest, type VettingReport } from '@rocky/publish';
import { tempWorkspace, type TempWorkspace } from '../helpers/workspace';
import { sharedFixture } from '../helpers/fixture';
import { lastRunTasks, listing, nxOk, nxRun, readEvents } from './publish-helpers';

const SIGS = { 'sig-cloud-9': 'cloud', 'sig-altarch-9': 'altarch' } as const;
const KEYS = { cloud: 'RPM-GPG-KEY-Rocky-SIG-Cloud', altarch: 'RPM-GPG-KEY-Rocky-SIG-AltArch' } as const;
type SigRelease = keyof typeof SIGS;
const releases = Object.keys(SIGS) as SigRelease[];

/** Every entry under `root` as `path type size [target]`, sorted: what a mirror must reproduce. */
function entries(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(rel ? join(root, rel) : root).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, p));
      if (st.isSymbolicLink()) out.push(`${p} l ${readlinkSync(join(root, p))}`);
      else if (st.isDirectory()) {
        out.push(`${p} d`);
        walk(p);
      } else out.push(`${p} f ${st.size}`);
    }
  };
  walk('');
  return out;
}

describe('SIG releases through nx: sync, staging, the prod gate, prod and file lists under pub/sig', () => {
  let ws: TempWorkspace;
  let R: string;
  let stagingSig: string;
  let prodSig: string;
  let eventsFile: string;
  const digests: Partial<Record<SigRelease, string>> = {};
  const times: Record<string, number> = {};
  const t0 = Date.now();
  const step = <T>(name: string, fn: () => T): T => {
    const t = Date.now();
    try {
      return fn();
    } finally {
      times[name] = (Date.now() - t) / 1000;
    }
  };

  beforeAll(async () => {
    ws = tempWorkspace({ fixtureFrom: await sharedFixture() });
    R = join(ws.dir, '.releng');
    stagingSig = join(R, 'repos-staging/mirror/pub/sig');
    prodSig = join(R, 'repos-production/mirror/pub/sig');
    eventsFile = join(R, 'state/events.jsonl');
    times.setup = (Date.now() - t0) / 1000;
  });
  afterAll(() => {
    console.log(`SIG e2e times (s): ${JSON.stringify(times)}; total ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    ws?.cleanup();
  });

  it('nx affected after a change to one SIG release file: that SIG only', () => {
    const file = join(ws.dir, 'releases/sig-altarch-9/release.yaml');
    const before = readFileSync(file, 'utf8');
    try {
      writeFileSync(file, before.replace('arches: [aarch64]', 'arches: [aarch64] # SIG/AltArch builds for aarch64 only'));
      const out = step('nx show projects --affected', () => ws.nx(['show', 'projects', '--affected', '--base=main', '--json']));
      expect(JSON.parse(out.trim().split('\n').filter((l) => l.startsWith('[')).pop()!)).toEqual(['sig-altarch-9']);
    } finally {
      writeFileSync(file, before);
    }
  });

  it('nx run-many -t staging: each SIG synced into its own compose (SIG key, empanadas layout) and staged under pub/sig/9/<sig> with vetting; no ISO work', async () => {
    step('run-many staging', () => nxOk(ws, ['run-many', '-t', 'staging', '-p', releases.join(','), '--parallel=2']));
    const t = lastRunTasks(ws);
    expect(Object.keys(t).sort()).toEqual(releases.flatMap((r) => [`${r}:staging`, `${r}:sync`]).sort());
    for (const id of Object.keys(t)) expect(t[id], id).toMatchObject({ status: 0, cacheStatus: 'cache-miss' });

    for (const rel of releases) {
      const sig = SIGS[rel];
      // The compose: SIG-<sig>-9.7-<YYYYMMDD>.0 behind latest-SIG-<sig>-9, trees under compose/9/<sig>, finished by sync.
      const latest = join(R, `compose/9/latest-SIG-${sig}-9`);
      expect(readlinkSync(latest)).toMatch(new RegExp(`^SIG-${sig}-9\\.7-\\d{8}\\.0$`));
      expect(readFileSync(join(latest, 'STATUS'), 'utf8')).toBe('FINISHED\n');
      const trees = join(realpathSync(latest), 'compose/9', sig);
      const staged = join(stagingSig, '9', sig);
      // Staging holds exactly the compose's trees: <arch>/<repo>, <arch>/<repo>-debug, source/<repo>, each with the SIG's key.
      expect(entries(staged)).toEqual(entries(trees));
      const repos = sig === 'cloud' ? ['aarch64/cloud-common', 'aarch64/cloud-kernel', 'ppc64le/cloud-common', 's390x/cloud-common', 'x86_64/cloud-common', 'x86_64/cloud-kernel'] : ['aarch64/altarch-common', 'aarch64/altarch-devel', 'aarch64/altarch-rockyrpi'];
      const dirs = readdirSync(staged).flatMap((a) => readdirSync(join(staged, a)).map((r) => `${a}/${r}`));
      expect(dirs.sort()).toEqual([...repos, ...repos.map((r) => `${r}-debug`), ...repos.map((r) => `source/${r.split('/')[1]}`).filter((x, i, a) => a.indexOf(x) === i)].sort());
      for (const d of dirs) {
        expect(existsSync(join(staged, d, 'repodata/repomd.xml')), d).toBe(true);
        expect(readFileSync(join(staged, d, KEYS[sig]), 'utf8')).toBe(readFileSync(join(R, 'upstream/keys', KEYS[sig]), 'utf8'));
        expect(existsSync(join(staged, d, '.treeinfo')), d).toBe(false);
      }
      // Every package is signed with the SIG key, not the main one.
      const rpms = readdirSync(join(staged, repos[0], 'Packages'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
      expect(rpms.length).toBeGreaterThan(2);
      const db = mkdtempSync(join(ws.dir, 'rpmdb-'));
      execFileSync('rpmkeys', ['--dbpath', db, '--import', join(staged, repos[0], KEYS[sig])]);
      expect(execFileSync('rpmkeys', ['--dbpath', db, '--checksig', ...rpms], { encoding: 'utf8' }).trim().split('\n')).toEqual(rpms.map((f) => `${f}: digests signatures OK`));

      const vetting = join(R, `repos-staging/.releng/vetting/${rel}`);
      const digest = readFileSync(join(vetting, 'digest'), 'utf8').trim();
      const report = JSON.parse(readFileSync(join(vetting, 'report.json'), 'utf8')) as VettingReport;
      expect(report).toMatchObject({ ok: true, digest, stagingDir: staged });
      expect(report.repos.map((r) => r.tree).sort()).toEqual(dirs.sort());
      // SIG repos lean on the base OS: closure is reported, not required.
      expect(report.repoclosure.length).toBe(repos.length);
      expect(report.repoclosure.every((c) => !c.required)).toBe(true);
      expect((await treeDigest(staged)).digest).toBe(digest);
      digests[rel] = digest;
    }
    expect(readdirSync(stagingSig)).toEqual(['9']);
    expect(readdirSync(join(stagingSig, '9')).sort()).toEqual(['altarch', 'cloud']);
    expect(existsSync(join(R, 'repos-staging/mirror/pub/rocky'))).toBe(false);
  });

  it('nx run sig-cloud-9:prod refuses without approval, changing nothing', () => {
    const n0 = readEvents(eventsFile).length;
    const before = listing(join(R, 'repos-production'));
    const r = step('sig-cloud-9 prod (no approval)', () => nxRun(ws, ['run', 'sig-cloud-9:prod', '--excludeTaskDependencies']));
    expect(r.code, r.output).not.toBe(0);
    expect(r.output).toContain(`prod of sig-cloud-9 needs approval of the staged tree (digest ${digests['sig-cloud-9']}); nothing was changed`);
    expect(listing(join(R, 'repos-production'))).toEqual(before);
    expect(readEvents(eventsFile, n0).filter((e) => e.type === 'prod-refused').map((e) => [e.project, e.reason])).toEqual([['sig-cloud-9', 'no-approval']]);
  });

  it('nx run-many -t filelist: both prods (approval files), pub/sig/9/<sig> in production, fullfiletimelist-sig written once after both', async () => {
    mkdirSync(join(R, 'state/approvals'), { recursive: true });
    for (const rel of releases) writeFileSync(join(R, `state/approvals/${rel}.json`), JSON.stringify({ digest: digests[rel], approvedBy: 'e2e reviewer', time: new Date().toISOString() }));
    const n0 = readEvents(eventsFile).length;
    const run = step('run-many filelist', () => nxOk(ws, ['run-many', '-t', 'filelist', '-p', releases.join(','), '--parallel=2']));
    const t = lastRunTasks(ws);
    for (const rel of releases) for (const target of ['staging', 'prod', 'filelist']) expect(t[`${rel}:${target}`], `${rel}:${target}`).toMatchObject({ status: 0 });

    const ev = readEvents(eventsFile, n0);
    const runId = ev.find((e) => e.runId?.startsWith(`${run.pid}-`))?.runId;
    expect(runId).toBeDefined();
    const prodDone = ev.filter((e) => e.type === 'prod-done' && e.runId === runId);
    expect(prodDone.map((e) => [e.project, e.changed, e.digest])).toEqual(expect.arrayContaining(releases.map((r) => [r, true, digests[r]])));
    expect(prodDone).toHaveLength(2);
    const written = ev.filter((e) => e.type === 'filelist-written' && e.runId === runId);
    expect(written).toHaveLength(1);
    for (const p of prodDone) expect(ev.indexOf(written[0])).toBeGreaterThan(ev.indexOf(p));

    for (const rel of releases) {
      const dir = join(prodSig, '9', SIGS[rel]);
      expect((await treeDigest(dir)).digest, rel).toBe(digests[rel]);
      expect(entries(dir)).toEqual(entries(join(stagingSig, '9', SIGS[rel])));
    }
    // The sig module's lists (and the root's), every production entry of pub/sig listed with its type and size.
    const listFile = join(prodSig, 'fullfiletimelist-sig');
    expect(written[0].written).toEqual(expect.arrayContaining([listFile, join(prodSig, 'fullfiletimelist')]));
    expect(readFileSync(join(prodSig, 'fullfiletimelist'), 'utf8')).toBe(readFileSync(listFile, 'utf8'));
    const list = parseFileTimeList(readFileSync(listFile, 'utf8'));
    const byPath = new Map(list.files.map((f) => [f.path, f]));
    const listed = entries(join(prodSig, '9')).map((e) => e.split(' ')).map(([p, type, size]) => [`9/${p}`, type, size]);
    expect(listed.length).toBeGreaterThan(100);
    for (const [p, type, size] of listed) {
      expect(byPath.get(p)?.type[0], p).toBe(type);
      if (type === 'f') expect(byPath.get(p)!.size, p).toBe(Number(size));
    }
    expect(list.files.filter((f) => f.path.startsWith('9/'))).toHaveLength(listed.length);
    const sha1 = Object.keys(list.checksums.SHA1 ?? {}).filter((p) => p.endsWith('/repodata/repomd.xml'));
    expect(sha1.length).toBe(listed.filter(([p]) => p.endsWith('/repodata/repomd.xml')).length);
    const root = parseFileTimeList(readFileSync(join(R, 'repos-production/fullfiletimelist-root'), 'utf8'));
    expect(root.files.some((f) => f.path === 'mirror/pub/sig/9/cloud/x86_64/cloud-kernel/repodata/repomd.xml')).toBe(true);
    expect(existsSync(join(R, 'repos-production/mirror/pub/rocky'))).toBe(false);
  });

  it('a mirror of pub/sig made with rsync from production matches it, and its list describes it', async () => {
    const mirror = join(ws.dir, 'mirror/pub/sig');
    mkdirSync(mirror, { recursive: true });
    // What a downstream mirror runs (quick-fedora-mirror falls back to it): archive mode, hard links, deletions.
    step('rsync mirror', () => execFileSync('rsync', ['-aH', '--delete', `${prodSig}/`, `${mirror}/`]));
    expect(entries(mirror)).toEqual(entries(prodSig));
    for (const rel of releases) expect((await treeDigest(join(mirror, '9', SIGS[rel]))).digest, rel).toBe(digests[rel]);
    const list = parseFileTimeList(readFileSync(join(mirror, 'fullfiletimelist-sig'), 'utf8'));
    const listedPaths = new Set(list.files.map((f) => f.path));
    // Every entry of the SIG trees (the list files themselves are not listed).
    const trees = entries(join(mirror, '9')).map((e) => `9/${e.split(' ')[0]}`);
    expect(trees.filter((p) => !listedPaths.has(p))).toEqual([]);
    expect(list.files.filter((f) => f.path.startsWith('9/'))).toHaveLength(trees.length);
    // A client of the mirror: every package verifies with the key beside it.
    const repo = join(mirror, '9/altarch/aarch64/altarch-rockyrpi');
    const rpms = readdirSync(join(repo, 'Packages'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
    const db = mkdtempSync(join(ws.dir, 'rpmdb-mirror-'));
    execFileSync('rpmkeys', ['--dbpath', db, '--import', join(repo, KEYS.altarch)]);
    expect(execFileSync('rpmkeys', ['--dbpath', db, '--checksig', ...rpms], { encoding: 'utf8' })).not.toMatch(/NOT OK/);
    rmSync(join(ws.dir, 'mirror'), { recursive: true, force: true });
  });
});
