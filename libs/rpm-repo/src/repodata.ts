// Reading rpm-md repodata (repomd.xml, primary.xml) with an XML parser, and checking the
// location hrefs it names: a repo is untrusted input, and an href must never reach outside
// the tree it is synced into.
import { XMLParser } from 'fast-xml-parser';
import { gunzipSync } from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { posix } from 'node:path';

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
  const records = (repomd.data as Node[]).map((d) => {
    const type = attr(d, 'type') ?? '';
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

/** Decompresses repodata by its suffix: gz natively, xz and zstd through their tools. */
export function decompress(data: Buffer, href: string): Buffer {
  if (href.endsWith('.gz')) return gunzipSync(data);
  const tool = href.endsWith('.xz') ? 'xz' : href.endsWith('.zst') ? 'zstd' : href.endsWith('.bz2') ? 'bzip2' : undefined;
  if (!tool) return data;
  const r = spawnSync(tool, ['-dc'], { input: data, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`${href}: ${tool} -dc failed: ${r.stderr?.toString().trim() || r.error?.message}`);
  return r.stdout;
}

export function parsePrimary(xml: string, what = 'primary.xml'): RpmPackage[] {
  let doc: Node;
  try {
    doc = parser.parse(xml, true) as Node;
  } catch (e) {
    throw new Error(`${what}: not valid XML: ${(e as Error).message.split('\n')[0]}`);
  }
  const md = doc.metadata as Node | undefined;
  if (!md) throw new Error(`${what}: not a primary metadata document`);
  const pkgs = (md.package as Node[] | undefined) ?? [];
  return pkgs.map((p) => {
    const name = text(p.name);
    const href = attr(p.location, 'href');
    if (!href) throw new Error(`${what}: package ${name} has no location`);
    return {
      name,
      arch: text(p.arch),
      epoch: attr(p.version, 'epoch') ?? '0',
      version: attr(p.version, 'ver') ?? '',
      release: attr(p.version, 'rel') ?? '',
      href: safeHref(href, `${what} package ${name}`),
      sha256: requireSha256(`${what} package ${name}`, attr(p.checksum, 'type'), text(p.checksum)),
      size: Number(attr(p.size, 'package') ?? NaN),
      sourcerpm: text((p.format as Node | undefined)?.['rpm:sourcerpm']) || undefined,
    };
  });
}

/**
 * A location href from repodata, made safe to join under a tree: relative, normalized, no
 * `..` segment, no empty or dot segments, no backslashes or NULs. Anything else is refused.
 */
export function safeHref(href: string, what: string): string {
  const bad = () => new Error(`${what}: unsafe location href "${href}" (must be a relative path inside the repo)`);
  if (!href || href.includes('\0') || href.includes('\\') || href.includes('://') || posix.isAbsolute(href)) throw bad();
  const parts = href.split('/');
  if (parts.some((s) => s === '' || s === '.' || s === '..')) throw bad();
  return posix.normalize(href);
}
