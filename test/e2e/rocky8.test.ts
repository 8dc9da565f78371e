// Rocky 8 as its SOP makes it, on the local site (issue 15): pungi makes five composes (the
// fixture's pungi-koji, pungi's options and layout, playing koji with the fixture's packages), each
// its own Nx task, directory and latest link; a DOOMED compose fails its task and nothing is
// staged; the minor release chain assembles them, and staging takes them in the SOP's order; the
// media are pungi's (buildinstall's boot ISO, the DVDs), collected by iso-<arch> and iso-extra and
// published under Rocky 8's names; a compose task is a cache hit while koji and its config are
// unchanged and its compose is whole; one compose is updated and staged alone. Staged, it goes on as
// a release engineer takes it: prod of the reviewed digest (refused without), the mirror file lists,
// and dnf with gpgcheck and repo_gpgcheck installing from production. rocky-8 and the fixture's pungi configs are trimmed to
// x86_64 in the workspace, to keep pungi's and the ISO work small. Each repo's errata come
// from the fixture's Apollo, and a module stream a newer compose dropped stays resolvable.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { tempWorkspace, type TempWorkspace } from '../helpers/workspace';
import { sharedFixture } from '../helpers/fixture';
import { dropModuleStream, updatePackage } from '@rocky/upstream-fixture';
import { advisoryLines, dnfRoot } from '../helpers/dnf';
import { DEFAULT_IMAGE_EXTENSIONS, parseFileTimeList, treeDigest } from '@rocky/publish';
import { readJson } from '@rocky/exec';
import type { ArchManifest } from '@rocky/stages';
import { entries, listing, nxOk, nxRun, readEvents } from './publish-helpers';

const COMPOSES = ['Plus', 'Extras', 'Rocky-devel', 'NFV', 'Rocky'];

describe('rocky-8: five pungi composes, verified, assembled and staged in the SOP order', () => {
  let ws: TempWorkspace;
  let R: string;
  const composeDir = () => join(R, 'compose/8');
  const staged = () => join(R, 'repos-staging/mirror/pub/rocky/8.10-RC2');
  const events = () => join(R, 'state/events.jsonl');
  /** pungi's compose dirs of one compose (`Extras-8-20261206.0`…), oldest first. */
  const dirsOf = (short: string) =>
    readdirSync(composeDir())
      .filter((n) => new RegExp(`^${short}-8-\\d{8}\\.\\d+$`).test(n))
      .sort((a, b) => Number(a.split('.').pop()) - Number(b.split('.').pop()));
  const status = (dir: string) => readFileSync(join(composeDir(), dir, 'STATUS'), 'utf8').trim();
  const ran = () => ws.runJson().tasks.map((t) => t.target).sort();
  /** dnf on the staged trees, packages and repomd.xml signatures checked with the key staging signs with (the fixture's). */
  const dnf = () => dnfRoot({ releasever: 8, key: join(R, 'upstream/RPM-GPG-KEY-fixture'), arch: 'x86_64', platform: 'platform:el8' });

  beforeAll(async () => {
    ws = tempWorkspace({ fixtureFrom: await sharedFixture() });
    R = join(ws.dir, '.releng');
    const rel = join(ws.dir, 'releases/rocky-8/release.yaml');
    const doc = parse(readFileSync(rel, 'utf8'));
    doc.arches = ['x86_64'];
    doc.repos = doc.repos.map((r: { arches?: string[] }) => (r.arches ? { ...r, arches: ['x86_64'] } : r));
    for (const img of Object.values(doc.cloud.images) as { arches?: string[] }[]) if (img.arches) img.arches = ['x86_64'];
    writeFileSync(rel, stringify(doc));
    const common = join(ws.dir, 'apps/upstream-fixture/pungi/r8-common.conf');
    writeFileSync(common, readFileSync(common, 'utf8').replace(/^tree_arches = .*$/m, "tree_arches = ['x86_64']"));
    ws.git('commit', '-qam', 'x86_64 only');
  });
  afterAll(() => ws?.cleanup());

  it('the plugin infers a task per compose, sync depends on them; a dry run shows the pungi-koji command and changes nothing', () => {
    const p = JSON.parse(ws.nx(['show', 'project', 'rocky-8', '--json']));
    for (const c of COMPOSES) for (const t of [`compose-${c}`, `update-compose-${c}`, `staging-${c}`, `update-staging-${c}`]) expect(Object.keys(p.targets)).toContain(t);
    expect(p.targets.sync.dependsOn).toEqual(COMPOSES.map((c) => `compose-${c}`));
    const dry = nxOk(ws, ['run', 'rocky-8:compose-Extras', '--dryRun']);
    expect(dry.output).toMatch(/\[rocky-8:compose-Extras\]\s+\$ \S+\/apps\/upstream-fixture\/bin\/pungi-koji --config \S+\/apps\/upstream-fixture\/pungi\/extras-8\.conf --target-dir \S+\/\.releng\/compose\/8 --production --label RC-8\.10 --old-composes \S+ --latest-link-status FINISHED --latest-link-status FINISHED_INCOMPLETE --print-output-dir/);
    expect(existsSync(composeDir())).toBe(false);
    expect(existsSync(join(ws.dir, 'dist/rocky-8'))).toBe(false);
  });

  it('a DOOMED compose fails its task, keeps pungi-koji\'s log, gets no latest link, and nothing is staged', () => {
    const r = nxRun(ws, ['run', 'rocky-8:staging-Extras'], { PUNGI_FIXTURE_FAULT: 'doomed' });
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/pungi-koji exited 1 \(compose \S+\/Extras-8-\d{8}\.0, compose STATUS DOOMED\)/);
    const doomed = dirsOf('Extras');
    expect(doomed).toHaveLength(1);
    expect(status(doomed[0])).toBe('DOOMED');
    expect(readFileSync(join(composeDir(), doomed[0], 'logs/global/releng-pungi-koji.global.log'), 'utf8')).toContain('--config');
    expect(lstatSync(join(composeDir(), 'latest-Extras-8'), { throwIfNoEntry: false })).toBeUndefined();
    expect(existsSync(join(ws.dir, 'dist/rocky-8/compose-Extras/compose.json'))).toBe(false);
    expect(existsSync(join(R, 'repos-staging/mirror'))).toBe(false);
    expect(readEvents(events()).filter((e) => e.type === 'failed').map((e) => e.target)).toEqual(['compose-Extras']);
    expect(readEvents(events()).some((e) => e.target === 'staging-Extras')).toBe(false);
  });

  it('staging: five composes through pungi-koji (argv in the log), verified, assembled, staged Plus, Extras, Rocky-devel, NFV, Rocky', () => {
    const from = readEvents(events()).length;
    const r = nxOk(ws, ['run', 'rocky-8:staging']);
    expect(r.output).toMatch(/\[rocky-8:compose-Rocky\]\s+\$ \S+\/pungi-koji --config \S+\/r8\.conf --target-dir \S+ --production --label RC-8\.10/);
    for (const c of COMPOSES) {
      const dirs = dirsOf(c);
      const last = dirs.at(-1)!;
      expect(status(last), c).toBe('FINISHED');
      // pungi's own latest link, moved by pungi to the finished compose.
      expect(readlinkSync(join(composeDir(), `latest-${c}-8`)), c).toBe(last);
      expect(existsSync(join(composeDir(), last, 'logs/global/releng-pungi-koji.global.log')), c).toBe(true);
      const rec = JSON.parse(readFileSync(join(ws.dir, `dist/rocky-8/compose-${c}/compose.json`), 'utf8'));
      expect(rec).toMatchObject({ compose: c, composeId: last, status: 'FINISHED', failed: [] });
      expect(rec.trees.length, c).toBeGreaterThan(0);
    }
    // The pipeline's compose beside pungi's: every repo's trees, kickstart copies of the os trees.
    const ref = JSON.parse(readFileSync(join(ws.dir, 'dist/rocky-8/sync/compose.json'), 'utf8'));
    expect(ref.dir).toMatch(/^8\/assembled\/Rocky-8\.10-\d{8}\.0$/);
    expect(ref.pungi.map((p: { compose: string }) => p.compose)).toEqual(COMPOSES);
    const x86 = readJson<ArchManifest>(join(ws.dir, 'dist/rocky-8/sync/x86_64.json.gz'));
    expect(x86.trees.map((t: { path: string }) => t.path)).toEqual(expect.arrayContaining(['BaseOS/x86_64/os', 'BaseOS/x86_64/kickstart', 'extras/x86_64/os', 'plus/x86_64/os', 'Devel/x86_64/os', 'NFV/x86_64/os', 'RT/x86_64/debug/tree']));
    // Staged in the SOP's order, then the rest; the repodata signed.
    const order = readEvents(events(), from).filter((e) => e.type === 'staging-compose').map((e) => e.compose);
    expect(order).toEqual(COMPOSES);
    for (const t of ['BaseOS/x86_64/os', 'extras/x86_64/os', 'plus/x86_64/os', 'Devel/x86_64/os', 'NFV/x86_64/os']) expect(existsSync(join(staged(), t, 'repodata/repomd.xml.asc')), t).toBe(true);
    // pungi's ISO dirs inside its variants are not the release's media.
    expect(existsSync(join(staged(), 'BaseOS/x86_64/iso'))).toBe(false);
    // Each repo's advisories from Apollo, and none of another repo's.
    const d = dnf();
    try {
      const repos = { b: join(staged(), 'BaseOS/x86_64/os'), a: join(staged(), 'AppStream/x86_64/os') };
      d.run(repos, ['install', 'bash', 'basesystem', 'appstream-libs']);
      d.run(repos, ['module', 'install', 'fixturemod:2']);
      const ids = (tree: string) => [...new Set(advisoryLines(d.run({ r: join(staged(), tree) }, ['updateinfo', 'list', '--all'])).map(([id]) => id))].sort();
      expect(ids('BaseOS/x86_64/os')).toEqual(['RLSA-2025:0001', 'RLSA-2025:0003']);
      expect(ids('AppStream/x86_64/os')).toEqual(['RLEA-2025:0004', 'RLSA-2025:0003']);
      expect(ids('extras/x86_64/os')).toEqual([]);
    } finally {
      d.close();
    }
  });

  it("the media are pungi's, collected, verified and published under Rocky 8's names, with CHECKSUM files and a bootable tree", () => {
    const rocky = join(composeDir(), dirsOf('Rocky').at(-1)!, 'compose');
    // iso-x86_64 and iso-extra took pungi's ISOs (buildinstall's boot ISO, BaseOS's dvd1, Minimal's minimal): the same bytes.
    const boot = JSON.parse(readFileSync(join(ws.dir, 'dist/rocky-8/iso/x86_64/manifest.json'), 'utf8'));
    expect(boot).toMatchObject({ builder: 'pungi', iso: { name: 'Rocky-8.10-x86_64-boot.iso', volumeId: 'Rocky-8-10-x86_64-dvd', bootable: true } });
    const extra = JSON.parse(readFileSync(join(ws.dir, 'dist/rocky-8/iso-extra/manifest.json'), 'utf8')).images;
    expect(extra.map((e: { name: string }) => e.name).sort()).toEqual(['Rocky-8.10-x86_64-dvd1.iso', 'Rocky-8.10-x86_64-minimal.iso']);
    const isos = join(staged(), 'isos/x86_64');
    const same = (a: string, b: string) => expect(readFileSync(a).equals(readFileSync(b)), `${a} = ${b}`).toBe(true);
    same(join(isos, 'Rocky-8.10-x86_64-boot.iso'), join(rocky, 'BaseOS/x86_64/iso/Rocky-8.10-x86_64-boot.iso'));
    same(join(isos, 'Rocky-8.10-x86_64-dvd1.iso'), join(rocky, 'BaseOS/x86_64/iso/Rocky-8.10-x86_64-dvd1.iso'));
    same(join(isos, 'Rocky-8.10-x86_64-minimal.iso'), join(rocky, 'Minimal/x86_64/iso/Rocky-8.10-x86_64-minimal.iso'));
    // The sync scripts' names: dvd1 with the dvd alias, the Rocky-8-latest links (dvd1 → dvd).
    for (const [link, to] of [
      ['Rocky-8.10-x86_64-dvd.iso', 'Rocky-8.10-x86_64-dvd1.iso'],
      ['Rocky-8-latest-x86_64-dvd.iso', 'Rocky-8.10-x86_64-dvd1.iso'],
      ['Rocky-8-latest-x86_64-boot.iso', 'Rocky-8.10-x86_64-boot.iso'],
      ['Rocky-8-latest-x86_64-minimal.iso', 'Rocky-8.10-x86_64-minimal.iso'],
    ])
      expect(readlinkSync(join(isos, link)), link).toBe(to);
    const checksum = readFileSync(join(isos, 'CHECKSUM'), 'utf8');
    for (const n of ['Rocky-8.10-x86_64-boot.iso', 'Rocky-8.10-x86_64-dvd1.iso', 'Rocky-8.10-x86_64-dvd.iso', 'Rocky-8.10-x86_64-minimal.iso', 'Rocky-8-latest-x86_64-dvd.iso']) expect(checksum, n).toContain(`SHA256 (${n}) = `);
    expect(readdirSync(isos)).toEqual(expect.arrayContaining(['CHECKSUM.asc', 'Rocky-8.10-x86_64-dvd1.iso.CHECKSUM', 'Rocky-8.10-x86_64-dvd1.iso.manifest']));
    // BaseOS installs over the network from buildinstall's boot tree, as on rocky-9.
    const ti = readFileSync(join(staged(), 'BaseOS/x86_64/os/.treeinfo'), 'utf8');
    expect(ti).toMatch(/^mainimage = images\/install\.img$/m);
    expect(ti).toMatch(/^\[variant-AppStream\]$/m);
    expect(existsSync(join(staged(), 'BaseOS/x86_64/os/images/pxeboot/vmlinuz'))).toBe(true);
    const images = JSON.parse(readFileSync(join(staged(), 'metadata/images.json'), 'utf8')).payload.images;
    expect(Object.values(images).flatMap((a) => Object.values(a as Record<string, { path: string }[]>).flat().map((i) => i.path)).filter((p) => p.startsWith('isos/')).sort()).toEqual([
      'isos/x86_64/Rocky-8.10-x86_64-boot.iso',
      'isos/x86_64/Rocky-8.10-x86_64-dvd1.iso',
      'isos/x86_64/Rocky-8.10-x86_64-minimal.iso',
    ]);
  });

  // Issue 15: then as a release engineer goes on: prod of the reviewed digest, the mirror file
  // lists, and dnf as a user runs it against production.
  const prodCat = () => join(R, 'repos-production/mirror/pub/rocky');
  const prod8 = (tree = '') => join(prodCat(), '8', tree);
  const stagedDigest = () => readFileSync(join(R, 'repos-staging/.releng/vetting/rocky-8/digest'), 'utf8').trim();

  it('prod without approval is refused and changes nothing; prod --approve=<staged digest> publishes 8.10 with 8 -> 8.10, the approved tree', async () => {
    const digest = stagedDigest();
    expect(digest).toMatch(/^[0-9a-f]{64}$/);
    expect((await treeDigest(staged())).digest).toBe(digest);
    const n0 = readEvents(events()).length;
    const none = nxRun(ws, ['run', 'rocky-8:prod', '--excludeTaskDependencies']);
    expect(none.code, none.output).not.toBe(0);
    expect(none.output).toContain(`prod of rocky-8 needs approval of the staged tree (digest ${digest}); nothing was changed`);
    expect(listing(join(R, 'repos-production'))).toEqual(['<absent>']);
    expect(readEvents(events(), n0).filter((e) => e.type === 'prod-refused').map((e) => e.reason)).toEqual(['no-approval']);

    // The whole chain, as typed: staging reruns first and must leave the reviewed tree as it is.
    const n1 = readEvents(events()).length;
    nxOk(ws, ['run', 'rocky-8:prod', `--approve=${digest}`]);
    expect(readdirSync(prodCat()).sort()).toEqual(['8', '8.10']);
    expect(readlinkSync(join(prodCat(), '8'))).toBe('8.10');
    expect((await treeDigest(join(prodCat(), '8.10'))).digest).toBe(digest);
    const done = readEvents(events(), n1).filter((e) => e.type === 'prod-done');
    expect(done).toHaveLength(1);
    expect(done[0]).toMatchObject({ project: 'rocky-8', changed: true, digest, approvedBy: 'command line (--approve)' });
    for (const t of ['BaseOS/x86_64/os', 'AppStream/x86_64/os', 'extras/x86_64/os', 'plus/x86_64/os', 'Devel/x86_64/os', 'NFV/x86_64/os']) expect(existsSync(prod8(`${t}/repodata/repomd.xml.asc`)), t).toBe(true);
    expect(readlinkSync(prod8('isos/x86_64/Rocky-8-latest-x86_64-dvd.iso'))).toBe('Rocky-8.10-x86_64-dvd1.iso');
  });

  it('filelist: the quick-fedora-mirror lists describe the Rocky 8 production tree, entry by entry', () => {
    const n0 = readEvents(events()).length;
    // prod is done (the lists waiting for every prod of a run is publish.test.ts's): the lists alone.
    nxOk(ws, ['run', 'rocky-8:filelist', '--excludeTaskDependencies']);
    const ev = readEvents(events(), n0);
    const written = ev.filter((e) => e.type === 'filelist-written');
    expect(written).toHaveLength(1);
    const listFile = join(prodCat(), 'fullfiletimelist-rocky');
    expect(written[0].written).toContain(listFile);
    const text = readFileSync(listFile, 'utf8');
    for (const alias of ['fullfiletimelist', 'fullfiletimelist-rocky-linux']) expect(readFileSync(join(prodCat(), alias), 'utf8'), alias).toBe(text);
    const list = parseFileTimeList(text);
    const byPath = new Map(list.files.map((f) => [f.path, f]));
    expect(byPath.get('8')?.type[0]).toBe('l');
    expect(byPath.get('8.10')?.type[0]).toBe('d');
    // Every entry of production's 8.10 with its type, size and time (max of mtime and ctime, whole
    // seconds), and nothing listed that is not there.
    const all = entries(prodCat(), '8.10');
    expect(all.length).toBeGreaterThan(300);
    const wrong = all.flatMap(([p, type, size]) => {
      const e = byPath.get(p);
      const st = lstatSync(join(prodCat(), p));
      const time = Math.floor(Math.max(st.mtimeMs, st.ctimeMs) / 1000);
      if (!e) return [`${p}: not listed`];
      if (e.type[0] !== type || (type === 'f' && e.size !== size) || e.mtime !== time) return [`${p}: listed ${e.type} ${e.size} ${e.mtime}, is ${type} ${size} ${time}`];
      return [];
    });
    expect(wrong.slice(0, 10), `${wrong.length} entries wrong`).toEqual([]);
    expect(list.files.filter((f) => f.path.startsWith('8.10/')).map((f) => f.path).sort()).toEqual(all.map(([p]) => p).sort());
    // [Checksums SHA1] of every repomd.xml is what sha1sum says.
    const sha1 = list.checksums.SHA1 ?? {};
    const repomds = all.map(([p]) => p).filter((p) => p.endsWith('/repodata/repomd.xml'));
    expect(repomds).toEqual(expect.arrayContaining(['8.10/BaseOS/x86_64/os/repodata/repomd.xml', '8.10/extras/x86_64/os/repodata/repomd.xml', '8.10/plus/x86_64/os/repodata/repomd.xml']));
    const out = execFileSync('sha1sum', repomds, { cwd: prodCat(), encoding: 'utf8' });
    for (const l of out.trim().split('\n')) expect(sha1[l.slice(42)], l.slice(42)).toBe(l.slice(0, 40));
    // imagelist-rocky: every image of production (the ISOs and their alias links), as ./ paths.
    const images = all.map(([p]) => p).filter((p) => DEFAULT_IMAGE_EXTENSIONS.some((x) => p.endsWith(x)));
    expect(images).toEqual(expect.arrayContaining(['8.10/isos/x86_64/Rocky-8.10-x86_64-dvd1.iso', '8.10/isos/x86_64/Rocky-8-latest-x86_64-boot.iso']));
    expect(readFileSync(join(prodCat(), 'imagelist-rocky'), 'utf8').split('\n').filter(Boolean).sort()).toEqual(images.map((p) => `./${p}`).sort());
  });

  it("dnf with gpgcheck and repo_gpgcheck installs from production's BaseOS, AppStream, Extras and Plus with the release's key; a repomd.xml one byte off is refused", () => {
    // The key the release publishes in its install tree (from rocky-gpg-keys), as a user imports it.
    const key = prod8('BaseOS/x86_64/os/RPM-GPG-KEY-rockyofficial');
    expect(existsSync(key)).toBe(true);
    const d = dnfRoot({ releasever: 8, key, arch: 'x86_64', platform: 'platform:el8' });
    try {
      const repos = { baseos: prod8('BaseOS/x86_64/os'), appstream: prod8('AppStream/x86_64/os'), extras: prod8('extras/x86_64/os'), plus: prod8('plus/x86_64/os') };
      d.run(repos, ['install', 'bash', 'appstream-libs', 'extras-libs', 'plus-libs']);
      const installed = d.run(repos, ['list', '--installed']);
      for (const [name, repo] of [['bash', 'baseos'], ['appstream-libs', 'appstream'], ['extras-libs', 'extras'], ['plus-libs', 'plus']]) {
        expect(installed, name).toMatch(new RegExp(`^${name}\\.x86_64\\s+\\S+\\s+@${repo}\\s*$`, 'm'));
        expect(existsSync(join(d.dir, name === 'bash' ? 'root/usr/bin/bash' : `root/usr/libexec/${name}/${name}`)), name).toBe(true);
      }
      // A copy of Extras' repodata, whole, loads; the same with one byte of repomd.xml changed does not.
      const copy = (name: string) => {
        const dir = join(d.dir, name);
        cpSync(prod8('extras/x86_64/os/repodata'), join(dir, 'repodata'), { recursive: true, dereference: true });
        return dir;
      };
      const good = copy('extras-copy');
      const bad = copy('extras-tampered');
      const repomd = join(bad, 'repodata/repomd.xml');
      const xml = readFileSync(repomd, 'utf8');
      const at = xml.search(/<revision>\d/) + '<revision>'.length;
      writeFileSync(repomd, xml.slice(0, at) + (xml[at] === '1' ? '2' : '1') + xml.slice(at + 1));
      expect(readFileSync(repomd).length).toBe(Buffer.byteLength(xml));
      d.run({ good }, ['makecache']);
      const r = d.spawn({ bad }, ['makecache']);
      expect(r.status, r.stdout + r.stderr).not.toBe(0);
      expect(r.stdout + r.stderr).toMatch(/GPG signature/i);
    } finally {
      d.close();
    }
  });

  // Issue 15 (caching): a compose task is a cache hit while koji and the pungi config are unchanged.
  const composeTasks = () => Object.fromEntries(ws.runJson().tasks.filter((t) => /^compose-/.test(t.target)).map((t) => [t.target, t.cacheStatus]));
  const hit = /cache-hit$|kept-existing$/;

  it('a second finalize with nothing changed: every compose task is a cache hit, no new compose directory', () => {
    const before = readdirSync(composeDir()).sort();
    nxOk(ws, ['run', 'rocky-8:finalize']);
    const st = composeTasks();
    expect(Object.keys(st).sort()).toEqual(COMPOSES.map((c) => `compose-${c}`).sort());
    for (const [t, status] of Object.entries(st)) expect(status, t).toMatch(hit);
    expect(readdirSync(composeDir()).sort()).toEqual(before);
  });

  it("a change to koji's Extras content reruns the Extras compose only", async () => {
    const before = readdirSync(composeDir()).sort();
    await updatePackage({ root: join(R, 'upstream'), project: 'rocky-8', repo: 'extras', arch: 'x86_64', name: 'extras-libs' });
    nxOk(ws, ['run', 'rocky-8:finalize']);
    const st = composeTasks();
    expect(st['compose-Extras']).toBe('cache-miss');
    for (const c of COMPOSES.filter((x) => x !== 'Extras')) expect(st[`compose-${c}`], c).toMatch(hit);
    const made = readdirSync(composeDir()).filter((n) => !before.includes(n));
    expect(made).toEqual([dirsOf('Extras').at(-1)]);
    const rec = JSON.parse(readFileSync(join(ws.dir, 'dist/rocky-8/compose-Extras/compose.json'), 'utf8'));
    expect(rec.composeId).toBe(made[0]);
    expect(rec.trees.find((t: { path: string }) => t.path === 'extras/x86_64/os').packages.some((p: { name: string; release: string }) => p.name === 'extras-libs' && p.release !== '1.el8')).toBe(true);
  });

  it('a recorded compose that lost a file is not replayed: its task reruns and pungi makes it anew', () => {
    const plus = dirsOf('Plus').at(-1)!;
    const rec = JSON.parse(readFileSync(join(ws.dir, 'dist/rocky-8/compose-Plus/compose.json'), 'utf8'));
    const os = rec.trees.find((t: { path: string }) => t.path === 'plus/x86_64/os');
    rmSync(join(composeDir(), plus, 'compose', os.path, os.packages[0].path));
    nxOk(ws, ['run', 'rocky-8:finalize']);
    const st = composeTasks();
    expect(st['compose-Plus']).toBe('cache-miss');
    for (const c of COMPOSES.filter((x) => x !== 'Plus')) expect(st[`compose-${c}`], c).toMatch(hit);
    expect(dirsOf('Plus').at(-1)).not.toBe(plus);
    expect(JSON.parse(readFileSync(join(ws.dir, 'dist/rocky-8/compose-Plus/compose.json'), 'utf8')).composeId).toBe(dirsOf('Plus').at(-1));
  });

  it('an update compose of Extras alone: only its tasks run, a new Extras-8-updates compose, staging changes only Extras\' trees', () => {
    const sha = (f: string) => readFileSync(join(staged(), f));
    const base = sha('BaseOS/x86_64/os/repodata/repomd.xml');
    const plus = sha('plus/x86_64/os/repodata/repomd.xml');
    const from = readEvents(events()).length;
    nxOk(ws, ['run', 'rocky-8:update-staging-Extras']);
    expect(ran()).toEqual(['update-compose-Extras', 'update-staging-Extras']);
    const updates = readdirSync(composeDir()).filter((n) => /^Extras-8-updates-\d{8}\.0$/.test(n));
    expect(updates).toHaveLength(1);
    expect(status(updates[0])).toBe('FINISHED');
    expect(readlinkSync(join(composeDir(), 'latest-Extras-8'))).toBe(updates[0]);
    const ev = readEvents(events(), from).filter((e) => e.type === 'staging-compose');
    expect(ev.map((e) => [e.compose, e.composeId])).toEqual([['Extras', updates[0]]]);
    expect(sha('BaseOS/x86_64/os/repodata/repomd.xml')).toEqual(base);
    expect(sha('plus/x86_64/os/repodata/repomd.xml')).toEqual(plus);
    expect(existsSync(join(staged(), 'extras/x86_64/os/repodata/repomd.xml.asc'))).toBe(true);
  });

  it('sign-repos re-signs every staged repomd.xml without a new compose: only the signatures change', () => {
    const trees = ['BaseOS/x86_64/os', 'extras/x86_64/os', 'plus/x86_64/os', 'Devel/x86_64/os', 'NFV/x86_64/os', 'AppStream/source/tree'];
    const read = (f: string) => readFileSync(join(staged(), f));
    const before = trees.map((t) => [read(`${t}/repodata/repomd.xml`), read(`${t}/repodata/repomd.xml.asc`)]);
    const from = readEvents(events()).length;
    nxOk(ws, ['run', 'rocky-8:sign-repos']);
    expect(ran()).toEqual(['sign-repos']);
    trees.forEach((t, i) => {
      expect(read(`${t}/repodata/repomd.xml`), t).toEqual(before[i][0]);
      expect(read(`${t}/repodata/repomd.xml.asc`).equals(before[i][1]), t).toBe(false);
    });
    const signed = readEvents(events(), from).filter((e) => e.type === 'repomd-signed').map((e) => e.tree);
    expect(signed).toEqual(expect.arrayContaining(trees));
  });

  it('a module stream koji dropped is gone from the next Rocky compose; staged, its packages and its document stay, and dnf still resolves it', async () => {
    await dropModuleStream({ root: join(R, 'upstream'), project: 'rocky-8', repo: 'AppStream', module: 'fixturemod', stream: '1' });
    nxOk(ws, ['run', 'rocky-8:update-staging-Rocky']);
    const update = readdirSync(composeDir()).filter((n) => /^Rocky-8-updates-\d{8}\.0$/.test(n));
    expect(update).toHaveLength(1);
    expect(readdirSync(join(composeDir(), update[0], 'compose/AppStream/x86_64/os/Packages/f'))).toEqual([expect.stringMatching(/^fixturemod-2\.0-/)]);
    const d = dnf();
    try {
      const repos = { b: join(staged(), 'BaseOS/x86_64/os'), a: join(staged(), 'AppStream/x86_64/os') };
      expect(d.run(repos, ['module', 'list', 'fixturemod'])).toMatch(/^fixturemod\s+1\s+common\b.*\n^fixturemod\s+2 \[d\]/m);
      d.run(repos, ['module', 'install', 'fixturemod:1/common']);
      expect(d.run(repos, ['list', '--installed', 'fixturemod'])).toMatch(/fixturemod\.noarch\s+1\.0-1\.module\+el8\.10\.0\+1\+/);
    } finally {
      d.close();
    }
  });
});
