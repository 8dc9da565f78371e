// A pungi config as the fixture's pungi-koji reads it: the pungi options it honours (a subset of
// pungi's schema, same names and meanings), the variants file (pungi's variants.xml) and the comps
// file, filtered per variant as pungi's init phase does. Unknown options are refused: a typo in a
// fixture config should not silently change what is composed.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { xmlDecoding } from '@rocky/rpm-repo';
import { ConfTuple, loadConf, type ConfValue } from './conf';
import { PHASES } from './args';

export interface Variant {
  uid: string;
  name: string;
  type: 'variant';
  arches: string[];
  /** comps group ids (variants.xml `<groups>`). */
  groups: string[];
  environments: string[];
}

export interface CompsGroup {
  id: string;
  name: string;
  description: string;
  default: boolean;
  uservisible: boolean;
  packages: { name: string; type: string; arch?: string }[];
}
export interface CompsEnvironment {
  id: string;
  name: string;
  description: string;
  displayOrder: number;
  groups: string[];
}

type ArchVariantRule<T> = [RegExp, Record<string, T>];

export interface PungiConfig {
  file: string;
  raw: Record<string, ConfValue>;
  releaseName: string;
  releaseShort: string;
  releaseVersion: string;
  releaseType: string;
  releaseInternal: boolean;
  variants: Variant[];
  comps?: { groups: CompsGroup[]; environments: CompsEnvironment[] };
  hashedDirectories: boolean;
  /** The fixture's koji tag: a project of the fixture upstream (`rocky-8`). */
  kojiTag: string;
  skipPhases: string[];
  composeType?: 'production' | 'nightly' | 'test' | 'ci' | 'development';
  createisoSkip: ArchVariantRule<boolean>[];
  failableDeliverables: ArchVariantRule<string[]>[];
  /** `lorax` where buildinstall runs (the fixture builds the boot tree with @rocky/iso's boot-tree builder, as the local site does for Rocky 9). */
  buildinstallMethod?: 'lorax';
  buildinstallSkip: ArchVariantRule<boolean>[];
  /** The version in .treeinfo and on the boot media (`8.10`); release_version when unset. */
  treeinfoVersion: string;
  /** pungi's image_name_format: one format, or per variant (the first regex matching the variant uid). */
  imageNameFormat: string | [RegExp, string][];
  imageVolidFormats: string[];
  mediaChecksums: ('md5' | 'sha1' | 'sha256')[];
  mediaChecksumOneFile: boolean;
}

/** The options the fixture understands, each as in pungi's configuration reference. */
const KNOWN = [
  'release_name',
  'release_short',
  'release_version',
  'release_type',
  'release_internal',
  'variants_file',
  'comps_file',
  'tree_arches',
  'hashed_directories',
  'pkgset_source',
  'pkgset_koji_tag',
  'koji_profile',
  'skip_phases',
  'compose_type',
  'createiso_skip',
  'failable_deliverables',
  'image_name_format',
  'buildinstall_method',
  'buildinstall_skip',
  'treeinfo_version',
  'image_volid_formats',
  'media_checksums',
  'media_checksum_one_file',
];

export class ConfigError extends Error {}

function fail(file: string, msg: string): never {
  throw new ConfigError(`${file}: ${msg}`);
}

const str = (file: string, v: ConfValue | undefined, key: string, dflt?: string): string => {
  if (v === undefined && dflt !== undefined) return dflt;
  if (typeof v !== 'string' || !v) fail(file, `${key} must be a non-empty string${v === undefined ? ' (missing)' : ''}`);
  return v;
};
const bool = (file: string, v: ConfValue | undefined, key: string, dflt: boolean): boolean => {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') fail(file, `${key} must be True or False`);
  return v;
};
const strList = (file: string, v: ConfValue | undefined, key: string): string[] => {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) fail(file, `${key} must be a list of strings`);
  return v as string[];
};

/** pungi's `[(variant_regex, {arch: value})]` options (get_arch_variant_data). */
function rules<T>(file: string, v: ConfValue | undefined, key: string, check: (x: ConfValue) => x is T & ConfValue): ArchVariantRule<T>[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) fail(file, `${key} must be a list of (variant regex, {arch: value}) tuples`);
  return v.map((entry, i) => {
    if (!(entry instanceof ConfTuple) || entry.length !== 2 || typeof entry[0] !== 'string' || typeof entry[1] !== 'object' || entry[1] === null || Array.isArray(entry[1]))
      fail(file, `${key}[${i}] must be a (variant regex, {arch: value}) tuple`);
    let re: RegExp;
    try {
      re = new RegExp(entry[0] as string);
    } catch (e) {
      return fail(file, `${key}[${i}]: invalid regex: ${(e as Error).message}`);
    }
    const byArch = entry[1] as Record<string, ConfValue>;
    for (const [arch, x] of Object.entries(byArch)) if (!check(x)) fail(file, `${key}[${i}].${arch} has the wrong type`);
    return [re, byArch as Record<string, T>];
  });
}

/** Values of a `[(variant_regex, {arch: value})]` option for one variant.arch (pungi's get_arch_variant_data: `*` is every binary arch). */
export function archVariantData<T>(list: ArchVariantRule<T | T[]>[], arch: string, variant: string): T[] {
  const out: T[] = [];
  for (const [re, byArch] of list) {
    if (!re.test(variant)) continue;
    for (const [a, v] of Object.entries(byArch)) {
      if (a !== '*' && a !== arch) continue;
      if (a === '*' && arch === 'src') continue;
      if (Array.isArray(v)) out.push(...v);
      else out.push(v);
    }
  }
  return out;
}

const xml = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  parseTagValue: false,
  isArray: (n) => ['variant', 'arch', 'group', 'environment', 'packagereq', 'groupid'].includes(n),
  ...xmlDecoding(),
});
type Node = Record<string, any>;
const text = (n: unknown): string => (typeof n === 'object' && n !== null ? String((n as Node)['#text'] ?? '') : String(n ?? '')).trim();

/** pungi's variants.xml: `<variants><variant id name type><arches><arch/>…</arches><groups><group/>…</groups>…`. */
export function parseVariants(body: string, file: string, treeArches?: string[]): Variant[] {
  let doc: Node;
  try {
    doc = xml.parse(body, true);
  } catch (e) {
    return fail(file, `not valid XML: ${(e as Error).message.split('\n')[0]}`);
  }
  const list = doc.variants?.variant as Node[] | undefined;
  if (!list?.length) fail(file, 'no <variant> in <variants>');
  return list.map((v, i) => {
    const uid = v['@id'];
    if (typeof uid !== 'string' || !/^[A-Za-z0-9]+$/.test(uid)) fail(file, `variant ${i}: id ${JSON.stringify(uid)} must be letters and digits`);
    const type = v['@type'] ?? 'variant';
    if (type !== 'variant') fail(file, `variant ${uid}: type ${type} is not supported by the fixture (only variant)`);
    let arches = ((v.arches?.arch ?? []) as unknown[]).map(text);
    if (!arches.length) fail(file, `variant ${uid} has no arches`);
    if (treeArches?.length) arches = arches.filter((a) => treeArches.includes(a));
    return {
      uid,
      name: String(v['@name'] ?? uid),
      type: 'variant' as const,
      arches,
      groups: ((v.groups?.group ?? []) as unknown[]).map(text),
      environments: ((v.environments?.environment ?? []) as unknown[]).map(text),
    };
  });
}

export function parseComps(body: string, file: string): NonNullable<PungiConfig['comps']> {
  let doc: Node;
  try {
    doc = xml.parse(body, true);
  } catch (e) {
    return fail(file, `not valid XML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!doc.comps) fail(file, 'not a comps document');
  const groups = ((doc.comps.group ?? []) as Node[]).map((g) => ({
    id: text(g.id),
    name: text(g.name),
    description: text(g.description),
    default: text(g.default) === 'true',
    uservisible: text(g.uservisible) !== 'false',
    packages: ((g.packagelist?.packagereq ?? []) as Node[]).map((p) => ({ name: text(p), type: String(p['@type'] ?? 'mandatory'), arch: p['@arch'] as string | undefined })),
  }));
  const environments = ((doc.comps.environment ?? []) as Node[]).map((e) => ({
    id: text(e.id),
    name: text(e.name),
    description: text(e.description),
    displayOrder: Number(text(e.display_order) || 0),
    groups: ((e.grouplist?.groupid ?? []) as unknown[]).map(text),
  }));
  return { groups, environments };
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The comps of one variant.arch (pungi's init phase): its groups, packages for other arches dropped, its environments. */
export function variantComps(comps: NonNullable<PungiConfig['comps']>, v: Variant, arch: string, file: string): string {
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<!DOCTYPE comps PUBLIC "-//Red Hat, Inc.//DTD Comps info//EN" "comps.dtd">', '<comps>'];
  for (const id of v.groups) {
    const g = comps.groups.find((x) => x.id === id) ?? fail(file, `variant ${v.uid} lists group ${id}, which the comps file does not have`);
    lines.push('  <group>', `    <id>${esc(g.id)}</id>`, `    <name>${esc(g.name)}</name>`, `    <description>${esc(g.description)}</description>`);
    lines.push(`    <default>${g.default}</default>`, `    <uservisible>${g.uservisible}</uservisible>`, '    <packagelist>');
    for (const p of g.packages) {
      if (p.arch && !p.arch.split(/[ ,]+/).includes(arch)) continue;
      lines.push(`      <packagereq type="${esc(p.type)}">${esc(p.name)}</packagereq>`);
    }
    lines.push('    </packagelist>', '  </group>');
  }
  for (const id of v.environments) {
    const e = comps.environments.find((x) => x.id === id) ?? fail(file, `variant ${v.uid} lists environment ${id}, which the comps file does not have`);
    lines.push('  <environment>', `    <id>${esc(e.id)}</id>`, `    <name>${esc(e.name)}</name>`, `    <description>${esc(e.description)}</description>`);
    lines.push(`    <display_order>${e.displayOrder}</display_order>`, '    <grouplist>');
    for (const g of e.groups.filter((x) => v.groups.includes(x))) lines.push(`      <groupid>${esc(g)}</groupid>`);
    lines.push('    </grouplist>', '  </environment>');
  }
  lines.push('</comps>', '');
  return lines.join('\n');
}

const isBool = (x: ConfValue): x is boolean => typeof x === 'boolean';
const isStrList = (x: ConfValue): x is string[] => Array.isArray(x) && x.every((y) => typeof y === 'string');

const DEFAULT_IMAGE_NAME = '{compose_id}-{variant}-{arch}-{disc_type}{disc_num}{suffix}';

function imageNameFormat(file: string, v: ConfValue | undefined): PungiConfig['imageNameFormat'] {
  if (v === undefined) return DEFAULT_IMAGE_NAME;
  if (typeof v === 'string' && v) return v;
  if (!v || typeof v !== 'object' || Array.isArray(v) || !Object.values(v).every((x) => typeof x === 'string' && x)) fail(file, 'image_name_format must be a format string or a dict of variant regex -> format string');
  return Object.entries(v as Record<string, string>).map(([re, f]) => {
    try {
      return [new RegExp(re), f];
    } catch (e) {
      return fail(file, `image_name_format: invalid regex ${re}: ${(e as Error).message}`);
    }
  });
}

/** The image name format of a variant (pungi's get_format_substs/get_iso_filename: a dict is matched by variant uid). */
export function imageNameFormatOf(conf: Pick<PungiConfig, 'imageNameFormat' | 'file'>, variant: string): string {
  if (typeof conf.imageNameFormat === 'string') return conf.imageNameFormat;
  const hit = conf.imageNameFormat.find(([re]) => re.test(variant));
  if (!hit) throw new ConfigError(`${conf.file}: image_name_format has no format for variant ${variant}`);
  return hit[1];
}

function buildinstallMethod(file: string, v: ConfValue | undefined): PungiConfig['buildinstallMethod'] {
  if (v === undefined) return undefined;
  if (v !== 'lorax') fail(file, `buildinstall_method ${JSON.stringify(v)}: pungi 4.3 supports lorax only`);
  return v;
}

/** Reads and checks a pungi config file (with its imports, variants file and comps file). */
export function loadPungiConfig(file: string): PungiConfig {
  let raw: Record<string, ConfValue>;
  try {
    raw = loadConf(file);
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  const unknown = Object.keys(raw).filter((k) => !KNOWN.includes(k));
  if (unknown.length) fail(file, `unrecognized option${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (the fixture's pungi knows ${KNOWN.join(', ')})`);
  const rel = (p: string) => (isAbsolute(p) ? p : join(dirname(file), p));
  const read = (key: string) => {
    const p = rel(str(file, raw[key], key));
    if (!existsSync(p)) fail(file, `${key}: ${p} does not exist`);
    return { path: p, body: readFileSync(p, 'utf8') };
  };
  if ((raw.pkgset_source ?? 'koji') !== 'koji') fail(file, `pkgset_source ${JSON.stringify(raw.pkgset_source)}: the fixture plays koji only`);
  const treeArches = raw.tree_arches === undefined ? undefined : strList(file, raw.tree_arches, 'tree_arches');
  const variantsFile = read('variants_file');
  const comps = raw.comps_file === undefined ? undefined : (() => {
    const c = read('comps_file');
    return parseComps(c.body, c.path);
  })();
  const skipPhases = strList(file, raw.skip_phases, 'skip_phases');
  for (const p of skipPhases) if (!(PHASES as readonly string[]).includes(p)) fail(file, `skip_phases: ${p} is not a pungi phase`);
  const composeType = raw.compose_type === undefined ? undefined : str(file, raw.compose_type, 'compose_type');
  if (composeType && !['production', 'nightly', 'test', 'ci', 'development'].includes(composeType)) fail(file, `compose_type ${composeType} is not a compose type`);
  const checksums = raw.media_checksums === undefined ? ['md5', 'sha1', 'sha256'] : strList(file, raw.media_checksums, 'media_checksums');
  for (const c of checksums) if (!['md5', 'sha1', 'sha256'].includes(c)) fail(file, `media_checksums: ${c} is not supported by the fixture (md5, sha1, sha256)`);
  const oneFile = bool(file, raw.media_checksum_one_file, 'media_checksum_one_file', false);
  if (oneFile && checksums.length !== 1) fail(file, 'media_checksum_one_file needs exactly one of media_checksums (as pungi requires)');
  const releaseType = str(file, raw.release_type, 'release_type', 'ga').toLowerCase();
  if (!['fast', 'ga', 'updates', 'updates-testing', 'eus', 'aus', 'els', 'tus', 'e4s'].includes(releaseType)) fail(file, `release_type ${releaseType} is not a productmd release type`);
  const variants = parseVariants(variantsFile.body, variantsFile.path, treeArches);
  for (const v of variants) if (comps) variantComps(comps, v, v.arches[0], variantsFile.path); // every group it names exists
  return {
    file,
    raw,
    releaseName: str(file, raw.release_name, 'release_name'),
    releaseShort: str(file, raw.release_short, 'release_short'),
    releaseVersion: str(file, raw.release_version, 'release_version'),
    releaseType,
    releaseInternal: bool(file, raw.release_internal, 'release_internal', false),
    variants,
    comps,
    hashedDirectories: bool(file, raw.hashed_directories, 'hashed_directories', false),
    kojiTag: str(file, raw.pkgset_koji_tag, 'pkgset_koji_tag'),
    skipPhases,
    composeType: composeType as PungiConfig['composeType'],
    createisoSkip: rules(file, raw.createiso_skip, 'createiso_skip', isBool),
    failableDeliverables: rules(file, raw.failable_deliverables, 'failable_deliverables', isStrList),
    imageNameFormat: imageNameFormat(file, raw.image_name_format),
    buildinstallMethod: buildinstallMethod(file, raw.buildinstall_method),
    buildinstallSkip: rules(file, raw.buildinstall_skip, 'buildinstall_skip', isBool),
    treeinfoVersion: str(file, raw.treeinfo_version, 'treeinfo_version', str(file, raw.release_version, 'release_version')),
    imageVolidFormats: raw.image_volid_formats === undefined ? ['{release_short}-{version} {variant}.{arch}', '{release_short}-{version} {arch}'] : strList(file, raw.image_volid_formats, 'image_volid_formats'),
    mediaChecksums: checksums as PungiConfig['mediaChecksums'],
    mediaChecksumOneFile: oneFile,
  };
}
