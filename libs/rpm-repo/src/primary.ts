// primary.xml read by a small XML 1.0 scanner of its own: the general parser built a tree of
// every package's provides/requires/files to throw it away, about 1 ms per package (4 of the
// 6 CPU-seconds of a 2,000-package sync); this reads each tag with one regex and keeps only
// what a sync needs. Still a well-formedness check of the whole document: tags nest and close,
// attributes are quoted, references are XML's (the five entities and character references;
// other names stay as written, as before; a reference to NUL is refused), no DOCTYPE.
import type { RpmPackage } from './repodata';

// One tag: name, attributes (quoted values without `<`), optional `/`. Sticky: it must match at `<`.
const TAG = /<([A-Za-z_:][-\w.:]*)((?:\s+[A-Za-z_:][-\w.:]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>/y;
const ATTR = /([A-Za-z_:][-\w.:]*)\s*=\s*(?:"([^"<]*)"|'([^'<]*)')/g;
const END = /<\/([A-Za-z_:][-\w.:]*)\s*>/y;
const REF = /&(?:#x([0-9a-fA-F]+)|#([0-9]+)|(amp|lt|gt|quot|apos));/g;
const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

class XmlError extends Error {}

function decode(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(REF, (_m, hex: string | undefined, dec: string | undefined, name: string | undefined) => {
    if (name) return NAMED[name];
    const cp = hex !== undefined ? parseInt(hex, 16) : Number(dec);
    if (cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) throw new XmlError(`character reference ${_m} is not allowed`);
    return String.fromCodePoint(cp);
  });
}

function attributes(raw: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of raw.matchAll(ATTR)) {
    if (out.has(m[1])) throw new XmlError(`attribute ${m[1]} given twice`);
    out.set(m[1], decode(m[2] ?? m[3]));
  }
  return out;
}

/** Elements of a package whose text or attributes a sync keeps, by depth (package = 2). */
const WANT = new Set(['name', 'arch', 'version', 'checksum', 'size', 'location', 'format']);

export interface PrimaryHooks {
  /** Checks an element's attributes (xml:base) before anything else of it is used. */
  element(what: 'metadata' | 'package' | 'location', attrs: Map<string, string>, pkgName: string | undefined): void;
  package(p: { name?: string; arch?: string; version?: Map<string, string>; checksum?: { type?: string; value: string }; size?: Map<string, string>; location?: Map<string, string>; sourcerpm?: string }): RpmPackage;
}

/** Scans `xml` (a primary.xml document) and returns what `hooks.package` makes of each package, in order. */
export function scanPrimary(xml: string, hooks: PrimaryHooks): RpmPackage[] {
  const out: RpmPackage[] = [];
  const stack: string[] = [];
  let pos = 0;
  let root = false;
  let pkg: Parameters<PrimaryHooks['package']>[0] | undefined;
  let attrsOf: Map<string, string> | undefined;
  let text = ''; // text of the element being kept
  let keep: 'name' | 'arch' | 'checksum' | 'sourcerpm' | undefined;
  const fail = (msg: string, at = pos) => {
    const line = xml.slice(0, at).split('\n').length;
    return new XmlError(`${msg} (line ${line})`);
  };
  try {
    while (pos < xml.length) {
      const lt = xml.indexOf('<', pos);
      const end = lt < 0 ? xml.length : lt;
      if (end > pos) {
        const chunk = xml.slice(pos, end);
        if (stack.length === 0) {
          if (chunk.trim()) throw fail('text outside the document element');
        } else if (keep) text += decode(chunk);
        else if (chunk.includes('&')) decode(chunk); // a bad reference is an error wherever it is
      }
      if (lt < 0) break;
      pos = lt;
      const c1 = xml.charCodeAt(lt + 1);
      if (c1 === 47 /* / */) {
        END.lastIndex = lt;
        const m = END.exec(xml);
        if (!m) throw fail('malformed end tag');
        const open = stack.pop();
        if (open !== m[1]) throw fail(open ? `</${m[1]}> closes <${open}>` : `</${m[1]}> closes nothing`);
        pos = END.lastIndex;
        const depth = stack.length + 1;
        if (keep && ((depth === 3 && m[1] === keep) || (depth === 4 && keep === 'sourcerpm'))) {
          const v = text.trim();
          if (keep === 'checksum') pkg!.checksum = { type: attrsOf?.get('type'), value: v };
          else pkg![keep] = v;
          keep = undefined;
          text = '';
        }
        if (depth === 2 && pkg) {
          out.push(hooks.package(pkg));
          pkg = undefined;
        }
        continue;
      }
      if (c1 === 63 /* ? */) {
        const e = xml.indexOf('?>', lt + 2);
        if (e < 0) throw fail('unterminated processing instruction');
        pos = e + 2;
        continue;
      }
      if (c1 === 33 /* ! */) {
        if (xml.startsWith('<!--', lt)) {
          const e = xml.indexOf('-->', lt + 4);
          if (e < 0) throw fail('unterminated comment');
          pos = e + 3;
        } else if (xml.startsWith('<![CDATA[', lt)) {
          if (stack.length === 0) throw fail('CDATA outside the document element');
          const e = xml.indexOf(']]>', lt + 9);
          if (e < 0) throw fail('unterminated CDATA section');
          if (keep) text += xml.slice(lt + 9, e);
          pos = e + 3;
        } else throw fail(xml.startsWith('<!DOCTYPE', lt) ? 'a DOCTYPE is not allowed in repodata' : 'malformed markup');
        continue;
      }
      TAG.lastIndex = lt;
      const m = TAG.exec(xml);
      if (!m) throw fail('malformed tag');
      pos = TAG.lastIndex;
      const [, name, rawAttrs, selfClosing] = m;
      const depth = stack.length + 1;
      if (depth === 1) {
        if (root) throw fail('a second document element');
        root = true;
        if (name !== 'metadata') throw new Error('not a primary metadata document');
        hooks.element('metadata', attributes(rawAttrs), undefined);
      } else if (depth === 2 && name === 'package') {
        const a = attributes(rawAttrs);
        pkg = {};
        attrsOf = undefined;
        hooks.element('package', a, undefined);
      } else if (depth === 3 && pkg && WANT.has(name)) {
        const a = rawAttrs ? attributes(rawAttrs) : new Map<string, string>();
        if (name === 'location') {
          hooks.element('location', a, pkg.name);
          pkg.location = a;
        } else if (name === 'version') pkg.version = a;
        else if (name === 'size') pkg.size = a;
        else if (name !== 'format' && !selfClosing) {
          keep = name as 'name' | 'arch' | 'checksum';
          attrsOf = a;
          text = '';
        } else if (name === 'checksum') pkg.checksum = { type: a.get('type'), value: '' };
      } else if (depth === 4 && pkg && name === 'rpm:sourcerpm' && stack[2] === 'format' && !selfClosing) {
        keep = 'sourcerpm';
        text = '';
      } else if (rawAttrs && rawAttrs.includes('&')) attributes(rawAttrs); // references checked everywhere
      if (!selfClosing) stack.push(name);
      else if (depth === 2 && pkg) {
        out.push(hooks.package(pkg));
        pkg = undefined;
      }
    }
    if (!root) throw fail('no document element');
    if (stack.length) throw fail(`<${stack[stack.length - 1]}> is not closed at the end of the document`);
  } catch (e) {
    if (e instanceof XmlError) throw new Error(`not valid XML: ${/\(line \d+\)$/.test(e.message) ? e.message : fail(e.message).message}`);
    throw e;
  }
  return out;
}
