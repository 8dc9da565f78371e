// The upstream fingerprints (Nx `runtime` inputs of sync and cloud) run on every hash of those
// tasks, a warm run included. Run as TypeScript through @swc-node/register each cost ~0.35 s on
// a quiet machine (1.3 CPU-s, most of it loading the register and transpiling the libs it
// imports); so the plugin compiles the workspace's sources to plain CommonJS once, under a
// directory named by their content hash (see OUT), and the runtime command is a plain `node` start.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

/** What the fingerprint script can import: every library and app source, and the script itself. */
const SOURCE_DIRS = ['libs', 'apps', 'tools/scripts'];
/** Other files the sources import (http.ts reads the version from package.json), copied as they are. */
const DATA = ['package.json'];
// Beside Nx's own project-graph data (written by every nx command, and cleared by `nx reset`), not
// in dist/: target outputs live there, and a dry run must not add to them.
const OUT = '.nx/workspace-data/releng-fingerprint';
const SCRIPT = 'tools/scripts/upstream-fingerprint';

function sources(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
      const rel = `${dir}/${e.name}`;
      if (e.isDirectory()) {
        if (e.name !== 'node_modules' && !e.name.startsWith('.')) walk(rel);
      } else if (e.name.endsWith('.ts') && !/\.(test|spec|d)\.ts$/.test(e.name)) out.push(rel);
    }
  };
  for (const d of SOURCE_DIRS) if (existsSync(join(root, d))) walk(d);
  return out.sort();
}

const built = new Map<string, string>();

/**
 * The compiled fingerprint script (relative to `root`), compiled now unless a build of exactly
 * these sources is there. Concurrent Nx processes each build into a private temp dir and rename
 * it into place; the first rename wins and the others' builds are dropped.
 */
export function fingerprintScript(root: string): string {
  const files = sources(root);
  const tsconfig = readFileSync(join(root, 'tsconfig.base.json'));
  const h = createHash('sha256').update(tsconfig);
  for (const f of DATA) h.update(`${f}\0`).update(readFileSync(join(root, f)));
  const texts = files.map((f) => readFileSync(join(root, f)));
  files.forEach((f, i) => h.update(`${f}\0${texts[i].length}\0`).update(texts[i]));
  const key = h.digest('hex').slice(0, 16);
  const dir = `${OUT}/${key}`;
  const script = `${dir}/${SCRIPT}.js`;
  if (built.get(root) === key || existsSync(join(root, script))) return (built.set(root, key), script);

  // Loaded only when compiling: most graph computations find the build there.
  const { transformSync } = require('@swc/core') as typeof import('@swc/core');
  const { paths } = (JSON.parse(tsconfig.toString()) as { compilerOptions: { paths: Record<string, string[]> } }).compilerOptions;
  const tmp = join(root, `${dir}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  try {
    files.forEach((f, i) => {
      const { code } = transformSync(texts[i].toString(), {
        filename: join(root, f),
        swcrc: false,
        configFile: false,
        sourceMaps: false,
        // Path aliases (@rocky/*) become relative requires, valid in the mirrored tree.
        jsc: { parser: { syntax: 'typescript' }, target: 'es2022', baseUrl: root, paths },
        module: { type: 'commonjs' },
      });
      const out = join(tmp, f.replace(/\.ts$/, '.js'));
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, code);
    });
    for (const f of DATA) writeFileSync(join(tmp, f), readFileSync(join(root, f)));
    try {
      renameSync(tmp, join(root, dir));
    } catch (e) {
      if (!existsSync(join(root, script))) throw e; // else another process put the same build there first
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  // Older builds go once an hour has passed (a running Nx process may still use a recent one).
  for (const old of readdirSync(join(root, OUT))) {
    const p = join(root, OUT, old);
    if (old !== key && Date.now() - statSync(p).mtimeMs > 3600_000) rmSync(p, { recursive: true, force: true });
  }
  built.set(root, key);
  return relative(root, join(root, script));
}
