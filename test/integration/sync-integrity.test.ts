// Issues 18.6, 18.7, 18.8: what sync takes from upstream metadata. Hrefs are decoded as XML
// says and must stay inside the tree; every package placed, fetched or linked from the store,
// must match the size and sha256 that primary.xml gives it, or the sync fails before latest moves.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { pathToFileURL } from 'node:url';
import { composeRoot } from '@rocky/config';
import { run } from '@rocky/exec';
import { Store } from '@rocky/store';
import { Limiter, SignatureVerifier, applyTree, dnfArgv, dnfConfig, planTree, type SyncTreeOptions } from '@rocky/rpm-repo';
import { readSyncManifest } from '@rocky/stages';
import { addPackage, damageSignatures, editPrimary, serveFixture, updatePackage, type PkgDef, type FixtureServer } from '@rocky/upstream-fixture';
import { privateFixture, sharedFixture, testSite } from '../helpers/fixture';
import { FixtureLayout } from '../../apps/upstream-fixture/src/paths';

const pkg = (name: string): PkgDef => ({
  name,
  version: '1.0',
  release: '1.fixture',
  noarch: true,
  summary: `Package ${name}`,
  requires: [],
  provides: [],
  files: [{ path: `/usr/share/${name}/README`, text: name }],
  debuginfo: false,
});

const primaryXml = (tree: string) => {
  const repomd = readFileSync(join(tree, 'repodata/repomd.xml'), 'utf8');
  const href = /<data type="primary">[\s\S]*?<location href="([^"]+)"/.exec(repomd)![1];
  return gunzipSync(readFileSync(join(tree, href))).toString('utf8');
};

describe('sync of a small upstream repo (real rpmbuild, createrepo_c, dnf)', () => {
  let dir: string;
  let server: FixtureServer;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sync-integrity-'));
    server = await serveFixture({ root: dir });
  });
  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const opts = (name: string): SyncTreeOptions => ({ url: `${server.url}/${name}/upstream`, store: new Store(join(dir, name, 'store')), limiter: new Limiter(4), what: `test ${name}` });

  it('a file name with non-ASCII characters and & is synced under its real name, and dnf downloads it from the synced tree (18.7)', async () => {
    const up = join(dir, 'names/upstream');
    const href = 'Packages/p/plus tools & ü.rpm';
    await addPackage(up, pkg('plus-tools'), href);
    // What createrepo_c writes: an entity and a character reference in the href.
    expect(primaryXml(up)).toContain('<location href="Packages/p/plus tools &amp; &#xFC;.rpm"/>');
    const o = opts('names');
    const synced = join(dir, 'names/synced');
    const res = await applyTree(o, await planTree(o), synced, true);
    expect(res.packages.map((p) => p.path)).toEqual([href]);
    expect(readdirSync(join(synced, 'Packages/p'))).toEqual(['plus tools & ü.rpm']);
    // Real dnf finds it where the synced metadata says, and downloads it.
    const conf = dnfConfig(join(dir, 'names/dnf'));
    const repos = [{ id: 'synced', path: synced }];
    const loc = await run(dnfArgv({ config: conf, releasever: 9, repos, quiet: true }, ['repoquery', '--location', 'plus-tools']));
    expect(loc.stdout.trim()).toBe(`${pathToFileURL(synced).href}/Packages/p/plus tools & ü.rpm`);
    const dest = join(dir, 'names/download');
    await run(dnfArgv({ config: conf, releasever: 9, repos, quiet: true }, ['download', `--destdir=${dest}`, 'plus-tools']));
    const got = join(dest, 'plus tools & ü.rpm');
    expect(existsSync(got)).toBe(true);
    expect((await run(['rpm', '-qp', '--nosignature', '--qf', '%{NAME}', got])).stdout).toBe('plus-tools');
  });

  it("a package linked from the store takes the signer an earlier sync read from the same bytes (knownSigners), and is still checked against the tree's key", async () => {
    const up = join(dir, 'signer/upstream');
    await addPackage(up, pkg('signed-once'));
    const o = opts('signer');
    const first = await applyTree(o, await planTree(o), join(dir, 'signer/first'), true);
    const p = first.packages[0];
    expect(p.sigkey).toBeNull(); // the fixture's package is not signed: any signer below comes from the memo
    const key = '0123456789ABCDEF';
    const known = { ...o, signer: key, knownSigners: new Map([[p.sha256, key]]) };
    const second = await applyTree(known, await planTree(known), join(dir, 'signer/second'), true);
    expect(second.packages[0].sigkey).toBe(key.slice(-8));
    expect(second.signer).toBe(key);
    // A memo naming another key is that key's signature: the tree's key check refuses it.
    const other = { ...known, knownSigners: new Map([[p.sha256, 'FEDCBA9876543210']]) };
    await expect(planTree(other).then((plan) => applyTree(other, plan, join(dir, 'signer/third'), true))).rejects.toThrow(/signed by key FEDCBA9876543210, not by the upstream key 0123456789ABCDEF/);
    // Without the memo the package's own (missing) signature is read, and refused.
    const unknown = { ...o, signer: key };
    await expect(planTree(unknown).then((plan) => applyTree(unknown, plan, join(dir, 'signer/fourth'), true))).rejects.toThrow(/is not signed, not by the upstream key/);
  });

  it('a package already in the store whose primary.xml size is wrong fails the sync naming the package, the tree and both sizes (18.8)', async () => {
    const up = join(dir, 'size/upstream');
    const href = await addPackage(up, pkg('sized'));
    const o = opts('size');
    const first = await applyTree(o, await planTree(o), join(dir, 'size/first'), true);
    const real = first.packages[0].size;
    await editPrimary(up, { name: 'sized', size: real + 7 });
    const plan = await planTree(o);
    expect(plan.fetch).toEqual([]); // linked from the store, not downloaded (and so not checked by the download)
    const dest = join(dir, 'size/second');
    const err: Error = await applyTree(o, plan, dest, true).then(() => undefined, (e) => e);
    expect(err?.message).toContain(href);
    expect(err?.message).toContain('test size');
    expect(err?.message).toContain(dest);
    expect(err?.message).toContain(`${real + 7} bytes`);
    expect(err?.message).toContain(`${real} bytes`);
    // Nothing claims to be synced: no repomd.xml in the tree.
    expect(existsSync(join(dest, 'repodata/repomd.xml'))).toBe(false);
  });

  describe('hrefs that leave the tree are refused before anything is written (18.6)', () => {
    const cases: [string, { href?: string; xmlBase?: string; repomdXmlBase?: string }, RegExp][] = [
      ['an absolute path', { href: '/etc/passwd' }, /unsafe location href "\/etc\/passwd"/],
      ['a file URL', { href: 'file:///etc/passwd' }, /unsafe location href "file:\/\/\/etc\/passwd"/],
      ['a file URL without slashes', { href: 'file:/etc/passwd' }, /unsafe location href "file:\/etc\/passwd"/],
      ['a relative file URL', { href: 'file:Packages/x.rpm' }, /unsafe location href "file:Packages\/x.rpm"/],
      ['an http URL', { href: 'http://example.invalid/x.rpm' }, /unsafe location href "http:\/\/example.invalid\/x.rpm"/],
      ['an xml:base on the package location', { xmlBase: 'http://example.invalid/other/' }, /xml:base "http:\/\/example.invalid\/other\/"/],
      ["an xml:base on repomd.xml's primary location", { repomdXmlBase: 'file:///etc/' }, /xml:base "file:\/\/\/etc\/"/],
    ];
    it.each(cases)('%s', async (what, edit, message) => {
      const name = `href-${what.replace(/\W+/g, '-')}`;
      const up = join(dir, name, 'upstream');
      await addPackage(up, pkg('escape'));
      await editPrimary(up, { name: 'escape', ...edit });
      const o = opts(name);
      await expect(planTree(o).then((plan) => applyTree(o, plan, join(dir, name, 'synced'), true))).rejects.toThrow(message);
      expect(existsSync(join(dir, name, 'synced'))).toBe(false);
    });
  });
});

describe('sync stage: a package linked from the store is checked against primary.xml before latest moves (18.8)', () => {
  const REL = 'rocky-8';
  let fx: { root: string; cleanup(): void };
  beforeAll(async () => {
    fx = await privateFixture();
  });
  afterAll(() => fx.cleanup());
  const baseos = (root: string) => join(root, 'v1/projects/rocky-8/repo/hashed-BaseOS/x86_64');

  it('a wrong size in a signed primary.xml fails naming package, tree and both sizes; latest stays', async () => {
    const t = await testSite(fx.root);
    try {
      const ctx = t.ctx(REL, 'sync');
      await t.run('sync', REL);
      const { latest } = composeRoot(t.site, ctx.release);
      const before = readlinkSync(latest);
      const tree = readSyncManifest(ctx.root, REL, 'x86_64').trees.find((x) => x.dir === 'BaseOS' && x.kind === 'os')!;
      const bash = tree.packages.find((p) => p.name === 'bash')!;
      await editPrimary(baseos(fx.root), { name: 'bash', size: bash.size + 1 });
      const err = (await t.run('sync', REL).then(() => undefined, (e: Error) => e))!;
      expect(err?.message).toContain(bash.path);
      expect(err?.message).toContain('BaseOS/x86_64');
      expect(err?.message).toContain(`${bash.size + 1} bytes`);
      expect(err?.message).toContain(`${bash.size} bytes`);
      expect(readlinkSync(latest)).toBe(before);
    } finally {
      await t.close();
    }
  });

  it('a store object whose bytes no longer match their sha256 fails naming package, tree and both sha256; latest stays', async () => {
    const own = await privateFixture();
    const t = await testSite(own.root);
    try {
      const ctx = t.ctx(REL, 'sync');
      await t.run('sync', REL);
      const { latest } = composeRoot(t.site, ctx.release);
      const before = readlinkSync(latest);
      const tree = readSyncManifest(ctx.root, REL, 'x86_64').trees.find((x) => x.dir === 'BaseOS' && x.kind === 'os')!;
      const victim = tree.packages.find((p) => p.name === 'bash')!;
      // Bit rot in the store (same size, other bytes).
      const obj = new Store(t.site.store.type === 'local' ? t.site.store.path : '').pathOf(victim.sha256);
      chmodSync(obj, 0o644);
      const bytes = readFileSync(obj);
      bytes[bytes.length - 1] ^= 0xff;
      writeFileSync(obj, bytes);
      // Upstream moves on elsewhere, so the sync builds a new compose that links the victim again.
      await updatePackage({ root: own.root, project: 'rocky-8', repo: 'BaseOS', arch: 'aarch64', name: 'bash' });
      const err = (await t.run('sync', REL).then(() => undefined, (e: Error) => e))!;
      expect(err?.message).toContain(victim.path);
      expect(err?.message).toContain('BaseOS/x86_64');
      expect(err?.message).toContain(victim.sha256);
      expect(err?.message).toMatch(/store object .* sha256 [0-9a-f]{64}/);
      expect(readlinkSync(latest)).toBe(before);
    } finally {
      await t.close();
      own.cleanup();
    }
  });
});

describe("packages' signatures verified with the upstream key (rpmkeys, as dnf's --gpgcheck)", () => {
  let fx: string;
  let dir: string;
  const verifiers: SignatureVerifier[] = [];
  beforeAll(async () => {
    fx = await sharedFixture();
    dir = mkdtempSync(join(tmpdir(), 'pkg-signatures-'));
  });
  afterAll(async () => {
    // Ends every lane's xargs, pass or fail, before the directories go.
    for (const v of verifiers) await v.close();
    for (const v of verifiers) rmSync(v.dir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });
  /** Checks these files now, as a tree does once its packages are queued: flushed, then settled. */
  const checkAll = (v: SignatureVerifier, files: { file: string; what: string }[]) => {
    const checks = files.map((f) => v.checkPackage(f.file, f.what));
    v.flushPackages();
    return v.settle(checks);
  };
  const verifier = (key: string, batch?: number) => {
    const v = new SignatureVerifier(join(fx, key), tmpdir(), batch);
    verifiers.push(v);
    return v;
  };
  const signed = () => {
    const tree = new FixtureLayout(fx).tree('rocky-9', 'BaseOS', 'x86_64');
    return readdirSync(join(tree, 'Packages/b')).slice(0, 3).map((n) => ({ file: join(tree, 'Packages/b', n), what: `BaseOS: Packages/b/${n}` }));
  };

  it('packages are checked in two lanes, a batch to an rpmkeys run; verdicts come once the lanes are flushed; the verifier leaves nothing behind', async () => {
    const v = verifier('RPM-GPG-KEY-fixture', 2);
    let settled = 0;
    // Five files (one asked twice): each lane runs rpmkeys on 2 files, then on what is left.
    const files = [...signed(), ...signed().slice(0, 2)];
    const checks = files.map((f) => v.checkPackage(f.file, f.what).then(() => void settled++));
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(0); // a lane's verdicts are read when it ends: it cannot end before the flush
    v.flushPackages();
    await Promise.all(checks);
    expect(settled).toBe(files.length);
    await v.close();
    expect(existsSync(v.dir)).toBe(false);
  });

  it('a verifier closed while rpmkeys runs (a sync that failed elsewhere) waits for it, and leaves nothing behind', async () => {
    const v = verifier('RPM-GPG-KEY-fixture');
    const checks = checkAll(v, signed());
    await v.close();
    await checks.catch(() => {}); // its verdicts go to no one; whatever they are, nothing is kept
    expect(existsSync(v.dir)).toBe(false);
  });

  it("a signature that does not verify, or one by another key, fails naming the package with rpmkeys' words; its log is kept", async () => {
    const [good, other] = signed();
    const bytes = readFileSync(good.file);
    expect(damageSignatures(bytes)).toBe(1); // the key id still reads as the fixture key's
    const damaged = join(dir, 'damaged.rpm');
    writeFileSync(damaged, bytes);
    const v = verifier('RPM-GPG-KEY-fixture');
    const err: Error = await checkAll(v, [{ file: damaged, what: 'BaseOS: damaged.rpm' }, other]).then(() => new Error('passed'), (x: Error) => x);
    expect(err.message).toMatch(/^1 package failed the signature check against \S+RPM-GPG-KEY-fixture:\n {2}BaseOS: damaged\.rpm \(digests SIGNATURES NOT OK\)\nrpmkeys' log: /);
    const log = /rpmkeys' log: (\S+)/.exec(err.message)![1];
    expect(readFileSync(log, 'utf8')).toContain(`${damaged}: digests SIGNATURES NOT OK`);
    await v.close();
    expect(existsSync(log)).toBe(true);
    // The fixture's packages against the SIG key: not its signature.
    const sig = verifier('RPM-GPG-KEY-fixture-sig');
    await expect(checkAll(sig, [other])).rejects.toThrow(`1 package failed the signature check against ${join(fx, 'RPM-GPG-KEY-fixture-sig')}:\n  ${other.what} (digests SIGNATURES NOT OK)`);
  });

  it('a check that could not run (a missing file) is a tool error, not a verdict on a package', async () => {
    const v = verifier('RPM-GPG-KEY-fixture');
    await expect(checkAll(v, [...signed(), { file: join(dir, 'missing.rpm'), what: 'missing' }])).rejects.toThrow(/^rpmkeys gave no verdict on missing \(\S+missing\.rpm\): .*missing\.rpm: open failed.*; full log: \S+\.rpmkeys\.log$/);
  });
});
