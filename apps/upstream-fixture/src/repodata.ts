// Reading a tree's repodata with a real XML parser, decoding as XML does (createrepo_c writes
// non-ASCII file names as character references).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { XMLParser } from 'fast-xml-parser';
import { xmlDecoding } from '@rocky/rpm-repo';

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  isArray: (n) => ['data', 'package', 'rpm:entry'].includes(n),
  ...xmlDecoding(),
});

export interface RepomdData {
  type: string;
  href: string;
  checksum: string;
}

export function readRepomd(tree: string): RepomdData[] {
  const md = parser.parse(readFileSync(join(tree, 'repodata', 'repomd.xml'), 'utf8'));
  return (md.repomd.data as Record<string, any>[]).map((d) => ({
    type: d['@_type'],
    href: d.location['@_href'],
    checksum: typeof d.checksum === 'string' ? d.checksum : d.checksum['#text'],
  }));
}

export interface PrimaryPackage {
  name: string;
  arch: string;
  version: string;
  release: string;
  href: string;
  checksum: string;
  requires: string[];
}

export function readPrimary(tree: string): PrimaryPackage[] {
  const prim = readRepomd(tree).find((d) => d.type === 'primary');
  if (!prim) throw new Error(`${tree}: repomd.xml lists no primary`);
  const doc = parser.parse(gunzipSync(readFileSync(join(tree, prim.href))).toString('utf8'));
  return ((doc.metadata.package ?? []) as Record<string, any>[]).map((p) => ({
    name: p.name,
    arch: p.arch,
    version: p.version['@_ver'],
    release: p.version['@_rel'],
    href: p.location['@_href'],
    checksum: p.checksum['#text'],
    requires: ((p.format?.['rpm:requires']?.['rpm:entry'] ?? []) as Record<string, string>[]).map((e) => e['@_name']),
  }));
}
