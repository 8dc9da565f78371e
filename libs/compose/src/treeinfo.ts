// productmd .treeinfo 1.2 (empanadas-spec §2.1; productmd doc/treeinfo-1.2.rst). Output matches
// what productmd's TreeInfo.dump() writes: sections and keys sorted, a legacy [general] section
// for pre-productmd consumers, a blank line after every section.
import { parseIni, renderIni, type IniSections } from './ini';
import { byteOrder, sortedUnique } from './order';

export interface TreeInfoVariant {
  id: string;
  /** Defaults to `id` (top-level variants have uid == id). */
  uid?: string;
  /** Defaults to `id`. */
  name?: string;
  type?: 'variant';
  /** Directory of the binary packages, relative to the .treeinfo. */
  packages: string;
  /** Directory holding `repodata/`, relative to the .treeinfo. */
  repository: string;
}

export interface TreeInfo {
  release: { name: string; short: string; version: string };
  /** `platforms` should contain `arch` (the renderer adds it anyway, as productmd does). */
  tree: { arch: string; buildTimestamp: number; platforms: string[] };
  variants: TreeInfoVariant[];
  /** Drives [general] variant/repository/packagedir; defaults to the first variant by uid. */
  mainVariant?: string;
  /** platform -> image name -> path (`kernel`, `initrd`, `efiboot.img`, `boot.iso`...). */
  images?: Record<string, Record<string, string>>;
  stage2?: { mainimage?: string; instimage?: string };
  /** relative path -> `<algorithm>:<hex>` (`sha256:...`). */
  checksums?: Record<string, string>;
  media?: { discnum: number; totaldiscs: number };
}

const HEADER = { type: 'productmd.treeinfo', version: '1.2' } as const;

const uidOf = (v: TreeInfoVariant) => v.uid ?? v.id;

function fail(msg: string): never {
  throw new Error(`treeinfo: ${msg}`);
}

/** Paths written into the tree must stay relative: productmd refuses absolute ones. */
function relPath(p: string, what: string): string {
  if (!p) fail(`${what} is empty`);
  if (p.startsWith('/')) fail(`${what} must be relative: ${p}`);
  return p;
}

/** Keys supplied by callers (image names, checksum paths) must not look like INI syntax. */
function userKey(k: string, what: string): string {
  if (!k || /^[#;[]/.test(k) || /[=:\r\n]/.test(k) || k !== k.trim()) fail(`invalid ${what} ${JSON.stringify(k)}`);
  return k;
}

function checksumValue(v: string, path: string): string {
  if (!/^[a-z0-9]+:[0-9a-f]+$/.test(v)) fail(`checksum for ${path} must be '<algorithm>:<lowercase hex>', got ${JSON.stringify(v)}`);
  return v;
}

/** productmd writes str(build_timestamp): ints as ints, floats as Python's shortest repr (same as JS). */
function timestampText(ts: number): string {
  if (!Number.isFinite(ts) || ts < 0) fail(`build timestamp must be a non-negative number, got ${ts}`);
  return String(ts);
}

export function renderTreeinfo(t: TreeInfo): string {
  const s: IniSections = new Map();
  const section = (name: string, entries: Record<string, string>) => s.set(name, new Map(Object.entries(entries)));

  if (!t.tree.arch) fail('tree arch is empty');
  if (!t.release.name || !t.release.version) fail('release name and version are required');
  const platforms = sortedUnique([...t.tree.platforms, t.tree.arch]);
  const variants = [...t.variants].sort((a, b) => byteOrder(uidOf(a), uidOf(b)));
  const uids = variants.map(uidOf);
  if (new Set(uids).size !== uids.length) fail(`duplicate variant uids: ${uids.join(',')}`);

  section('header', { ...HEADER });
  section('release', { name: t.release.name, short: t.release.short, version: t.release.version });
  section('tree', {
    arch: t.tree.arch,
    build_timestamp: timestampText(t.tree.buildTimestamp),
    platforms: platforms.join(','),
    variants: uids.join(','),
  });

  for (const v of variants) {
    // productmd rejects '-' in ids: it separates parent and child in uids.
    if (!/^[A-Za-z0-9_.+]+$/.test(v.id)) fail(`invalid variant id ${JSON.stringify(v.id)}`);
    if (v.type !== undefined && v.type !== 'variant') fail(`variant ${v.id}: only type 'variant' is supported`);
    section(`variant-${uidOf(v)}`, {
      id: v.id,
      uid: uidOf(v),
      name: v.name ?? v.id,
      type: 'variant',
      packages: relPath(v.packages, `variant ${v.id} packages`),
      repository: relPath(v.repository, `variant ${v.id} repository`),
    });
  }

  for (const [platform, images] of Object.entries(t.images ?? {})) {
    if (!platforms.includes(platform)) fail(`images-${platform}: platform is not in tree platforms (${platforms.join(',')})`);
    const entries: Record<string, string> = {};
    for (const [name, path] of Object.entries(images)) entries[userKey(name, 'image name')] = path && relPath(path, `image ${name}`);
    section(`images-${platform}`, entries);
  }

  if (t.stage2 && (t.stage2.mainimage || t.stage2.instimage)) {
    const st: Record<string, string> = {};
    if (t.stage2.mainimage) st.mainimage = relPath(t.stage2.mainimage, 'stage2 mainimage');
    if (t.stage2.instimage) st.instimage = relPath(t.stage2.instimage, 'stage2 instimage');
    section('stage2', st);
  }

  const checksums = Object.entries(t.checksums ?? {});
  if (checksums.length) {
    section('checksums', Object.fromEntries(checksums.map(([p, v]) => [relPath(userKey(p, 'checksum path'), 'checksum path'), checksumValue(v, p)])));
  }

  if (t.media) {
    const { discnum, totaldiscs } = t.media;
    if (!Number.isInteger(discnum) || !Number.isInteger(totaldiscs) || discnum < 1 || discnum > totaldiscs) {
      fail(`invalid media discnum=${discnum} totaldiscs=${totaldiscs}`);
    }
    section('media', { discnum: String(discnum), totaldiscs: String(totaldiscs) });
  }

  // Legacy mirror of the above for pre-productmd readers (productmd's General.serialize).
  const general: Record<string, string> = {
    '; WARNING.0': 'This section provides compatibility with pre-productmd treeinfos.',
    '; WARNING.1': 'Read productmd documentation for details about new format.',
    name: `${t.release.name} ${t.release.version}`,
    family: t.release.name,
    version: t.release.version,
    arch: t.tree.arch,
    platforms: platforms.join(','),
    timestamp: String(Math.trunc(t.tree.buildTimestamp)),
    variants: uids.join(','),
  };
  if (variants.length) {
    const mainUid = t.mainVariant ?? uids[0];
    const main = variants.find((v) => uidOf(v) === mainUid) ?? fail(`main variant ${mainUid} is not one of the variants (${uids.join(',')})`);
    general.variant = mainUid;
    general.packagedir = main.packages;
    general.repository = main.repository;
  } else if (t.mainVariant !== undefined) {
    fail(`main variant ${t.mainVariant} given but the tree has no variants`);
  }
  section('general', general);

  return renderIni(s);
}

/**
 * Reads a .treeinfo written by renderTreeinfo, productmd or lorax. Data comes from the
 * productmd sections; [general] is consulted only for the main variant (which has nowhere else
 * to live) and, for pre-productmd files without [tree], as the fallback productmd itself uses.
 * Unknown sections and keys are ignored.
 */
export function parseTreeinfo(text: string): TreeInfo {
  const ini = parseIni(text, '.treeinfo');
  const get = (sec: string, key: string) => ini.get(sec)?.get(key);
  const need = (sec: string, key: string) => get(sec, key) ?? fail(`missing ${key} in [${sec}]`);
  const list = (v: string | undefined) => (v ?? '').split(',').map((x) => x.trim()).filter(Boolean);

  const type = get('header', 'type');
  if (type !== undefined && type !== HEADER.type) fail(`header type is ${type}, expected ${HEADER.type}`);

  const legacy = !ini.has('tree');
  const treeSec = legacy ? 'general' : 'tree';
  const arch = need(treeSec, 'arch');
  const tsText = get(treeSec, legacy ? 'timestamp' : 'build_timestamp');
  const buildTimestamp = tsText === undefined ? 0 : Number(tsText);
  if (!Number.isFinite(buildTimestamp)) fail(`invalid build timestamp ${JSON.stringify(tsText)}`);
  const platformList = list(get(treeSec, 'platforms'));

  const relSec = ini.has('release') ? 'release' : 'general';
  const release = {
    name: need(relSec, relSec === 'release' ? 'name' : 'family'),
    short: get(relSec, 'short') ?? (relSec === 'release' ? need('release', 'name') : ''),
    version: need(relSec, 'version'),
  };

  let variantUids = legacy ? list(get('general', 'variant')) : list(get('tree', 'variants'));
  if (!ini.has('tree') && !variantUids.length) variantUids = [...ini.keys()].filter((k) => k.startsWith('variant-')).map((k) => k.slice(8));
  const variants: TreeInfoVariant[] = variantUids
    .map((uid) => {
      const sec = `variant-${uid}`;
      if (!legacy && !ini.has(sec)) fail(`[tree] lists variant ${uid} but there is no [${sec}]`);
      const vtype = get(sec, 'type') ?? 'variant';
      if (vtype !== 'variant') fail(`[${sec}] has type ${vtype}; only 'variant' is supported`);
      const id = get(sec, 'id') ?? uid;
      // Pre-productmd files keep paths in [general]; productmd's own fallbacks are '.' for both.
      const repository = get(sec, 'repository') ?? (legacy ? get('general', 'repository') || '.' : '.');
      const packages = get(sec, 'packages') ?? get(sec, 'packagedir') ?? (legacy ? get('general', 'packagedir') || repository : repository);
      return { id, uid: get(sec, 'uid') ?? uid, name: get(sec, 'name') ?? id, type: 'variant' as const, packages, repository };
    })
    .sort((a, b) => byteOrder(a.uid, b.uid));

  const out: TreeInfo = {
    release,
    tree: { arch, buildTimestamp, platforms: platformList.length ? platformList : [arch] },
    variants,
  };

  const mainVariant = get('general', 'variant');
  if (mainVariant && variants.some((v) => v.uid === mainVariant)) out.mainVariant = mainVariant;
  else if (variants.length) out.mainVariant = variants[0].uid;

  const images: Record<string, Record<string, string>> = {};
  for (const [sec, keys] of ini) {
    if (!sec.startsWith('images-')) continue;
    let platform = sec.slice(7);
    // productmd maps `images-xen-x86_64` style names back to the platform.
    if (platform !== arch && platform.endsWith(`-${arch}`)) platform = platform.slice(0, -arch.length - 1);
    images[platform] = Object.fromEntries(keys);
  }
  if (Object.keys(images).length) {
    out.images = images;
    out.tree.platforms = sortedUnique([...out.tree.platforms, ...Object.keys(images)]);
  }

  const mainimage = get('stage2', 'mainimage');
  const instimage = get('stage2', 'instimage');
  if (mainimage || instimage) {
    out.stage2 = {};
    if (mainimage) out.stage2.mainimage = mainimage;
    if (instimage) out.stage2.instimage = instimage;
  }

  const sums = ini.get('checksums');
  if (sums?.size) {
    out.checksums = {};
    for (const [path, value] of sums) {
      // Pre-productmd files may carry a bare digest; productmd infers the algorithm from its length.
      const bare: Record<number, string> = { 32: 'md5', 40: 'sha1', 64: 'sha256' };
      out.checksums[path] = value.includes(':') ? value : bare[value.length] ? `${bare[value.length]}:${value}` : fail(`cannot tell checksum type of ${path}`);
    }
  }

  const discnum = get('media', 'discnum') ?? (legacy ? get('general', 'discnum') : undefined);
  const totaldiscs = get('media', 'totaldiscs') ?? (legacy ? get('general', 'totaldiscs') : undefined);
  if (discnum !== undefined || totaldiscs !== undefined) {
    const d = Number(discnum ?? 1);
    out.media = { discnum: d, totaldiscs: Number(totaldiscs ?? d) };
    if (!Number.isInteger(out.media.discnum) || !Number.isInteger(out.media.totaldiscs)) fail(`invalid [media] ${discnum}/${totaldiscs}`);
  }
  return out;
}

/**
 * §2.1.1: the treeinfo empanadas writes into every repo tree. `fullname` is the distribution
 * name (`Rocky Linux`, Release.fullname), not `Rocky Linux 9.7`: productmd appends the version.
 * `timestamp` is an int for os/kickstart trees, a float for debug/source trees.
 */
export function repoTreeinfo(opts: { fullname: string; short: string; version: string; arch: string; variant: string; timestamp: number }): TreeInfo {
  if (opts.fullname.endsWith(` ${opts.version}`)) fail(`fullname ${JSON.stringify(opts.fullname)} already carries the version; pass the distribution name`);
  return {
    release: { name: opts.fullname, short: opts.short, version: opts.version },
    tree: { arch: opts.arch, buildTimestamp: opts.timestamp, platforms: [opts.arch] },
    variants: [{ id: opts.variant, uid: opts.variant, name: opts.variant, type: 'variant', packages: 'Packages', repository: '.' }],
    mainVariant: opts.variant,
  };
}

/** Every file a treeinfo names as an image or stage2 (what [checksums] must cover), sorted. */
export function treeinfoImagePaths(t: Pick<TreeInfo, 'images' | 'stage2'>): string[] {
  const paths: string[] = [];
  for (const images of Object.values(t.images ?? {})) paths.push(...Object.values(images).filter(Boolean));
  if (t.stage2?.mainimage) paths.push(t.stage2.mainimage);
  if (t.stage2?.instimage) paths.push(t.stage2.instimage);
  return sortedUnique(paths);
}

/**
 * §2.1.2 "modified treeinfo" for a lorax boot tree reused as a DVD (`disc`) or as the primary
 * repo's tree (BaseOS/<arch>/os):
 * - images: empty entries dropped, `boot.iso` dropped when `dropBootIso` (a disc does not carry it);
 * - checksums: the base's, minus dropped files, overlaid with `opts.checksums`; every remaining
 *   image and stage2 file must have one (an unverifiable tree is refused here, not at install time);
 * - variants for `repos`: disc → `<repo>` / `<repo>/Packages`; otherwise the main variant is
 *   `.` / `Packages` and the others `../../../<repo>/<arch>/<kind>` (kind `kickstart` for the
 *   kickstart copy of the tree);
 * - disc → [media] 1/1; `release` (when given) replaces the base's, as empanadas resets it.
 */
export function discTreeinfo(
  base: TreeInfo,
  opts: {
    repos: string[];
    mainVariant: string;
    disc: boolean;
    arch: string;
    checksums: Record<string, string>;
    dropBootIso: boolean;
    release?: TreeInfo['release'];
    kind?: 'os' | 'kickstart';
  },
): TreeInfo {
  if (base.tree.arch !== opts.arch) fail(`base tree is for ${base.tree.arch}, not ${opts.arch}`);
  if (!opts.repos.includes(opts.mainVariant)) fail(`main variant ${opts.mainVariant} is not one of the repos (${opts.repos.join(',')})`);
  const kind = opts.kind ?? 'os';

  const dropped = new Set<string>();
  let images: TreeInfo['images'];
  for (const [platform, entries] of Object.entries(base.images ?? {})) {
    const kept: Record<string, string> = {};
    for (const [name, path] of Object.entries(entries)) {
      if (!path) continue;
      if (opts.dropBootIso && name === 'boot.iso') dropped.add(path);
      else kept[name] = path;
    }
    // A platform left with no images gets no section (productmd would write an empty one).
    if (Object.keys(kept).length) (images ??= {})[platform] = kept;
  }
  for (const p of [...dropped]) if (Object.values(images ?? {}).some((e) => Object.values(e).includes(p))) dropped.delete(p);

  const checksums: Record<string, string> = {};
  for (const [p, v] of Object.entries(base.checksums ?? {})) if (!dropped.has(p)) checksums[p] = v;
  Object.assign(checksums, opts.checksums);

  const stage2 = base.stage2 ? { ...base.stage2 } : undefined;
  const missing = treeinfoImagePaths({ images, stage2 }).filter((p) => !checksums[p]);
  if (missing.length) fail(`no checksum for ${missing.join(', ')}`);

  const byUid = new Map(base.variants.map((v) => [uidOf(v), { ...v }]));
  for (const repo of opts.repos) {
    let packages: string;
    let repository: string;
    if (opts.disc) [repository, packages] = [repo, `${repo}/Packages`];
    else if (repo === opts.mainVariant) [repository, packages] = ['.', 'Packages'];
    else {
      repository = `../../../${repo}/${opts.arch}/${kind}`;
      packages = `${repository}/Packages`;
    }
    byUid.set(repo, { id: repo, uid: repo, name: repo, type: 'variant', packages, repository });
  }

  const out: TreeInfo = {
    release: { ...(opts.release ?? base.release) },
    tree: { ...base.tree, platforms: [...base.tree.platforms] },
    variants: [...byUid.values()].sort((a, b) => byteOrder(uidOf(a), uidOf(b))),
    mainVariant: opts.mainVariant,
  };
  if (images) out.images = images;
  if (stage2 && (stage2.mainimage || stage2.instimage)) out.stage2 = stage2;
  if (Object.keys(checksums).length) out.checksums = Object.fromEntries(Object.entries(checksums).sort(([a], [b]) => byteOrder(a, b)));
  if (opts.disc) out.media = { discnum: 1, totaldiscs: 1 };
  else if (base.media) out.media = { ...base.media };
  return out;
}

const VARIANT_TYPES = ['variant', 'optional', 'addon', 'layered-product'];
const VARIANT_PATH_KEYS = ['packages', 'repository', 'source_packages', 'source_repository', 'debug_packages', 'debug_repository', 'identity'];

/**
 * What productmd's TreeInfo loader (treeinfo.py, format 1.x) would refuse in a .treeinfo, as
 * messages (empty: it loads). Written from its rules: [header] version `N.N` and type
 * productmd.treeinfo; [release] name and version (numeric versions dotted digits); [tree] arch,
 * platforms and a numeric build_timestamp; every variant [tree] lists has its section with id
 * (no '-'), uid, name and a known type; image platforms are tree platforms; every image, stage2
 * and checksum path is relative; checksums are `<type>:<hex>`; [media] numbers are integers.
 */
export function treeinfoProblems(text: string): string[] {
  const out: string[] = [];
  let ini: IniSections;
  try {
    ini = parseIni(text, '.treeinfo');
  } catch (e) {
    return [(e as Error).message];
  }
  const get = (sec: string, key: string) => ini.get(sec)?.get(key);
  const need = (sec: string, key: string) => {
    const v = get(sec, key);
    if (v === undefined) out.push(`[${sec}] has no ${key}`);
    return v ?? '';
  };
  const version = need('header', 'version');
  if (version && !/^\d+\.\d+$/.test(version)) out.push(`[header] version ${JSON.stringify(version)} is not N.N`);
  const [major, minor] = version.split('.').map(Number);
  if ((major > 1 || (major === 1 && minor >= 1)) && get('header', 'type') !== HEADER.type) out.push(`[header] type is ${JSON.stringify(get('header', 'type'))}, not ${HEADER.type}`);

  need('release', 'name');
  const relVersion = need('release', 'version');
  if (/^\d/.test(relVersion) && !/^\d+(\.\d+)*$/.test(relVersion)) out.push(`[release] version ${JSON.stringify(relVersion)} is not dotted digits`);
  const layered = get('release', 'is_layered');
  if (layered !== undefined && !/^(1|0|yes|no|true|false|on|off)$/i.test(layered)) out.push(`[release] is_layered ${JSON.stringify(layered)} is not a boolean`);

  const arch = need('tree', 'arch').trim();
  if (ini.has('tree') && !arch) out.push('[tree] arch is blank');
  const platforms = need('tree', 'platforms').split(',').filter(Boolean);
  const ts = need('tree', 'build_timestamp');
  if (ini.has('tree') && !Number.isFinite(Number.parseFloat(ts))) out.push(`[tree] build_timestamp ${JSON.stringify(ts)} is not a number`);

  const variantUids = (get('tree', 'variants') ?? '').split(',').filter((u) => u !== '');
  const checkVariant = (uid: string, addon: boolean) => {
    const sec = `${addon ? 'addon' : 'variant'}-${uid}`;
    if (!ini.has(sec)) return void out.push(`variant ${uid} has no [${sec}]`);
    const id = need(sec, 'id');
    if (id.includes('-')) out.push(`[${sec}] id ${JSON.stringify(id)} contains '-'`);
    if (need(sec, 'uid') !== uid && !addon) out.push(`[${sec}] uid is not ${uid}`);
    need(sec, 'name');
    const type = addon ? 'addon' : need(sec, 'type');
    if (!VARIANT_TYPES.includes(type)) out.push(`[${sec}] type ${JSON.stringify(type)} is not one of ${VARIANT_TYPES.join(', ')}`);
    if (!addon && id !== uid && id !== uid.replaceAll('-', '')) out.push(`[${sec}] id ${id} does not match ${uid}`);
    for (const k of VARIANT_PATH_KEYS) if (get(sec, k)?.startsWith('/')) out.push(`[${sec}] ${k} is absolute`);
    for (const a of (get(sec, 'addons') ?? '').split(',').filter(Boolean)) checkVariant(a, true);
  };
  if (new Set(variantUids).size !== variantUids.length) out.push(`[tree] variants lists a variant twice: ${variantUids.join(',')}`);
  for (const uid of variantUids) checkVariant(uid, false);

  for (const [sec, keys] of ini) {
    if (!sec.startsWith('images-')) continue;
    let platform = sec.slice(7);
    if (platform !== arch && platform.endsWith(`-${arch}`)) platform = platform.slice(0, -arch.length - 1);
    if (!platforms.includes(platform)) out.push(`[${sec}]: platform ${platform} is not in [tree] platforms (${platforms.join(',')})`);
    for (const [k, p] of keys) if (p.startsWith('/')) out.push(`[${sec}] ${k} = ${p} is absolute`);
  }
  for (const k of ['mainimage', 'instimage']) if (get('stage2', k)?.startsWith('/')) out.push(`[stage2] ${k} is absolute`);
  for (const [p, v] of ini.get('checksums') ?? []) {
    if (p.startsWith('/')) out.push(`[checksums] ${p} is absolute`);
    const parts = v.split(':');
    const bare = parts.length === 1 && [32, 40, 64].includes(v.length);
    if (!bare && (parts.length !== 2 || !parts[0] || !/^[0-9a-fA-F]+$/.test(parts[1]))) out.push(`[checksums] ${p} = ${v} is not <type>:<hex>`);
  }
  if (ini.has('media')) {
    for (const k of ['discnum', 'totaldiscs']) {
      const v = need('media', k);
      if (v && !/^[+-]?\d+$/.test(v.trim())) out.push(`[media] ${k} ${JSON.stringify(v)} is not an integer`);
    }
  }
  return out;
}

/**
 * Every path a .treeinfo names, relative to it: images and stage2 (files, with their [checksums]
 * value when there is one) and the variants' repository and packages directories.
 */
export function treeinfoReferences(t: TreeInfo): { files: { path: string; checksum?: string }[]; dirs: string[] } {
  const files = [...new Set([...treeinfoImagePaths(t), ...Object.keys(t.checksums ?? {})])].sort(byteOrder).map((path) => ({ path, checksum: t.checksums?.[path] }));
  const dirs = sortedUnique(t.variants.flatMap((v) => [v.repository, v.packages]));
  return { files, dirs };
}
