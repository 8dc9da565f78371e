// What the release generators share: edits of a release file made in its text (each value
// replaced where it stands, so comments, flow style and quoting stay as the engineer wrote them),
// and the result validated by the config schema before anything is written, so a generator never
// leaves a release file that every nx command would refuse.
import type { Tree } from '@nx/devkit';
import { isMap, isScalar, parseDocument, type Document, type Pair, type Scalar } from 'yaml';
import { ConfigError, schemas, zodIssues, type Release } from '@rocky/config';

export const releaseFile = (name: string) => `releases/${name}/release.yaml`;

export function parseRelease(text: string, file: string): { doc: Document; release: Release } {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length) throw new ConfigError(file, doc.errors.map((e) => ({ path: `line ${e.linePos?.[0].line ?? '?'}`, message: e.message.split('\n')[0] })));
  const r = schemas().releaseSchema.safeParse(doc.toJS());
  if (!r.success) throw new ConfigError(file, zodIssues(r.error));
  return { doc, release: { ...r.data, name: file.split('/')[1] } };
}

export function readRelease(tree: Tree, name: string): { text: string; doc: Document; release: Release } {
  const file = releaseFile(name);
  const text = tree.read(file, 'utf-8');
  if (text === null) throw new Error(`${file} does not exist: no release ${name}`);
  return { text, ...parseRelease(text, file) };
}

/** A value to put at a path of the file (a scalar already there), or `undefined` to remove a block-style `key: value` line. */
export interface Edit {
  path: (string | number)[];
  value: string | number | undefined;
}

/** `text` with the edits made in place. */
export function editRelease(text: string, doc: Document, edits: Edit[]): string {
  const spans: { start: number; end: number; text: string }[] = [];
  for (const e of edits) {
    if (e.value === undefined) {
      const parent = e.path.length > 1 ? doc.getIn(e.path.slice(0, -1), true) : doc.contents;
      if (!isMap(parent)) continue;
      const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === e.path.at(-1)) as Pair<Scalar, Scalar> | undefined;
      if (!pair) continue;
      const start = text.lastIndexOf('\n', pair.key.range![0] - 1) + 1;
      const nl = text.indexOf('\n', (pair.value?.range ?? pair.key.range)![1]);
      spans.push({ start, end: nl < 0 ? text.length : nl + 1, text: '' });
      continue;
    }
    const node = doc.getIn(e.path, true);
    if (!isScalar(node) || !node.range) throw new Error(`${e.path.join('.')}: not a value of the file`);
    const [start, end] = node.range;
    const quote = /^["']/.test(text[start]) ? text[start] : '';
    spans.push({ start, end, text: `${quote}${e.value}${quote}` });
  }
  let out = text;
  for (const s of spans.sort((a, b) => b.start - a.start)) out = out.slice(0, s.start) + s.text + out.slice(s.end);
  return out;
}

/** Validates, then writes. */
export function writeRelease(tree: Tree, name: string, text: string): Release {
  const file = releaseFile(name);
  const { release } = parseRelease(text, file);
  tree.write(file, text);
  return release;
}

/** The RC level restarted at 1, keeping its kind: RC2 → RC1, BETA2 → BETA1, LH3 → LH1. */
export const firstRc = (rc: string) => rc.replace(/\d+$/, '') + '1';

export function wholeNumber(value: unknown, option: string): number {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw new Error(`--${option}: expected a whole number >= 0, got ${JSON.stringify(value)}`);
  return n;
}
