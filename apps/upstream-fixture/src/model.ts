// What the fixture upstream contains, computed from the release files alone (pure, no I/O):
// the packages of every repo (as spec definitions), the trees served per release, the comps
// files and the cloud images. Everything is derived deterministically from names, so the same
// release file always describes the same upstream.
import { cloudImageNames, productSlug, releaseIso, repoDir, repoArches, repoTrees, revision, upstreamArch, type Arch, type Release } from '@rocky/config';
import { createHash } from 'node:crypto';

/** Fixed clock of the fixture: build times, file times, repodata timestamps, image dates. */
export const SOURCE_DATE_EPOCH = 1763596800; // 2025-11-20T00:00:00Z
export const IMAGE_DATE = new Date(SOURCE_DATE_EPOCH * 1000);

export interface FileDef {
  /** Absolute path in the package; may use `%{_target_cpu}`. */
  path: string;
  /** Small text content (letters, digits, spaces, `.-_:/=()`; may use `%{_target_cpu}`). */
  text?: string;
  /** Or a ~1 MiB pseudo-random blob written by the builder (kernel images). */
  blob?: 'vmlinuz' | 'initramfs';
  /** Or the fixture's armored public signing key (what rocky-gpg-keys ships). */
  key?: true;
}

export interface PkgDef {
  name: string;
  version: string;
  release: string;
  noarch: boolean;
  summary: string;
  requires: string[];
  provides: string[];
  files: FileDef[];
  /** Also build an explicit `<name>-debuginfo` subpackage (arch packages only). */
  debuginfo: boolean;
}

/** One rpmbuild input: a source package with many subpackages, built for all `targets` in one call. */
export interface SpecDef {
  name: string;
  version: string;
  release: string;
  summary: string;
  packages: PkgDef[];
  /** `rpmbuild --target` list; empty for a noarch-only spec. */
  targets: string[];
}

export type TreeKind = 'os' | 'debug' | 'source';

export interface TreePlan {
  repo: string;
  kind: TreeKind;
  /** Package arch of the tree: a basearch, `i686`, or `src`. */
  arch: string;
  /** URL segment: `<arch>`, `<arch>-debug`, `src`. */
  upstreamArch: string;
  /** comps.xml content for createrepo_c -g (BaseOS and AppStream binary trees). */
  comps?: string;
  /** modules.yaml content for modifyrepo_c --mdtype=modules (binary trees of a repo with module streams). */
  modules?: string;
}

/** A module stream: one noarch package built by a spec of its own, as koji builds a module's components. */
export interface ModulePlan {
  repo: string;
  name: string;
  stream: string;
  /** modulemd's version: a 64-bit integer, as digits (`<major><minor>00<YYYYMMDDhhmmss>`). */
  version: string;
  context: string;
  spec: SpecDef;
}

/** The errata the fixture's Apollo serves for one repo and arch (Apollo's updateinfo.xml). */
export interface ErrataPlan {
  repo: string;
  arch: Arch;
  xml: string;
}

export interface ImagePlan {
  arch: Arch;
  type: string;
  variant?: string;
  format: string;
  file: string;
}

export interface ReleasePlan {
  project: string;
  major: number;
  revision: string;
  /** Spec of every upstream repo, by repo name. */
  specs: Record<string, SpecDef>;
  /** The release's own package (`rocky-release`), placed in the base repo (main releases). */
  releaseSpec?: SpecDef;
  /** Repo (name) that carries the kernel, the installroot packages and the release package (main releases). */
  baseRepo?: string;
  trees: TreePlan[];
  images: ImagePlan[];
  /** A SIG project is signed with the fixture's SIG key, served under the key file name the SIG release gives. */
  sigKey?: string;
  /** Module streams (their specs are built beside the repo's). */
  modules: ModulePlan[];
  /** Apollo's product slug and major: where its errata are served. */
  product: string;
  /** Per repo and arch, for stable releases (Apollo publishes errata of GA products). */
  errata: ErrataPlan[];
}

/** Provide that stands for "the ABI of repo <dir>": what packages of dependent repos require. */
export const abi = (dir: string) => `fixture-abi(${dir})`;

const h32 = (s: string) => createHash('sha256').update(s).digest().readUInt32BE(0);
/** A stable, plausible version for a package name. */
export const versionOf = (name: string) => {
  const h = h32(name);
  return `${1 + (h % 4)}.${(h >>> 4) % 20}.${(h >>> 12) % 10}`;
};
const dist = (major: number) => `el${major}`;
const slug = (dir: string) => dir.toLowerCase().replace(/[^a-z0-9]+/g, '');

const KERNEL_VERSION: Record<number, [string, string]> = { 8: ['4.18.0', '553'], 9: ['5.14.0', '611'], 10: ['6.12.0', '55'] };

/**
 * How scale grows the fixture. `flat`: every repo alike (scale 100 ≈ 8000 RPMs in all), debug
 * trees keep a fixed few. `rocky`: repos in Rocky 9's proportions (packages per arch at scale 100
 * ≈ BaseOS 1,100, AppStream 5,500, CRB 1,500, devel 1,000: Rocky 9's own sizes), every arch
 * package with its debuginfo; the shape of the real composes, for scale benchmarks.
 */
export type FixtureShape = 'flat' | 'rocky';

/** Binary packages per arch (arch and noarch) of a repo per unit of scale, a hundredth of Rocky 9's; other repos get ROCKY_OTHER. */
const ROCKY_WEIGHT: Record<string, number> = { BaseOS: 11, AppStream: 55, CRB: 15, PowerTools: 15, HighAvailability: 1.5, devel: 10, Devel: 10 };
const ROCKY_OTHER = 0.5;
/** Share of arch (not noarch) packages in Rocky's repos. */
const ROCKY_ARCH_SHARE = 0.7;

interface RepoCtx {
  major: number;
  dir: string;
  closure: string[];
  base: boolean;
  kernel: string;
  scale: number;
  shape?: FixtureShape;
}

function pkg(p: Partial<PkgDef> & { name: string }, major: number): PkgDef {
  return {
    version: versionOf(p.name),
    release: `1.${dist(major)}`,
    noarch: false,
    summary: `Fixture package ${p.name}`,
    requires: [],
    provides: [],
    files: [],
    debuginfo: false,
    ...p,
  };
}

/** The packages of one repo. Every requirement is met by the repo itself or its closure repos. */
export function repoPackages(c: RepoCtx): PkgDef[] {
  const { major } = c;
  const s = slug(c.dir);
  const closureReq = c.closure.map((d) => `${abi(d)} >= ${major}`);
  const out: PkgDef[] = [];
  const archFile = (name: string) => ({ path: `/usr/libexec/${name}/${name}`, text: `fixture ${name} for %{_target_cpu}` });
  const noarchFile = (name: string) => ({ path: `/usr/share/${name}/README`, text: `fixture ${name} noarch` });
  let tools: number;
  let data: number;
  let libs: string;
  if (c.base) {
    // What a minimal installroot needs; no scriptlets, so --forcearch installs work anywhere.
    const [kv, kr] = KERNEL_VERSION[major] ?? ['6.0.0', '1'];
    const kver = `${kv}-${kr}.${dist(major)}.%{_target_cpu}`;
    out.push(
      pkg({ name: 'setup', noarch: true, files: [{ path: '/etc/fixture-setup', text: 'setup' }] }, major),
      pkg({ name: 'filesystem', requires: ['setup'], files: [{ path: '/usr/share/filesystem/layout', text: 'filesystem %{_target_cpu}' }] }, major),
      pkg({ name: 'basesystem', noarch: true, requires: ['filesystem', 'setup'], files: [{ path: '/usr/share/basesystem/README', text: 'basesystem' }] }, major),
      pkg(
        { name: 'glibc', requires: ['filesystem'], provides: [`${abi(c.dir)} = ${major}`], files: [archFile('glibc')], debuginfo: true },
        major,
      ),
      pkg(
        { name: 'bash', requires: ['filesystem', 'glibc'], provides: ['/bin/sh'], files: [{ path: '/usr/bin/bash', text: 'bash for %{_target_cpu}' }], debuginfo: true },
        major,
      ),
      pkg(
        {
          name: c.kernel,
          version: kv,
          release: `${kr}.${dist(major)}`,
          summary: 'The Linux kernel (fixture: pseudo-random images)',
          provides: [`installonlypkg(kernel)`],
          files: [
            { path: `/boot/vmlinuz-${kver}`, blob: 'vmlinuz' },
            { path: `/boot/initramfs-${kver}.img`, blob: 'initramfs' },
            { path: `/lib/modules/${kver}/vmlinuz`, blob: 'vmlinuz' },
          ],
          debuginfo: true,
        },
        major,
      ),
    );
    libs = 'glibc';
    tools = c.scale;
    data = c.scale;
  } else {
    libs = `${s}-libs`;
    out.push(pkg({ name: libs, requires: closureReq, provides: [`${abi(c.dir)} = ${major}`], files: [archFile(libs)], debuginfo: true }, major));
    tools = c.scale + 1;
    data = c.scale + 1;
  }
  const rocky = c.shape === 'rocky';
  if (rocky) {
    const perArch = (ROCKY_WEIGHT[c.dir] ?? ROCKY_OTHER) * c.scale;
    tools = Math.max(1, Math.round(perArch * ROCKY_ARCH_SHARE));
    data = Math.max(1, Math.round(perArch * (1 - ROCKY_ARCH_SHARE)));
  }
  // Scale grows the binary packages; flat debug trees keep a fixed few (scale 100 ≈ 8000 RPMs in all).
  for (let k = 1; k <= tools; k++) {
    const name = `${s}-tools-${k}`;
    out.push(pkg({ name, requires: [libs, ...closureReq], files: [archFile(name)], debuginfo: rocky || k === 1 }, major));
  }
  for (let k = 1; k <= data; k++) {
    const name = `${s}-data-${k}`;
    out.push(pkg({ name, noarch: true, requires: [libs, ...closureReq], files: [noarchFile(name)] }, major));
  }
  return out;
}

/**
 * Where rocky-release's spec installs a file of its sources (SOURCES/ of rocky-release.git, what
 * empanadas copies as extra files): the EULA in the release's data dir, LICENSE as %license,
 * other documents as %doc; GPG keys go to /etc/pki/rpm-gpg in the -gpg-keys subpackage.
 */
export function releaseFilePath(short: string, file: string): string {
  const pkg = `${short.toLowerCase()}-release`;
  if (file.startsWith('RPM-GPG-KEY-')) return `/etc/pki/rpm-gpg/${file}`;
  if (file === 'EULA') return `/usr/share/${pkg}/EULA`;
  if (file === 'LICENSE') return `/usr/share/licenses/${pkg}/LICENSE`;
  return `/usr/share/doc/${pkg}/${file}`;
}

/**
 * The release's own packages, as rocky-release builds them: `<short>-release` (release files,
 * EULA, LICENSE and the documents the release's extraFiles name) and `<short>-gpg-keys` (the
 * RPM-GPG-KEY files, here the fixture's signing key). Version is the release's revision, so the
 * packages differ per release.
 */
export function releaseSpec(rel: Release): SpecDef {
  const short = rel.shortname.toLowerCase();
  const name = `${short}-release`;
  const rev = revision(rel);
  // Pre-releases sort below the GA build of the same revision, as real ones do.
  const release = rel.type === 'stable' ? `1.${dist(rel.major)}` : `0.${(rel.rc ?? rel.type).toLowerCase()}.${dist(rel.major)}`;
  const docs = rel.extraFiles.files.filter((f) => !f.startsWith('RPM-GPG-KEY-'));
  const keys = rel.extraFiles.files.filter((f) => f.startsWith('RPM-GPG-KEY-'));
  const p: PkgDef = {
    name,
    version: rev,
    release,
    noarch: true,
    summary: `${rel.fullname} release files (fixture)`,
    requires: [],
    provides: ['system-release', `system-release(releasever) = ${rel.major}`, `base-module(platform:${dist(rel.major)})`],
    files: [
      { path: `/etc/${name}`, text: `${rel.fullname} release ${rev} (${rel.project})` },
      { path: '/usr/lib/os-release', text: `NAME=${rel.fullname.replaceAll(' ', '_')} VERSION_ID=${rev} ID=${short}` },
      ...docs.map((f) => ({ path: releaseFilePath(rel.shortname, f), text: `${rel.fullname} ${rel.major} ${f} (fixture text)` })),
    ],
    debuginfo: false,
  };
  const packages = [p];
  if (keys.length) {
    packages.push({ ...p, name: `${short}-gpg-keys`, summary: `${rel.fullname} RPM GPG keys (fixture)`, provides: [], files: keys.map((f) => ({ path: releaseFilePath(rel.shortname, f), key: true as const })) });
  }
  return { name, version: rev, release, summary: p.summary, packages, targets: [] };
}

/** Binary arches a repo's packages are built for in a release (multilib i686 included). */
export function repoTargets(rel: Release, repo: Release['repos'][number]): string[] {
  const arches: string[] = [];
  for (const a of repoArches(rel, repo)) {
    arches.push(a);
    if (a === 'x86_64') arches.push(...repo.multilib);
  }
  return arches;
}

function comps(groups: { id: string; name: string; packages: string[] }[], envs: { id: string; name: string; groups: string[] }[]): string {
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<!DOCTYPE comps PUBLIC "-//Red Hat, Inc.//DTD Comps info//EN" "comps.dtd">', '<comps>'];
  for (const g of groups) {
    lines.push(
      '  <group>',
      `    <id>${g.id}</id>`,
      `    <name>${g.name}</name>`,
      `    <description>${g.name} (fixture)</description>`,
      '    <default>true</default>',
      '    <uservisible>true</uservisible>',
      '    <packagelist>',
      ...g.packages.map((p) => `      <packagereq type="mandatory">${p}</packagereq>`),
      '    </packagelist>',
      '  </group>',
    );
  }
  envs.forEach((e, i) => {
    lines.push(
      '  <environment>',
      `    <id>${e.id}</id>`,
      `    <name>${e.name}</name>`,
      `    <description>${e.name} (fixture)</description>`,
      `    <display_order>${i + 1}</display_order>`,
      '    <grouplist>',
      ...e.groups.map((g) => `      <groupid>${g}</groupid>`),
      '    </grouplist>',
      '  </environment>',
    );
  });
  lines.push('</comps>', '');
  return lines.join('\n');
}

/** The trees upstream serves for a release: kickstart trees read their os repo. */
function upstreamTrees(rel: Release, compsFor = new Map<string, string>(), modules: ModulePlan[] = []): TreePlan[] {
  const trees: TreePlan[] = [];
  const seen = new Set<string>();
  for (const t of repoTrees(rel)) {
    if (t.kind === 'kickstart') continue; // synced from the same upstream repo as `os`
    const ua = upstreamArch(t);
    const key = `${t.repo}/${ua}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const mods = t.kind === 'os' ? modules.filter((m) => m.repo === t.repo) : [];
    trees.push({ repo: t.repo, kind: t.kind, arch: t.arch, upstreamArch: ua, comps: t.kind === 'os' ? compsFor.get(t.repo) : undefined, modules: mods.length ? modulesYaml(rel, mods, t.arch) : undefined });
  }
  return trees;
}

/**
 * A SIG's project: a few packages per repo (SIG repos stay tiny at every scale), built against
 * the base OS as real SIG packages are (they require BaseOS, which the SIG compose does not hold).
 */
function sigPlan(rel: Release): ReleasePlan {
  const specs: Record<string, SpecDef> = {};
  for (const repo of rel.repos) {
    const dir = repoDir(repo);
    specs[repo.name] = {
      name: `fixture-${slug(dir)}`,
      version: `${rel.major}.0`,
      release: `1.${dist(rel.major)}`,
      summary: `Fixture packages of the ${dir} SIG repository`,
      packages: repoPackages({ major: rel.major, dir, closure: repo.mustClose ? [] : ['BaseOS'], base: false, kernel: 'kernel', scale: 1 }),
      targets: repoTargets(rel, repo),
    };
  }
  return { project: rel.project, major: rel.major, revision: revision(rel), specs, trees: upstreamTrees(rel), images: [], sigKey: rel.sig!.gpgKey, modules: [], product: productSlug(rel), errata: [] };
}

/**
 * The module streams of a major's repos (EL8's AppStream carries modules; the fixture's EL9 does
 * not), and the stream dnf enables by default. A stream upstream drops later (EOL) is what
 * staging must keep resolvable while its packages stay: helpers' dropModuleStream does that.
 */
const MODULES: Record<number, { repo: string; name: string; streams: string[]; default: string }[]> = {
  8: [{ repo: 'AppStream', name: 'fixturemod', streams: ['1', '2'], default: '2' }],
};

export function modulePlans(rel: Release): ModulePlan[] {
  const out: ModulePlan[] = [];
  const repos = new Set(rel.repos.map((r) => r.name));
  for (const m of MODULES[rel.major] ?? []) {
    if (!repos.has(m.repo)) continue;
    m.streams.forEach((stream, i) => {
      const context = createHash('sha256').update(`${m.name}:${stream}`).digest('hex').slice(0, 8);
      const release = `1.module+${dist(rel.major)}.${rel.minor}.0+${i + 1}+${context}`;
      const version = `${stream}.0`;
      const p = pkg({ name: m.name, version, release, noarch: true, summary: `Fixture module ${m.name}:${stream}`, files: [{ path: `/usr/share/${m.name}/STREAM`, text: `${m.name} stream ${stream}` }] }, rel.major);
      out.push({
        repo: m.repo,
        name: m.name,
        stream,
        version: `${rel.major}${String(rel.minor).padStart(2, '0')}00${new Date(SOURCE_DATE_EPOCH * 1000).toISOString().replace(/\D/g, '').slice(0, 14)}`,
        context,
        spec: { name: m.name, version, release, summary: p.summary, packages: [p], targets: [] },
      });
    });
  }
  return out;
}

const nevra = (p: Pick<PkgDef, 'name' | 'version' | 'release'>, arch: string) => `${p.name}-0:${p.version}-${p.release}.${arch}`;

/** modules.yaml of one binary tree (modulemd v2 per stream for `arch`, modulemd-defaults v1), as koji and pungi write it. */
export function modulesYaml(rel: Pick<Release, 'major'>, mods: ModulePlan[], arch: string): string {
  const out: string[] = [];
  for (const m of mods) {
    const p = m.spec.packages[0];
    out.push(
      '---',
      'document: modulemd',
      'version: 2',
      'data:',
      `  name: ${m.name}`,
      `  stream: "${m.stream}"`,
      `  version: ${m.version}`,
      `  context: ${m.context}`,
      `  arch: ${arch}`,
      `  summary: Fixture module ${m.name}`,
      '  description: >-',
      `    Stream ${m.stream} of the fixture module ${m.name}.`,
      '  license:',
      '    module: [MIT]',
      '    content: [MIT]',
      '  dependencies:',
      '  - buildrequires:',
      `      platform: [${dist(rel.major)}]`,
      '    requires:',
      `      platform: [${dist(rel.major)}]`,
      '  profiles:',
      '    common:',
      `      rpms: [${p.name}]`,
      '  api:',
      `    rpms: [${p.name}]`,
      '  artifacts:',
      '    rpms:',
      `    - ${nevra(p, 'noarch')}`,
      `    - ${nevra(m.spec, 'src')}`,
      '...',
    );
  }
  for (const def of MODULES[rel.major] ?? []) {
    if (!mods.some((m) => m.name === def.name)) continue;
    out.push('---', 'document: modulemd-defaults', 'version: 1', 'data:', `  module: ${def.name}`, `  stream: "${def.default}"`, '  profiles:', `    "${def.default}": [common]`, '...');
  }
  return `${out.join('\n')}\n`;
}

const xmlText = (v: string) => v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

interface Advisory {
  id: string;
  type: 'security' | 'bugfix' | 'enhancement';
  severity: string;
  title: string;
  /** Per repo: its packages (with the arch they are built for: `noarch` or the tree's). */
  packages: Record<string, { pkg: PkgDef; src: string; module?: ModulePlan }[]>;
}

/** Apollo's updateinfo.xml of one repo and arch (apollo/server/routes/api_updateinfo.py's shape: no XML declaration, one collection per repo and module). */
function apolloXml(rel: Release, repo: string, arch: Arch, advisories: Advisory[]): string | undefined {
  const collection = `${productSlug(rel)}-${rel.major}-${arch.replace(/_/g, '-')}-${repo.toLowerCase()}-rpms`;
  const updates: string[] = [];
  for (const a of advisories) {
    const pkgs = a.packages[repo] ?? [];
    if (!pkgs.length) continue;
    const groups = new Map<string, typeof pkgs>();
    for (const e of pkgs) {
      const c = e.module ? `${collection}__${e.module.name}` : collection;
      groups.set(c, [...(groups.get(c) ?? []), e]);
    }
    const lines = [
      `  <update from="releng@rockylinux.invalid" status="final" type="${a.type}" version="2">`,
      `    <id>${a.id}</id>`,
      `    <title>${xmlText(a.title)}</title>`,
      `    <issued date="2025-11-20 00:00:00"/>`,
      `    <updated date="2025-11-20 00:00:00"/>`,
      `    <rights>Copyright 2025 Rocky Enterprise Software Foundation (fixture)</rights>`,
      `    <release>${xmlText(rel.fullname)} ${rel.major}.${rel.minor}</release>`,
      '    <pushcount>1</pushcount>',
      `    <severity>${a.severity}</severity>`,
      `    <summary>${xmlText(a.title)}</summary>`,
      `    <description>${xmlText(a.title)} (fixture advisory).</description>`,
      '    <solution/>',
      '    <references>',
      `      <reference href="https://errata.rockylinux.org/${a.id}" id="${a.id}" type="self" title="${a.id}"/>`,
      '    </references>',
      '    <pkglist>',
    ];
    for (const [short, entries] of groups) {
      lines.push(`      <collection short="${short}">`, `        <name>${short}</name>`);
      const m = entries[0].module;
      if (m) lines.push(`        <module name="${m.name}" stream="${m.stream}" version="${m.version}" context="${m.context}" arch="${arch}"/>`);
      for (const { pkg: p, src } of entries) {
        const pa = p.noarch ? 'noarch' : arch;
        lines.push(`        <package name="${p.name}" arch="${pa}" epoch="0" version="${p.version}" release="${xmlText(p.release)}" src="${xmlText(src)}">`, `          <filename>${xmlText(rpmFile(p, arch))}</filename>`, '        </package>');
      }
      lines.push('      </collection>');
    }
    lines.push('    </pkglist>', '  </update>');
    updates.push(...lines);
  }
  return updates.length ? `<updates>\n${updates.join('\n')}\n</updates>\n` : undefined;
}

/**
 * What the fixture's Apollo publishes for a stable release: a security fix of bash (base repo), a
 * bug fix of glibc at a build no compose has yet (staging leaves it out: no tree holds it), one
 * advisory whose packages are in the base repo and AppStream (each repo's document lists its
 * own), and an enhancement of AppStream's default module stream.
 */
function errataPlans(rel: Release, specs: Record<string, SpecDef>, baseRepo: string, modules: ModulePlan[]): ErrataPlan[] {
  if (rel.type !== 'stable') return [];
  const year = IMAGE_DATE.getUTCFullYear();
  const base = specs[baseRepo];
  const srpm = (s: SpecDef) => srpmFile(s);
  const named = (s: SpecDef, n: string) => s.packages.find((p) => p.name === n)!;
  const app = specs.AppStream;
  const adv: Advisory[] = [
    { id: `RLSA-${year}:0001`, type: 'security', severity: 'Important', title: 'Important: bash security update', packages: { [baseRepo]: [{ pkg: named(base, 'bash'), src: srpm(base) }] } },
    { id: `RLBA-${year}:0002`, type: 'bugfix', severity: 'None', title: 'glibc bug fix update', packages: { [baseRepo]: [{ pkg: { ...named(base, 'glibc'), release: `99.${dist(rel.major)}` }, src: srpm(base) }] } },
  ];
  if (app) {
    adv.push({ id: `RLSA-${year}:0003`, type: 'security', severity: 'Moderate', title: 'Moderate: basesystem and appstream-libs security update', packages: { [baseRepo]: [{ pkg: named(base, 'basesystem'), src: srpm(base) }], AppStream: [{ pkg: named(app, 'appstream-libs'), src: srpm(app) }] } });
    const def = MODULES[rel.major]?.find((m) => m.repo === 'AppStream');
    const m = modules.find((x) => x.repo === 'AppStream' && x.name === def?.name && x.stream === def?.default);
    if (m) adv.push({ id: `RLEA-${year}:0004`, type: 'enhancement', severity: 'None', title: `${m.name}:${m.stream} enhancement update`, packages: { AppStream: [{ pkg: m.spec.packages[0], src: srpmFile(m.spec), module: m }] } });
  }
  const out: ErrataPlan[] = [];
  for (const repo of rel.repos) {
    for (const arch of repoArches(rel, repo)) {
      const xml = apolloXml(rel, repo.name, arch, adv);
      if (xml) out.push({ repo: repo.name, arch, xml });
    }
  }
  return out;
}

export function releasePlan(rel: Release, scale = 1, shape: FixtureShape = 'flat'): ReleasePlan {
  if (!Number.isInteger(scale) || scale < 1) throw new Error(`scale must be an integer >= 1 (got ${scale})`);
  if (rel.kind === 'sig') return sigPlan(rel);
  const iso = releaseIso(rel);
  const baseDir = iso.lorax.variant;
  const byDir = new Map(rel.repos.map((r) => [repoDir(r), r]));
  const base = byDir.get(baseDir);
  if (!base) throw new Error(`${rel.name}: the lorax variant ${baseDir} is not a repo of the release`);
  const rs = releaseSpec(rel);
  const specs: Record<string, SpecDef> = {};
  for (const repo of rel.repos) {
    const dir = repoDir(repo);
    const packages = repoPackages({
      major: rel.major,
      dir,
      // `devel` is not expected to close on its own (mustClose false): it leans on BaseOS, as the real one does.
      closure: repo.closure.length || repo.mustClose || dir === baseDir ? repo.closure : [baseDir],
      base: repo === base,
      kernel: iso.lorax.kernelPackage,
      scale,
      shape,
    });
    specs[repo.name] = {
      name: `fixture-${slug(dir)}`,
      version: `${rel.major}.0`,
      release: `1.${dist(rel.major)}`,
      summary: `Fixture packages of the ${dir} repository`,
      packages,
      targets: repoTargets(rel, repo),
    };
  }
  // Comps for the repos lorax installs from, as Rocky ships them in BaseOS and AppStream.
  const compsFor = new Map<string, string>();
  const core = ['setup', 'filesystem', 'basesystem', 'glibc', 'bash', iso.lorax.kernelPackage];
  compsFor.set(base.name, comps([{ id: 'core', name: 'Core', packages: [...core, rs.packages[0].name] }], [{ id: 'minimal-environment', name: 'Minimal Install', groups: ['core'] }]));
  for (const d of iso.lorax.repos) {
    const repo = byDir.get(d);
    if (!repo || repo === base) continue;
    const names = specs[repo.name].packages.filter((p) => !p.name.includes('-data-')).map((p) => p.name);
    compsFor.set(repo.name, comps([{ id: slug(d), name: `${d} tools`, packages: names }], [{ id: 'server-product-environment', name: 'Server', groups: ['core', slug(d)] }]));
  }

  const modules = modulePlans(rel);
  const trees = upstreamTrees(rel, compsFor, modules);

  const images: ImagePlan[] = [];
  for (const [type, img] of Object.entries(rel.cloud.images)) {
    const variants = img.variants.length ? img.variants : [undefined];
    for (const arch of rel.arches.filter((a) => !img.arches || img.arches.includes(a))) {
      for (const variant of variants) {
        const primary = variant !== undefined && variant === img.primaryVariant;
        const file = cloudImageNames(rel, { type, variant, primary, format: img.format }, arch, { date: IMAGE_DATE, n: 0 }).file;
        images.push({ arch, type, variant, format: img.format, file });
      }
    }
  }
  return { project: rel.project, major: rel.major, revision: revision(rel), specs, releaseSpec: rs, baseRepo: base.name, trees, images, modules, product: productSlug(rel), errata: errataPlans(rel, specs, base.name, modules) };
}

/** RPM file name of a package built for `arch` (noarch packages ignore it). */
export const rpmFile = (p: Pick<PkgDef, 'name' | 'version' | 'release' | 'noarch'>, arch: string) =>
  `${p.name}-${p.version}-${p.release}.${p.noarch ? 'noarch' : arch}.rpm`;
export const debugName = (name: string) => `${name}-debuginfo`;
export const srpmFile = (s: Pick<SpecDef, 'name' | 'version' | 'release'>) => `${s.name}-${s.version}-${s.release}.src.rpm`;
