// Generates the CI pipelines in ci/ from Nx's task graph. A plain script, not an Nx target:
// it only reads the graph, and running it through `nx run` would add nothing but a cache entry.
//
//   node -r @swc-node/register tools/ci/generate.ts --target finalize --projects rocky-9,rocky-8 [--publish] [--site rocky-prod] [--out ci] [--check]
//
// --check compares instead of writing and exits 1 when the files are stale.
import { readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseGenerateArgs, renderPipelines } from './workspace';
import { writeFileAtomic } from '../../libs/exec/src';

function main(): number {
  const root = resolve(__dirname, '../..');
  const args = parseGenerateArgs(process.argv.slice(2));
  const outDir = resolve(process.cwd(), args.out);
  const files = renderPipelines(root, args);
  let stale = 0;
  for (const [rel, text] of Object.entries(files)) {
    const file = join(outDir, rel);
    let current: string | undefined;
    try {
      current = readFileSync(file, 'utf8');
    } catch {
      current = undefined;
    }
    const shown = relative(process.cwd(), file);
    if (current === text) {
      console.log(`${shown}: up to date`);
    } else if (args.check) {
      console.error(`${shown}: stale`);
      stale++;
    } else {
      writeFileAtomic(file, text);
      console.log(`${shown}: written`);
    }
  }
  return stale ? 1 : 0;
}

try {
  process.exitCode = main();
} catch (e) {
  console.error((e as Error).message);
  process.exitCode = 1;
}
