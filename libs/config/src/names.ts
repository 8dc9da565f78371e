// Every name the pipeline gives to a thing: compose ids and directories, links, ISO and image
// names, volume ids, publish directories. Nothing else in the workspace builds these strings.
// Patterns follow Rocky's empanadas and sync/ scripts (shared/research/empanadas-spec.md §0.2, §4.2).
import type { Arch, Release } from './schema';

type R = Pick<Release, 'shortname' | 'fullname' | 'major' | 'minor' | 'type' | 'rc' | 'profile'> & Partial<Pick<Release, 'kind' | 'sig'>>;

/** The SIG of a SIG release (undefined for main releases). */
function sigOf(r: Partial<Pick<Release, 'kind' | 'sig' | 'name'>>): NonNullable<Release['sig']> | undefined {
  if (r.kind !== 'sig') return undefined;
  if (!r.sig) throw new Error(`${r.name ?? 'a SIG release'} has no sig section`);
  return r.sig;
}

export const revision = (r: Pick<R, 'major' | 'minor'>) => `${r.major}.${r.minor}`;

/** Whether names carry the RC level: pre-release builds (beta, lookahead) do, GA builds don't. */
export const isFinal = (r: Pick<R, 'type'>) => r.type === 'stable';
const rcPart = (r: R) => (!isFinal(r) && r.rc ? `-${r.rc}` : '');

const pad = (n: number, w = 2) => String(n).padStart(w, '0');
/** `YYYYMMDD.HHMMSS` in UTC: runners in different time zones must agree on names. */
export function dateStamp(d: Date): string {
  return `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}.${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}`;
}
export const dayStamp = (d: Date) => dateStamp(d).slice(0, 8);

/** What every compose id of a release starts with: `Rocky-9.7-`; SIGs `SIG-cloud-9.7-` (empanadas' SigRepoSync). */
export function composeIdPrefix(r: R): string {
  const sig = sigOf(r);
  return `${sig ? `SIG-${sig.name}` : r.shortname}-${revision(r)}-`;
}
/** `Rocky-9.7-20251120.143000`, `SIG-cloud-9.7-20251120.143000`: COMPOSE_ID and the compose directory's name. */
export const composeId = (r: R, d: Date) => `${composeIdPrefix(r)}${dateStamp(d)}`;
/** Parses the date back out of a compose id (for ordering and for finalize). */
export function composeDate(id: string): Date | undefined {
  const m = /-(\d{4})(\d{2})(\d{2})\.(\d{2})(\d{2})(\d{2})$/.exec(id);
  return m ? new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6])) : undefined;
}
/** productmd's compose id, `<short>-<version>-<YYYYMMDD>.<respin>` (as pungi names composes). */
export const productmdComposeId = (r: R, d: Date, respin = 0) => `${r.shortname}-${revision(r)}-${dayStamp(d)}.${respin}`;

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
  if (!r.profile) throw new Error('a main release needs a profile');
  return `latest-${r.shortname}-${r.profile}`;
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
  return {
    file: `${r.shortname}-${revision(r)}${rcPart(r)}${stamp}-${arch}-${image}.iso`,
    aliases: [`${r.shortname}-${arch}-${image}.iso`, `${r.shortname}-${r.major}-latest-${arch}-${image}.iso`],
  };
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

/** Suffix of the staging release directory (sync/common_9 APPEND_TO_DIR). */
export function publishSuffix(r: R): string {
  if (r.type === 'beta') return '-beta';
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
/** An extra ISO (DVD) built from inputs with this digest. */
export const extraIsoKey = (project: string, arch: string, image: string, inputs: string) => `extra-iso:${project}:${arch}:${image}:${inputs}`;
/** A passed repoclosure of repos whose metadata has this digest. */
export const repoclosureKey = (arch: string, metadata: string) => `repoclosure:${arch}:${metadata}`;
/** The clearsigned CHECKSUM.asc of a CHECKSUM with this sha256, by this key. */
export const checksumSignatureKey = (checksumSha256: string, keyId: string) => `checksum-sig:${keyId}:${checksumSha256}`;
