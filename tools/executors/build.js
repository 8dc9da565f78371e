// @ts-check
// The workspace's TypeScript sources compiled to plain CommonJS, once per content, under
// .nx/workspace-data (beside Nx's own project-graph data, cleared by `nx reset`; not in dist/:
// target outputs live there, and a dry run must not add to them). Nx loads the plugins from here
// (plugin.js, projects.js), so an nx start loads no TypeScript register: with one, Nx loads
// typescript itself and transpiles every module the plugins import, ~0.7 CPU-s per start.
// Plain JavaScript, so that nothing has to be compiled to run it.
'use strict';
const { createHash } = require('node:crypto');
const { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } = require('node:fs');
const { dirname, join } = require('node:path');

/** What the compiled code can import: the plugins and hooks (tools/executors/src), every library and app. */
const SOURCE_DIRS = ['tools/executors/src', 'libs', 'apps'];
/** Other files the sources read beside them (http.ts reads the version from package.json, cli.ts the executor schemas), copied as they are. */
const isData = (/** @type {string} */ f) => f === 'package.json' || /^tools\/executors\/src\/.*\/schema\.json$/.test(f);
const OUT = '.nx/workspace-data/releng-build';

/** @param {string} root */
function files(root) {
  /** @type {string[]} */
  const out = ['package.json'];
  const walk = (/** @type {string} */ dir) => {
    for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
      const rel = `${dir}/${e.name}`;
      if (e.isDirectory()) {
        if (e.name !== 'node_modules' && !e.name.startsWith('.')) walk(rel);
      } else if ((e.name.endsWith('.ts') && !/\.(test|spec|d)\.ts$/.test(e.name)) || isData(rel)) out.push(rel);
    }
  };
  for (const d of SOURCE_DIRS) if (existsSync(join(root, d))) walk(d);
  return out.sort();
}

/** @type {Map<string, string>} */
const built = new Map();

/**
 * The directory (relative to `root`) of the compiled build of the workspace at `root`: every
 * source as `.js` at its own relative path, under a name that is the hash of the sources.
 * Compiled now unless a build of exactly these sources is there (checking costs a read of the
 * sources, ~1 MB, once per process). Concurrent Nx processes each build into a private temp dir
 * and rename it into place; the first rename wins and the others' builds are dropped.
 * @param {string} root
 * @returns {string}
 */
function compiledBuild(root) {
  const known = built.get(root);
  if (known) return known;
  const list = files(root);
  const tsconfig = readFileSync(join(root, 'tsconfig.base.json'));
  const h = createHash('sha256').update(tsconfig).update(readFileSync(__filename));
  const texts = list.map((f) => readFileSync(join(root, f)));
  list.forEach((f, i) => h.update(`${f}\0${texts[i].length}\0`).update(texts[i]));
  const key = h.digest('hex').slice(0, 16);
  const dir = `${OUT}/${key}`;
  // A build dir exists only whole: it is renamed into place.
  if (existsSync(join(root, dir))) return (built.set(root, dir), dir);

  // Loaded only when compiling: most nx starts find the build there.
  const { transformSync } = /** @type {typeof import('@swc/core')} */ (require('@swc/core'));
  const { paths } = JSON.parse(tsconfig.toString()).compilerOptions;
  const tmp = join(root, `${dir}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  try {
    list.forEach((f, i) => {
      const out = join(tmp, isData(f) ? f : f.replace(/\.ts$/, '.js'));
      mkdirSync(dirname(out), { recursive: true });
      if (isData(f)) return writeFileSync(out, texts[i]);
      const { code } = transformSync(texts[i].toString(), {
        filename: join(root, f),
        swcrc: false,
        configFile: false,
        sourceMaps: false,
        // Path aliases (@rocky/*) become relative requires, valid in the mirrored tree.
        jsc: { parser: { syntax: 'typescript' }, target: 'es2022', baseUrl: root, paths },
        module: { type: 'commonjs' },
      });
      writeFileSync(out, code);
    });
    try {
      renameSync(tmp, join(root, dir));
    } catch (e) {
      if (!existsSync(join(root, dir))) throw e; // else another process put the same build there first
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  // Older builds go once an hour has passed (a running Nx process may still use a recent one).
  for (const old of readdirSync(join(root, OUT))) {
    const p = join(root, OUT, old);
    if (old !== key && Date.now() - statSync(p).mtimeMs > 3600_000) rmSync(p, { recursive: true, force: true });
  }
  built.set(root, dir);
  return dir;
}

module.exports = { compiledBuild };
