// An errata document (updateinfo.xml) cut down to one repo tree: each advisory keeps only the
// packages the tree holds, and an advisory left with none is dropped, so `dnf updateinfo` on a
// tree shows what applies to it and nothing of another repo. Everything else of the document is
// kept as it was (the parser keeps the order of every element).
import { XMLBuilder, XMLParser } from 'fast-xml-parser';
import { xmlDecoding } from './xml';
import { nevraOf } from './modules';

const orderedOpts = { preserveOrder: true, ignoreAttributes: false, attributeNamePrefix: '@_', parseTagValue: false, trimValues: true } as const;
type Node = Record<string, any>;
const tagOf = (n: Node) => Object.keys(n).find((k) => k !== ':@')!;

export interface UpdateinfoFilter {
  xml: string;
  /** Ids of the advisories kept (with only the tree's packages). */
  kept: string[];
  /** Ids of the advisories none of whose packages the tree holds. */
  dropped: string[];
}

/** `xml` with each advisory's pkglist cut to the packages `has` (by nevraOf NEVRA) says the tree holds. */
export function filterUpdateinfo(xml: string, has: (nevra: string) => boolean, what = 'updateinfo.xml'): UpdateinfoFilter {
  let doc: Node[];
  try {
    doc = new XMLParser({ ...orderedOpts, ...xmlDecoding() }).parse(xml, true) as Node[];
  } catch (e) {
    throw new Error(`${what}: not valid XML: ${(e as Error).message.split('\n')[0]}`);
  }
  const root = doc.find((n) => tagOf(n) === 'updates');
  if (!root) throw new Error(`${what}: not an updateinfo document (no <updates>)`);
  const kept: string[] = [];
  const dropped: string[] = [];
  root.updates = (root.updates as Node[]).filter((u) => {
    if (tagOf(u) !== 'update') return true;
    const id = String((u.update as Node[]).find((n) => tagOf(n) === 'id')?.id?.[0]?.['#text'] ?? '?');
    let left = 0;
    for (const pl of (u.update as Node[]).filter((n) => tagOf(n) === 'pkglist')) {
      pl.pkglist = (pl.pkglist as Node[]).filter((c) => {
        if (tagOf(c) !== 'collection') return true;
        c.collection = (c.collection as Node[]).filter((p) => {
          if (tagOf(p) !== 'package') return true;
          const a = p[':@'] ?? {};
          return has(nevraOf({ name: a['@_name'], epoch: a['@_epoch'], version: a['@_version'], release: a['@_release'], arch: a['@_arch'] }));
        });
        const n = (c.collection as Node[]).filter((p) => tagOf(p) === 'package').length;
        left += n;
        return n > 0;
      });
    }
    (left ? kept : dropped).push(id);
    return left > 0;
  });
  const out = new XMLBuilder({ ...orderedOpts, format: true, indentBy: '  ', suppressEmptyNode: true }).build(doc) as string;
  return { xml: out.endsWith('\n') ? out : `${out}\n`, kept, dropped };
}
