// Integration: build the whole fixture once (all releases), serve it, and check it with the
// real tools a consumer uses: dnf repoquery/repoclosure/install, rpmkeys, gpg, qemu-img, tar.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { listReleases, loadRelease, repoArches, repoDir, type Release } from '@rocky/config';
import { run, sha256File, type RunResult } from '@rocky/exec';
import { ensureFixture, serveFixture, repoUrlPath, updatePackage, writeBrokenRepo, injectHref, type FixtureInfo, type FixtureServer } from './index';
import { releasePlan, type ReleasePlan, type TreePlan } from './model';
import { counters } from './rpmbuild';
import { readPrimary, readRepomd } from './repodata';
import { agentPids, killAgent } from './gpg';

const ws = resolve(__dirname, '../../..');

describe('upstream fixture (built once, all releases)', () => {
  let tmp: string;
  let root: string;
  let info: FixtureInfo;
  let server: FixtureServer;
  let releases: Release[];
  let plans: ReleasePlan[];
  const dnfCaches: string[] = [];

  /** dnf with its own config: no system repos, own cache, missing repos are errors. */
  async function dnf(major: number, args: string[], okCodes = [0]): Promise<RunResult> {
    const cache = mkdtempSync(join(tmp, 'dnf-'));
    dnfCaches.push(cache);
    return run(
      [
        'dnf',
        '-q',
        '-y',
        `--releasever=${major}`,
        '--setopt=reposdir=/dev/null',
        `--setopt=cachedir=${cache}/cache`,
        // With --installroot dnf puts its log and state inside the root itself.
        ...(args.some((a) => a.startsWith('--installroot')) ? [] : [`--setopt=logdir=${cache}/log`, `--setopt=persistdir=${cache}/persist`]),
        '--setopt=skip_if_unavailable=False',
        ...args,
      ],
      { okCodes },
    );
  }

  /** dnf's repo_gpgcheck leaves one gpg-agent per repo: stop them by their homedirs. */
  async function killDnfAgents() {
    const homes: string[] = [];
    const walk = (d: string, depth: number) => {
      if (depth > 4 || !existsSync(d)) return;
      for (const e of readdirSync(d, { withFileTypes: true })) {
        if (!e.isDirectory()) continue;
        if (e.name === 'pubring') homes.push(join(d, e.name));
        else walk(join(d, e.name), depth + 1);
      }
    };
    for (const c of dnfCaches) walk(c, 0);
    for (const h of homes) await killAgent(h);
  }

  const tree = (project: string, repo: string, arch: string) => join(root, repoUrlPath(project, repo, arch));
  const url = (project: string, repo: string, arch: string) => `${server.url}/${repoUrlPath(project, repo, arch)}`;
  const rpmsIn = (dir: string) =>
    readdirSync(join(dir, 'Packages')).flatMap((l) => readdirSync(join(dir, 'Packages', l)).map((f) => join(dir, 'Packages', l, f)));

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'upstream-fixture-'));
    root = join(tmp, 'upstream');
    releases = listReleases(ws).map((n) => loadRelease(ws, n));
    plans = releases.map((r) => releasePlan(r));
    const t0 = Date.now();
    info = await ensureFixture({ workspaceRoot: ws, root, log: (m) => console.log(`[fixture +${Date.now() - t0} ms] ${m}`) });
    server = await serveFixture({ root });
  });

  afterAll(async () => {
    await server?.close();
    await killDnfAgents();
    expect(dnfCaches.length).toBeGreaterThan(0);
    if (info) await killAgent(info.gnupgHome);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('lays out the key, the GNUPGHOME and one project dir per release', async () => {
    expect(agentPids(info.gnupgHome)).toEqual([]); // the build stopped the agent its signing started
    expect(info.keyFile).toBe(join(root, 'RPM-GPG-KEY-fixture'));
    expect(readFileSync(info.keyFile, 'utf8')).toContain('-----BEGIN PGP PUBLIC KEY BLOCK-----');
    const list = await run(['gpg', '--homedir', info.gnupgHome, '--batch', '--with-colons', '--list-secret-keys']);
    expect(list.stdout).toContain('releng-fixture@rockylinux.invalid');
    expect(list.stdout).toContain(info.keyId);
    for (const r of releases) expect(existsSync(join(root, 'v1', 'projects', r.project, 'repo'))).toBe(true);
  });

  it('dnf repoquery over HTTP reads every tree of every release (repo_gpgcheck on BaseOS)', async () => {
    server.clearRequests();
    for (const [ri, plan] of plans.entries()) {
      // One dnf call per package arch: --forcearch decides which packages dnf accepts.
      const groups = new Map<string, TreePlan[]>();
      for (const t of plan.trees) {
        const key = t.kind === 'source' ? 'src' : t.arch;
        groups.set(key, [...(groups.get(key) ?? []), t]);
      }
      for (const [arch, trees] of groups) {
        const args: string[] = [];
        trees.forEach((t, i) => {
          args.push(`--repofrompath=t${i},${url(plan.project, t.repo, t.upstreamArch)}`, `--repo=t${i}`);
          if (t.repo === plan.baseRepo && t.kind === 'os') args.push(`--setopt=t${i}.repo_gpgcheck=1`, `--setopt=t${i}.gpgkey=file://${info.keyFile}`);
        });
        if (arch !== 'src') args.push('--forcearch', arch);
        // Every package, those of module streams that are not enabled too.
        const out = await dnf(releases[ri].major, [...args, 'repoquery', '--disable-modular-filtering', '--qf', '%{repoid} %{name}-%{version}-%{release}.%{arch}.rpm']);
        const got = new Map<string, string[]>();
        for (const line of out.stdout.trim().split('\n')) {
          const [id, file] = line.split(' ');
          got.set(id, [...(got.get(id) ?? []), file]);
        }
        trees.forEach((t, i) => {
          const onDisk = rpmsIn(tree(plan.project, t.repo, t.upstreamArch)).map((f) => basename(f)).sort();
          expect(onDisk.length, `${plan.project} ${t.repo}/${t.upstreamArch}`).toBeGreaterThan(0);
          expect((got.get(`t${i}`) ?? []).sort(), `${plan.project} ${t.repo}/${t.upstreamArch}`).toEqual(onDisk);
        });
      }
    }
    // dnf fetched (and verified) every release's BaseOS repomd signature.
    for (const plan of plans.filter((p) => p.baseRepo)) {
      const sigs = server.requests.filter((r) => r.path === `/${repoUrlPath(plan.project, plan.baseRepo!, 'x86_64')}/repodata/repomd.xml.asc`);
      expect(sigs.length, plan.project).toBeGreaterThan(0);
      expect(sigs.every((r) => r.status === 200)).toBe(true);
    }
  });

  it('every BaseOS has the kernel with boot images; devel has i686 multilib; BaseOS and AppStream carry comps', () => {
    for (const plan of plans.filter((p) => p.baseRepo)) {
      for (const t of plan.trees.filter((x) => x.repo === plan.baseRepo && x.kind === 'os')) {
        const kernel = readPrimary(tree(plan.project, t.repo, t.upstreamArch)).find((p) => p.name === 'kernel');
        expect(kernel?.arch, `${plan.project} ${t.upstreamArch}`).toBe(t.arch);
        const file = join(tree(plan.project, t.repo, t.upstreamArch), kernel!.href);
        expect(statSync(file).size).toBeGreaterThan(3 * 1000 * 1000);
      }
      const types = (repo: string) => readRepomd(tree(plan.project, repo, 'x86_64')).map((d) => d.type);
      expect(types('BaseOS')).toContain('group');
      expect(types('AppStream')).toContain('group');
      expect(types('extras')).not.toContain('group');
      for (const t of plan.trees)
        for (const p of readPrimary(tree(plan.project, t.repo, t.upstreamArch))) expect(p.href).toBe(`Packages/${basename(p.href)[0].toLowerCase()}/${basename(p.href)}`);
    }
    const i686 = readPrimary(tree('rocky-9', 'all', 'i686'));
    expect(i686.some((p) => p.arch === 'i686')).toBe(true);
    expect(i686.every((p) => p.arch === 'i686' || p.arch === 'noarch')).toBe(true);
  });

  it('boot files install into a foreign-arch installroot without scriptlets', async () => {
    const instroot = join(tmp, 'instroot');
    await dnf(9, [
      `--installroot=${instroot}`,
      '--nogpgcheck',
      '--setopt=install_weak_deps=False',
      '--forcearch',
      'aarch64',
      `--repofrompath=b,${url('rocky-9', 'BaseOS', 'aarch64')}`,
      '--repo=b',
      'install',
      'kernel',
      'filesystem',
      'bash',
      'setup',
    ]);
    const boot = readdirSync(join(instroot, 'boot')).sort();
    expect(boot).toEqual(['initramfs-5.14.0-611.el9.aarch64.img', 'vmlinuz-5.14.0-611.el9.aarch64']);
    expect(statSync(join(instroot, 'boot', boot[1])).size).toBe(1 << 20);
  });

  for (const arch of ['x86_64', 'aarch64']) {
    it(`dnf repoclosure passes for every mustClose repo of rocky-9 ${arch} with its closure repos`, async () => {
      const rel = releases.find((r) => r.name === 'rocky-9')!;
      const byDir = new Map(rel.repos.map((r) => [repoDir(r), r]));
      const checked: string[] = [];
      for (const repo of rel.repos.filter((r) => r.mustClose && repoArches(rel, r).includes(arch as 'x86_64'))) {
        const repos = [repo, ...repo.closure.map((d) => byDir.get(d)!)];
        const args = repos.flatMap((r) => [`--repofrompath=${r.name},${url(rel.project, r.name, arch)}`, `--repo=${r.name}`]);
        await dnf(9, [...args, '--forcearch', arch, 'repoclosure', `--check=${repo.name}`]);
        checked.push(repo.name);
      }
      expect(checked).toEqual(expect.arrayContaining(['BaseOS', 'AppStream', 'CRB', 'HighAvailability', 'extras', 'plus']));
      if (arch === 'x86_64') expect(checked).toEqual(expect.arrayContaining(['SAP', 'SAPHANA', 'RT', 'NFV', 'ResilientStorage']));
    });
  }

  it('dnf repoclosure fails on writeBrokenRepo and names the package', async () => {
    const broken = join(tmp, 'broken');
    await writeBrokenRepo(broken);
    const r = await dnf(9, [`--repofrompath=broken,file://${broken}`, '--repo=broken', 'repoclosure'], [0, 1]);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain('broken-fixture');
    expect(r.stdout + r.stderr).toContain('does-not-exist-fixture');
  });

  it('signs every RPM with the fixture key and shares package files between releases of one major', async () => {
    const db = join(tmp, 'rpmdb');
    await run(['rpmkeys', '--dbpath', db, '--import', info.keyFile]);
    const sample = [
      ...rpmsIn(tree('rocky-9', 'BaseOS', 'x86_64')),
      ...rpmsIn(tree('rocky-9', 'AppStream', 'aarch64-debug')),
      ...rpmsIn(tree('rocky-9', 'all', 'i686')),
      ...rpmsIn(tree('rocky-8', 'BaseOS', 'src')),
    ];
    const out = await run(['rpmkeys', '--dbpath', db, '--checksig', ...sample]);
    const lines = out.stdout.trim().split('\n');
    expect(lines).toHaveLength(sample.length);
    for (const l of lines) expect(l).toMatch(/: digests signatures OK$/);
    // An unsigned package is told apart (the check can fail).
    const unsigned = rpmsIn(join(tmp, 'broken'));
    const u = await run(['rpmkeys', '--dbpath', db, '--checksig', ...unsigned], { okCodes: [0, 1] });
    expect(u.stdout).not.toMatch(/signatures OK/);

    const bash = (p: string) => rpmsIn(tree(p, 'BaseOS', 'x86_64')).find((f) => basename(f).startsWith('bash-'))!;
    expect(basename(bash('rocky-9'))).toBe(basename(bash('rocky-9-beta')));
    expect(statSync(bash('rocky-9')).ino).toBe(statSync(bash('rocky-9-beta')).ino);
    expect(await sha256File(bash('rocky-9'))).toBe(await sha256File(bash('rocky-9-lookahead')));
    const rel = (p: string) => rpmsIn(tree(p, 'BaseOS', 'x86_64')).find((f) => basename(f).startsWith('rocky-release-'))!;
    expect(new Set(['rocky-9', 'rocky-9-beta', 'rocky-9-lookahead'].map((p) => basename(rel(p)))).size).toBe(3);
  });

  it('signs the SIG projects with the SIG key (not the main key), served under each SIG release\'s key file name', async () => {
    const sig = info.sig!;
    expect(sig.keyId).not.toBe(info.keyId);
    expect(agentPids(sig.gnupgHome)).toEqual([]);
    for (const name of ['RPM-GPG-KEY-Rocky-SIG-Cloud', 'RPM-GPG-KEY-Rocky-SIG-AltArch']) expect(readFileSync(join(sig.sigKeys, name), 'utf8')).toBe(readFileSync(sig.keyFile, 'utf8'));
    const cloud = releases.find((r) => r.name === 'sig-cloud-9')!;
    const rpms = [...rpmsIn(tree(cloud.project, 'cloud-kernel', 'aarch64')), ...rpmsIn(tree(cloud.project, 'cloud-common', 's390x-debug')), ...rpmsIn(tree(cloud.project, 'cloud-common', 'src'))];
    const checksig = async (key: string) => {
      const db = mkdtempSync(join(tmp, 'rpmdb-sig-'));
      await run(['rpmkeys', '--dbpath', db, '--import', key]);
      // rpmkeys exits with the number of packages that failed.
      return (await run(['rpmkeys', '--dbpath', db, '--checksig', ...rpms], { okCodes: [0, rpms.length] })).stdout.trim().split('\n');
    };
    expect(await checksig(sig.keyFile)).toEqual(rpms.map((f) => `${f}: digests signatures OK`));
    expect((await checksig(info.keyFile)).filter((l) => l.endsWith('signatures OK'))).toEqual([]);
    // dnf verifies the SIG repo's repomd.xml signature with the SIG key.
    const q = await dnf(9, [
      `--repofrompath=c,${url(cloud.project, 'cloud-kernel', 'x86_64')}`,
      '--repo=c',
      '--setopt=c.repo_gpgcheck=1',
      `--setopt=c.gpgkey=file://${join(sig.sigKeys, 'RPM-GPG-KEY-Rocky-SIG-Cloud')}`,
      '--forcearch',
      'x86_64',
      'repoquery',
      '--qf',
      '%{name}',
    ]);
    expect(q.stdout.trim().split('\n').sort()).toEqual(['cloudkernel-data-1', 'cloudkernel-data-2', 'cloudkernel-libs', 'cloudkernel-tools-1', 'cloudkernel-tools-2']);
  });

  it('builds every cloud image with a BSD-tag CHECKSUM beside it', async () => {
    for (const plan of plans) {
      for (const img of plan.images) {
        const file = join(root, 'images', plan.project, img.arch, img.file);
        const sum = readFileSync(`${file}.CHECKSUM`, 'utf8');
        expect(sum).toBe(`# ${img.file}: ${statSync(file).size} bytes\nSHA256 (${img.file}) = ${await sha256File(file)}\n`);
      }
    }
    const dir = join(root, 'images', 'rocky-9');
    const qinfo = async (f: string) => JSON.parse((await run(['qemu-img', 'info', '--output=json', f])).stdout);
    const q = await qinfo(join(dir, 'x86_64', 'Rocky-9-GenericCloud-Base-9.7-20251120.0.x86_64.qcow2'));
    expect([q.format, q['virtual-size']]).toEqual(['qcow2', 64 << 20]);
    expect((await qinfo(join(dir, 'x86_64', 'Rocky-9-Azure-Base-9.7-20251120.0.x86_64.vhd'))).format).toBe('vpc');
    const box = await run(['tar', '-tzf', join(dir, 'x86_64', 'Rocky-9-Vagrant-Libvirt-9.7-20251120.0.x86_64.box')]);
    expect(box.stdout.split('\n')).toEqual(expect.arrayContaining(['./box.img', './metadata.json', './Vagrantfile']));
    const ctr = await run(['tar', '-tJf', join(dir, 'aarch64', 'Rocky-9-Container-Base-9.7-20251120.0.aarch64.tar.xz')]);
    expect(ctr.stdout).toContain('./etc/os-release');
    await run(['xz', '-t', join(dir, 'aarch64', 'Rocky-9-RPI-9.7-20251120.0.aarch64.raw.xz')]);
  });

  it('a second ensureFixture is a no-op: nothing rebuilt, nothing rewritten', async () => {
    const repomd = join(tree('rocky-9', 'BaseOS', 'x86_64'), 'repodata', 'repomd.xml');
    const before = { builds: counters.rpmbuild, repomd: statSync(repomd).mtimeMs, ino: statSync(repomd).ino, state: statSync(join(root, '.fixture', 'state.json')).mtimeMs };
    const again = await ensureFixture({ workspaceRoot: ws, root });
    expect(again).toEqual(info);
    expect({ builds: counters.rpmbuild, repomd: statSync(repomd).mtimeMs, ino: statSync(repomd).ino, state: statSync(join(root, '.fixture', 'state.json')).mtimeMs }).toEqual(before);
  });

  it('updatePackage changes exactly one package in one repo/arch and keeps repomd signed', async () => {
    const watched = ['x86_64', 'ppc64le', 's390x'].map((a) => join(tree('rocky-9', 'BaseOS', a), 'repodata', 'repomd.xml'));
    watched.push(join(tree('rocky-9-beta', 'BaseOS', 'aarch64'), 'repodata', 'repomd.xml'));
    const snapshot = () => watched.map((f) => readFileSync(f, 'utf8'));
    const before = snapshot();
    const prim0 = readPrimary(tree('rocky-9', 'BaseOS', 'aarch64'));
    const builds = counters.rpmbuild;

    const r = await updatePackage({ root, project: 'rocky-9', repo: 'BaseOS', arch: 'aarch64', name: 'bash' });
    expect(counters.rpmbuild).toBe(builds + 1);
    expect(r.oldHref).toMatch(/^Packages\/b\/bash-[\d.]+-1\.el9\.aarch64\.rpm$/);
    expect(r.newHref).toBe(r.oldHref.replace('-1.el9.', '-2.el9.'));
    const prim1 = readPrimary(tree('rocky-9', 'BaseOS', 'aarch64'));
    const key = (p: { href: string; checksum: string }) => `${p.href} ${p.checksum}`;
    const removed = prim0.filter((p) => !prim1.some((q) => key(q) === key(p)));
    const added = prim1.filter((p) => !prim0.some((q) => key(q) === key(p)));
    expect(removed.map((p) => p.href)).toEqual([r.oldHref]);
    expect(added.map((p) => [p.href, p.release])).toEqual([[r.newHref, '2.el9']]);
    expect(existsSync(join(tree('rocky-9', 'BaseOS', 'aarch64'), r.oldHref))).toBe(false);
    expect(snapshot()).toEqual(before);
    // The old file still serves the other releases.
    expect(existsSync(join(tree('rocky-9-beta', 'BaseOS', 'aarch64'), r.oldHref))).toBe(true);

    // dnf verifies the new repomd signature and sees the new build.
    const q = await dnf(9, [
      `--repofrompath=b,${url('rocky-9', 'BaseOS', 'aarch64')}`,
      '--repo=b',
      '--setopt=b.repo_gpgcheck=1',
      `--setopt=b.gpgkey=file://${info.keyFile}`,
      '--forcearch',
      'aarch64',
      'repoquery',
      '--qf',
      '%{name}-%{release}',
      'bash',
    ]);
    expect(q.stdout.trim()).toBe('bash-2.el9');
    const db = join(tmp, 'rpmdb-update');
    await run(['rpmkeys', '--dbpath', db, '--import', info.keyFile]);
    expect((await run(['rpmkeys', '--dbpath', db, '--checksig', join(tree('rocky-9', 'BaseOS', 'aarch64'), r.newHref)])).stdout).toMatch(/digests signatures OK/);
  });

  it('updatePackage leaves repodata shared with other releases untouched', async () => {
    const shared = join(tree('rocky-9-beta', 'AppStream', 'aarch64'), 'repodata', 'repomd.xml');
    const mine = join(tree('rocky-9', 'AppStream', 'aarch64'), 'repodata', 'repomd.xml');
    expect(statSync(shared).ino).toBe(statSync(mine).ino); // hardlinked from the repodata cache
    const before = readFileSync(shared, 'utf8');
    await updatePackage({ root, project: 'rocky-9', repo: 'AppStream', arch: 'aarch64', name: 'appstream-data-1' });
    expect(readFileSync(shared, 'utf8')).toBe(before);
    expect(readFileSync(mine, 'utf8')).not.toBe(before);
    expect(readPrimary(tree('rocky-9', 'AppStream', 'aarch64')).find((p) => p.name === 'appstream-data-1')?.release).toBe('2.el9');
    expect(readPrimary(tree('rocky-9', 'AppStream', 'x86_64')).find((p) => p.name === 'appstream-data-1')?.release).toBe('1.el9');
  });

  it('injectHref points one package outside the repo, with consistent checksums and a valid signature', async () => {
    const t = tree('rocky-8', 'extras', 'x86_64');
    const before = readPrimary(t);
    await injectHref({ root, project: 'rocky-8', repo: 'extras', arch: 'x86_64', href: '../../../../etc/passwd' });
    const after = readPrimary(t);
    expect(after.map((p) => p.href)).toEqual(['../../../../etc/passwd', ...before.slice(1).map((p) => p.href)]);
    const gnupg = mkdtempSync(join(tmp, 'verify-'));
    await run(['gpg', '--homedir', gnupg, '--batch', '--import', info.keyFile]);
    await run(['gpg', '--homedir', gnupg, '--batch', '--verify', join(t, 'repodata', 'repomd.xml.asc'), join(t, 'repodata', 'repomd.xml')]);
    await killAgent(gnupg);
    // dnf accepts the metadata (checksums match) and reports the hostile location.
    const q = await dnf(8, [`--repofrompath=e,${url('rocky-8', 'extras', 'x86_64')}`, '--repo=e', '--forcearch', 'x86_64', 'repoquery', '--qf', '%{location}']);
    expect(q.stdout.split('\n')).toContain('../../../../etc/passwd');
  });

  it('writeBrokenRepo inside the fixture breaks that tree only, still signed', async () => {
    const t = tree('rocky-8', 'plus', 'aarch64');
    const before = readPrimary(t).map((p) => p.name);
    await writeBrokenRepo(t);
    expect(readPrimary(t).map((p) => p.name).sort()).toEqual([...before, 'broken-fixture'].sort());
    const args = [
      `--repofrompath=BaseOS,${url('rocky-8', 'BaseOS', 'aarch64')}`,
      `--repofrompath=AppStream,${url('rocky-8', 'AppStream', 'aarch64')}`,
      `--repofrompath=plus,${url('rocky-8', 'plus', 'aarch64')}`,
      '--repo=BaseOS',
      '--repo=AppStream',
      '--repo=plus',
      '--setopt=plus.repo_gpgcheck=1',
      `--setopt=plus.gpgkey=file://${info.keyFile}`,
      '--forcearch',
      'aarch64',
      'repoclosure',
      '--check=plus',
    ];
    const r = await dnf(8, args, [0, 1]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('package: broken-fixture-1.0-1.fixture.noarch from plus');
    const db = join(tmp, 'rpmdb-broken');
    await run(['rpmkeys', '--dbpath', db, '--import', info.keyFile]);
    const rpm = join(t, readPrimary(t).find((p) => p.name === 'broken-fixture')!.href);
    expect((await run(['rpmkeys', '--dbpath', db, '--checksig', rpm])).stdout).toMatch(/digests signatures OK/);
    // The same repo of another arch is untouched.
    expect(readPrimary(tree('rocky-8', 'plus', 'x86_64')).some((p) => p.name === 'broken-fixture')).toBe(false);
  });
});
