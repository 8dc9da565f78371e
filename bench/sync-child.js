// @ts-check
// One run of the sync bench's stage in a process of its own, as an Nx task process runs it: the
// workspace's compiled build (tools/executors/build.js), no TypeScript register, modules loaded
// and code compiled anew each time. argv[2]: JSON { root, rel, site } (the bench's context).
// Prints { cpuSeconds } (its own, without its tools') as its last line.
'use strict';
const { join, resolve } = require('node:path');
const { compiledBuild } = require('../tools/executors/build');

const ws = resolve(__dirname, '..');
// What an Nx task of the sync target loads (tools/executors/src/stage.ts): the runner, the context
// and the registry, which loads the sync stage only, not the index of every stage.
const build = join(ws, compiledBuild(ws), 'libs/stages/src');
const { runStage } = require(join(build, 'stage.js'));
const { stageContext } = require(join(build, 'context.js'));
const { stageForTarget } = require(join(build, 'registry.js'));
const { root, rel, site } = JSON.parse(process.argv[2]);
console.log = () => {};
stageForTarget('sync')
  .then((stage) => runStage(stage, stageContext({ root, project: 'bench', target: 'sync', release: rel, site, dryRun: false })))
  .then(
  () => {
    // This process's own CPU seconds, for the bench to tell them from its tools' (dnf, rpmkeys, gpgv).
    const u = process.cpuUsage();
    process.stdout.write(`${JSON.stringify({ cpuSeconds: (u.user + u.system) / 1e6 })}\n`, () => process.exit(0));
  },
  (/** @type {Error} */ e) => {
    process.stderr.write(`${e.stack ?? e}\n`);
    process.exit(1);
  },
);
