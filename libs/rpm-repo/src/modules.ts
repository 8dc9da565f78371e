// Module metadata (modules.yaml: a YAML stream of modulemd, modulemd-defaults, -obsoletes and
// -translations documents) read, merged and written back. Staging of a release that keeps old
// packages accumulates it: a stream the new compose no longer carries keeps its document while
// its packages are still in the repo (dnf cannot resolve the stream otherwise). Documents are
// written back as they were read (versions are 64-bit integers: read as BigInt, never rounded).

/** The YAML parser, loaded with the first modules.yaml read: every task loading @rocky/rpm-repo paid ~25 ms for it, most reading none. */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const yamlLib = (): typeof import('yaml') => require('yaml');

export interface ModuleDoc {
  /** `modulemd`, `modulemd-defaults`, `modulemd-obsoletes`, `modulemd-translations`. */
  document: string;
  /** The module's name. */
  module: string;
  /** The stream (a defaults document's is its default stream). */
  stream: string;
  /**
   * What makes two documents the same one: `modulemd:name:stream:version:context:arch`; a
   * module's defaults are one document (`modulemd-defaults:name`), the others per stream.
   */
  key: string;
  /** modulemd: its binary artifacts as `name-epoch:version-release.arch`. */
  artifacts: string[];
  /** modulemd: its source artifacts (`….src`). */
  sources: string[];
  /** The document as YAML, `---` to `...`. */
  text: string;
}

type Data = Record<string, unknown>;
const str = (v: unknown) => (v === undefined || v === null ? '' : String(v));

/** A NEVRA with its epoch (`0` when unset), the form modulemd artifacts and nevraOf compare in. */
export function withEpoch(nevra: string): string {
  const m = /^(.+)-(?:(\d+):)?([^-:]+)-([^-]+)\.([^.]+)$/.exec(nevra);
  return m ? `${m[1]}-${m[2] ?? '0'}:${m[3]}-${m[4]}.${m[5]}` : nevra;
}

/** A package's NEVRA as modulemd artifacts name it. */
export const nevraOf = (p: { name: string; epoch?: string | number | null; version: string; release: string; arch: string }) => `${p.name}-${p.epoch === undefined || p.epoch === null || p.epoch === '' ? '0' : p.epoch}:${p.version}-${p.release}.${p.arch}`;

/** Parses a modules.yaml stream; errors name `what` and the document. */
export function parseModules(yaml: string, what = 'modules.yaml'): ModuleDoc[] {
  const out: ModuleDoc[] = [];
  yamlLib().parseAllDocuments(yaml, { intAsBigInt: true, uniqueKeys: true }).forEach((doc, i) => {
    if (!('errors' in doc)) throw new Error(`${what}: document ${i + 1}: not a YAML document`);
    if (doc.errors.length) throw new Error(`${what}: document ${i + 1}: ${doc.errors[0].message.split('\n')[0]}`);
    const js = doc.toJS() as { document?: unknown; data?: Data } | null;
    if (js === null) return; // an empty document (a trailing `---`)
    const document = str(js.document);
    const data = js.data ?? {};
    if (!document.startsWith('modulemd')) throw new Error(`${what}: document ${i + 1}: not a module metadata document (document: ${JSON.stringify(js.document ?? null)})`);
    const module = str(document === 'modulemd' ? data.name : data.module);
    if (!module) throw new Error(`${what}: document ${i + 1} (${document}) names no module`);
    const stream = str(data.stream);
    let key: string;
    let rpms: string[] = [];
    if (document === 'modulemd') {
      key = ['modulemd', module, stream, str(data.version), str(data.context), str(data.arch)].join(':');
      rpms = (((data.artifacts as Data | undefined)?.rpms as unknown[] | undefined) ?? []).map((r) => withEpoch(String(r)));
    } else key = document === 'modulemd-defaults' ? `${document}:${module}` : `${document}:${module}:${stream}`;
    let text = doc.toString({ lineWidth: 0 });
    if (!text.startsWith('---')) text = `---\n${text}`;
    if (!/\n\.\.\.\n$/.test(text)) text = `${text.replace(/\n*$/, '\n')}...\n`;
    out.push({ document, module, stream, key, artifacts: rpms.filter((r) => !r.endsWith('.src')), sources: rpms.filter((r) => r.endsWith('.src')), text });
  });
  return out;
}

export const renderModules = (docs: ModuleDoc[]) => docs.map((d) => d.text).join('');

export interface ModuleMerge {
  docs: ModuleDoc[];
  /** Keys of documents kept from before that the new metadata no longer has. */
  carried: string[];
  /** Keys of documents dropped: every artifact gone from the repo, or their module gone. */
  dropped: string[];
}

/**
 * The module metadata of a repo that keeps old packages: every document of `current` (the new
 * compose's, as it is; it wins where both have one), then each modulemd document of `before`
 * that `current` does not have, as long as the repo still holds one of its artifacts (`has`, by
 * withEpoch NEVRA). A defaults, obsoletes or translations document of `before` stays while a
 * stream of its module does.
 */
export function mergeModules(before: ModuleDoc[], current: ModuleDoc[], has: (nevra: string) => boolean): ModuleMerge {
  const now = new Set(current.map((d) => d.key));
  const dropped: string[] = [];
  const live = (d: ModuleDoc) => !d.artifacts.length || d.artifacts.some(has);
  const docs = current;
  const streams = (list: ModuleDoc[]) => new Set(list.filter((d) => d.document === 'modulemd').map((d) => d.module));
  const old = before.filter((d) => !now.has(d.key));
  const kept = old.filter((d) => d.document === 'modulemd' && (live(d) || (dropped.push(d.key), false)));
  const modules = streams([...docs, ...kept]);
  const others = old.filter((d) => d.document !== 'modulemd' && (modules.has(d.module) || (dropped.push(d.key), false)));
  const carried = [...kept, ...others];
  return { docs: [...docs, ...carried], carried: carried.map((d) => d.key), dropped };
}
