// @ts-check
// The typecheck and test targets plugin (src/projects.ts) as Nx loads it (nx.json): plain JavaScript running the
// compiled build (build.js), so that no nx start registers a TypeScript transpiler (see plugin.js).
'use strict';
const { join } = require('node:path');
const { compiledBuild } = require('./build');

/** @type {import('@nx/devkit').CreateNodesV2} */
const createNodesV2 = [
  '{libs,apps,tools}/*/project.json', // src/projects.ts's pattern
  (files, options, context) => require(join(context.workspaceRoot, compiledBuild(context.workspaceRoot), 'tools/executors/src/projects.js')).createNodesV2[1](files, options, context),
];

module.exports = { name: '@rocky/executors/projects', createNodesV2 };
