// Issue 3: the sync stage on the fixture upstream, with real dnf as the oracle.
import { describe, it, expect, beforeAll, afterAll, vi } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { composeRoot, repoTrees } from '@rocky/config';
import { hostName } from '@rocky/exec';
import { readSyncManifest, readComposeRef } from '@rocky/stages';
import { SignatureVerifier } from '@rocky/rpm-repo';
import { Store } from '@rocky/store';
import * as repodata from '../../libs/rpm-repo/src/repodata';
import * as hashWorkers from '../../libs/exec/src/hash-workers';
import { damageSignature, updatePackage } from '@rocky/upstream-fixture';
import { FixtureLayout } from '../../apps/upstream-fixture/src/paths';
import { privateFixture, testSite, rpmGets, type TestSite } from '../helpers/fixture';
import { listing } from '../helpers/listing';

/** Pids of this process's children whose command line contains `text`. */
const childrenRunning = (text: string) =>
  readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === process.pid && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(text);
      } catch {
        return false; // exited meanwhile
      }
    });

const dnf = (args: string[], cache: string) =>
  spawnSync('dnf', ['-q', '--releasever=9', '--setopt=reposdir=/dev/null', `--setopt=cachedir=${cache}`, '--setopt=skip_if_unavailable=False', ...args], { encoding: 'utf8' });

describe('sync of rocky-9 from the fixture', () => {
  let fx: { root: string; cleanup(): void };
  let t: TestSite;
  beforeAll(async () => {
    fx = await privateFixture();
    t = await testSite(fx.root);
  });
  afterAll(async () => {
    await t.close();
    fx.cleanup();
  });

  it('a full sync fills every tree; dnf reads and closes them', async () => {
    const s = t.ctx('rocky-9', 'sync');
    t.server.clearRequests();
    // Nothing it links was in the store before: what it downloads is hashed as it arrives, and no hash worker is started.
    const workers = vi.spyOn(hashWorkers, 'startHashWorkers');
    try {
      await t.run('sync', 'rocky-9');
      expect(workers).not.toHaveBeenCalled();
    } finally {
      workers.mockRestore();
    }
    const ref = readComposeRef(s.root, 'rocky-9');
    // Each distinct package is downloaded once, though noarch packages appear in every arch's tree.
    const unique = new Set(['x86_64', 'aarch64', 'ppc64le', 's390x', 'source'].flatMap((g) => readSyncManifest(s.root, 'rocky-9', g as 'x86_64').trees.flatMap((x) => x.packages.map((p) => p.sha256))));
    expect(rpmGets(t.server).filter((r) => r.status === 200)).toHaveLength(unique.size);
    expect(ref.composeId).toMatch(/^Rocky-9\.7-\d{8}\.\d+$/);
    // The closure checks ran, and left no dnf cache (a copy of the metadata per check) behind.
    const closureWork = join(t.site.roots.compose, ref.dir, 'work/repoclosure');
    const checks = readdirSync(closureWork).filter((d) => d !== 'meta');
    expect(checks.length).toBeGreaterThan(10);
    for (const d of checks) expect(existsSync(join(closureWork, d, 'cache')), d).toBe(false);
    const compose = join(t.site.roots.compose, ref.dir, 'compose');
    const { latest } = composeRoot(t.site, s.release);
    // Relative, so the compose root can be mounted anywhere (pungi's links are relative too).
    expect(readlinkSync(latest)).toBe(ref.dir.split('/').pop());
    const trees = repoTrees(s.release);
    expect(trees.some((x) => x.kind === 'kickstart')).toBe(true);
    for (const tree of trees) {
      const dir = join(compose, tree.path);
      expect(existsSync(join(dir, 'repodata/repomd.xml')), dir).toBe(true);
      expect(existsSync(join(dir, 'repodata/repomd.xml.asc')), dir).toBe(true);
      expect(readFileSync(join(dir, '.treeinfo'), 'utf8')).toContain('type = productmd.treeinfo');
    }
    // Real dnf reads the compose trees: every package the manifest lists is found.
    const m = readSyncManifest(s.root, 'rocky-9', 'aarch64');
    const baseos = m.trees.find((x) => x.dir === 'BaseOS' && x.kind === 'os')!;
    const q = dnf(['--forcearch=aarch64', `--repofrompath=b,file://${join(compose, baseos.path)}`, '--repo=b', 'repoquery', '--qf', '%{name}-%{version}-%{release}.%{arch}'], join(t.dir, 'dnf1'));
    expect(q.status, q.stderr).toBe(0);
    expect(q.stdout.trim().split('\n').sort()).toEqual(baseos.packages.map((p) => `${p.name}-${p.version}-${p.release}.${p.arch}`).sort());
    // and repoclosure of AppStream against BaseOS passes on the synced trees.
    const app = m.trees.find((x) => x.dir === 'AppStream' && x.kind === 'os')!;
    const c = dnf(['--forcearch=aarch64', `--repofrompath=b,file://${join(compose, baseos.path)}`, `--repofrompath=a,file://${join(compose, app.path)}`, '--repo=b', '--repo=a', 'repoclosure', '--check=a'], join(t.dir, 'dnf2'));
    expect(c.status, c.stdout + c.stderr).toBe(0);
    // Packages are hardlinks of store objects, and signed.
    const p = baseos.packages[0];
    expect(statSync(join(compose, baseos.path, p.path)).nlink).toBeGreaterThanOrEqual(2);
    expect(p.sigkey).toMatch(/^[0-9a-f]{8}$/);
  });

  it('a second sync of the same upstream downloads no package', async () => {
    t.server.clearRequests();
    await t.run('sync', 'rocky-9');
    expect(rpmGets(t.server)).toEqual([]);
  });

  it('a sync with nothing new upstream reads only the repomd.xml files and runs no gpg', async () => {
    // gpg and gpgv behind wrappers that log each call: an up-to-date sync needs no key and verifies nothing.
    const bin = mkdtempSync(join(tmpdir(), 'gpg-log-'));
    const calls = join(bin, 'calls');
    for (const tool of ['gpg', 'gpgv']) {
      const real = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
      writeFileSync(join(bin, tool), `#!/bin/sh\necho "${tool} $*" >> '${calls}'\nexec '${real}' "$@"\n`, { mode: 0o755 });
    }
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path}`;
    try {
      t.server.clearRequests();
      await t.run('sync', 'rocky-9');
      expect(t.server.requests.map((r) => r.path).filter((p) => !p.endsWith('/repodata/repomd.xml'))).toEqual([]);
      expect(existsSync(calls) ? readFileSync(calls, 'utf8') : '').toBe('');
    } finally {
      process.env.PATH = path;
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it('one package changed upstream in aarch64 BaseOS: only it is downloaded, only the aarch64 manifest changes', async () => {
    const s = t.ctx('rocky-9', 'sync');
    const before = Object.fromEntries(['x86_64', 'aarch64', 'ppc64le', 's390x', 'source'].map((g) => [g, readFileSync(join(s.root, 'dist/rocky-9/sync', `${g}.json.gz`), 'hex')]));
    const { newHref } = await updatePackage({ root: fx.root, project: 'rocky-9', repo: 'BaseOS', arch: 'aarch64', name: 'bash' });
    t.server.clearRequests();
    const verify = vi.spyOn(SignatureVerifier.prototype, 'verify');
    const checkPackage = vi.spyOn(SignatureVerifier.prototype, 'checkPackage');
    const parse = vi.spyOn(repodata, 'parsePrimary');
    const parseRepomd = vi.spyOn(repodata, 'parseRepomd');
    const workers = vi.spyOn(hashWorkers, 'startHashWorkers');
    try {
      await t.run('sync', 'rocky-9');
      // The packages it links from the store are hashed again, on the hash workers.
      expect(workers).toHaveBeenCalled();
      // gpgv ran on the one changed repomd.xml: the others' identical bytes passed it before.
      expect(verify.mock.calls.map((c) => c[2])).toEqual(['rocky-9 BaseOS-aarch64-os: repomd.xml']);
      // rpmkeys verified the new package's signature alone: the last sync verified every other one's bytes.
      expect(checkPackage.mock.calls.map((c) => c[1])).toEqual([`rocky-9 BaseOS-aarch64-os: ${newHref}`]);
      // Only the changed repo's repomd.xml and primary are parsed: every other repomd.xml is the one
      // the last sync recorded, so its records and packages are known (each file is still checked
      // against its sha256).
      expect(parse.mock.calls.map((c) => c[1])).toEqual([expect.stringMatching(/^rocky-9 BaseOS-aarch64-os: .*primary/)]);
      expect(parseRepomd.mock.calls.map((c) => c[1]).filter((w) => w?.startsWith('rocky-9 '))).toEqual(['rocky-9 BaseOS-aarch64-os: repomd.xml']);
    } finally {
      verify.mockRestore();
      checkPackage.mockRestore();
      parse.mockRestore();
      parseRepomd.mockRestore();
      workers.mockRestore();
    }
    const gets = rpmGets(t.server).map((r) => r.path);
    expect(gets).toHaveLength(1);
    expect(gets[0].endsWith(newHref)).toBe(true);
    const primaries = t.server.requests.filter((r) => r.method === 'GET' && /-primary\.xml/.test(r.path)).map((r) => r.path);
    expect(primaries).toHaveLength(1);
    expect(primaries[0]).toMatch(/\/hashed-BaseOS\/aarch64\//);
    for (const g of ['x86_64', 'ppc64le', 's390x', 'source']) expect(readFileSync(join(s.root, 'dist/rocky-9/sync', `${g}.json.gz`), 'hex')).toBe(before[g]);
    expect(readFileSync(join(s.root, 'dist/rocky-9/sync/aarch64.json.gz'), 'hex')).not.toBe(before.aarch64);
    // The record says which key every package of each tree was checked against, and that their signatures verified.
    for (const tree of readSyncManifest(s.root, 'rocky-9', 'x86_64').trees) {
      expect(tree.signer, tree.path).toMatch(/^[0-9A-F]{16}$/i);
      expect(tree.signaturesChecked, tree.path).toBe(true);
    }
  });

  it("a package whose signature does not verify (its key id still the upstream key's) fails the sync, naming it, before latest moves", async () => {
    const { latest } = composeRoot(t.site, t.ctx('rocky-9', 'sync').release);
    const before = readlinkSync(latest);
    const { href } = await damageSignature({ root: fx.root, project: 'rocky-9', repo: 'AppStream', arch: 'x86_64', name: 'appstream-libs' });
    // The failure's evidence (rpmkeys' log) is kept in the verifier's directory, which the error names: this test's to remove.
    let log: string | undefined;
    try {
      const err: Error | undefined = await t.run('sync', 'rocky-9').then(() => undefined, (e: Error) => e);
      log = /rpmkeys' log: (\S+)/.exec(err?.message ?? '')?.[1];
      expect(err?.message).toMatch(/1 package failed the signature check against \S+RPM-GPG-KEY-fixture/);
      expect(err?.message).toContain(`rocky-9 AppStream-x86_64-os: ${href} (digests SIGNATURES NOT OK)`);
      expect(log && readFileSync(log, 'utf8'), err?.message).toMatch(/SIGNATURES NOT OK/);
      expect(readlinkSync(latest)).toBe(before);
    } finally {
      if (log) rmSync(dirname(log), { recursive: true, force: true });
    }
    // Upstream signs it again (a rebuild): the sync passes.
    await updatePackage({ root: fx.root, project: 'rocky-9', repo: 'AppStream', arch: 'x86_64', name: 'appstream-libs' });
    await t.run('sync', 'rocky-9');
    expect(readlinkSync(latest)).not.toBe(before);
  });

  it("a tree's .treeinfo, .discinfo and media.repo are dated by the compose's day, and two composes of a day share them (one store object)", async () => {
    const s = t.ctx('rocky-9', 'sync');
    const root = join(t.site.roots.compose, '9');
    const [a, b] = readdirSync(root).filter((d) => /^Rocky-9\.7-\d{8}\.\d+$/.test(d)).sort((x, y) => Number(x.split('.').pop()) - Number(y.split('.').pop())).slice(-2);
    expect(a.split('.')[1].slice(-8)).toBe(b.split('.')[1].slice(-8)); // this test's composes are of one day
    const day = Date.UTC(Number(b.slice(10, 14)), Number(b.slice(14, 16)) - 1, Number(b.slice(16, 18))) / 1000;
    for (const tree of repoTrees(s.release)) {
      for (const f of ['.treeinfo', '.discinfo', 'media.repo']) {
        const [x, y] = [a, b].map((c) => statSync(join(root, c, 'compose', tree.path, f)));
        expect(y.ino, `${tree.path}/${f}`).toBe(x.ino);
        expect(y.mtimeMs / 1000).toBe(day);
      }
    }
    expect(readFileSync(join(root, b, 'compose/BaseOS/x86_64/os/.treeinfo'), 'utf8')).toContain(`timestamp = ${day}`);
  });

  it('a tree whose packages the last sync recorded, but whose primary the store lost, fetches its primary again', async () => {
    const s = t.ctx('rocky-9', 'sync');
    const tree = readSyncManifest(s.root, 'rocky-9', 'x86_64').trees.find((x) => x.dir === 'BaseOS' && x.kind === 'os')!;
    const primary = tree.repodata.find((f) => /-primary\.xml/.test(f.path))!;
    const store = new Store(t.site.store.type === 'local' ? t.site.store.path : '');
    rmSync(store.pathOf(primary.sha256), { force: true });
    await updatePackage({ root: fx.root, project: 'rocky-9', repo: 'BaseOS', arch: 'aarch64', name: 'bash' }); // so the compose is not up to date
    t.server.clearRequests();
    await t.run('sync', 'rocky-9');
    expect(t.server.requests.filter((r) => r.method === 'GET' && r.path.endsWith(primary.path)).map((r) => r.path)).toEqual([expect.stringMatching(/\/hashed-BaseOS\/x86_64\//)]);
    const ref = readComposeRef(s.root, 'rocky-9');
    const placed = join(t.site.roots.compose, ref.dir, 'compose', tree.path, primary.path);
    expect(statSync(placed).ino).toBe(statSync(store.pathOf(primary.sha256)).ino);
  });

  it('a signature that does not match its repomd.xml fails the sync, though both files passed gpgv before', async () => {
    const fixture = new FixtureLayout(fx.root);
    const asc = join(fixture.tree('rocky-9', 'BaseOS', 'x86_64'), 'repodata/repomd.xml.asc');
    const good = readFileSync(asc);
    // A good signature by the same key, of another tree's repomd.xml (a new file: the fixture's are hardlinks of the shared one's).
    unlinkSync(asc);
    copyFileSync(join(fixture.tree('rocky-9', 'AppStream', 'x86_64'), 'repodata/repomd.xml.asc'), asc);
    await updatePackage({ root: fx.root, project: 'rocky-9', repo: 'BaseOS', arch: 'aarch64', name: 'bash' }); // so the compose is not up to date
    // The failure's evidence is kept in the verifier's directory, which the error names: this test's to remove, pass or fail.
    let log: string | undefined;
    try {
      const err: Error | undefined = await t.run('sync', 'rocky-9').then(() => undefined, (e: Error) => e);
      log = /gpgv's log: (\S+)/.exec(err?.message ?? '')?.[1];
      expect(err?.message).toMatch(/rocky-9 BaseOS-x86_64-os: repomd.xml: signature verification failed/);
      expect(log && existsSync(log), err!.message).toBe(true);
      // dnf's fork server, started while planning found upstream changed, was stopped with the failed plan.
      expect(childrenRunning('from dnf.cli import main')).toEqual([]);
    } finally {
      if (log) rmSync(dirname(log), { recursive: true, force: true });
      unlinkSync(asc);
      writeFileSync(asc, good);
    }
  });

  it('a dry run prints the plan and changes nothing', async () => {
    const s = t.ctx('rocky-9', 'sync', { dryRun: true });
    const latest = composeRoot(t.site, s.release).latest;
    const target = readlinkSync(latest);
    const composes = readdirSync(join(t.site.roots.compose, '9')).sort();
    t.server.clearRequests();
    // A killed run's leftovers (in the temp dir, a partial store object) are a real run's to remove, not a dry run's.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    // In a temp dir of this test's own: a real sync of another test file, running meanwhile,
    // sweeps a dead process's verifier dir from the shared one (rightly).
    const tmp = process.env.TMPDIR;
    process.env.TMPDIR = mkdtempSync(join(tmpdir(), 'sync-dry-'));
    const killed = join(tmpdir(), `releng-gpgv@${hostName()}.${dead}-0`);
    mkdirSync(killed);
    const partial = join((t.site.store as { path: string }).path, 'tmp', `put@${hostName()}.${dead}-0`);
    mkdirSync(dirname(partial), { recursive: true });
    writeFileSync(partial, 'part of a package');
    const store = listing((t.site.store as { path: string }).path);
    try {
      const o = await t.outcome('sync', 'rocky-9', { dryRun: true });
      expect(o.dryRun).toBe(true);
      expect(existsSync(killed)).toBe(true);
      expect(listing((t.site.store as { path: string }).path)).toEqual(store);
    } finally {
      rmSync(tmpdir(), { recursive: true, force: true });
      if (tmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = tmp;
      rmSync(partial, { force: true });
    }
    expect(readlinkSync(latest)).toBe(target);
    expect(readdirSync(join(t.site.roots.compose, '9')).sort()).toEqual(composes);
    expect(rpmGets(t.server)).toEqual([]);
  });

  it('rocky-9-beta shares identical packages with rocky-9 on disk', async () => {
    const s = t.ctx('rocky-9-beta', 'sync');
    t.server.clearRequests();
    await t.run('sync', 'rocky-9-beta');
    const a = readSyncManifest(t.dir + '/ws', 'rocky-9', 'x86_64').trees.find((x) => x.dir === 'AppStream' && x.kind === 'os')!;
    const b = readSyncManifest(t.dir + '/ws', 'rocky-9-beta', 'x86_64').trees.find((x) => x.dir === 'AppStream' && x.kind === 'os')!;
    const shared = a.packages.filter((p) => b.packages.some((q) => q.sha256 === p.sha256));
    expect(shared.length).toBeGreaterThan(0);
    const c9 = join(t.site.roots.compose, readComposeRef(s.root, 'rocky-9').dir, 'compose', a.path, shared[0].path);
    const cb = join(t.site.roots.compose, readComposeRef(s.root, 'rocky-9-beta').dir, 'compose', b.path, shared[0].path);
    expect(statSync(c9).ino).toBe(statSync(cb).ino);
    // and packages already in the store were not downloaded again for the beta
    const fetched = rpmGets(t.server).map((r) => r.path.split('/').pop());
    expect(fetched).not.toContain(shared[0].path.split('/').pop());
  });
});

