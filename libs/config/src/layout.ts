// The one place that knows where things live: the compose tree (empanadas layout), the
// workspace's dist/ manifests and the site's state directory. Getters compute paths only;
// they never create directories, so a dry run can ask for any of them.
import { join } from 'node:path';
import type { Arch, IsoConfig, Release, Repo, Site } from './schema';
import { composeBase, latestLink, sigDir, type ComposeKind } from './names';

/** What a repo tree holds: binary packages, debuginfo, sources, or the write-once kickstart copy. */
export type TreeKind = 'os' | 'debug' | 'source' | 'kickstart';
/** Arch of a tree: a release arch, the multilib i686, or `src`. */
export type TreeArch = Arch | 'i686' | 'src';

export interface RepoTree {
  /** Upstream repo name (`all`). */
  repo: string;
  /** Compose directory name (`devel`). */
  dir: string;
  kind: TreeKind;
  arch: TreeArch;
  /** The release arch this tree belongs to (i686 multilib belongs to x86_64; source to `source`). */
  group: Arch | 'source';
  /** Where the tree is, relative to the compose's tree root and to the release dir it is published into (`treePath`). */
  path: string;
}

/**
 * Whether a compose of `kind` gets media and metadata of its own (ISOs, images, CHECKSUM,
 * productmd: finalize) and kickstart trees: produce composes of main releases. Update composes
 * (which carry the produce compose's media) and SIG composes hold packages only; sync finishes them.
 */
export const isFinalized = (rel: Pick<Release, 'kind'>, kind: ComposeKind) => rel.kind === 'main' && kind === 'produce';

/** A main release's ISO section (the schema requires it there); SIG releases build no ISOs. */
export function releaseIso(rel: Pick<Release, 'iso'> & Partial<Pick<Release, 'name'>>): IsoConfig {
  if (!rel.iso) throw new Error(`${rel.name ?? 'the release'} has no iso section: SIG releases build no ISOs`);
  return rel.iso;
}

export const repoDir = (repo: Pick<Repo, 'name' | 'dir'>) => repo.dir ?? repo.name;
export const repoArches = (rel: Pick<Release, 'arches'>, repo: Pick<Repo, 'arches'>): Arch[] =>
  rel.arches.filter((a) => !repo.arches || repo.arches.includes(a));

/**
 * Every repo tree of a release's compose of `kind`, in a stable order. `kickstart` trees are in
 * produce composes of main releases only, as empanadas syncs them only on `--full-run` (and never for SIGs).
 */
export function repoTrees(rel: Pick<Release, 'kind' | 'arches' | 'repos'>, kind: ComposeKind = 'produce'): RepoTree[] {
  const out: RepoTree[] = [];
  const add = (t: Omit<RepoTree, 'path'>) => out.push({ ...t, path: treePath(t, rel.kind) });
  for (const repo of rel.repos) {
    const base = { repo: repo.name, dir: repoDir(repo) };
    for (const arch of repoArches(rel, repo)) {
      const arches: TreeArch[] = [arch, ...(arch === 'x86_64' ? repo.multilib : [])];
      for (const a of arches) {
        add({ ...base, kind: 'os', arch: a, group: arch });
        if (repo.debug) add({ ...base, kind: 'debug', arch: a, group: arch });
        if (repo.kickstart && isFinalized(rel, kind)) add({ ...base, kind: 'kickstart', arch: a, group: arch });
      }
    }
    if (repo.source) add({ ...base, kind: 'source', arch: 'src', group: 'source' });
  }
  return out;
}

/**
 * Path of a tree relative to the compose's tree root (and to the published release dir). Main
 * releases: `BaseOS/x86_64/os`, `BaseOS/x86_64/debug/tree`, `BaseOS/source/tree`. SIG releases,
 * as empanadas' SigRepoSync syncs them: `x86_64/cloud-kernel`, `x86_64/cloud-kernel-debug`,
 * `source/cloud-kernel`.
 */
export function treePath(t: Pick<RepoTree, 'dir' | 'kind' | 'arch'>, kind: Release['kind']): string {
  if (kind === 'sig') {
    if (t.kind === 'kickstart') throw new Error(`SIG composes have no kickstart trees (${t.dir})`);
    return t.kind === 'source' ? `source/${t.dir}` : `${t.arch}/${t.dir}${t.kind === 'debug' ? '-debug' : ''}`;
  }
  switch (t.kind) {
    case 'os':
      return `${t.dir}/${t.arch}/os`;
    case 'kickstart':
      return `${t.dir}/${t.arch}/kickstart`;
    case 'debug':
      return `${t.dir}/${t.arch}/debug/tree`;
    case 'source':
      return `${t.dir}/source/tree`;
  }
}

/** A tree's id, used in logs, manifests and dnf repo ids: `BaseOS-x86_64-os`. */
export const treeId = (t: Pick<RepoTree, 'dir' | 'kind' | 'arch'>) => `${t.dir}-${t.arch}-${t.kind}`;

/** Upstream arch segment of the yumrepofs URL: basearch, `<basearch>-debug`, or `src`. */
export function upstreamArch(t: Pick<RepoTree, 'kind' | 'arch'>): string {
  if (t.kind === 'source') return 'src';
  return t.kind === 'debug' ? `${t.arch}-debug` : t.arch;
}

/** A release's project upstream (the `{project}` of the URL): the site's `upstream.releases.<name>.project` (a Peridot project id), else the release's `project`. */
export const upstreamProject = (site: Pick<Site, 'upstream'>, rel: Pick<Release, 'name' | 'project'>) => site.upstream.releases?.[rel.name]?.project ?? rel.project;

/**
 * The key a release's upstream signs with, and the site field that names it (for messages); no
 * key when the site names none. A SIG's own key (`sig.gpgKey`) is in the site's upstream.sigKeys
 * directory; a main release's is `upstream.releases.<name>.gpgKey`, else `upstream.gpgKey`.
 */
export function upstreamGpgKey(site: Pick<Site, 'upstream'>, rel: Pick<Release, 'name' | 'kind' | 'sig'>): { key?: string; field: string } {
  if (rel.kind === 'sig') return { key: site.upstream.sigKeys && join(site.upstream.sigKeys, rel.sig!.gpgKey), field: 'upstream.sigKeys' };
  const own = site.upstream.releases?.[rel.name]?.gpgKey;
  return own ? { key: own, field: `upstream.releases.${rel.name}.gpgKey` } : { key: site.upstream.gpgKey, field: 'upstream.gpgKey' };
}

/** upstreamGpgKey's key, or an error naming the site file and the field to set. */
export function upstreamKeyFile(site: Pick<Site, 'name' | 'file' | 'upstream'>, rel: Pick<Release, 'name' | 'kind' | 'sig'>): string {
  const { key } = upstreamGpgKey(site, rel);
  if (key) return key;
  if (rel.kind === 'sig') throw new Error(`${site.file}: ${rel.name} is a SIG release signed with ${rel.sig?.gpgKey}, but site ${site.name} has no upstream.sigKeys (the directory of the SIGs' keys)`);
  throw new Error(`${site.file}: upstream.verifySignature is set but neither upstream.releases.${rel.name}.gpgKey nor upstream.gpgKey names the key ${rel.name} is signed with`);
}

export function upstreamUrl(site: Pick<Site, 'upstream'>, rel: Pick<Release, 'name' | 'project'>, t: RepoTree, base?: string): string {
  return site.upstream.url
    .replaceAll('{base}', base ?? '')
    .replaceAll('{project}', upstreamProject(site, rel))
    .replaceAll('{repo}', t.repo)
    .replaceAll('{arch}', upstreamArch(t))
    .replace(/\/+$/, '');
}

/** A product's slug as Apollo names it in its URLs: `Rocky Linux` → `rocky-linux`. */
export const productSlug = (rel: Pick<Release, 'fullname'>) => rel.fullname.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');

/** Where the errata document of one os tree is: the site's `errata` template filled (a URL, or a path for a `dir` source). */
export function errataLocation(errata: NonNullable<Site['errata']>, rel: Pick<Release, 'fullname' | 'major'>, t: Pick<RepoTree, 'repo' | 'arch'>, base = ''): string {
  const fill = (s: string, enc: (v: string) => string) =>
    s.replaceAll('{base}', base).replaceAll('{product}', enc(productSlug(rel))).replaceAll('{major}', String(rel.major)).replaceAll('{repo}', enc(t.repo)).replaceAll('{arch}', enc(t.arch));
  return errata.type === 'url' ? fill(errata.url, encodeURIComponent) : fill(errata.path, (v) => v);
}

/** Where a release's repo trees are inside `compose/`: at its top; a SIG's under `<major>/<sig>` (empanadas' SigRepoSync). */
export const composeTreeRoot = (rel: Pick<Release, 'name' | 'kind' | 'major' | 'sig'>) => (rel.kind === 'sig' ? sigDir(rel) : '');

/** Paths inside one compose directory (`<root>/9/Rocky-9.7-20261206.0`, `<root>/9/SIG-cloud-9.7-20261206.0`) of a release. */
export class ComposeLayout {
  /** `composeTreeRoot` of the release. */
  readonly treeRoot: string;
  constructor(
    readonly dir: string,
    rel: Pick<Release, 'name' | 'kind' | 'major' | 'sig'>,
  ) {
    this.treeRoot = composeTreeRoot(rel);
  }
  get compose() {
    return join(this.dir, 'compose');
  }
  /** The repo trees, as staging publishes them into the release dir: `compose/`, or `compose/<major>/<sig>` for a SIG. */
  get trees() {
    return join(this.compose, this.treeRoot);
  }
  get work() {
    return join(this.dir, 'work');
  }
  /** Every tool's full output and the compose's own logs, as pungi keeps them: `logs/<arch|global>/`. */
  get logs() {
    return join(this.dir, 'logs');
  }
  /** A tool's log file: `logs/x86_64/iso-boot-xorriso.log`, `logs/global/repoclosure-BaseOS-x86_64.log`. */
  log(group: string, name: string) {
    return join(this.logs, group, `${name}.log`);
  }
  get metadata() {
    return join(this.compose, 'metadata');
  }
  tree(t: Pick<RepoTree, 'path'>) {
    return join(this.trees, t.path);
  }
  isos(arch: Arch) {
    return join(this.compose, 'isos', arch);
  }
  images(arch: Arch) {
    return join(this.compose, 'images', arch);
  }
  /** STATUS lives at the compose top, as pungi has it. */
  get status() {
    return join(this.dir, 'STATUS');
  }
  get composeIdFile() {
    return join(this.metadata, 'COMPOSE_ID');
  }
  /** Written when the compose's sync completed: the upstream digest and every tree it holds. */
  get syncRecord() {
    return join(this.work, 'sync-record.json');
  }
  get finalizeLock() {
    return join(this.work, '.finalize.lock');
  }
  /** Metadata-only copies of the repos and dnf's cache, for repoclosure. */
  get repoclosureWork() {
    return join(this.work, 'repoclosure');
  }
  /** Where a native builder leaves one arch's lorax output. */
  lorax(arch: Arch) {
    return join(this.work, 'lorax', arch);
  }
}

/** The site's pungi producer of `rel`, when pungi makes its composes. */
export const pungiProducerOf = (site: Partial<Pick<Site, 'producers'>>, rel: Pick<Release, 'name'>) => {
  const p = site.producers?.[rel.name];
  return p?.type === 'pungi' ? p : undefined;
};

/**
 * Where a release's composes and its latest link live under the site's compose root. Where pungi
 * makes the release's composes, the pipeline's compose (assembled from them) lives in `assembled/`
 * beside them: pungi's directory is pungi's (its `latest-Rocky-8` link, and its search for an old
 * compose to reuse, which would take any `Rocky-8…` directory there for one of its own).
 */
export function composeRoot(site: Pick<Site, 'roots'> & Partial<Pick<Site, 'producers'>>, rel: Release) {
  const base = join(site.roots.compose, composeBase(rel), ...(pungiProducerOf(site, rel) ? ['assembled'] : []));
  const latest = latestLink(rel);
  // One sync per latest link (main releases keep the profile's lock name: `.sync-9.lock`).
  return { base, latest: join(base, latest), syncLock: join(base, `.sync-${rel.kind === 'sig' ? latest : rel.profile}.lock`) };
}

/** Small manifests that are Nx outputs: `dist/<project>/<target>/...`. */
export function distDir(workspaceRoot: string, project: string, target: string): string {
  return join(workspaceRoot, 'dist', project, target);
}

/** The site's state directory: locks, dnf config/cache, event logs. */
export function stateDir(site: Pick<Site, 'state'>, ...parts: string[]): string {
  return join(site.state, ...parts);
}

/** The site's JSON-lines event log: every stage's start, plan, done/failed and what it did. */
export const eventsFile = (site: Pick<Site, 'state'>) => join(site.state, 'events.jsonl');

/** Tool logs of stages that have no compose of their own (prod, filelist). */
export const stateLog = (site: Pick<Site, 'state'>, project: string, name: string) => join(site.state, 'logs', project, `${name}.log`);

/** The mirror category a release publishes into: the site's category; SIGs the SIG category (`mirror/pub/sig`). */
export const publishCategory = (site: Pick<Site, 'category' | 'sigCategory'>, rel: Pick<Release, 'kind'>) => (rel.kind === 'sig' ? site.sigCategory : site.category);

/**
 * The publishing stages' own files (staging, prod, filelist). Inside the staging root but outside
 * the mirrored categories, or under the site's state, so no mirror and no file list carries them.
 */
export function publishLayout(site: Pick<Site, 'roots' | 'category' | 'sigCategory' | 'state'>, rel: Pick<Release, 'name' | 'kind'>) {
  const releng = join(site.roots.staging, '.releng');
  const locks = join(site.state, 'publish', 'locks');
  const category = publishCategory(site, rel);
  return {
    stagingCategory: join(site.roots.staging, category),
    productionCategory: join(site.roots.production, category),
    /** report.md, report.json and `digest` of the staged tree (written only when vetting passed). */
    reportDir: join(releng, 'vetting', rel.name),
    /** The overlay (torrents, repo links), the private repodata tree, prepared repodata. */
    stagingWork: join(releng, 'work', rel.name),
    /**
     * The module metadata each staged tree has accumulated (the toolkit's `<major>_metadata`
     * checkout): `<arch>/<Repo>-modules.yaml`, see moduleMetadataFile.
     */
    moduleMetadata: join(releng, 'work', rel.name, 'module-metadata'),
    stagingLock: join(locks, `staging-${rel.name}.lock`),
    /** rsync's temp files while publishing, outside the published trees (same filesystems, so files are renamed into place). */
    stagingTemp: join(releng, 'tmp', rel.name),
    productionTemp: join(site.roots.production, '.~tmp~', rel.name),
    /** Held by every prod and by file-list generation: lists never see a prod half done. */
    productionLock: join(locks, 'production.lock'),
    fileListLock: join(locks, 'filelist.lock'),
    fileListSha1Cache: join(site.state, 'publish', 'filelist-sha1-cache.json'),
    /** One marker per production dir: `{release, type, digest, time}`; type stable marks GA content. */
    gaMarkers: join(site.state, 'publish', 'production-dirs', ...category.split('/')),
    approvals: join(site.state, 'approvals'),
    /** sha256 of the staged files, kept between vetting and prod (libs/exec HashCache). */
    hashCache: join(site.state, 'publish', 'hash-cache', `${rel.name}.json`),
  };
}

/** One tree's accumulated module metadata in `publishLayout().moduleMetadata`. */
export const moduleMetadataFile = (dir: string, t: Pick<RepoTree, 'dir' | 'arch'>) => join(dir, t.arch, `${t.dir}-modules.yaml`);

/** A tree of a pungi compose: `kind` os/debug for a binary arch, source for `src`. */
export interface PungiTreeRef {
  variant: string;
  kind: 'os' | 'debug' | 'source';
  arch: string;
}

/**
 * Paths inside one compose directory as pungi writes it (pungi/paths.py; peers §2.6):
 * `<id>/{STATUS,COMPOSE_ID}`, `compose/<Variant>/<arch>/{os,debug/tree,iso}`,
 * `compose/<Variant>/source/tree`, `compose/metadata/`, `work/<arch|global>/`, `logs/<arch|global>/`.
 * The trees are where treePath puts a repo of that name, so the rest of the graph reads them as is.
 */
export class PungiComposeLayout {
  constructor(readonly dir: string) {}
  get status() {
    return join(this.dir, 'STATUS');
  }
  get composeIdFile() {
    return join(this.dir, 'COMPOSE_ID');
  }
  get compose() {
    return join(this.dir, 'compose');
  }
  metadata(file?: string) {
    return file ? join(this.compose, 'metadata', file) : join(this.compose, 'metadata');
  }
  /** `compose/<Variant>/<arch>/os`, `…/debug/tree`, `compose/<Variant>/source/tree`. */
  tree(t: PungiTreeRef) {
    return join(this.compose, pungiTreePath(t));
  }
  /** `compose/<Variant>/<arch>/iso` (`source` for source ISOs). */
  isoDir(variant: string, arch: string) {
    return join(this.compose, variant, arch === 'src' ? 'source' : arch, 'iso');
  }
  /** `logs/<arch>/<name>.<arch>.log`, `logs/global/pungi.global.log` (pungi's LogPaths.log_file). */
  log(arch: string | undefined, name: string) {
    const a = arch ?? 'global';
    return join(this.dir, 'logs', a, `${name.replace(/\.log$/, '')}.${a}.log`);
  }
  /** `{required, attempted, failed}` deliverables, written at every status change. */
  get deliverables() {
    return join(this.dir, 'logs', 'global', 'deliverables.json');
  }
  work(arch?: string) {
    return join(this.dir, 'work', arch ?? 'global');
  }
  /** The variant's comps for one arch: what createrepo got, and what Rocky 8's staging regenerates repodata with. */
  comps(variant: string, arch: string) {
    return join(this.work(arch), 'comps', `comps-${variant}.${arch}.xml`);
  }
  get variantsFile() {
    return join(this.work(), 'variants.xml');
  }
  get composeInfoBase() {
    return join(this.work(), 'composeinfo-base.json');
  }
}

/** A pungi tree's path relative to `compose/`: the same string treePath gives a repo dir of that name. */
export const pungiTreePath = (t: PungiTreeRef) => treePath({ dir: t.variant, kind: t.kind, arch: t.kind === 'source' ? 'src' : (t.arch as TreeArch) }, 'main');
