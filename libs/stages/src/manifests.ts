// The small JSON manifests that are the stages' Nx outputs. They name files by path, sha256 and
// size; the bytes live in the compose and the content-addressed store. A per-arch manifest holds
// nothing that changes when another arch changes, and no compose id or time, so Nx's content
// hash of it changes only when that arch's inputs do.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { composeDate, composeTarget, distDir, type Arch, type ComposeKind, type Release, type TreeKind, type TreeArch } from '@rocky/config';
import { readJson } from '@rocky/exec';
// Types only: reading a manifest needs none of the code that builds it (see the plugin's stage inputs).
import type { IsoManifest } from './iso';
import type { ExtraIsoManifest } from './iso-extra';

export interface FileEntry {
  path: string;
  sha256: string;
  size: number;
}

export interface PackageEntry extends FileEntry {
  name: string;
  arch: string;
  epoch: string;
  version: string;
  release: string;
  sourcerpm?: string;
  /** Short id (8 hex) of the key the package is signed with. */
  sigkey: string | null;
}

export interface TreeManifest {
  id: string;
  repo: string;
  dir: string;
  kind: TreeKind;
  arch: TreeArch;
  /** Relative to the compose's tree root (`ComposeLayout.trees`) and to the published release dir. */
  path: string;
  /** The tree's repodata files; those repomd.xml lists carry their record `type`. */
  repodata: (FileEntry & { type?: string })[];
  packages: PackageEntry[];
  /** Key id (16 hex) every package was checked to be signed by, where the site requires signed packages. */
  signer?: string;
  /** Every package's signatures were verified against that key (rpmkeys); records of earlier versions, without it, were checked for the key id only. */
  signaturesChecked?: true;
}

/** The part of the release config that one arch's downstream work depends on. */
export function releaseSlice(rel: Release, group: Arch | 'source') {
  const arch = group === 'source' ? undefined : group;
  return {
    name: rel.name,
    shortname: rel.shortname,
    fullname: rel.fullname,
    major: rel.major,
    minor: rel.minor,
    type: rel.type,
    rc: rel.rc,
    arch: group,
    lorax: arch ? rel.iso?.lorax : undefined,
    extra: arch && rel.iso ? Object.fromEntries(Object.entries(rel.iso.extra).filter(([, d]) => !d.arches || d.arches.includes(arch))) : undefined,
    // A declared respin renames the media; the extra files go onto the DVD.
    respin: arch ? rel.iso?.respin : undefined,
    extraFiles: arch ? rel.extraFiles : undefined,
  };
}

export interface ArchManifest {
  release: ReturnType<typeof releaseSlice>;
  trees: TreeManifest[];
}

/**
 * Written into a compose (`work/sync-record.json`) when its sync completed: what it was synced
 * from (digest of the sync config and every upstream repomd.xml) and every tree it holds. A
 * STARTED compose without it is a killed run's, to resume; the newest compose of a kind whose
 * digest equals upstream's now is up to date; an update compose is published from it.
 */
export interface SyncRecord {
  digest: string;
  composeId: string;
  trees: (TreeManifest & { group: Arch | 'source' })[];
  /** Update composes: the produce compose whose ISOs and images it carries. */
  media?: string;
  /** A compose assembled from pungi's composes: which trees each brought, in staging order. */
  pungi?: PungiPart[];
}

/** One pungi compose in the pipeline's compose: its id, where it is, the compose dirs (variants) it brought. */
export interface PungiPart {
  compose: string;
  composeId: string;
  dir: string;
  variants: string[];
}

/** Which compose the manifests describe (not an input of per-arch work). */
export interface ComposeRef {
  composeId: string;
  /** Relative to the site's compose root. */
  dir: string;
  /** Assembled from pungi's composes: staging publishes their trees one compose at a time, in this order. */
  pungi?: PungiPart[];
}

/**
 * What a `compose-<name>` task leaves (dist/<project>/compose-<name>/compose.json): the pungi
 * compose it ran and verified, and every tree file, each in the store.
 */
export interface PungiComposeRecord {
  /** pungi's release_short: `Rocky`, `Extras`. */
  compose: string;
  kind: ComposeKind;
  composeId: string;
  /** The compose directory pungi made (absolute). */
  dir: string;
  status: 'FINISHED' | 'FINISHED_INCOMPLETE';
  /** The deliverables pungi recorded as failed (FINISHED_INCOMPLETE). */
  failed: string[];
  trees: (TreeManifest & { group: Arch | 'source' })[];
}

/**
 * An ISO pungi made (images.json), in the store: what a `compose-<name>` task records per arch in
 * `media-<arch>.json`, and what iso-<arch> and iso-extra collect. Its path is relative to pungi's
 * `compose/` (`BaseOS/x86_64/iso/Rocky-8.10-x86_64-boot.iso`).
 */
export interface PungiMedia extends FileEntry {
  variant: string;
  arch: Arch;
  /** productmd's type: `boot`, `dvd`. */
  type: string;
  bootable: boolean;
  volumeId: string | null;
  implantMd5: string | null;
  /** A boot ISO's boot tree: the files buildinstall put into its variant's os tree, relative to it. */
  tree?: FileEntry[];
}

/** The media of one arch a compose task recorded (none: the compose made no ISOs for it). */
export function readPungiMedia(root: string, project: string, compose: string, kind: ComposeKind, arch: Arch): PungiMedia[] {
  const file = join(distDir(root, project, composeTarget(compose, kind)), `media-${arch}.json`);
  return existsSync(file) ? readJson<{ images: PungiMedia[] }>(file).images : [];
}

/** The record of the `compose-<name>` task of the chain `kind` (`update-compose-<name>` for updates). */
export function readPungiRecord(root: string, project: string, compose: string, kind: ComposeKind): PungiComposeRecord | undefined {
  const file = join(distDir(root, project, composeTarget(compose, kind)), 'compose.json');
  return existsSync(file) ? readJson<PungiComposeRecord>(file) : undefined;
}

export function readSyncManifest(root: string, project: string, group: Arch | 'source'): ArchManifest {
  const file = join(distDir(root, project, 'sync'), `${group}.json.gz`);
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`nx run ${project}:sync\` first`);
  return readJson<ArchManifest>(file);
}

/** In a dry run of a workspace that never synced, downstream stages plan against the compose sync would make. */
export const syncPending = (ctx: { root: string; project: string; dryRun: boolean }) => ctx.dryRun && !existsSync(join(distDir(ctx.root, ctx.project, 'sync'), 'compose.json'));

export function readComposeRef(root: string, project: string): ComposeRef {
  const file = join(distDir(root, project, 'sync'), 'compose.json');
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`nx run ${project}:sync\` first`);
  return readJson<ComposeRef>(file);
}

/** The compose's time in seconds: every timestamp written into a compose derives from it. */
export function composeTimestamp(composeId: string): number {
  const d = composeDate(composeId);
  if (!d) throw new Error(`${composeId} is not a compose id`);
  return Math.floor(d.getTime() / 1000);
}

export function readIsoManifest(root: string, project: string, arch: Arch): IsoManifest {
  const file = join(distDir(root, project, `iso/${arch}`), 'manifest.json');
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`nx run ${project}:iso-${arch}\` first`);
  return readJson<IsoManifest>(file);
}

export function readExtraManifest(root: string, project: string): ExtraIsoManifest {
  const file = join(distDir(root, project, 'iso-extra'), 'manifest.json');
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`nx run ${project}:iso-extra\` first`);
  return readJson<ExtraIsoManifest>(file);
}
