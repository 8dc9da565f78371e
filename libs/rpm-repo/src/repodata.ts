// Reading rpm-md repodata (repomd.xml, primary.xml) with an XML parser, and checking the
// location hrefs it names: a repo is untrusted input, and an href must never reach outside
// the tree it is synced into, nor send a reader of the synced tree anywhere else.
import { XMLParser } from 'fast-xml-parser';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { createGunzip, gunzipSync } from 'node:zlib';
import { pipeline, type Readable } from 'node:stream';
import { join, posix } from 'node:path';
import { runPipe, runSync } from '@rocky/exec';
import { xmlDecoding } from './xml';
import { scanPrimary } from './primary';

export interface RepomdRecord {
  type: string;
  href: string;
  sha256: string;
  size?: number;
  openSha256?: string;
}
export interface Repomd {
  revision?: string;
  records: RepomdRecord[];
}

export interface RpmPackage {
  name: string;
  arch: string;
  epoch: string;
  version: string;
  release: string;
  href: string;
  sha256: string;
  size: number;
  sourcerpm?: string;
}

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  isArray: (name) => name === 'data' || name === 'package',
  // requires/provides/files are not needed here: skip parsing them (primary is large).
  stopNodes: ['metadata.package.format.rpm:provides', 'metadata.package.format.rpm:requires', 'metadata.package.format.file'],
  parseTagValue: false,
  ...xmlDecoding(),
});

type Node = Record<string, unknown>;
const attr = (n: unknown, a: string) => (n as Node | undefined)?.[`@${a}`] as string | undefined;
const text = (n: unknown) => (typeof n === 'object' && n !== null ? ((n as Node)['#text'] as string) : (n as string));

function requireSha256(what: string, type: string | undefined, value: string | undefined): string {
  if (type !== 'sha256') throw new Error(`${what}: checksum type ${type ?? '(none)'} is not supported (upstream must publish sha256)`);
  if (!value || !/^[0-9a-f]{64}$/.test(value)) throw new Error(`${what}: malformed sha256 "${value}"`);
  return value;
}

export function parseRepomd(xml: string, what = 'repomd.xml'): Repomd {
  let doc: Node;
  try {
    doc = parser.parse(xml, true) as Node;
  } catch (e) {
    throw new Error(`${what}: not valid XML: ${(e as Error).message.split('\n')[0]}`);
  }
  const repomd = doc.repomd as Node | undefined;
  if (!repomd || !Array.isArray(repomd.data)) throw new Error(`${what}: not a repomd document`);
  noBase(repomd, what);
  const records = (repomd.data as Node[]).map((d) => {
    const type = attr(d, 'type') ?? '';
    noBase(d, `${what} record ${type}`);
    noBase(d.location, `${what} record ${type}: location`);
    const href = attr(d.location, 'href');
    if (!href) throw new Error(`${what}: record ${type} has no location`);
    return {
      type,
      href: safeHref(href, `${what} ${type}`),
      sha256: requireSha256(`${what} ${type}`, attr(d.checksum, 'type'), text(d.checksum)),
      size: d.size !== undefined ? Number(text(d.size)) : undefined,
      openSha256: d['open-checksum'] ? text(d['open-checksum']) : undefined,
    };
  });
  return { revision: repomd.revision !== undefined ? String(text(repomd.revision)) : undefined, records };
}

/** The tool that decompresses a repodata file, by its suffix (gzip is done natively). */
const decompressor = (href: string) => (href.endsWith('.xz') ? 'xz' : href.endsWith('.zst') ? 'zstd' : href.endsWith('.bz2') ? 'bzip2' : undefined);

/** A repodata stream decompressed by its href's suffix (.gz natively; .xz, .zst, .bz2 through their tools, streaming). */
export function decompressStream(source: Readable, href: string): Readable {
  if (href.endsWith('.gz')) return pipeline(source, createGunzip(), () => {});
  const tool = decompressor(href);
  return tool ? runPipe([tool, '-dc'], source) : source;
}

/** A repodata file's content, decompressed; errors name the file (and the tool, with an install hint when it is missing). */
export async function readRepodata(file: string, href: string = file): Promise<Buffer> {
  const chunks: Buffer[] = [];
  try {
    for await (const c of decompressStream(createReadStream(file), href)) chunks.push(c as Buffer);
  } catch (e) {
    throw new Error(`${file}: cannot decompress: ${(e as Error).message}`, { cause: e });
  }
  return Buffer.concat(chunks);
}

/**
 * Decompresses repodata in memory, synchronously. For the callers that cannot await yet
 * (readRepoPackages, the iso's hasCoreGroup, staging's regenerate); readRepodata streams.
 */
export function decompress(data: Buffer, href: string): Buffer {
  if (href.endsWith('.gz')) return gunzipSync(data);
  const tool = decompressor(href);
  if (!tool) return data;
  try {
    return runSync([tool, '-dc'], { input: data });
  } catch (e) {
    throw new Error(`${href}: cannot decompress: ${(e as Error).message}`, { cause: e });
  }
}

/** Packages a repo tree's repodata lists (undefined when the tree has no repodata). */
export function readRepoPackages(treeDir: string): RpmPackage[] | undefined {
  const repomdFile = join(treeDir, 'repodata', 'repomd.xml');
  if (!existsSync(repomdFile)) return undefined;
  const repomd = parseRepomd(readFileSync(repomdFile, 'utf8'), repomdFile);
  const primary = repomd.records.find((r) => r.type === 'primary');
  if (!primary) throw new Error(`${repomdFile} has no primary record`);
  const file = join(treeDir, primary.href);
  return parsePrimary(decompress(readFileSync(file), primary.href).toString('utf8'), file);
}

export function parsePrimary(xml: string, what = 'primary.xml'): RpmPackage[] {
  const noBaseIn = (attrs: Map<string, string>, where: string) => {
    for (const a of ['xml:base', 'base']) if (attrs.has(a)) throw new Error(`${where} has ${a} "${attrs.get(a)}" (files must be fetched from the repo itself)`);
  };
  try {
    return scanPrimary(xml, {
      element(el, attrs, pkgName) {
        noBaseIn(attrs, el === 'metadata' ? what : el === 'package' ? `${what} package` : `${what} package ${pkgName}: location`);
      },
      package(p) {
        const name = p.name ?? '';
        const href = p.location?.get('href');
        if (!href) throw new Error(`${what}: package ${name} has no location`);
        return {
          name,
          arch: p.arch ?? '',
          epoch: p.version?.get('epoch') ?? '0',
          version: p.version?.get('ver') ?? '',
          release: p.version?.get('rel') ?? '',
          href: safeHref(href, `${what} package ${name}`),
          sha256: requireSha256(`${what} package ${name}`, p.checksum?.type, p.checksum?.value),
          size: Number(p.size?.get('package') ?? NaN),
          sourcerpm: p.sourcerpm || undefined,
        };
      },
    });
  } catch (e) {
    const m = (e as Error).message;
    if (m.startsWith('not valid XML') || m.startsWith('not a primary')) throw new Error(`${what}: ${m}`);
    throw e;
  }
}

/**
 * Refuses an `xml:base` (or a libsolv-style `base`) on a repodata element: it makes dnf fetch the
 * file from another place than the repo, so a synced tree would send its readers elsewhere.
 */
function noBase(n: unknown, what: string): void {
  for (const a of ['xml:base', 'base']) {
    const v = attr(n, a);
    if (v !== undefined) throw new Error(`${what} has ${a} "${v}" (files must be fetched from the repo itself)`);
  }
}

/**
 * A location href from repodata, made safe to join under a tree: relative, normalized, no
 * `..` segment, no empty or dot segments, no URL scheme (`file:`, `http:`: dnf would read the
 * file from there), no backslashes, NULs or control characters. Anything else is refused.
 */
export function safeHref(href: string, what: string): string {
  const bad = () => new Error(`${what}: unsafe location href "${href}" (must be a relative path inside the repo)`);
  if (!href || /[\x00-\x1f\x7f\\]/.test(href) || /^[A-Za-z][A-Za-z0-9+.-]*:/.test(href) || href.includes('://') || posix.isAbsolute(href)) throw bad();
  const parts = href.split('/');
  if (parts.some((s) => s === '' || s === '.' || s === '..')) throw bad();
  return posix.normalize(href);
}

export interface Advisory {
  /** `RLSA-2026:1234`. */
  id: string;
  type: string;
  /** NEVRAs (`name-epoch:version-release.arch`) it updates. */
  packages: string[];
}

const updateinfoParser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', isArray: (name) => ['update', 'collection', 'package'].includes(name), parseTagValue: false, ...xmlDecoding() });

/** updateinfo.xml's advisories (the errata dnf shows with `dnf updateinfo`). */
export function parseUpdateinfo(xml: string, what = 'updateinfo.xml'): Advisory[] {
  let doc: Node;
  try {
    doc = updateinfoParser.parse(xml, true) as Node;
  } catch (e) {
    throw new Error(`${what}: not valid XML: ${(e as Error).message.split('\n')[0]}`);
  }
  const updates = ((doc.updates as Node | undefined)?.update as Node[] | undefined) ?? [];
  return updates.map((u) => ({
    id: text(u.id),
    type: attr(u, 'type') ?? '',
    packages: (((u.pkglist as Node | undefined)?.collection as Node[] | undefined) ?? []).flatMap((c) =>
      ((c.package as Node[] | undefined) ?? []).map((p) => `${attr(p, 'name')}-${attr(p, 'epoch') ?? '0'}:${attr(p, 'version')}-${attr(p, 'release')}.${attr(p, 'arch')}`),
    ),
  }));
}
