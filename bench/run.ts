// `npm run bench`: every benchmark, each against the tool a release engineer would otherwise use
// on the same input in the same run, as one table; results also saved as JSON (bench/results/).
// Flags: --quick (smaller inputs), --only name[,name].
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import type { BenchRow } from './lib';

const quick = process.argv.includes('--quick');
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1].split(',') : undefined;

const benches: [string, () => Promise<BenchRow[]>][] = [
  ['sync', async () => (await import('./sync')).runSyncBench({ scale: quick ? 100 : 250 })],
  ['iso', async () => (await import('./iso')).runIsoBench({ mib: quick ? 256 : 1024 })],
  ['checksum', async () => (await import('./checksum')).runChecksumBench({ mib: quick ? 128 : 512 })],
  ['filelist', async () => (await import('./filelist')).runFileListBench({ files: quick ? 50_000 : 200_000 })],
  ['publish', async () => (await import('./publish')).runPublishBench({ files: quick ? 50_000 : 200_000 })],
  ['pipeline', async () => (await import('./pipeline')).runPipelineBench({ scale: quick ? 5 : 20, scaleReleases: !quick })],
];

async function main() {
  const rows: BenchRow[] = [];
  for (const [name, fn] of benches) {
    if (only && !only.includes(name)) continue;
    console.error(`bench: ${name}…`);
    try {
      rows.push(...(await fn()));
    } catch (e) {
      rows.push({ name, ours: NaN, theirs: NaN, theirsName: '-', ratio: NaN, goal: '-', met: false, notes: `failed: ${(e as Error).message.split('\n')[0]}` });
    }
  }
  const machine = `${cpus().length} x ${cpus()[0]?.model.trim()}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
  const f = (n: number) => (Number.isFinite(n) ? n.toFixed(n < 10 ? 3 : 1) : '-');
  console.log(`\nmachine: ${machine}\n`);
  console.log('| benchmark | ours (s) | theirs (s) | against | ratio | goal | met | notes |\n|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.name} | ${f(r.ours)} | ${f(r.theirs)} | ${r.theirsName} | ${f(r.ratio)} | ${r.goal} | ${r.met ? 'yes' : 'no'} | ${r.notes ?? ''} |`);
  const dir = join(__dirname, 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ machine, quick, rows }, null, 2) + '\n');
  console.log(`\nresults: ${file}`);
}

main();
