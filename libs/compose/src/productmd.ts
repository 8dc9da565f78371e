// productmd 1.2 JSON metadata for compose/metadata/ (peers §3; productmd composeinfo.py,
// images.py, rpms.py): composeinfo.json, images.json, rpms.json, plus pungi's STATUS words.
// Builders return plain objects; stableJson() turns them into the bytes to write.
import { nevra, type NevraParts } from './nevra';
import { byteOrder } from './order';

export const PRODUCTMD_VERSION = '1.2';

/** Pungi's compose states (peers §2.4); STATUS holds one of them and a newline. */
export const STATUS = ['STARTED', 'FINISHED', 'FINISHED_INCOMPLETE', 'DOOMED', 'TERMINATED'] as const;
export type ComposeStatus = (typeof STATUS)[number];

export const renderStatus = (s: ComposeStatus): string => {
  if (!STATUS.includes(s)) throw new Error(`unknown compose status ${JSON.stringify(s)}`);
  return `${s}\n`;
};
export function parseStatus(text: string): ComposeStatus {
  const word = text.trim();
  if (!(STATUS as readonly string[]).includes(word)) throw new Error(`STATUS: unknown compose status ${JSON.stringify(word)}`);
  return word as ComposeStatus;
}

export const COMPOSE_TYPES = ['production', 'nightly', 'test', 'ci', 'development'] as const;
export type ComposeType = (typeof COMPOSE_TYPES)[number];
export const RELEASE_TYPES = ['fast', 'ga', 'updates', 'updates-testing', 'eus', 'aus', 'els', 'tus', 'e4s'] as const;
export type ReleaseType = (typeof RELEASE_TYPES)[number];

/** The `payload.compose` block every productmd file carries. */
export interface ComposeRef {
  /** e.g. `Rocky-9.7-20251120` (must contain `date`, as productmd checks). */
  id: string;
  /** `YYYYMMDD`. */
  date: string;
  respin: number;
  type: ComposeType;
  /** Milestone label (`RC-9.7`); written only when given. */
  label?: string;
  /** Written when given, or as false when a label is given (productmd writes final with label). */
  final?: boolean;
}

function fail(file: string, msg: string): never {
  throw new Error(`${file}: ${msg}`);
}

function composeBlock(c: ComposeRef, file: string): Record<string, unknown> {
  if (!/^\d{8}$/.test(c.date)) fail(file, `compose date must be YYYYMMDD, got ${JSON.stringify(c.date)}`);
  if (!c.id.includes(c.date)) fail(file, `compose id ${c.id} does not contain its date ${c.date}`);
  if (!Number.isInteger(c.respin) || c.respin < 0) fail(file, `invalid respin ${c.respin}`);
  if (!COMPOSE_TYPES.includes(c.type)) fail(file, `invalid compose type ${c.type}`);
  const out: Record<string, unknown> = { id: c.id, date: c.date, respin: c.respin, type: c.type };
  if (c.label !== undefined) out.label = c.label;
  if (c.final !== undefined || c.label !== undefined) out.final = c.final ?? false;
  return out;
}

const header = (kind: string) => ({ type: `productmd.${kind}`, version: PRODUCTMD_VERSION });

const isSourceArch = (a: string) => a === 'src' || a === 'nosrc';

function relPath(p: string, file: string, what: string): string {
  if (!p || p.startsWith('/') || p.split('/').includes('..')) fail(file, `${what} must be a relative path inside compose/, got ${JSON.stringify(p)}`);
  return p;
}

// ---------------------------------------------------------------------------------------------
// composeinfo.json

export interface ComposeInfoVariant {
  /** Compose directory name (`devel`, not the upstream repo name `all`): key, id and uid. */
  dir: string;
  /** Display name; defaults to `dir`. */
  name?: string;
  /** Arches with a `<dir>/<arch>/os` tree (multilib `i686` included where it exists). */
  arches: string[];
  /** Has `<dir>/<arch>/debug/tree` for each arch. */
  debug: boolean;
  /** Has `<dir>/source/tree` (listed under every arch, as productmd maps sources). */
  source: boolean;
  /** Arches for which this variant owns `isos/<arch>` and `images/<arch>` (the boot variant). */
  media?: string[];
  /** ISO directories by arch in pungi's layout (`BaseOS/x86_64/iso`), instead of `media`'s. */
  isos?: Record<string, string>;
}

export interface ComposeInfoInput {
  compose: ComposeRef;
  release: { name: string; short: string; version: string; type: ReleaseType };
  variants: ComposeInfoVariant[];
}

/**
 * composeinfo.json. Paths are relative to `compose/`, per arch, in the empanadas layout
 * (spec §2.6): os_tree/repository `<dir>/<arch>/os`, packages `…/Packages`, debug_* under
 * `<dir>/<arch>/debug/tree`, source_* `<dir>/source/tree`, isos `isos/<arch>`, images `images/<arch>`.
 */
export function composeInfo(o: ComposeInfoInput): object {
  const F = 'composeinfo.json';
  const r = o.release;
  if (!r.name || !r.short || !r.version) fail(F, 'release name, short and version are required');
  if (!RELEASE_TYPES.includes(r.type)) fail(F, `invalid release type ${r.type}`);
  const variants: Record<string, unknown> = {};
  for (const v of o.variants) {
    // productmd's variant id pattern; also keeps '-' free for parent-child uids.
    if (!/^[A-Za-z0-9]+$/.test(v.dir)) fail(F, `invalid variant ${JSON.stringify(v.dir)}`);
    if (v.dir in variants) fail(F, `duplicate variant ${v.dir}`);
    if (!v.arches.length) fail(F, `variant ${v.dir} has no arches`);
    const arches = [...new Set(v.arches)].sort(byteOrder);
    for (const a of [...(v.media ?? []), ...Object.keys(v.isos ?? {})]) if (!arches.includes(a)) fail(F, `variant ${v.dir}: media arch ${a} is not one of its arches`);
    const paths: Record<string, Record<string, string>> = {};
    const put = (cat: string, arch: string, p: string) => ((paths[cat] ??= {})[arch] = p);
    for (const a of arches) {
      if (isSourceArch(a)) fail(F, `variant ${v.dir}: source is not an arch; set source: true`);
      const os = `${v.dir}/${a}/os`;
      put('os_tree', a, os);
      put('repository', a, os);
      put('packages', a, `${os}/Packages`);
      if (v.debug) {
        const dbg = `${v.dir}/${a}/debug/tree`;
        put('debug_tree', a, dbg);
        put('debug_repository', a, dbg);
        put('debug_packages', a, `${dbg}/Packages`);
      }
      if (v.source) {
        const src = `${v.dir}/source/tree`;
        put('source_tree', a, src);
        put('source_repository', a, src);
        put('source_packages', a, `${src}/Packages`);
      }
      if (v.isos?.[a]) put('isos', a, relPath(v.isos[a], F, `variant ${v.dir} isos`));
      if (v.media?.includes(a)) {
        put('isos', a, `isos/${a}`);
        put('images', a, `images/${a}`);
      }
    }
    variants[v.dir] = { id: v.dir, uid: v.dir, name: v.name ?? v.dir, type: 'variant', arches, paths };
  }
  return {
    header: header('composeinfo'),
    payload: {
      compose: composeBlock(o.compose, F),
      release: { name: r.name, short: r.short, version: r.version, type: r.type, internal: false, is_layered: false },
      variants,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// images.json

/**
 * productmd's image types and the formats each may have (`productmd/images.py`,
 * IMAGE_TYPE_FORMAT_MAPPING, release-engineering/productmd@2a28dec). Its loader refuses an image
 * whose type or format is not in this table, so every images.json entry is checked against it.
 */
export const IMAGE_TYPE_FORMATS: Readonly<Record<string, readonly string[]>> = {
  appx: ['appx'],
  boot: ['iso'],
  'bootable-container': ['ociarchive'],
  cd: ['iso'],
  container: ['tar.xz', 'oci', 'ociarchive'],
  docker: ['tar.gz', 'tar.xz'],
  dvd: ['iso'],
  'dvd-debuginfo': ['iso'],
  'dvd-ostree': ['iso'],
  'dvd-ostree-osbuild': ['iso'],
  ec2: [],
  fex: ['erofs.xz', 'erofs.gz', 'erofs', 'squashfs.xz', 'squashfs.gz', 'squashfs'],
  kvm: [],
  live: [],
  'live-osbuild': ['iso'],
  'liveimg-squashfs': ['liveimg.squashfs'],
  netinst: ['iso'],
  ociarchive: ['ociarchive'],
  p2v: [],
  qcow: ['qcow'],
  qcow2: ['qcow2'],
  raw: ['raw'],
  'raw-xz': ['raw.xz'],
  rescue: [],
  'rhevm-ova': ['rhevm.ova'],
  'tar-gz': ['tar.gz'],
  'vagrant-hyperv': ['vagrant-hyperv.box'],
  'vagrant-libvirt': ['vagrant-libvirt.box'],
  'vagrant-virtualbox': ['vagrant-virtualbox.box'],
  'vagrant-vmware-fusion': ['vagrant-vmware-fusion.box'],
  vdi: ['vdi'],
  vmdk: ['vmdk'],
  vpc: ['vhd'],
  'vhd-compressed': ['vhd.gz', 'vhd.xz', 'vhdfixed.xz'],
  'vsphere-ova': ['vsphere.ova'],
  wsl2: ['tar', 'tar.gz', 'wsl'],
};

/** productmd's SUPPORTED_IMAGE_FORMATS: every format of the table, sorted. They are file-name suffixes (create-filelist's imagelist matches `.<format>`). */
export const SUPPORTED_IMAGE_FORMATS: readonly string[] = [...new Set(Object.values(IMAGE_TYPE_FORMATS).flat())].sort(byteOrder);

/** Whether productmd accepts an image of this type and format (the pair, not just each on its own). */
export const isProductmdImage = (type: string, format: string) => IMAGE_TYPE_FORMATS[type]?.includes(format) ?? false;

/** Vagrant box variants (Rocky's names) → productmd's vagrant image type. */
const VAGRANT_TYPES: Record<string, string> = { Libvirt: 'vagrant-libvirt', Vbox: 'vagrant-virtualbox', VirtualBox: 'vagrant-virtualbox', VMware: 'vagrant-vmware-fusion', HyperV: 'vagrant-hyperv' };

/**
 * productmd's type and format of a cloud image, from the release's format (which is the file
 * extension: `vhd`, `box`) and variant: a `.vhd` is type `vpc`, a libvirt `.box` is
 * `vagrant-libvirt` with format `vagrant-libvirt.box`, a container `.tar.xz` is `docker`.
 */
export function cloudImageKind(format: string, variant?: string): { type: string; format: string } {
  switch (format) {
    case 'qcow2':
      return { type: 'qcow2', format };
    case 'raw.xz':
      return { type: 'raw-xz', format };
    case 'tar.xz':
      return { type: 'docker', format };
    case 'vhd':
      return { type: 'vpc', format };
    case 'wsl':
      return { type: 'wsl2', format };
    case 'box': {
      const type = variant ? VAGRANT_TYPES[variant] : undefined;
      if (!type) throw new Error(`images.json: no productmd vagrant type for box variant ${JSON.stringify(variant)} (known: ${Object.keys(VAGRANT_TYPES).join(', ')})`);
      return { type, format: `${type}.box` };
    }
    default:
      throw new Error(`images.json: no productmd image type for format ${JSON.stringify(format)}`);
  }
}

export interface ImageEntry {
  /** Variant (compose directory name) the image belongs to. */
  variant: string;
  /** Binary arch; productmd 1.2 forbids `src` here. */
  arch: string;
  /** Relative to `compose/`: `isos/x86_64/Rocky-9.7-x86_64-dvd.iso`. */
  path: string;
  size: number;
  sha256: string;
  /** Seconds since the epoch (integer). */
  mtime: number;
  /** productmd format: `iso`, `qcow2`, `raw.xz`, `tar.xz`, `vhd`, `vagrant-libvirt.box`... (IMAGE_TYPE_FORMATS). */
  format: string;
  /** productmd type: `dvd`, `boot`, `qcow2`, `raw-xz`, `vpc`, `vagrant-libvirt`... */
  type: string;
  bootable: boolean;
  volumeId?: string | null;
  /** checkisomd5's implanted MD5 (32 lowercase hex), for ISOs that have one. */
  implantMd5?: string | null;
  /** Default 1. */
  discNumber?: number;
  /** Default 1. */
  discCount?: number;
  /** What the image contains (`BaseOS`, `KDE`, `GenericCloud-Base`); defaults to the variant. */
  subvariant?: string;
}

export interface ImagesInput {
  compose: ComposeRef;
  images: ImageEntry[];
}

/**
 * images.json: `payload.images.<variant>.<arch>[]`, each list sorted by path (as productmd does).
 * Symlink aliases should not be listed: they are names for an image, not images. Two images with
 * the same identity (subvariant, type, format, arch, disc number) and different checksums are
 * refused, as productmd refuses them.
 */
export function imagesJson(o: ImagesInput): object {
  const F = 'images.json';
  const images: Record<string, Record<string, Record<string, unknown>[]>> = {};
  const identities = new Map<string, string>();
  for (const img of o.images) {
    const what = `image ${img.path}`;
    relPath(img.path, F, what);
    if (!img.variant) fail(F, `${what}: no variant`);
    if (!img.arch || isSourceArch(img.arch)) fail(F, `${what}: arch must be a binary arch, got ${JSON.stringify(img.arch)}`);
    if (!Number.isSafeInteger(img.size) || img.size < 0) fail(F, `${what}: invalid size ${img.size}`);
    if (!Number.isSafeInteger(img.mtime) || img.mtime < 0) fail(F, `${what}: mtime must be whole seconds, got ${img.mtime}`);
    if (!/^[0-9a-f]{64}$/.test(img.sha256)) fail(F, `${what}: sha256 must be 64 lowercase hex digits`);
    if (img.implantMd5 != null && !/^[0-9a-f]{32}$/.test(img.implantMd5)) fail(F, `${what}: invalid implant_md5 ${img.implantMd5}`);
    if (!isProductmdImage(img.type, img.format)) {
      fail(F, `${what}: productmd accepts no image of type ${JSON.stringify(img.type)} with format ${JSON.stringify(img.format)} (type ${img.type} takes: ${IMAGE_TYPE_FORMATS[img.type]?.join(', ') || 'nothing: unknown type'})`);
    }
    const discNumber = img.discNumber ?? 1;
    const discCount = img.discCount ?? 1;
    if (!Number.isInteger(discNumber) || !Number.isInteger(discCount) || discNumber < 1 || discNumber > discCount) {
      fail(F, `${what}: invalid disc ${discNumber} of ${discCount}`);
    }
    const subvariant = img.subvariant ?? img.variant;
    const identity = JSON.stringify([subvariant, img.type, img.format, img.arch, discNumber]);
    const seen = identities.get(identity);
    if (seen !== undefined && seen !== img.sha256) fail(F, `${what} has the same subvariant/type/format/arch/disc as another image with different content`);
    identities.set(identity, img.sha256);
    ((images[img.variant] ??= {})[img.arch] ??= []).push({
      arch: img.arch,
      bootable: img.bootable,
      checksums: { sha256: img.sha256 },
      disc_count: discCount,
      disc_number: discNumber,
      format: img.format,
      implant_md5: img.implantMd5 ?? null,
      mtime: img.mtime,
      path: img.path,
      size: img.size,
      subvariant,
      type: img.type,
      volume_id: img.volumeId ?? null,
    });
  }
  for (const arches of Object.values(images)) {
    for (const list of Object.values(arches)) {
      list.sort((a, b) => byteOrder(a.path as string, b.path as string));
      for (let i = 1; i < list.length; i++) if (list[i].path === list[i - 1].path) fail(F, `image ${list[i].path} listed twice`);
    }
  }
  return { header: header('images'), payload: { compose: composeBlock(o.compose, F), images } };
}

// ---------------------------------------------------------------------------------------------
// rpms.json

export type RpmCategory = 'binary' | 'debug' | 'source';

export interface RpmEntry {
  /** Variant (compose directory name). */
  variant: string;
  /** Binary arch the package is listed under; source packages are listed under binary arches too. */
  arch: string;
  /** The package. */
  rpm: NevraParts;
  /**
   * Its source package, for binary and debug packages (with the SRPM's own epoch: take it from the
   * source repo, a subpackage's epoch can differ). Omitted for source packages, which are their own.
   */
  srpm?: NevraParts;
  /** Relative to `compose/`: `BaseOS/x86_64/os/Packages/b/bash-5.1.8-9.el9.x86_64.rpm`. */
  path: string;
  /** Signing key id, 8 hex digits (the short id), or null for unsigned. */
  sigkey: string | null;
  category: RpmCategory;
}

export interface RpmsInput {
  compose: ComposeRef;
  rpms: RpmEntry[];
}

/** rpms.json: `payload.rpms.<variant>.<arch>.<srpm NEVRA>.<rpm NEVRA>` = {category, path, sigkey}. */
export function rpmsJson(o: RpmsInput): object {
  const F = 'rpms.json';
  const rpms: Record<string, Record<string, Record<string, Record<string, { category: RpmCategory; path: string; sigkey: string | null }>>>> = {};
  for (const e of o.rpms) {
    const key = nevra(e.rpm);
    const what = `rpm ${key}`;
    if (!e.variant) fail(F, `${what}: no variant`);
    if (!e.arch || isSourceArch(e.arch)) fail(F, `${what}: list source packages under binary arches, not ${JSON.stringify(e.arch)}`);
    if (!['binary', 'debug', 'source'].includes(e.category)) fail(F, `${what}: invalid category ${e.category}`);
    if ((e.category === 'source') !== isSourceArch(e.rpm.arch)) fail(F, `${what}: category ${e.category} does not fit arch ${e.rpm.arch}`);
    if (e.category === 'source' && e.srpm && nevra(e.srpm) !== key) fail(F, `${what}: a source package is its own srpm`);
    if (e.category !== 'source' && !e.srpm) fail(F, `${what}: binary and debug packages need their srpm`);
    const srpmKey = e.srpm ? nevra(e.srpm) : key;
    if (!isSourceArch(srpmKey.slice(srpmKey.lastIndexOf('.') + 1))) fail(F, `${what}: srpm ${srpmKey} is not a source package`);
    relPath(e.path, F, `${what} path`);
    if (e.sigkey !== null && !/^[0-9a-fA-F]{8}$/.test(e.sigkey)) fail(F, `${what}: sigkey must be 8 hex digits or null, got ${JSON.stringify(e.sigkey)}`);
    const value = { category: e.category, path: e.path, sigkey: e.sigkey === null ? null : e.sigkey.toLowerCase() };
    const bySrpm = (((rpms[e.variant] ??= {})[e.arch] ??= {})[srpmKey] ??= {});
    const prev = bySrpm[key];
    if (prev && JSON.stringify(prev) !== JSON.stringify(value)) fail(F, `${what} listed twice in ${e.variant}.${e.arch} with different data`);
    bySrpm[key] = value;
  }
  return { header: header('rpms'), payload: { compose: composeBlock(o.compose, F), rpms } };
}

// ---------------------------------------------------------------------------------------------
// extra_files.json

/**
 * The `extra_files.json` pungi writes into a tree that carries extra files (productmd
 * extra_files.py, dump_for_tree): `{"header": {"version": "1.0"}, "data": [{file, size, checksums}]}`,
 * paths relative to the tree.
 */
export function treeExtraFilesJson(files: { file: string; size: number; sha256: string }[]): object {
  const data = [...files].sort((a, b) => byteOrder(a.file, b.file)).map((f) => {
    relPath(f.file, 'extra_files.json', 'file');
    if (!/^[0-9a-f]{64}$/.test(f.sha256)) fail('extra_files.json', `${f.file}: sha256 must be 64 lowercase hex digits`);
    return { file: f.file, size: f.size, checksums: { sha256: f.sha256 } };
  });
  return { header: { version: '1.0' }, data };
}

// ---------------------------------------------------------------------------------------------
// Serialisation

/**
 * JSON as productmd writes it (`json.dump(sort_keys=True, indent=4)`): object keys sorted by code
 * point at every level, 4-space indent, non-ASCII escaped as \uXXXX, trailing newline. Written by
 * hand because JSON.stringify always puts integer-like keys first. undefined members are dropped
 * (as JSON.stringify does); non-finite numbers, functions and cycles are refused.
 */
export function stableJson(value: unknown): string {
  const seen = new Set<object>();
  const str = (s: string) => JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const write = (v: unknown, indent: string, path: string): string => {
    if (v !== null && typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON === 'function') v = (v as { toJSON: () => unknown }).toJSON();
    if (v === null) return 'null';
    switch (typeof v) {
      case 'string':
        return str(v);
      case 'boolean':
        return String(v);
      case 'number':
        if (!Number.isFinite(v)) throw new Error(`stableJson: ${path} is ${v}, which JSON cannot hold`);
        return JSON.stringify(v);
      case 'object': {
        if (seen.has(v)) throw new Error(`stableJson: cycle at ${path}`);
        seen.add(v);
        const inner = `${indent}    `;
        let out: string;
        if (Array.isArray(v)) {
          // JSON turns a hole or undefined in an array into null.
          out = v.length ? `[\n${Array.from(v, (x: unknown, i) => inner + (x === undefined ? 'null' : write(x, inner, `${path}[${i}]`))).join(',\n')}\n${indent}]` : '[]';
        } else {
          const keys = Object.keys(v)
            .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
            .sort(byteOrder);
          out = keys.length ? `{\n${keys.map((k) => `${inner}${str(k)}: ${write((v as Record<string, unknown>)[k], inner, `${path}.${k}`)}`).join(',\n')}\n${indent}}` : '{}';
        }
        seen.delete(v);
        return out;
      }
      default:
        throw new Error(`stableJson: ${path} is a ${typeof v}, which JSON cannot hold`);
    }
  };
  return `${write(value, '', '$')}\n`;
}
