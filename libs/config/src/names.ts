// Every name the pipeline gives to a thing: compose ids and directories, links, ISO and image
// names, volume ids, publish directories. Nothing else in the workspace builds these strings.
// Patterns follow Rocky's empanadas and sync/ scripts (shared/research/empanadas-spec.md §0.2, §4.2).
import type { Arch, Release } from './schema';

type R = Pick<Release, 'shortname' | 'fullname' | 'major' | 'minor' | 'type' | 'rc' | 'profile' | 'candidate'> & Partial<Pick<Release, 'kind' | 'sig'>>;

/** The SIG of a SIG release (undefined for main releases). */
function sigOf(r: Partial<Pick<Release, 'kind' | 'sig' | 'name'>>): NonNullable<Release['sig']> | undefined {
  if (r.kind !== 'sig') return undefined;
  if (!r.sig) throw new Error(`${r.name ?? 'a SIG release'} has no sig section`);
  return r.sig;
}

/** A main release's profile (the schema requires it there; SIG releases have none). */
function profileOf(r: Pick<R, 'profile'>): string {
  if (!r.profile) throw new Error('a main release needs a profile');
  return r.profile;
}

export const revision = (r: Pick<R, 'major' | 'minor'>) => `${r.major}.${r.minor}`;

/** Whether names carry the RC level: pre-release builds (beta, lookahead, a stable release's candidates) do, GA builds don't. */
export const isFinal = (r: Pick<R, 'type' | 'candidate'>) => r.type === 'stable' && !r.candidate;
const rcPart = (r: R) => (!isFinal(r) && r.rc ? `-${r.rc}` : '');

const pad = (n: number, w = 2) => String(n).padStart(w, '0');
/** `YYYYMMDD` in UTC: runners in different time zones must agree on names. */
export const dayStamp = (d: Date) => `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}`;

/** A compose of a minor release with ISOs and images (`produce`), or of its packages only (`update`, the weekly push). */
export type ComposeKind = 'produce' | 'update';

/** The suffix of a pre-release's names after its major: `-beta`, `-lookahead` (from its profile `9-beta`). */
function profileSuffix(r: Pick<R, 'profile' | 'major'>): string {
  const profile = profileOf(r);
  return profile.startsWith(`${r.major}`) ? profile.slice(String(r.major).length) : `-${profile}`;
}

/**
 * What a compose id starts with, as pungi names composes (`<short>-<version>[-<type>]`):
 * `Rocky-9.7`, `Rocky-9.8-beta`, `Rocky-9.8-lookahead` for produce composes; `Rocky-9-updates`,
 * `Rocky-8-updates`, `Rocky-9-beta-updates` for update composes (seed 001: `Rocky-8-updates-20210721.1`).
 * A SIG compose is `SIG-<sig>-<version>` (empanadas' SigRepoSync names it `SIG-<sig>-<revision>-<stamp>`);
 * SIGs have no update composes.
 */
export function composeLabel(r: Pick<R, 'shortname' | 'major' | 'minor' | 'profile' | 'kind' | 'sig'>, kind: ComposeKind): string {
  const sig = sigOf(r);
  if (sig) {
    if (kind === 'update') throw new Error(`SIG ${sig.name} has no update composes: a SIG compose is synced and published whole`);
    return `SIG-${sig.name}-${revision(r)}`;
  }
  return kind === 'update' ? `${r.shortname}-${r.major}${profileSuffix(r)}-updates` : `${r.shortname}-${revision(r)}${profileSuffix(r)}`;
}

/** `Rocky-9.7-20261206.0`, `Rocky-9-updates-20261206.1`, `SIG-cloud-9.7-20261206.0`: the compose directory, COMPOSE_ID and productmd's compose.id. */
export const composeId = (r: Pick<R, 'shortname' | 'major' | 'minor' | 'profile' | 'kind' | 'sig'>, kind: ComposeKind, d: Date, respin: number) => `${composeLabel(r, kind)}-${dayStamp(d)}.${respin}`;

export interface ParsedComposeId {
  label: string;
  kind: ComposeKind;
  date: Date;
  respin: number;
}

/** Parses a compose id (for ordering, respins and the compose's own timestamps); undefined when it is not one. */
export function parseComposeId(id: string): ParsedComposeId | undefined {
  const m = /^(.+)-(\d{4})(\d{2})(\d{2})\.(\d+)$/.exec(id);
  if (!m) return undefined;
  return { label: m[1], kind: m[1].endsWith('-updates') ? 'update' : 'produce', date: new Date(Date.UTC(+m[2], +m[3] - 1, +m[4])), respin: Number(m[5]) };
}

/** The day of a compose id (every timestamp written into a compose derives from it). */
export const composeDate = (id: string): Date | undefined => parseComposeId(id)?.date;

/** The CPE string of the release (createrepo_c --distro): `cpe:/o:rocky:rocky:9.7`. */
export const distroCpe = (r: R) => `cpe:/o:${r.shortname.toLowerCase()}:${r.shortname.toLowerCase()}:${revision(r)}`;

/** The release notes page a torrent's comment points at, when the site names none. */
export const releaseNotesUrl = (r: R) => `https://docs.rockylinux.org/release_notes/${r.major}_${r.minor}/`;

/** Directory under the compose root holding a release's composes. */
export const composeBase = (r: R) => String(r.major);
/** `latest-Rocky-9`, `latest-Rocky-9-beta`, `latest-Rocky-9-lookahead`; SIGs `latest-SIG-cloud-9`. */
export function latestLink(r: R): string {
  const sig = sigOf(r);
  if (sig) return `latest-SIG-${sig.name}-${r.major}`;
  return `latest-${r.shortname}-${profileOf(r)}`;
}

/**
 * A SIG's directory, `<major>/<sig>`: inside its compose's `compose/` (where empanadas' SigRepoSync
 * puts the trees) and inside the SIG category of staging and production (where
 * sync-to-staging-sig.sh and sync-to-prod-sig.sh copy it with rsync --relative).
 */
export function sigDir(r: Pick<R, 'major'> & Partial<Pick<Release, 'kind' | 'sig' | 'name'>>): string {
  const sig = sigOf(r);
  if (!sig) throw new Error(`${r.name ?? 'a main release'} is not a SIG release`);
  return `${r.major}/${sig.name}`;
}

export const fullName = (r: R) => `${r.fullname} ${revision(r)}`;

/** Volume id of the boot ISO, reused by every extra ISO so stage2 finds its media: `Rocky-9-7-x86_64-dvd`. */
export function volumeId(r: R, arch: Arch): string {
  const id = `${r.shortname}-${r.major}-${r.minor}${rcPart(r)}-${arch}-dvd`;
  if (id.length > 32) throw new Error(`volume id ${id} is longer than ISO 9660's 32 characters`);
  return id;
}

/**
 * The image as its file name gives it: Rocky 8's DVD is pungi's first disc, `dvd1` (pungi's
 * createiso names discs `<type><number>`; sync/minor-release-sync-to-staging.sh links `dvd` to
 * it); empanadas (9 and later) names it `dvd`.
 */
const discName = (r: Pick<R, 'major'>, image: string) => (image === 'dvd' && r.major <= 8 ? 'dvd1' : image);

export interface IsoNames {
  /** The versioned file name. */
  file: string;
  /** Symlinks to it: `Rocky-x86_64-dvd.iso`, `Rocky-9-latest-x86_64-dvd.iso`. */
  aliases: string[];
}

/**
 * ISO names. `image` is `boot`, `dvd`, `minimal`...; `respin` (an updated image) inserts
 * `-<YYYYMMDD>.<n>` after the revision as `build-iso-extra --updated-image` does.
 */
export function isoNames(r: R, arch: Arch, image: string, respin?: { date: Date; n: number }): IsoNames {
  const stamp = respin ? `-${dayStamp(respin.date)}.${respin.n}` : '';
  const named = (disc: string) => `${r.shortname}-${revision(r)}${rcPart(r)}${stamp}-${arch}-${disc}.iso`;
  const disc = discName(r, image);
  return {
    file: named(disc),
    // Rocky 8's `dvd1` is also published as `dvd`, under which every other release has its DVD.
    aliases: [...(disc !== image ? [named(image)] : []), `${r.shortname}-${arch}-${image}.iso`, `${r.shortname}-${r.major}-latest-${arch}-${image}.iso`],
  };
}

/**
 * The names of an ISO of a produce compose. A declared respin (`iso.respin`) is named with the
 * compose's date and its number, and gets no latest aliases: those stay with the GA files, which
 * are published as they are.
 */
export function mediaNames(r: R & { iso?: { respin?: number } }, arch: Arch, image: string, composeId: string | undefined): IsoNames {
  if (!r.iso?.respin) return isoNames(r, arch, image);
  const date = (composeId && composeDate(composeId)) || new Date(0);
  return { ...isoNames(r, arch, image, { date, n: r.iso.respin }), aliases: [] };
}

/** `Rocky-9-GenericCloud-Base-9.7-20251120.0.x86_64.qcow2` and its latest links. */
export function cloudImageNames(
  r: R,
  img: { type: string; variant?: string; primary?: boolean; format: string },
  arch: Arch,
  build: { date: Date; n: number },
): IsoNames {
  const kind = img.variant ? `${img.type}-${img.variant}` : img.type;
  const ext = img.format; // the format names are the extensions
  const aliases = [`${r.shortname}-${r.major}-${kind}.latest.${arch}.${ext}`];
  if (img.variant && img.primary) aliases.push(`${r.shortname}-${r.major}-${img.type}.latest.${arch}.${ext}`);
  return { file: `${r.shortname}-${r.major}-${kind}-${revision(r)}-${dayStamp(build.date)}.${build.n}.${arch}.${ext}`, aliases };
}

export interface CloudBuild {
  /** `GenericCloud-Base`, `EC2`, `Container-UBI`. */
  kind: string;
  revision: string;
  date: Date;
  n: number;
  arch: string;
  /** The format, which is the extension: `qcow2`, `raw.xz`, `tar.xz`. */
  ext: string;
}

/** Parses a producer's image name (`cloudImageNames(…).file`), or undefined when it is not one of `r`'s. */
export function parseCloudImageName(r: Pick<R, 'shortname' | 'major'>, name: string): CloudBuild | undefined {
  const esc = (x: string) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`^${esc(r.shortname)}-${r.major}-(.+)-(\\d+\\.\\d+)-(\\d{4})(\\d{2})(\\d{2})\\.(\\d+)\\.([a-z0-9_]+)\\.([a-z0-9.]+)$`).exec(name);
  if (!m) return undefined;
  return { kind: m[1], revision: m[2], date: new Date(Date.UTC(+m[3], +m[4] - 1, +m[5])), n: Number(m[6]), arch: m[7], ext: m[8] };
}

// --- the image producer's bucket (empanadas-spec.md §1.6) --------------------------------------
// The producer uploads each build's output directory to
// `buildimage-<revision>-<arch>/<base>/<epoch>/`, where <base> is the image name without its
// extension (`Rocky-9-GenericCloud-Base-9.7-20251120.0.x86_64`) and <epoch> the upload job's
// time. The directory holds the image and whatever else the builder left (kiwi.result.json...);
// imagefactory's container builds are uploaded as `layer.tar.xz`.

/** A site's key prefix in a bucket (`''`, or a folder: `images` is `images/`). */
const folder = (prefix: string) => (prefix && !prefix.endsWith('/') ? `${prefix}/` : prefix);

const buildDir = (rev: string, arch: string) => `buildimage-${rev}-${arch}/`;
/** Key prefix of one revision and arch in the producer's bucket: `buildimage-9.7-x86_64/` (under the site's `prefix`). */
export const cloudBucketPrefix = (r: Pick<R, 'major' | 'minor'>, arch: string, prefix = '') => `${folder(prefix)}${buildDir(revision(r), arch)}`;

/** The key the producer gives `object` of the build named `file` (`cloudImageNames(…).file`) uploaded at `epoch`. */
export function cloudBucketKey(r: Pick<R, 'shortname' | 'major'>, file: string, epoch: number, object = file): string {
  const b = parseCloudImageName(r, file);
  if (!b) throw new Error(`${file} is not a cloud image name of ${r.shortname} ${r.major}`);
  return `${buildDir(b.revision, b.arch)}${file.slice(0, -(b.ext.length + 1))}/${epoch}/${object}`;
}

export interface CloudBucketObject extends CloudBuild {
  /** The upload's epoch (seconds): of two uploads of one build, the later wins. */
  epoch: number;
  /** The name it is placed under: the key's last component, `layer` replaced by the build's name. */
  file: string;
}

/**
 * Parses a key of the producer's bucket into the image it holds, or undefined for any other
 * object (logs, kiwi.result.json, checksum files, other releases). `…/<base>/<epoch>/layer.tar.xz`
 * is placed as `<base>.tar.xz`, as pull-cloud-image does; the placed name must be the build's
 * own (`<base>.<ext>`), so a stray file can never be taken for an image.
 */
export function parseCloudBucketKey(r: Pick<R, 'shortname' | 'major'>, key: string, prefix = ''): CloudBucketObject | undefined {
  const under = folder(prefix);
  if (!key.startsWith(under)) return undefined;
  const m = /^buildimage-(\d+\.\d+)-([a-z0-9_]+)\/([^/]+)\/(\d+)\/([^/]+)$/.exec(key.slice(under.length));
  if (!m) return undefined;
  const [, rev, arch, base, epoch, last] = m;
  const file = !last.startsWith(`${base}.`) && last.includes('layer') ? base + last.replace('layer', '') : last;
  const b = parseCloudImageName(r, file);
  if (!b || b.revision !== rev || b.arch !== arch || file !== `${base}.${b.ext}`) return undefined;
  return { ...b, epoch: Number(epoch), file };
}

/** Suffix of the staging release directory (sync/common_<major> APPEND_TO_DIR): a beta is `-beta` in 9, `-BETA` in 8 and 10. */
export function publishSuffix(r: R): string {
  if (r.type === 'beta') return r.major === 9 ? '-beta' : '-BETA';
  if (r.type === 'lookahead') return '-LookAhead';
  return r.rc ? `-${r.rc}` : '';
}

export interface PublishNames {
  /** Real directory under `<root>/<category>/`. */
  dir: string;
  /** Symlinks beside it, `name -> dir` (relative). */
  links: Record<string, string>;
}

/** Staging: `9.7-RC2` with `9.7` and `latest-9`; beta `9.8-beta` with `9-beta`; SIGs `9/cloud` (in the SIG category), no links. */
export function stagingNames(r: R): PublishNames {
  if (sigOf(r)) return { dir: sigDir(r), links: {} };
  const dir = `${revision(r)}${publishSuffix(r)}`;
  if (r.type !== 'stable') return { dir, links: { [`${r.major}${publishSuffix(r)}`]: dir } };
  const links: Record<string, string> = { [`latest-${r.major}`]: dir };
  if (dir !== revision(r)) links[revision(r)] = dir;
  return { dir, links };
}

/**
 * Production: the suffix is stripped for stable (`9.7`, with `9 -> 9.7`). Beta and lookahead
 * keep their suffix, so they can never land in a GA directory.
 */
export function productionNames(r: R): PublishNames {
  if (r.type !== 'stable' || sigOf(r)) return stagingNames(r);
  return { dir: revision(r), links: { [String(r.major)]: revision(r) } };
}

// --- keys of the artifact store's index (libs/store setKey/getKey) ---------------------------

/** A boot ISO built by the Nx task with this hash (same inputs, same ISO). */
export const isoReuseKey = (project: string, arch: string, taskHash: string) => `iso:${project}:${arch}:${taskHash}`;
/** A boot ISO (boot-tree builder) built from a runtime root of these packages and these settings (iso.ts: the digest of both). */
export const bootTreeKey = (project: string, arch: string, digest: string) => `boot-tree:${project}:${arch}:${digest}`;
/** An extra ISO (DVD) built from inputs with this digest. */
export const extraIsoKey = (project: string, arch: string, image: string, inputs: string) => `extra-iso:${project}:${arch}:${image}:${inputs}`;
/** The release's extra files as read out of packages (by digest: the packages' bytes and the release's extraFiles). */
export const extraFilesKey = (digest: string) => `extra-files:${digest}`;
/** A good signature (gpgv) of upstream repomd.xml and repomd.xml.asc with this digest, by the key file with this sha256. */
export const repomdSignatureKey = (keyFileSha256: string, signed: string) => `repomd-sig:${keyFileSha256}:${signed}`;
/** A passed repoclosure of repos whose metadata has this digest. */
export const repoclosureKey = (arch: string, metadata: string) => `repoclosure:${arch}:${metadata}`;
/** The clearsigned CHECKSUM.asc of a CHECKSUM with this sha256, by this key. */
export const checksumSignatureKey = (checksumSha256: string, keyId: string) => `checksum-sig:${keyId}:${checksumSha256}`;

// --- pungi's names (productmd composeinfo.create_compose_id, pungi_koji's latest link) -------

/** pungi's compose types and their compose id suffixes (productmd Compose.type_suffix). */
export const PUNGI_COMPOSE_TYPES = { production: '', nightly: '.n', test: '.t', ci: '.ci', development: '.d' } as const;
export type PungiComposeType = keyof typeof PUNGI_COMPOSE_TYPES;

export interface PungiComposeIdParts {
  /** release_short: `Rocky`, `Extras`, `Rocky-devel`. */
  short: string;
  /** release_version: `8`. */
  version: string;
  /** release_type: `ga` (no suffix), `updates` (`-updates`). */
  releaseType: string;
  /** `YYYYMMDD`. */
  date: string;
  composeType: PungiComposeType;
  respin: number;
}

/** `Rocky-8-20240520.0`, `Rocky-8-updates-20210721.1`, `DP-1.0-20161013.t.4`: also the compose directory's name. */
export function pungiComposeId(p: PungiComposeIdParts): string {
  const releaseSuffix = !p.releaseType || p.releaseType.toLowerCase() === 'ga' ? '' : `-${p.releaseType.toLowerCase()}`;
  return `${p.short}-${p.version}${releaseSuffix}-${p.date}${PUNGI_COMPOSE_TYPES[p.composeType]}.${p.respin}`;
}

/**
 * Parses a pungi compose id back into its parts, given the release short and version (a short
 * may itself contain dashes: `Rocky-devel`). Undefined when `id` is not one of that release's.
 */
export function parsePungiComposeId(id: string, short: string, version: string): PungiComposeIdParts | undefined {
  const esc = (x: string) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`^${esc(short)}-${esc(version)}(?:-([a-z][a-z0-9-]*?))?-(\\d{8})(\\.n|\\.t|\\.ci|\\.d)?\\.(\\d+)$`).exec(id);
  if (!m) return undefined;
  const composeType = (Object.entries(PUNGI_COMPOSE_TYPES).find(([, s]) => s === (m[3] ?? ''))?.[0] ?? 'production') as PungiComposeType;
  return { short, version, releaseType: m[1] ?? 'ga', date: m[2], composeType, respin: Number(m[4]) };
}

/**
 * pungi's latest link: `latest-<short>-<version>`, the version cut to `components` dot-separated
 * parts (pungi's --latest-link-components; -1, the default, drops the last part of a dotted
 * version and keeps at least one). The release type is not in it: `latest-Rocky-8` points at
 * `Rocky-8-updates-20210721.1` as well as at a produce compose.
 */
export function pungiLatestLink(short: string, version: string, components = -1): string {
  if (components === 0) return `latest-${short}`;
  const hunks = version.split('.');
  const n = components > 0 ? Math.min(hunks.length, components) : Math.max(1, hunks.length + components);
  return `latest-${short}-${hunks.slice(0, n).join('.')}`;
}

/** productmd's milestone labels (`<Milestone>-X.Y`); RC, Update and SecurityFix mark production content. */
export const PUNGI_LABEL_MILESTONES = ['EA', 'DevelPhaseExit', 'InternalAlpha', 'Alpha', 'InternalSnapshot', 'Beta', 'Snapshot', 'RC', 'Update', 'SecurityFix'] as const;

/**
 * The label of a compose of `r`: a produce compose of a stable release is the release candidate
 * (`RC-8.10`), an update compose `Update-8.10`; a beta is `Beta-8.10`, a lookahead `Snapshot-8.10`.
 */
export function pungiLabel(r: Pick<R, 'major' | 'minor' | 'type'>, kind: 'produce' | 'update'): string {
  const milestone = r.type === 'beta' ? 'Beta' : r.type === 'lookahead' ? 'Snapshot' : kind === 'update' ? 'Update' : 'RC';
  return `${milestone}-${revision(r)}`;
}

/**
 * The sha256 recorded at the first read of a producer's bucket object that has no published
 * checksum (the cloud stage verifies every later read against it).
 */
export const cloudObjectKey = (bucket: string, key: string) => `cloud-object:s3://${bucket}/${key}`;

// --- Nx targets of pungi-produced releases ----------------------------------------------------

/** The target that makes one pungi compose of a release: `compose-Extras`; in the update chain `update-compose-Extras`. */
export const composeTarget = (compose: string, kind: ComposeKind) => `${kind === 'update' ? 'update-' : ''}compose-${compose}`;
/** The target that stages one pungi compose alone (the SOP's `sync-to-staging.sh Extras`): `staging-Extras`, `update-staging-Extras`. */
export const composeStagingTarget = (compose: string, kind: ComposeKind) => `${kind === 'update' ? 'update-' : ''}staging-${compose}`;
/** The compose a per-compose target is about (`compose-Extras`, `update-staging-Extras` → `Extras`), or undefined. */
export const composeOfTarget = (target: string): string | undefined => /^(?:update-)?(?:compose|staging)-(.+)$/.exec(target)?.[1];
