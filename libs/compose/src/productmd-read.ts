// Reading productmd's JSON metadata as productmd itself reads it (productmd composeinfo.py,
// rpms.py, images.py; peers §3): the header's type and version, then the 1.x payload, with the
// checks productmd's validate() makes. Used on what another tool wrote (pungi's compose/metadata),
// so every error names the file and the entry.
import { COMPOSE_TYPES, IMAGE_TYPE_FORMATS as IMAGE_FORMATS, RELEASE_TYPES, type ComposeRef, type RpmCategory } from './productmd';

/** productmd's milestone labels: `<Milestone>-X.Y` (composeinfo.LABEL_NAMES). */
const LABEL_RE = /^(EA|DevelPhaseExit|InternalAlpha|Alpha|InternalSnapshot|Beta|Snapshot|RC|Update|SecurityFix)-\d+\.\d+$/;
const RELEASE_VERSION_RE = /^([^0-9].*|([0-9]+(\.?[0-9]+)*))$/;
const VARIANT_TYPES = ['variant', 'optional', 'addon', 'layered-product'];

const IMAGE_FORMAT_SET = new Set(Object.values(IMAGE_FORMATS).flat());

type Json = Record<string, unknown>;

class Reader {
  constructor(readonly file: string) {}
  fail(msg: string): never {
    throw new Error(`${this.file}: ${msg}`);
  }
  obj(v: unknown, what: string): Json {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(`${what} must be an object`);
    return v as Json;
  }
  str(v: unknown, what: string, nonEmpty = true): string {
    if (typeof v !== 'string' || (nonEmpty && !v)) this.fail(`${what} must be a${nonEmpty ? ' non-empty' : ''} string, got ${JSON.stringify(v)}`);
    return v;
  }
  int(v: unknown, what: string): number {
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) this.fail(`${what} must be an integer, got ${JSON.stringify(v)}`);
    return v;
  }
  relPath(v: unknown, what: string): string {
    const p = this.str(v, what);
    if (p.startsWith('/') || p.split('/').includes('..')) this.fail(`${what} must be a relative path inside compose/, got ${JSON.stringify(p)}`);
    return p;
  }
}

function parseJson(text: string, r: Reader): Json {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    r.fail(`not valid JSON: ${(e as Error).message}`);
  }
  return r.obj(doc, 'the document');
}

/** The header: `{type: productmd.<kind>, version: X.Y}`; 1.0 and later (productmd reads older layouts differently). */
function header(doc: Json, kind: string, r: Reader): string {
  const h = r.obj(doc.header, 'header');
  const version = r.str(h.version, 'header.version');
  const m = /^(\d+)\.(\d+)$/.exec(version);
  if (!m) r.fail(`header.version must be X.Y, got ${JSON.stringify(version)}`);
  const [major, minor] = [Number(m[1]), Number(m[2])];
  if (major < 1) r.fail(`productmd ${version} metadata is not supported (1.0 or later)`);
  if (major > 1) r.fail(`productmd ${version} metadata is newer than this reader (1.x)`);
  // productmd checks the type from 1.1 on.
  if (minor >= 1 && h.type !== `productmd.${kind}`) r.fail(`header.type is ${JSON.stringify(h.type)}, expected "productmd.${kind}"`);
  return version;
}

function composeRef(payload: Json, r: Reader): ComposeRef {
  const c = r.obj(payload.compose, 'payload.compose');
  const id = r.str(c.id, 'payload.compose.id');
  if (!/\d{8}(\.nightly|\.n|\.ci|\.test|\.t)?(\.\d+)?/.test(id)) r.fail(`payload.compose.id ${JSON.stringify(id)} has no YYYYMMDD date`);
  const date = r.str(c.date, 'payload.compose.date');
  if (!/^\d{8}$/.test(date)) r.fail(`payload.compose.date must be YYYYMMDD, got ${JSON.stringify(date)}`);
  const type = r.str(c.type, 'payload.compose.type') as ComposeRef['type'];
  if (!COMPOSE_TYPES.includes(type)) r.fail(`payload.compose.type ${JSON.stringify(type)} is not one of ${COMPOSE_TYPES.join(', ')}`);
  const respin = r.int(c.respin, 'payload.compose.respin');
  const out: ComposeRef = { id, date, type, respin };
  if (c.label !== undefined && c.label !== null && c.label !== '') {
    const label = r.str(c.label, 'payload.compose.label');
    if (!LABEL_RE.test(label)) r.fail(`payload.compose.label ${JSON.stringify(label)} is not <Milestone>-X.Y`);
    out.label = label;
    out.final = c.final === undefined ? false : c.final === true;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

/** productmd's variant path categories (VariantPaths._fields). */
export const VARIANT_PATH_CATEGORIES = [
  'os_tree',
  'packages',
  'repository',
  'isos',
  'images',
  'jigdos',
  'source_tree',
  'source_packages',
  'source_repository',
  'source_isos',
  'source_jigdos',
  'debug_tree',
  'debug_packages',
  'debug_repository',
] as const;
export type VariantPathCategory = (typeof VARIANT_PATH_CATEGORIES)[number];

export interface ComposeInfoRead {
  version: string;
  compose: ComposeRef;
  release: { name: string; short: string; version: string; type: string; internal: boolean; isLayered: boolean };
  /** Every variant, nested ones (`Server-optional`) included, by uid. */
  variants: {
    uid: string;
    id: string;
    name: string;
    type: string;
    arches: string[];
    /** category -> arch -> path relative to `compose/`. */
    paths: Partial<Record<VariantPathCategory, Record<string, string>>>;
  }[];
}

/** composeinfo.json. */
export function parseComposeInfo(text: string, file = 'composeinfo.json'): ComposeInfoRead {
  const r: Reader = new Reader(file);
  const doc = parseJson(text, r);
  const version = header(doc, 'composeinfo', r);
  const payload = r.obj(doc.payload, 'payload');
  const rel = r.obj(payload.release, 'payload.release');
  const release = {
    name: r.str(rel.name, 'payload.release.name'),
    short: r.str(rel.short, 'payload.release.short'),
    version: r.str(rel.version, 'payload.release.version'),
    type: rel.type === undefined ? 'ga' : r.str(rel.type, 'payload.release.type').toLowerCase(),
    internal: rel.internal === true,
    isLayered: rel.is_layered === true,
  };
  if (!RELEASE_VERSION_RE.test(release.version)) r.fail(`payload.release.version ${JSON.stringify(release.version)} is not a version`);
  if (!(RELEASE_TYPES as readonly string[]).includes(release.type)) r.fail(`payload.release.type ${JSON.stringify(release.type)} is not one of ${RELEASE_TYPES.join(', ')}`);
  const variants: ComposeInfoRead['variants'] = [];
  for (const [key, raw] of Object.entries(r.obj(payload.variants, 'payload.variants'))) {
    const at = `payload.variants.${key}`;
    const v = r.obj(raw, at);
    const id = r.str(v.id, `${at}.id`);
    if (!/^[a-zA-Z0-9]+$/.test(id)) r.fail(`${at}.id ${JSON.stringify(id)} must be letters and digits`);
    const uid = r.str(v.uid, `${at}.uid`);
    if (uid !== key) r.fail(`${at}.uid is ${JSON.stringify(uid)}: it must be the variant's key`);
    const type = r.str(v.type, `${at}.type`);
    if (!VARIANT_TYPES.includes(type)) r.fail(`${at}.type ${JSON.stringify(type)} is not one of ${VARIANT_TYPES.join(', ')}`);
    if (!Array.isArray(v.arches) || !v.arches.length) r.fail(`${at}.arches must be a non-empty list`);
    const arches = v.arches.map((a, i) => r.str(a, `${at}.arches[${i}]`));
    const paths: ComposeInfoRead['variants'][number]['paths'] = {};
    for (const [cat, byArch] of Object.entries(v.paths === undefined ? {} : r.obj(v.paths, `${at}.paths`))) {
      if (!(VARIANT_PATH_CATEGORIES as readonly string[]).includes(cat)) continue; // productmd ignores other keys
      const m: Record<string, string> = {};
      for (const [arch, p] of Object.entries(r.obj(byArch, `${at}.paths.${cat}`))) {
        if (!arches.includes(arch)) r.fail(`${at}.paths.${cat}.${arch}: ${arch} is not one of the variant's arches`);
        m[arch] = r.relPath(p, `${at}.paths.${cat}.${arch}`);
      }
      paths[cat as VariantPathCategory] = m;
    }
    variants.push({ uid, id, name: r.str(v.name, `${at}.name`), type, arches, paths });
  }
  return { version, compose: composeRef(payload, r), release, variants };
}

// ---------------------------------------------------------------------------------------------

export interface RpmsJsonEntry {
  variant: string;
  arch: string;
  /** `bash-0:5.1.8-9.el9.src`. */
  srpm: string;
  /** `bash-0:5.1.8-9.el9.x86_64`. */
  nevra: string;
  /** Relative to `compose/`. */
  path: string;
  /** Lowercase key id (pungi: 8 hex digits), or null for an unsigned package. */
  sigkey: string | null;
  category: RpmCategory;
}

const NEVRA_RE = /^(.+)-(\d+):([^-:]+)-([^-:]+)\.([^-.:]+)$/;

/** rpms.json: `payload.rpms.<variant>.<arch>.<srpm NEVRA>.<rpm NEVRA>` = {category, path, sigkey}. */
export function parseRpmsJson(text: string, file = 'rpms.json'): { version: string; compose: ComposeRef; rpms: RpmsJsonEntry[] } {
  const r: Reader = new Reader(file);
  const doc = parseJson(text, r);
  const version = header(doc, 'rpms', r);
  const payload = r.obj(doc.payload, 'payload');
  const rpms: RpmsJsonEntry[] = [];
  for (const [variant, arches] of Object.entries(r.obj(payload.rpms, 'payload.rpms'))) {
    for (const [arch, srpms] of Object.entries(r.obj(arches, `payload.rpms.${variant}`))) {
      if (arch === 'src' || arch === 'nosrc') r.fail(`payload.rpms.${variant}.${arch}: source packages are listed under binary arches`);
      for (const [srpm, pkgs] of Object.entries(r.obj(srpms, `payload.rpms.${variant}.${arch}`))) {
        const sm = NEVRA_RE.exec(srpm);
        if (!sm || (sm[5] !== 'src' && sm[5] !== 'nosrc')) r.fail(`payload.rpms.${variant}.${arch}: ${JSON.stringify(srpm)} is not a source N-E:V-R.A`);
        for (const [nevra, raw] of Object.entries(r.obj(pkgs, `payload.rpms.${variant}.${arch}.${srpm}`))) {
          const at = `payload.rpms.${variant}.${arch}.${srpm}.${nevra}`;
          const m = NEVRA_RE.exec(nevra);
          if (!m) r.fail(`${at}: not an N-E:V-R.A (the epoch is required)`);
          const e = r.obj(raw, at);
          const category = r.str(e.category, `${at}.category`) as RpmCategory;
          if (!['binary', 'debug', 'source'].includes(category)) r.fail(`${at}.category ${JSON.stringify(category)} is not binary, debug or source`);
          const isSource = m[5] === 'src' || m[5] === 'nosrc';
          if ((category === 'source') !== isSource) r.fail(`${at}: category ${category} does not fit arch ${m[5]}`);
          if (category === 'source' && nevra !== srpm) r.fail(`${at}: a source package is listed under another srpm`);
          let sigkey: string | null = null;
          if (e.sigkey !== null && e.sigkey !== undefined) {
            sigkey = r.str(e.sigkey, `${at}.sigkey`).toLowerCase();
            if (!/^[0-9a-f]+$/.test(sigkey)) r.fail(`${at}.sigkey ${JSON.stringify(e.sigkey)} is not a hex key id`);
          }
          rpms.push({ variant, arch, srpm, nevra, path: r.relPath(e.path, `${at}.path`), sigkey, category });
        }
      }
    }
  }
  return { version, compose: composeRef(payload, r), rpms };
}

// ---------------------------------------------------------------------------------------------

export interface ImagesJsonEntry {
  variant: string;
  arch: string;
  /** Relative to `compose/`. */
  path: string;
  mtime: number;
  size: number;
  volumeId: string | null;
  type: string;
  format: string;
  discNumber: number;
  discCount: number;
  /** algorithm -> hex digest. */
  checksums: Record<string, string>;
  implantMd5: string | null;
  bootable: boolean;
  subvariant: string;
}

/** images.json: `payload.images.<variant>.<arch>[]`. */
export function parseImagesJson(text: string, file = 'images.json'): { version: string; compose: ComposeRef; images: ImagesJsonEntry[] } {
  const r: Reader = new Reader(file);
  const doc = parseJson(text, r);
  const version = header(doc, 'images', r);
  const payload = r.obj(doc.payload, 'payload');
  const images: ImagesJsonEntry[] = [];
  for (const [variant, arches] of Object.entries(r.obj(payload.images, 'payload.images'))) {
    for (const [arch, list] of Object.entries(r.obj(arches, `payload.images.${variant}`))) {
      if (!Array.isArray(list)) r.fail(`payload.images.${variant}.${arch} must be a list`);
      list.forEach((raw, i) => {
        const at = `payload.images.${variant}.${arch}[${i}]`;
        const e = r.obj(raw, at);
        const type = r.str(e.type, `${at}.type`);
        const format = e.format === undefined ? 'iso' : r.str(e.format, `${at}.format`);
        if (!(type in IMAGE_FORMATS)) r.fail(`${at}.type ${JSON.stringify(type)} is not an image type productmd knows`);
        if (!IMAGE_FORMAT_SET.has(format)) r.fail(`${at}.format ${JSON.stringify(format)} is not an image format productmd knows`);
        const checksums = r.obj(e.checksums, `${at}.checksums`);
        if (!Object.keys(checksums).length) r.fail(`${at}.checksums is empty`);
        for (const [alg, v] of Object.entries(checksums)) if (typeof v !== 'string' || !/^[0-9a-f]+$/.test(v)) r.fail(`${at}.checksums.${alg} is not a hex digest`);
        const implant = e.implant_md5 ?? null;
        if (implant !== null && (typeof implant !== 'string' || !/^[a-z0-9]{32}$/.test(implant))) r.fail(`${at}.implant_md5 ${JSON.stringify(implant)} is not 32 hex digits`);
        const volumeId = e.volume_id ?? null;
        if (volumeId !== null) r.str(volumeId, `${at}.volume_id`);
        images.push({
          variant,
          arch: r.str(e.arch, `${at}.arch`),
          path: r.relPath(e.path, `${at}.path`),
          mtime: r.int(e.mtime, `${at}.mtime`),
          size: r.int(e.size, `${at}.size`),
          volumeId: volumeId as string | null,
          type,
          format,
          discNumber: r.int(e.disc_number, `${at}.disc_number`),
          discCount: r.int(e.disc_count, `${at}.disc_count`),
          checksums: checksums as Record<string, string>,
          implantMd5: implant as string | null,
          bootable: e.bootable === true,
          // 1.0 files may lack it; productmd requires it from 1.1 on.
          subvariant: e.subvariant === undefined && version === '1.0' ? '' : r.str(e.subvariant, `${at}.subvariant`, false),
        });
      });
    }
  }
  return { version, compose: composeRef(payload, r), images };
}
