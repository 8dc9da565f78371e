// @ts-check
// Every executor as Nx runs it (executors.json): the compiled src/executors/<name>/executor.ts of
// the build Nx loads the plugins from (build.js), so a task's process registers no TypeScript
// transpiler (loading typescript and transpiling every module the stage imports: ~1 CPU-s a task).
'use strict';
const { join } = require('node:path');
const { compiledBuild } = require('./build');

/** @type {import('@nx/devkit').Executor} */
module.exports = (options, context) => {
  // The executor asked for (`./tools/executors:iso` → iso): one folder of src/executors each.
  const name = String(context.target?.executor).split(':').pop();
  return require(join(context.root, compiledBuild(context.root), 'tools/executors/src/executors', String(name), 'executor.js')).default(options, context);
};
