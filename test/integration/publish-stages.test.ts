// Issue 6: staging, prod and their gates on composes built from the fixture's real signed repos.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostName, scratchName } from '@rocky/exec';
import { eventsFile, loadRelease, productionNames, publishLayout, stagingNames, type Release, type Site } from '@rocky/config';
import { approvalFile, gaCollision, isGaName, parseTorrentFile, treeDigest, writeApproval, type VettingReport } from '@rocky/publish';
import { decompress, nevraOf, parseModules, parseRepomd, parseUpdateinfo, readRepoPackages } from '@rocky/rpm-repo';
import { runStage, stageForTarget, type ProdPlan, type ProdResult, type StageContextInput, type StagingPlan, type StagingResult } from '@rocky/stages';
import { dropModuleStream, updatePackage } from '@rocky/upstream-fixture';
import { advisoryLines, dnfRoot } from '../helpers/dnf';
import { privateFixture, testSite, type TestSite } from '../helpers/fixture';
import { listing } from '../helpers/listing';
import { repoRoot } from '../helpers/workspace';
import { fakeCompose, snapshotTree, trimRelease, withReader } from './publish-helpers';

const events = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>) : []);

let fx: { root: string; cleanup(): void };
let t: TestSite;
const TORRENT = { trackers: ['udp://tracker.opentrackr.org:1337/announce'], comment: 'https://docs.rockylinux.org/release_notes/9_7/' };

beforeAll(async () => {
  fx = await privateFixture();
  t = await testSite(fx.root);
  t.site.publish = { deletionLimit: 1000, torrent: TORRENT };
});
afterAll(async () => {
  await t?.close();
  fx?.cleanup();
});

describe('staging and prod of rocky-9', () => {
  let rel: Release;
  let site: Site;
  const staging = (extra: Record<string, unknown> = {}) => t.run<StagingResult>('staging', 'rocky-9', { release: rel, ...extra });
  const prod = (runId: string, options: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => t.run<ProdResult>('prod', 'rocky-9', { release: rel, run: { id: runId, tasks: [] }, options, ...extra });
  const wsRoot = () => t.ctx('rocky-9', 'staging').root;
  /**
   * Runs `target` of rocky-9 with the OS tmp dir pointed at an empty dir; lists, at each publish
   * phase, what that dir and the site's state/tmp hold (where publishTree's work dir is), and
   * after the run what is left in them.
   */
  async function watchingWork<R>(target: string, extra: Partial<StageContextInput> = {}) {
    const osTmp = mkdtempSync(join(t.dir, 'os-tmp-'));
    const stateTmp = join(site.state, 'tmp');
    const ls = (d: string, as: string) => (existsSync(d) ? readdirSync(d).map((n) => `${as}/${n}`) : []);
    const seen = new Set<string>();
    const c = t.ctx('rocky-9', target, { release: rel, ...extra });
    const log = {
      info: c.log.info,
      event(type: string, data?: Record<string, unknown>) {
        c.log.event(type, data);
        if (type === 'publish-phase') for (const n of [...ls(stateTmp, 'state/tmp'), ...ls(osTmp, 'os tmp')]) seen.add(n);
      },
    };
    const ctx = { ...c, log };
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = osTmp;
    try {
      const o = await runStage(await stageForTarget(target, ctx), ctx);
      return { result: (o.dryRun ? undefined : o.result) as R, seen: [...seen], left: [...ls(stateTmp, 'state/tmp'), ...ls(osTmp, 'os tmp')] };
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
  }
  beforeAll(() => {
    rel = trimRelease(loadRelease(repoRoot, 'rocky-9'), ['x86_64'], ['BaseOS', 'AppStream', 'NFV']);
    site = t.site;
  });

  it('stages the compose, writes the vetting report, digest and torrents; a rerun changes nothing', async () => {
    fakeCompose({ fixtureRoot: fx.root, rel, site, wsRoot: wsRoot(), date: new Date('2025-11-20T10:00:00Z'), isoBytes: 5 << 20, isoSeed: 'rocky-9' });
    const dry = await t.run<StagingPlan>('staging', 'rocky-9', { release: rel, dryRun: true });
    expect(dry.preview!.adds.length).toBeGreaterThan(50);
    expect(existsSync(dry.releaseDir)).toBe(false); // a dry run changes nothing

    // A staging run SIGKILLed while publishing left its work dir: the next one sweeps it; each
    // publishes through its own in state/tmp (nothing under the OS tmp dir) and removes it.
    const dead = join(site.state, 'tmp', `publish-rocky-9-staging@${hostName()}.99999999`);
    mkdirSync(dead, { recursive: true });
    writeFileSync(join(dead, 'list-0'), 'BaseOS/x86_64/os/repodata/repomd.xml\0');
    const { result: r, seen, left } = await watchingWork<StagingResult>('staging');
    expect(seen).toEqual([`state/tmp/${scratchName('publish-rocky-9-staging')}`]);
    expect(left).toEqual([]);
    const paths = publishLayout(site, rel);
    expect(r.stagingDir).toBe(join(site.roots.staging, 'mirror/pub/rocky/9.7-RC2'));
    expect(r.reportDir).toBe(join(site.roots.staging, '.releng/vetting/rocky-9'));
    expect(r.ok).toBe(true);
    for (const [link, target] of Object.entries(stagingNames(rel).links)) expect(readlinkSync(join(paths.stagingCategory, link))).toBe(target);
    const report = JSON.parse(readFileSync(join(r.reportDir, 'report.json'), 'utf8')) as VettingReport;
    expect(report.digest).toBe(r.digest);
    expect(readFileSync(join(r.reportDir, 'digest'), 'utf8').trim()).toBe(r.digest);
    expect((await treeDigest(r.stagingDir)).digest).toBe(r.digest);
    expect(readFileSync(join(r.reportDir, 'report.md'), 'utf8')).toContain(`--approve=${r.digest}`);
    const baseos = report.repos.find((x) => x.tree === 'BaseOS/x86_64/os')!;
    expect(baseos.before).toBe(0);
    expect(baseos.added).toContain('bash-0:' + readRepoPackages(join(r.stagingDir, 'BaseOS/x86_64/os'))!.find((p) => p.name === 'bash')!.version + '-' + readRepoPackages(join(r.stagingDir, 'BaseOS/x86_64/os'))!.find((p) => p.name === 'bash')!.release + '.x86_64');
    expect(baseos.verification!.hashed).toBe(baseos.after); // all new: all hashed
    expect(report.repoclosure.map((c) => `${c.repo}:${c.ok}`).sort()).toEqual(['AppStream:true', 'BaseOS:true', 'NFV:true']);
    expect(report.checksums.files).toEqual(['isos/x86_64/CHECKSUM']);
    expect(report.checksums.failures).toEqual([]);
    expect(report.images.added).toEqual(['isos/x86_64/Rocky-9.7-x86_64-dvd.iso']);
    // The torrent went out with the ISO, outside the isos dir.
    const torrent = await parseTorrentFile(readFileSync(join(r.stagingDir, 'torrents/x86_64/Rocky-9.7-x86_64-dvd.torrent')));
    expect(torrent.files.map((f: { path: string }) => f.path)).toEqual(['Rocky-9.7-x86_64-dvd/CHECKSUM', 'Rocky-9.7-x86_64-dvd/Rocky-9.7-x86_64-dvd.iso']);
    expect(torrent.announce).toEqual(TORRENT.trackers);
    expect(events(eventsFile(site)).filter((e) => e.target === 'staging').map((e) => e.type)).toEqual(expect.arrayContaining(['stage-start', 'plan', 'staging-vetted', 'done']));

    const reportMtime = statSync(join(r.reportDir, 'report.json')).mtimeMs;
    const again = await staging();
    expect(again.changed).toBe(false);
    expect(again.digest).toBe(r.digest);
    expect(statSync(join(r.reportDir, 'report.json')).mtimeMs).toBe(reportMtime);
  });

  it('prod needs approval of the current digest, refuses stale approvals and big deletions, and is a no-op when current', async () => {
    const paths = publishLayout(site, rel);
    const digest1 = readFileSync(join(paths.reportDir, 'digest'), 'utf8').trim();
    const prodRoot = site.roots.production;
    const file = approvalFile(site.state, 'rocky-9');

    // No approval: refused, naming the digest and how to approve; production untouched.
    let before = snapshotTree(prodRoot);
    await expect(prod('run-1')).rejects.toThrow(new RegExp(`needs approval.*${digest1}.*--approve=${digest1}.*${file.replaceAll('/', '\\/')}`, 's'));
    expect(snapshotTree(prodRoot)).toEqual(before);
    const dry = await t.run<ProdPlan>('prod', 'rocky-9', { release: rel, dryRun: true });
    expect(dry.unchanged).toBe(false);
    expect(dry.approval.refused).toMatch(/needs approval/);
    expect(snapshotTree(prodRoot)).toEqual(before);

    // Approved by file: published, links set, prod-done recorded with the run id.
    writeApproval(file, { digest: digest1, approvedBy: 'tester', time: new Date().toISOString() });
    const { result: p1, seen, left } = await watchingWork<ProdResult>('prod', { run: { id: 'run-1', tasks: [] } });
    expect(seen).toEqual([`state/tmp/${scratchName('publish-rocky-9-prod')}`]);
    expect(left).toEqual([]);
    expect(p1.changed).toBe(true);
    expect(p1.productionDir).toBe(join(prodRoot, 'mirror/pub/rocky/9.7'));
    expect(snapshotContent(p1.productionDir)).toEqual(snapshotContent(p1.stagingDir));
    expect(readlinkSync(join(paths.productionCategory, '9'))).toBe('9.7');
    expect(productionNames(rel).links).toEqual({ '9': '9.7' });
    const done = events(eventsFile(site)).filter((e) => e.type === 'prod-done');
    expect(done.at(-1)).toMatchObject({ project: 'rocky-9', target: 'prod', runId: 'run-1', changed: true, digest: digest1 });

    // Nothing changed: succeeds without any approval, changes nothing.
    rmSync(file);
    before = snapshotTree(prodRoot);
    const p2 = await prod('run-2');
    expect(p2.changed).toBe(false);
    expect(snapshotTree(prodRoot)).toEqual(before);
    expect(events(eventsFile(site)).filter((e) => e.type === 'prod-done').at(-1)).toMatchObject({ runId: 'run-2', changed: false });

    // A new compose: bash updated upstream, staged again (new digest); the GA media stay as published.
    writeApproval(file, { digest: digest1, approvedBy: 'tester', time: new Date().toISOString() });
    const up = await updatePackage({ root: fx.root, project: 'rocky-9', repo: 'BaseOS', arch: 'x86_64', name: 'bash' });
    fakeCompose({ fixtureRoot: fx.root, rel, site, wsRoot: wsRoot(), date: new Date('2025-11-21T10:00:00Z'), isoBytes: 5 << 20, isoSeed: 'rocky-9' });
    const s2 = await staging();
    expect(s2.changed).toBe(true);
    expect(s2.digest).not.toBe(digest1);
    const report = JSON.parse(readFileSync(join(paths.reportDir, 'report.json'), 'utf8')) as VettingReport;
    const baseos = report.repos.find((x) => x.tree === 'BaseOS/x86_64/os')!;
    expect(baseos.updated).toEqual([expect.objectContaining({ name: 'bash', arch: 'x86_64' })]);
    expect(baseos.verification!.hashed).toBe(1); // only the package that changed
    expect(report.publish.deletes).toBeGreaterThan(0);
    expect(existsSync(join(s2.stagingDir, 'BaseOS/x86_64/os', up.oldHref))).toBe(false);

    // Stale approval file, and a wrong --approve: refused, production untouched.
    before = snapshotTree(prodRoot);
    await expect(prod('run-3')).rejects.toThrow(/is stale: the staged tree of rocky-9 changed since/);
    await expect(prod('run-3', { approve: digest1 })).rejects.toThrow(/does not match the staged tree/);
    // Right digest, but more deletions than the site allows: refused before any change.
    const strict = { ...site, publish: { ...site.publish, deletionLimit: 1 } };
    await expect(prod('run-3', { approve: s2.digest }, { site: strict })).rejects.toThrow(/refusing to delete \d+ files \(limit 1\).*--confirmDeletions/s);
    expect(snapshotTree(prodRoot)).toEqual(before);
    // The approval covers content: four bytes of a staged package changed in place, its size and
    // mtime kept, and the approved digest no longer names the tree.
    const victim = join(s2.stagingDir, 'BaseOS/x86_64/os', up.newHref);
    const { atime, mtime } = statSync(victim);
    const poke = (bytes: Buffer) => {
      const fd = openSync(victim, 'r+');
      writeSync(fd, bytes, 0, bytes.length, 200);
      closeSync(fd);
      utimesSync(victim, atime, mtime);
    };
    const original = readFileSync(victim).subarray(200, 204);
    poke(Buffer.from('XXXX'));
    await expect(prod('run-3', { approve: s2.digest, confirmDeletions: true })).rejects.toThrow(/changed since it was vetted/);
    expect(snapshotTree(prodRoot)).toEqual(before);
    poke(original);
    const refused = events(eventsFile(site)).filter((e) => e.type === 'prod-refused').map((e) => e.reason);
    expect(refused).toEqual(['no-approval', 'stale-approval', 'stale-approval', 'deletion-limit', 'not-vetted']);

    // The right digest on the command line: published.
    const p3 = await prod('run-3', { approve: s2.digest, confirmDeletions: true }, { site: strict });
    expect(p3.changed).toBe(true);
    expect(p3.approvedBy).toMatch(/--approve/);
    expect(snapshotContent(p3.productionDir)).toEqual(snapshotContent(s2.stagingDir));
    expect(existsSync(join(p3.productionDir, 'BaseOS/x86_64/os', up.newHref))).toBe(true);
    expect(existsSync(join(p3.productionDir, 'BaseOS/x86_64/os', up.oldHref))).toBe(false);
    const p4 = await prod('run-4');
    expect(p4.changed).toBe(false);
  });

  it('refuses a beta or lookahead that would overwrite GA content', async () => {
    expect(isGaName('9.7')).toBe(true);
    expect(isGaName('9')).toBe(true);
    expect(isGaName('9.8-beta')).toBe(false);
    const paths = publishLayout(site, rel);
    expect(gaCollision({ name: 'x', type: 'beta' }, { dir: '9.8', links: {} }, paths.gaMarkers, paths.productionCategory)).toMatch(/name stable releases own/);
    expect(gaCollision({ name: 'x', type: 'stable' }, { dir: '9.8', links: {} }, paths.gaMarkers, paths.productionCategory)).toBeUndefined();
    // rocky-9 (stable) left a GA marker on 9.7; a lookahead whose names reach it is refused.
    expect(JSON.parse(readFileSync(join(paths.gaMarkers, '9.7.json'), 'utf8'))).toMatchObject({ release: 'rocky-9', type: 'stable' });
    const lh = { ...loadRelease(repoRoot, 'rocky-9-lookahead') };
    expect(gaCollision(lh, { dir: productionNames(lh).dir, links: { '9-LookAhead': '9.7' } }, paths.gaMarkers, paths.productionCategory)).toBeUndefined();
    writeFileSync(join(paths.gaMarkers, `${productionNames(lh).dir}.json`), JSON.stringify({ release: 'rocky-9', type: 'stable', dir: productionNames(lh).dir, digest: 'x', time: 'then' }));
    const before = snapshotTree(site.roots.production);
    await expect(t.run('prod', 'rocky-9-lookahead', { options: { approve: '0'.repeat(64) } })).rejects.toThrow(/holds GA content of rocky-9.*must not overwrite it/);
    expect(snapshotTree(site.roots.production)).toEqual(before);
    rmSync(join(paths.gaMarkers, `${productionNames(lh).dir}.json`));
    // A real directory where a pre-release wants its link.
    mkdirSync(join(paths.productionCategory, '9-beta'));
    const beta = loadRelease(repoRoot, 'rocky-9-beta');
    await expect(t.run('prod', 'rocky-9-beta')).rejects.toThrow(/9-beta is a real directory/);
    rmSync(join(paths.productionCategory, '9-beta'), { recursive: true });
    expect(productionNames(beta).dir).toBe('9.8-beta');
  });
});

/** A staged tree's metadata of `type`, decompressed (undefined when its repomd.xml has none). */
function treeMetadata(tree: string, type: string): string | undefined {
  const rec = parseRepomd(readFileSync(join(tree, 'repodata/repomd.xml'), 'utf8')).records.find((r) => r.type === type);
  return rec && decompress(readFileSync(join(tree, rec.href)), rec.href).toString('utf8');
}
/** A staged tree's advisories: id → the NEVRAs it names there. */
const advisoriesOf = (tree: string) => Object.fromEntries(parseUpdateinfo(treeMetadata(tree, 'updateinfo') ?? '<updates/>').map((a) => [a.id, a.packages]));
const pkgIn = (tree: string, name: string) => readRepoPackages(tree)!.find((p) => p.name === name)!;
const nevraIn = (tree: string, name: string) => nevraOf(pkgIn(tree, name));
/** As dnf shows it. */
const nvraIn = (tree: string, name: string) => ((p) => `${p.name}-${p.version}-${p.release}.${p.arch}`)(pkgIn(tree, name));

describe('staging of rocky-8: repodata regenerated, module metadata accumulated, errata per repo and arch, signed before it appears', () => {
  let rel: Release;
  const staging = (extra: Record<string, unknown> = {}) => t.run<StagingResult>('staging', 'rocky-8', { release: rel, ...extra });
  const wsRoot = () => t.ctx('rocky-8', 'staging').root;
  const gnupg = () => join(t.dir, 'verify-gnupg');
  const verify = (dir: string) =>
    spawnSync('gpg', ['--homedir', gnupg(), '--batch', '--verify', join(dir, 'repodata/repomd.xml.asc'), join(dir, 'repodata/repomd.xml')], { encoding: 'utf8' });
  beforeAll(() => {
    rel = trimRelease(loadRelease(repoRoot, 'rocky-8'), ['x86_64'], ['Devel', 'BaseOS', 'AppStream', 'NFV']);
    mkdirSync(gnupg(), { recursive: true, mode: 0o700 });
    execFileSync('gpg', ['--homedir', gnupg(), '--batch', '--import', join(fx.root, 'RPM-GPG-KEY-fixture')], { stdio: 'ignore' });
  });
  afterAll(() => {
    spawnSync('gpgconf', ['--homedir', gnupg(), '--kill', 'all']);
  });

  it('publishes signed, regenerated repodata with comps, modules and each repo and arch\'s errata from Apollo; keeps old packages', async () => {
    expect(rel.publish).toMatchObject({ delete: false, regenerateRepodata: true, signRepodata: true });
    // The fixture's AppStream carries module streams (fixturemod:1 and :2), as koji's module builds do.
    const c1 = fakeCompose({ fixtureRoot: fx.root, rel, site: t.site, wsRoot: wsRoot(), date: new Date('2025-11-20T10:00:00Z'), isoSeed: 'rocky-8' });
    t.server.clearRequests();

    const r1 = await staging();
    expect(r1.ok).toBe(true);
    expect(r1.regenerated.sort()).toEqual(['AppStream/x86_64/debug/tree', 'AppStream/x86_64/os', 'AppStream/source/tree', 'BaseOS/x86_64/debug/tree', 'BaseOS/x86_64/os', 'BaseOS/source/tree', 'Devel/x86_64/debug/tree', 'Devel/x86_64/os', 'Devel/source/tree', 'NFV/x86_64/debug/tree', 'NFV/x86_64/os', 'NFV/source/tree'].sort());
    expect(r1.signed).toEqual(expect.arrayContaining([...r1.regenerated, 'BaseOS/x86_64/kickstart']));
    for (const tree of r1.signed) {
      const v = verify(join(r1.stagingDir, tree));
      expect(v.status, `${tree}: ${v.stderr}`).toBe(0);
    }
    const baseRepomd = readFileSync(join(r1.stagingDir, 'BaseOS/x86_64/os/repodata/repomd.xml'), 'utf8');
    expect(baseRepomd).toContain('cpe:/o:rocky:rocky:8.10');
    const types = (tree: string) => parseRepomd(readFileSync(join(r1.stagingDir, tree, 'repodata/repomd.xml'), 'utf8')).records.map((x) => x.type);
    expect(types('BaseOS/x86_64/os')).toEqual(expect.arrayContaining(['primary', 'group', 'updateinfo']));
    expect(types('AppStream/x86_64/os')).toEqual(expect.arrayContaining(['modules', 'updateinfo']));
    expect(types('BaseOS/x86_64/debug/tree')).not.toContain('updateinfo');
    // Apollo was asked for the errata of each os tree's repo and arch (a 404: none for NFV, devel).
    const asked = t.server.requests.filter((q) => q.path.startsWith('/api/v3/updateinfo/'));
    expect(asked.map((q) => `${q.path} ${q.status}`).sort()).toEqual([
      '/api/v3/updateinfo/rocky-linux/8/AppStream/updateinfo.xml 200',
      '/api/v3/updateinfo/rocky-linux/8/BaseOS/updateinfo.xml 200',
      '/api/v3/updateinfo/rocky-linux/8/NFV/updateinfo.xml 404',
      '/api/v3/updateinfo/rocky-linux/8/devel/updateinfo.xml 404',
    ]);
    expect(types('NFV/x86_64/os')).not.toContain('updateinfo');
    expect(types('Devel/x86_64/os')).not.toContain('updateinfo');
    // Each tree has its repo's advisories with its own packages; RLBA-2025:0002 names a glibc build no tree holds: left out.
    const base = join(r1.stagingDir, 'BaseOS/x86_64/os');
    const app = join(r1.stagingDir, 'AppStream/x86_64/os');
    expect(advisoriesOf(base)).toEqual({ 'RLSA-2025:0001': [nevraIn(base, 'bash')], 'RLSA-2025:0003': [nevraIn(base, 'basesystem')] });
    expect(advisoriesOf(app)).toEqual({ 'RLSA-2025:0003': [nevraIn(app, 'appstream-libs')], 'RLEA-2025:0004': [expect.stringMatching(/^fixturemod-0:2\.0-1\.module\+el8\.10\.0\+2\+[0-9a-f]{8}\.noarch$/)] });
    expect(events(eventsFile(t.site)).filter((e) => e.type === 'repodata-errata').map((e) => [e.tree, e.kept, e.dropped])).toEqual([
      ['BaseOS/x86_64/os', ['RLSA-2025:0001', 'RLSA-2025:0003'], ['RLBA-2025:0002']],
      ['AppStream/x86_64/os', ['RLSA-2025:0003', 'RLEA-2025:0004'], []],
    ]);
    // The module metadata each os tree published is kept for the next compose to merge with.
    expect(readFileSync(join(publishLayout(t.site, rel).moduleMetadata, 'x86_64/AppStream-modules.yaml'), 'utf8')).toBe(treeMetadata(app, 'modules'));
    expect(existsSync(join(publishLayout(t.site, rel).moduleMetadata, 'x86_64/BaseOS-modules.yaml'))).toBe(false);
    // dnf, checking the packages' and repomd.xml's signatures, sees each repo's advisories and none of another repo's.
    const dnf = dnfRoot({ releasever: 8, key: join(fx.root, 'RPM-GPG-KEY-fixture'), arch: 'x86_64', platform: 'platform:el8' });
    try {
      dnf.run({ b: base, a: app }, ['install', 'bash', 'basesystem', 'appstream-libs']);
      dnf.run({ b: base, a: app }, ['module', 'install', 'fixturemod:2']);
      const listed = (tree: string) => advisoryLines(dnf.run({ r: tree }, ['updateinfo', 'list', '--all'])).sort();
      expect(listed(base)).toEqual([['RLSA-2025:0001', nvraIn(base, 'bash')], ['RLSA-2025:0003', nvraIn(base, 'basesystem')]]);
      expect(listed(app).map(([id]) => id).sort()).toEqual(['RLEA-2025:0004', 'RLSA-2025:0003']);
      expect(listed(join(r1.stagingDir, 'NFV/x86_64/os'))).toEqual([]);
    } finally {
      dnf.close();
    }
    expect(readlinkSync(join(r1.stagingDir, 'nfv'))).toBe('NFV');
    expect(readlinkSync(join(r1.stagingDir, 'devel'))).toBe('Devel');
    // The compose's (and the store's) files were not modified.
    expect(readFileSync(join(c1.compose, 'BaseOS/x86_64/os/repodata/repomd.xml'), 'utf8')).not.toContain('updateinfo');

    // An update: bash rebuilt upstream. The reader watches staging while it is published.
    const up = await updatePackage({ root: fx.root, project: 'rocky-8', repo: 'BaseOS', arch: 'x86_64', name: 'bash' });
    // AppStream did not change upstream: the new compose carries the very same metadata (modules included).
    fakeCompose({
      fixtureRoot: fx.root,
      rel,
      site: t.site,
      wsRoot: wsRoot(),
      date: new Date('2025-11-21T10:00:00Z'),
      isoSeed: 'rocky-8',
      trees: (compose) => {
        rmSync(join(compose, 'AppStream/x86_64/os/repodata'), { recursive: true });
        execFileSync('cp', ['-a', join(c1.compose, 'AppStream/x86_64/os/repodata'), join(compose, 'AppStream/x86_64/os/')]);
      },
    });
    // Trees whose packages did not change keep their repodata as it is (bytes and times): mirrors fetch nothing again.
    const untouched = ['AppStream/x86_64/os', 'NFV/x86_64/os', 'BaseOS/source/tree'].map((tree) => listing(join(r1.stagingDir, tree, 'repodata')));
    const { value: r2, stats } = await withReader([r1.stagingDir], join(t.dir, 'reader-rocky8.json'), () => staging());
    expect(['AppStream/x86_64/os', 'NFV/x86_64/os', 'BaseOS/source/tree'].map((tree) => listing(join(r1.stagingDir, tree, 'repodata')))).toEqual(untouched);
    expect(stats.dangling + stats.torn, stats.samples.join('\n')).toBe(0);
    expect(r2.regenerated).toEqual(['BaseOS/x86_64/os']);
    expect(r2.publish.phases.map((p) => p.name)).toEqual(['content', 'metadata', 'signature', 'repomd', 'delete', 'attrs']);
    // Old packages stay (rocky-8), both versions are in the metadata; superseded repodata is gone.
    const os = join(r2.stagingDir, 'BaseOS/x86_64/os');
    expect(existsSync(join(os, up.oldHref)) && existsSync(join(os, up.newHref))).toBe(true);
    expect(readRepoPackages(os)!.filter((p) => p.name === 'bash')).toHaveLength(2);
    const named = new Set(parseRepomd(readFileSync(join(os, 'repodata/repomd.xml'), 'utf8')).records.map((x) => x.href.slice('repodata/'.length)));
    expect(readdirSync(join(os, 'repodata')).filter((n) => !named.has(n)).sort()).toEqual(['repomd.xml', 'repomd.xml.asc']);
    expect(verify(os).status).toBe(0);
    const report = JSON.parse(readFileSync(join(r2.reportDir, 'report.json'), 'utf8')) as VettingReport;
    expect(report.repos.find((x) => x.tree === 'BaseOS/x86_64/os')!.updated).toEqual([expect.objectContaining({ name: 'bash', from: [], to: [expect.stringContaining('bash-')] })]);
    // Signed before it appeared: whenever the reader saw the final repomd.xml, the .asc it read
    // right after was the final signature.
    const finalRepomd = sha(readFileSync(join(os, 'repodata/repomd.xml')));
    const finalAsc = sha(readFileSync(join(os, 'repodata/repomd.xml.asc')));
    const seen = stats.pairs.filter((p) => p.path === join(os, 'repodata/repomd.xml') && p.repomd === finalRepomd);
    expect(seen.length).toBeGreaterThan(0);
    for (const p of seen) expect(p.asc).toBe(finalAsc);

    const r3 = await staging();
    expect(r3.changed).toBe(false);
    expect(r3.regenerated).toEqual([]);
  });

  it('a run that fails after preparing the repodata leaves it to the rerun, which publishes it without rebuilding', async () => {
    await updatePackage({ root: fx.root, project: 'rocky-8', repo: 'BaseOS', arch: 'x86_64', name: 'bash' });
    fakeCompose({ fixtureRoot: fx.root, rel, site: t.site, wsRoot: wsRoot(), date: new Date('2025-11-22T10:00:00Z'), isoSeed: 'rocky-8' });
    // No deletion allowed unconfirmed: the publish refuses (the superseded repodata) after the repodata was prepared.
    const strict = { ...t.site, publish: { ...t.site.publish, deletionLimit: 0 } };
    await expect(staging({ site: strict })).rejects.toThrow(/deletion/i);
    const prepared = join(publishLayout(t.site, rel).stagingWork, 'prepared');
    // BaseOS changed; the kickstart tree is re-signed.
    const trees = ['BaseOS/x86_64/kickstart', 'BaseOS/x86_64/os'];
    expect(readdirSync(prepared).map((n) => decodeURIComponent(n.slice(0, n.lastIndexOf('.')))).sort()).toEqual(trees);

    const r = await staging();
    expect(r.ok).toBe(true);
    expect(r.resumed.sort()).toEqual(trees);
    expect(r.regenerated.sort()).toEqual(['BaseOS/x86_64/os']);
    expect(r.signed.sort()).toEqual(trees);
    const os = join(r.stagingDir, 'BaseOS/x86_64/os');
    expect(verify(os).status).toBe(0);
    expect(readRepoPackages(os)!.filter((p) => p.name === 'bash')).toHaveLength(3);
    expect(existsSync(prepared)).toBe(false);
  });

  it('keeps the module document of a stream a newer compose dropped while its packages stay, in the module metadata store; dnf still resolves the stream', async () => {
    const paths = publishLayout(t.site, rel);
    // Upstream (koji) untags stream 1 (EOL): the next compose has neither its packages nor its document.
    const removed = await dropModuleStream({ root: fx.root, project: 'rocky-8', repo: 'AppStream', module: 'fixturemod', stream: '1' });
    expect(removed).toEqual(expect.arrayContaining([expect.stringMatching(/^x86_64\/Packages\/f\/fixturemod-1\.0-/), expect.stringMatching(/^src\/Packages\/f\/fixturemod-1\.0-.*\.src\.rpm$/)]));
    const c = fakeCompose({ fixtureRoot: fx.root, rel, site: t.site, wsRoot: wsRoot(), date: new Date('2025-11-23T10:00:00Z'), isoSeed: 'rocky-8' });
    const streams = (yaml: string | undefined) => parseModules(yaml ?? '').filter((d) => d.document === 'modulemd').map((d) => `${d.module}:${d.stream}`).sort();
    expect(streams(treeMetadata(join(c.compose, 'AppStream/x86_64/os'), 'modules'))).toEqual(['fixturemod:2']);
    const from = events(eventsFile(t.site)).length;

    const r = await staging();
    expect(r.ok).toBe(true);
    expect(r.regenerated).toContain('AppStream/x86_64/os');
    const app = join(r.stagingDir, 'AppStream/x86_64/os');
    // Old packages stay (rocky-8), and so does the document that makes them a module stream.
    expect(readRepoPackages(app)!.filter((p) => p.name === 'fixturemod').map((p) => p.version).sort()).toEqual(['1.0', '2.0']);
    expect(streams(treeMetadata(app, 'modules'))).toEqual(['fixturemod:1', 'fixturemod:2']);
    expect(events(eventsFile(t.site)).slice(from).filter((e) => e.type === 'repodata-modules').map((e) => [e.tree, e.carried, e.dropped])).toEqual([
      ['AppStream/x86_64/os', [expect.stringMatching(/^modulemd:fixturemod:1:8100020251120000000:[0-9a-f]{8}:x86_64$/)], []],
    ]);
    // The store holds what was published, for the next compose to merge with.
    const store = join(paths.moduleMetadata, 'x86_64', 'AppStream-modules.yaml');
    expect(readFileSync(store, 'utf8')).toBe(treeMetadata(app, 'modules'));
    expect(verify(app).status).toBe(0);

    // dnf lists both streams and installs the dropped one's package, signatures checked.
    const dnf = dnfRoot({ releasever: 8, key: join(fx.root, 'RPM-GPG-KEY-fixture'), arch: 'x86_64', platform: 'platform:el8' });
    try {
      const repos = { b: join(r.stagingDir, 'BaseOS/x86_64/os'), a: app };
      expect(dnf.run(repos, ['module', 'list', 'fixturemod'])).toMatch(/^fixturemod\s+1\s+common\b.*\n^fixturemod\s+2 \[d\]/m);
      dnf.run(repos, ['module', 'install', 'fixturemod:1/common']);
      expect(dnf.run(repos, ['list', '--installed', 'fixturemod'])).toMatch(/fixturemod\.noarch\s+1\.0-1\.module\+el8\.10\.0\+1\+/);
    } finally {
      dnf.close();
    }

    // A rerun with nothing new changes nothing, and the store stays.
    const again = await staging();
    expect(again.regenerated).toEqual([]);
    expect(readFileSync(store, 'utf8')).toBe(treeMetadata(app, 'modules'));
  });

  it('errata from a directory source holding one document for every repo: each advisory lands only in the trees holding its packages', async () => {
    const staged = join(t.site.roots.staging, 'mirror/pub/rocky/8.10-RC2');
    const tree = (d: string) => join(staged, d, 'x86_64/os');
    const pkg = (d: string, name: string) => pkgIn(tree(d), name);
    const entry = (p: ReturnType<typeof pkg>) => `<package name="${p.name}" arch="${p.arch}" epoch="${p.epoch}" version="${p.version}" release="${p.release}" src=""><filename>${p.href.split('/').pop()}</filename></package>`;
    // One advisory naming packages of three repos, one naming a package no tree holds: the old static updateinfo.xml, everywhere.
    const doc =
      '<?xml version="1.0" encoding="UTF-8"?>\n<updates>\n' +
      `<update from="releng@rockylinux.invalid" status="final" type="security" version="2"><id>RLSA-2025:0100</id><title>Everything</title><issued date="2025-11-23 00:00:00"/><pkglist><collection short="all"><name>all</name>${entry(pkg('BaseOS', 'bash'))}${entry(pkg('AppStream', 'appstream-libs'))}${entry(pkg('NFV', 'nfv-libs'))}</collection></pkglist></update>\n` +
      `<update from="releng@rockylinux.invalid" status="final" type="bugfix" version="2"><id>RLBA-2025:0101</id><title>Nowhere</title><issued date="2025-11-23 00:00:00"/><pkglist><collection short="all"><name>all</name><package name="nowhere" arch="noarch" epoch="0" version="1" release="1" src=""><filename>nowhere-1-1.noarch.rpm</filename></package></collection></pkglist></update>\n</updates>\n`;
    const dir = join(t.dir, 'errata');
    for (const repo of ['devel', 'BaseOS', 'AppStream', 'NFV']) {
      mkdirSync(join(dir, repo, 'x86_64'), { recursive: true });
      writeFileSync(join(dir, repo, 'x86_64', 'updateinfo.xml'), doc);
    }
    const site = { ...t.site, errata: { type: 'dir' as const, path: join(dir, '{repo}/{arch}/updateinfo.xml') } };
    const dry = await t.run<StagingPlan>('staging', 'rocky-8', { release: rel, site, dryRun: true });
    expect(dry.staleRepodata.sort()).toEqual(['AppStream/x86_64/os', 'BaseOS/x86_64/os', 'Devel/x86_64/os', 'NFV/x86_64/os']);
    const r = await staging({ site });
    expect(r.regenerated.sort()).toEqual(['AppStream/x86_64/os', 'BaseOS/x86_64/os', 'Devel/x86_64/os', 'NFV/x86_64/os']);
    expect(advisoriesOf(tree('BaseOS'))).toEqual({ 'RLSA-2025:0100': [nevraOf(pkg('BaseOS', 'bash'))] });
    expect(advisoriesOf(tree('AppStream'))).toEqual({ 'RLSA-2025:0100': [nevraOf(pkg('AppStream', 'appstream-libs'))] });
    expect(advisoriesOf(tree('NFV'))).toEqual({ 'RLSA-2025:0100': [nevraOf(pkg('NFV', 'nfv-libs'))] });
    // Nothing of it is Devel's: no updateinfo there at all.
    expect(treeMetadata(tree('Devel'), 'updateinfo')).toBeUndefined();
    for (const d of ['BaseOS', 'AppStream', 'NFV', 'Devel']) expect(verify(tree(d)).status, d).toBe(0);
    // A broken document fails the plan, naming the tree, the field and the file; nothing is published.
    writeFileSync(join(dir, 'BaseOS', 'x86_64', 'updateinfo.xml'), '<html><body>502 Bad Gateway</body></html>\n');
    const before = listing(staged);
    await expect(staging({ site })).rejects.toThrow(/errata of BaseOS\/x86_64\/os \(errata\.path of .*local\.yaml\): .*BaseOS\/x86_64\/updateinfo\.xml: not an updateinfo document/);
    expect(listing(staged)).toEqual(before);
  });

  it('fails clearly when the site has no signing key', async () => {
    const unsigned = { ...t.site, signing: undefined };
    await expect(staging({ site: unsigned })).rejects.toThrow(/signs its repodata.*has no signing key/);
  });
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Content view (no inode or mode) for comparing two trees. */
function snapshotContent(dir: string): Record<string, string> {
  return Object.fromEntries(
    Object.entries(snapshotTree(dir)).map(([p, v]) => {
      const parts = v.split(':');
      return [p, parts[0] === 'f' ? `f:${parts[1]}:${parts[2]}:${parts[4]}` : parts[0] === 'd' ? 'd' : v];
    }),
  );
}
