// @ts-check
// The release plugin (src/plugin.ts) as Nx loads it (nx.json): plain JavaScript running the
// compiled build (build.js), so that no nx start registers a TypeScript transpiler.
// Every nx command computes the graph first. The projects made from the release files are kept,
// keyed by everything they are made from: the compiled sources (the plugin, the config schema,
// the stages' imports), every entry of releases/ and its release file, and the files and options
// Nx passes. An unchanged workspace neither parses nor validates a release file (nor loads zod and
// yaml), nor walks the stages' imports; a changed byte in any of them computes them anew.
'use strict';
const { createHash } = require('node:crypto');
const { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { compiledBuild } = require('./build');

/** @param {string} root @param {string} module a module of tools/executors/src, compiled */
const compiled = (root, module) => require(join(root, compiledBuild(root), 'tools/executors/src', module));

/** What checkReleases and loadRelease read: the entries of releases/ (a symlink is an error) and each release file. */
function releasesDigest(/** @type {string} */ root) {
  const h = createHash('sha256');
  const dir = join(root, 'releases');
  for (const d of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const file = join(dir, d.name, 'release.yaml');
    h.update(`${d.name}\0${d.isSymbolicLink() ? 'link' : d.isDirectory() ? 'dir' : 'file'}\0`);
    if (existsSync(file)) h.update(readFileSync(file));
    h.update('\0');
  }
  return h.digest('hex');
}

/** @type {import('@nx/devkit').CreateNodesV2} */
const createNodesV2 = [
  'releases/*/release.yaml',
  async (files, options, context) => {
    const root = context.workspaceRoot;
    let cache;
    try {
      const key = createHash('sha256').update(JSON.stringify([root, files, options ?? null, releasesDigest(root)])).digest('hex').slice(0, 32);
      cache = join(root, compiledBuild(root), 'nodes', `${key}.json`);
      return JSON.parse(readFileSync(cache, 'utf8'));
    } catch {
      // Not computed yet (or releases/ unreadable: the plugin says what is wrong).
    }
    // Throws on a mistake in any release file: nothing is kept then.
    const result = await compiled(root, 'plugin.js').createNodesV2[1](files, options, context);
    if (cache) {
      mkdirSync(join(cache, '..'), { recursive: true });
      writeFileSync(`${cache}.tmp-${process.pid}`, JSON.stringify(result));
      renameSync(`${cache}.tmp-${process.pid}`, cache);
      // Older entries go once an hour has passed (release files edited since).
      for (const old of readdirSync(join(cache, '..'))) {
        const p = join(cache, '..', old);
        if (p !== cache && Date.now() - statSync(p).mtimeMs > 3600_000) rmSync(p, { force: true });
      }
    }
    return result;
  },
];

/** @type {import('@nx/devkit').PreTasksExecution} */
const preTasksExecution = (options, context) => compiled(context.workspaceRoot, 'cli.js').preTasksExecution(options, context);

module.exports = { name: '@rocky/executors', createNodesV2, preTasksExecution };
