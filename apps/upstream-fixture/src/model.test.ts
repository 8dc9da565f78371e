// Pure checks of what the fixture will contain, straight from the release files.
import { describe, expect, it } from 'vitest';
import { resolve } from 'node:path';
import { listReleases, loadRelease, releaseIso, repoArches, repoDir } from '@rocky/config';
import { releasePlan, repoPackages, type PkgDef } from './model';
import { renderSpec } from './spec';
import { repoUrlPath, packageHref } from './paths';
import { bumpRelease } from './helpers';

const ws = resolve(__dirname, '../../..');
const releases = listReleases(ws).map((n) => loadRelease(ws, n));
const depName = (d: string) => d.split(' ')[0];
const provided = (pkgs: PkgDef[]) => new Set(pkgs.flatMap((p) => [p.name, ...p.provides.map(depName)]));

describe('fixture model', () => {
  it('names repo paths the yumrepofs way and uses the hashed package layout', () => {
    expect(repoUrlPath('rocky-9', 'BaseOS', 'x86_64-debug')).toBe('v1/projects/rocky-9/repo/hashed-BaseOS/x86_64-debug');
    expect(packageHref('Bash-5.1-1.el9.x86_64.rpm')).toBe('Packages/b/Bash-5.1-1.el9.x86_64.rpm');
  });

  it('covers the four releases and the SIG releases', () => {
    expect(releases.map((r) => r.name)).toEqual(expect.arrayContaining(['rocky-8', 'rocky-9', 'rocky-9-beta', 'rocky-9-lookahead', 'sig-altarch-9', 'sig-cloud-9']));
  });

  for (const rel of releases) {
    it(`${rel.name}: every mustClose repo closes over itself plus its closure repos, and only them`, () => {
      const plan = releasePlan(rel);
      const byDir = new Map(rel.repos.map((r) => [repoDir(r), r.name]));
      for (const repo of rel.repos) {
        const own = plan.specs[repo.name].packages;
        const extra = repo.name === plan.baseRepo ? plan.releaseSpec!.packages : [];
        const avail = provided([...own, ...extra, ...repo.closure.flatMap((d) => plan.specs[byDir.get(d)!].packages)]);
        const missing = own.flatMap((p) => p.requires.map(depName)).filter((d) => !avail.has(d));
        if (repo.mustClose) expect(missing, `${repo.name}`).toEqual([]);
        else expect(missing.length, `${repo.name} leans on other repos`).toBeGreaterThan(0);
        // Without its closure repos a dependent repo must not close: the requires are real.
        if (repo.closure.length) {
          const alone = provided([...own, ...extra]);
          expect(own.some((p) => p.requires.some((d) => !alone.has(depName(d))))).toBe(true);
        }
      }
    });

    it(`${rel.name}: trees match the release (os, debug, source, multilib; no kickstart)`, () => {
      const plan = releasePlan(rel);
      const expected = rel.repos.flatMap((r) =>
        repoArches(rel, r).flatMap((a) => (a === 'x86_64' ? [a, ...r.multilib] : [a])).flatMap((a) => [a, ...(r.debug ? [`${a}-debug`] : [])]).concat(r.source ? ['src'] : []).map((a) => `${r.name}/${a}`),
      );
      expect(plan.trees.map((t) => `${t.repo}/${t.upstreamArch}`).sort()).toEqual(expected.sort());
      if (rel.kind === 'main') expect(plan.trees.filter((t) => t.comps).map((t) => t.repo)).toEqual(expect.arrayContaining(['BaseOS', 'AppStream']));
      else expect(plan.trees.filter((t) => t.comps)).toEqual([]);
    });
  }

  it('puts the kernel with boot images and the installroot packages in BaseOS', () => {
    const rel = releases.find((r) => r.name === 'rocky-9')!;
    const base = releasePlan(rel).specs.BaseOS;
    const kernel = base.packages.find((p) => p.name === releaseIso(rel).lorax.kernelPackage)!;
    expect(kernel.noarch).toBe(false);
    expect(kernel.files.map((f) => f.path)).toEqual([
      '/boot/vmlinuz-5.14.0-611.el9.%{_target_cpu}',
      '/boot/initramfs-5.14.0-611.el9.%{_target_cpu}.img',
      '/lib/modules/5.14.0-611.el9.%{_target_cpu}/vmlinuz',
    ]);
    expect(base.packages.map((p) => p.name)).toEqual(expect.arrayContaining(['filesystem', 'setup', 'bash', 'basesystem']));
    expect(base.targets).toEqual(['x86_64', 'aarch64', 'ppc64le', 's390x']);
  });

  it('shares specs between releases of one major, and only the release package differs', () => {
    const [r9, beta, lh] = ['rocky-9', 'rocky-9-beta', 'rocky-9-lookahead'].map((n) => releasePlan(releases.find((r) => r.name === n)!));
    for (const repo of Object.keys(r9.specs)) expect(renderSpec(beta.specs[repo])).toBe(renderSpec(r9.specs[repo]));
    const nevr = (p: ReturnType<typeof releasePlan>) => `${p.releaseSpec!.name}-${p.releaseSpec!.version}-${p.releaseSpec!.release}`;
    expect(new Set([nevr(r9), nevr(beta), nevr(lh)]).size).toBe(3);
    expect(r9.releaseSpec!.version).toBe('9.7');
  });

  it('serves a SIG project: its repos for their arches, tiny at every scale, signed with the SIG key under its own name, no images', () => {
    const cloud = releases.find((r) => r.name === 'sig-cloud-9')!;
    for (const scale of [1, 10]) {
      const plan = releasePlan(cloud, scale);
      expect(plan).toMatchObject({ project: '15016370-1410-4459-a1a2-a1576041fd19', sigKey: 'RPM-GPG-KEY-Rocky-SIG-Cloud', images: [] });
      expect([plan.baseRepo, plan.releaseSpec]).toEqual([undefined, undefined]);
      expect(plan.specs['cloud-kernel'].packages).toHaveLength(5);
      expect(plan.specs['cloud-kernel'].targets).toEqual(['x86_64', 'aarch64']);
      expect(plan.specs['cloud-common'].targets).toEqual(['x86_64', 'aarch64', 'ppc64le', 's390x']);
      expect(plan.trees.filter((t) => t.repo === 'cloud-kernel').map((t) => t.upstreamArch)).toEqual(['x86_64', 'x86_64-debug', 'aarch64', 'aarch64-debug', 'src']);
    }
    // Like real SIG packages, they need the base OS.
    expect(releasePlan(cloud).specs['cloud-common'].packages[0].requires).toEqual(['fixture-abi(BaseOS) >= 9']);
  });

  it('scales the number of packages per repo', () => {
    const c = { major: 9, dir: 'AppStream', closure: ['BaseOS'], base: false, kernel: 'kernel' };
    expect(repoPackages({ ...c, scale: 1 })).toHaveLength(5);
    expect(repoPackages({ ...c, scale: 10 })).toHaveLength(23);
    expect(repoPackages({ ...c, scale: 10 }).filter((p) => p.debuginfo)).toHaveLength(2);
  });

  it('grows repos in Rocky 9 proportions with the rocky shape, every arch package with its debuginfo, SIGs tiny', () => {
    const rel = releases.find((r) => r.name === 'rocky-9')!;
    const perArch = (scale: number, repo: string) => releasePlan(rel, scale, 'rocky').specs[repo].packages.length;
    // Scale 100 is Rocky 9's own size: BaseOS ≈ 1,100 and AppStream ≈ 5,500 packages per arch.
    expect(perArch(100, 'AppStream')).toBe(5501);
    expect(perArch(100, 'BaseOS')).toBe(1106);
    expect(perArch(10, 'AppStream') / perArch(10, 'BaseOS')).toBeGreaterThan(4.5);
    const app = releasePlan(rel, 10, 'rocky').specs.AppStream.packages;
    expect(app.filter((p) => !p.noarch).every((p) => p.debuginfo)).toBe(true);
    expect(releasePlan(rel, 10, 'rocky').specs.AppStream).not.toEqual(releasePlan(rel, 10).specs.AppStream);
    // The default shape is the flat one the tests are built on.
    expect(releasePlan(rel)).toEqual(releasePlan(rel, 1, 'flat'));
    const cloud = releases.find((r) => r.name === 'sig-cloud-9')!;
    expect(releasePlan(cloud, 10, 'rocky')).toEqual(releasePlan(cloud, 10));
  });

  it('names every cloud image the producer way', () => {
    const plan = releasePlan(releases.find((r) => r.name === 'rocky-9')!);
    const files = plan.images.map((i) => i.file);
    expect(files).toContain('Rocky-9-GenericCloud-Base-9.7-20251120.0.x86_64.qcow2');
    expect(files).toContain('Rocky-9-Vagrant-Libvirt-9.7-20251120.0.x86_64.box');
    expect(files).toContain('Rocky-9-RPI-9.7-20251120.0.aarch64.raw.xz');
    expect(files).toContain('Rocky-9-Azure-LVM-9.7-20251120.0.aarch64.vhd');
    expect(new Set(files).size).toBe(files.length);
  });

  it('EL8 AppStream carries two module streams with modulemd per arch; Apollo errata only for stable releases, per repo and arch', () => {
    const r8 = releasePlan(releases.find((r) => r.name === 'rocky-8')!);
    expect(r8.modules.map((m) => `${m.repo} ${m.name}:${m.stream} ${m.version}`)).toEqual(['AppStream fixturemod:1 8100020251120000000', 'AppStream fixturemod:2 8100020251120000000']);
    const app = r8.trees.find((t) => t.repo === 'AppStream' && t.kind === 'os' && t.arch === 'aarch64')!;
    expect(app.modules).toMatch(/^  arch: aarch64$/m);
    expect(app.modules).toContain(`- fixturemod-0:1.0-${r8.modules[0].spec.release}.noarch`);
    expect(r8.trees.filter((t) => t.modules).map((t) => `${t.repo}/${t.upstreamArch}`).sort()).toEqual(['AppStream/aarch64', 'AppStream/x86_64']);
    expect(r8.product).toBe('rocky-linux');
    expect(r8.errata.map((e) => `${e.repo}/${e.arch}`).sort()).toEqual(['AppStream/aarch64', 'AppStream/x86_64', 'BaseOS/aarch64', 'BaseOS/x86_64']);
    expect(r8.errata.find((e) => e.repo === 'BaseOS' && e.arch === 'aarch64')!.xml).toContain('<package name="bash" arch="aarch64" epoch="0"');
    expect(releasePlan(releases.find((r) => r.name === 'rocky-9-beta')!).errata).toEqual([]);
    expect(releasePlan(releases.find((r) => r.name === 'rocky-9')!).modules).toEqual([]);
  });

  it('bumps the leading number of a Release', () => {
    expect(bumpRelease('1.el9')).toBe('2.el9');
    expect(bumpRelease('611.el9')).toBe('612.el9');
    expect(bumpRelease('0.beta1.el9')).toBe('1.beta1.el9');
  });
});
