// The code a stage runs, as Nx inputs of its targets: the files of libs/stages its module reaches
// through imports, and the lib projects they import with every lib those depend on (the edges of
// the project graph, read from the same imports). So a comment in libs/publish leaves sync, the
// ISOs, cloud and finalize cached, and a change to libs/iso reruns the ISO targets only.
//
// Type-only imports carry no code and are not followed. Apps are not followed either: an app
// plays an outside system (the fixture upstream), and what it serves enters sync's hash through
// the upstream fingerprint, not through its code.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';

const STAGES = 'libs/stages/src';
/** The runner every stage runs under; the registry and the index are hashed as files, not followed (they import every stage). */
const RUNNER = ['stage.ts', 'context.ts'];
const ENTRIES = ['registry.ts', 'index.ts'];

const isTest = (f: string) => /\.(test|spec)\.ts$/.test(f);

/** Module specifiers a file imports for their code: static imports and re-exports that are not type-only, and dynamic import(). */
export function codeImports(text: string): string[] {
  const out: string[] = [];
  const stmt = /(?:^|\n)\s*(?:import|export)\s+(type\s+)?([^;'"]*?)\s*from\s*'([^']+)'/g;
  for (const m of text.matchAll(stmt)) {
    if (m[1]) continue;
    const braces = /^\{([^}]*)\}$/.exec(m[2].trim());
    const names = braces ? braces[1].split(',').map((s) => s.trim()).filter(Boolean) : [];
    if (names.length && names.every((n) => n.startsWith('type '))) continue;
    out.push(m[3]);
  }
  for (const m of text.matchAll(/(?:^|\n)\s*import\s+'([^']+)'/g)) out.push(m[1]);
  for (const m of text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)) out.push(m[1]);
  return out;
}

/** `@rocky/<name>` → the directory of the project it names, from tsconfig.base.json's paths (the one alias list). */
export function workspaceAliases(root: string): Map<string, string> {
  const { paths } = JSON.parse(readFileSync(join(root, 'tsconfig.base.json'), 'utf8')).compilerOptions as { paths: Record<string, string[]> };
  return new Map(Object.entries(paths).map(([name, [target]]) => [name, target.replace(/\/src\/index\.ts$/, '')]));
}

function sourceFiles(root: string, dir: string): string[] {
  const abs = join(root, dir);
  if (!existsSync(abs)) return [];
  return readdirSync(abs, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !isTest(f) && !f.split('/').includes('testing') && !f.split('/').includes('testdata'))
    .map((f) => posix.join(dir, f))
    .sort();
}

function resolveRelative(root: string, from: string, spec: string): string | undefined {
  const base = posix.join(posix.dirname(from), spec);
  for (const c of [`${base}.ts`, `${base}/index.ts`, base]) if (c.endsWith('.ts') && existsSync(join(root, c))) return c;
  return undefined;
}

/** The libs a lib depends on, transitively, itself included (libs only: see above for apps). */
function libClosure(root: string, aliases: Map<string, string>, start: string[]): string[] {
  const seen = new Set<string>();
  const todo = [...start];
  while (todo.length) {
    const name = todo.pop()!;
    if (seen.has(name)) continue;
    seen.add(name);
    for (const f of sourceFiles(root, `${aliases.get(name)}/src`)) {
      for (const spec of codeImports(readFileSync(join(root, f), 'utf8'))) {
        if (aliases.get(spec)?.startsWith('libs/') && !seen.has(spec)) todo.push(spec);
      }
    }
  }
  return [...seen].sort();
}

export interface StageCode {
  /** Files of libs/stages, relative to the workspace root. */
  files: string[];
  /** Lib projects (`@rocky/<dir>`), libs/stages excepted: its files are listed one by one. */
  libs: string[];
}

/** The code of the stage whose module is `libs/stages/src/<stage>.ts`. */
export function stageCode(root: string, stage: string): StageCode {
  const aliases = workspaceAliases(root);
  const files = new Set<string>();
  const libs = new Set<string>();
  const todo = [stage, ...RUNNER.map((f) => f.replace(/\.ts$/, ''))].map((m) => posix.join(STAGES, `${m}.ts`));
  if (!existsSync(join(root, todo[0]))) throw new Error(`${todo[0]}: no such stage module`);
  while (todo.length) {
    const f = todo.pop()!;
    if (files.has(f)) continue;
    files.add(f);
    for (const spec of codeImports(readFileSync(join(root, f), 'utf8'))) {
      if (spec.startsWith('.')) {
        const r = resolveRelative(root, f, spec);
        if (r && dirname(r).startsWith(STAGES)) todo.push(r);
      } else if (aliases.get(spec)?.startsWith('libs/') && spec !== '@rocky/stages') libs.add(spec);
    }
  }
  for (const e of ENTRIES) files.add(posix.join(STAGES, e));
  return { files: [...files].sort(), libs: libClosure(root, aliases, [...libs]) };
}

/** The Nx inputs of a stage's code: its files of libs/stages, and the `production` files of its libs. */
export function stageInputs(root: string, stage: string) {
  const { files, libs } = stageCode(root, stage);
  return [...files.map((f) => `{workspaceRoot}/${f}`), { input: 'production', projects: libs }];
}
