// `npm run bench`: every benchmark, each against the tool a release engineer would otherwise use
// on the same input in the same run, as one table with one row per goal; results also saved as
// JSON (bench/results/) after every row. A bench that fails adds a row with its whole error and
// keeps the rows it measured before; the next bench runs regardless.
// Flags: --quick (smaller inputs), --only name[,name] (`scale` runs only when named),
// --scales n[,n] (the scale bench's fixture scales; rocky shape: 1 ≈ 4,900 package files, 8 ≈ 31k, 16 ≈ 62k),
// --shape rocky|flat (flat 1 is the test suite's fixture, ≈ 2k package files).
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { emptyTrash, failedRow, load1, loadText, type BenchRow, type Emit } from './lib';

const quick = process.argv.includes('--quick');
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1].split(',') : undefined;
const scales = process.argv.includes('--scales') ? process.argv[process.argv.indexOf('--scales') + 1].split(',').map(Number) : quick ? [1] : [1, 3, 8, 16];
if (scales.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--scales: positive integers separated by commas (got ${scales.join(',')})`);
const shape = process.argv.includes('--shape') ? process.argv[process.argv.indexOf('--shape') + 1] : 'rocky';
if (shape !== 'rocky' && shape !== 'flat') throw new Error(`--shape: rocky or flat (got ${shape})`);

const benches: [string, (emit: Emit) => Promise<void>][] = [
  ['sync', async (emit) => (await import('./sync')).runSyncBench({ scale: quick ? 100 : 250 }, emit)],
  ['iso', async (emit) => (await import('./iso')).runIsoBench({ mib: quick ? 256 : 1024 }, emit)],
  ['checksum', async (emit) => (await import('./checksum')).runChecksumBench({ mib: quick ? 128 : 512 }, emit)],
  ['filelist', async (emit) => (await import('./filelist')).runFileListBench({ files: quick ? 50_000 : 200_000 }, emit)],
  ['walk', async (emit) => (await import('./filelist')).runWalkBench({ files: quick ? 50_000 : 200_000 }, emit)],
  ['publish', async (emit) => (await import('./publish')).runPublishBench({ files: quick ? 50_000 : 200_000 }, emit)],
  ['pipeline', async (emit) => (await import('./pipeline')).runPipelineBench({ scale: quick ? 1 : 20 }, emit)],
  ['scale', async (emit) => (await import('./pipeline')).runScaleBench({ scales, shape }, emit)],
];
/** Not part of a plain `npm run bench` (CI): too long; run with `--only scale`. */
const OPT_IN = new Set(['scale']);

async function main() {
  const unknown = only?.filter((n) => !benches.some(([b]) => b === n));
  if (unknown?.length) throw new Error(`--only: unknown bench ${unknown.join(', ')} (known: ${benches.map(([b]) => b).join(', ')})`);
  // Node 20 reads NODE_EXTRA_CA_CERTS at every process start (~90 ms for a full system bundle
  // here): every task process pays it, so the figures say whether it was set.
  const extraCa = process.env.NODE_EXTRA_CA_CERTS ? `, NODE_EXTRA_CA_CERTS=${process.env.NODE_EXTRA_CA_CERTS}` : '';
  const machine = `${cpus().length} x ${cpus()[0]?.model.trim()}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}${extraCa}`;
  const loadStart = loadText();
  const rows: BenchRow[] = [];
  const dir = join(__dirname, 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  const save = (loadEnd?: string) => writeFileSync(file, JSON.stringify({ machine, quick, loadStart, loadEnd, rows }, null, 2) + '\n');
  for (const [name, fn] of benches) {
    if (only ? !only.includes(name) : OPT_IN.has(name)) continue;
    console.error(`bench: ${name}… (load ${loadText()})`);
    let since = load1();
    const emit: Emit = (r) => {
      rows.push({ ...r, load: r.load ?? `${since} → ${load1()}` });
      since = load1();
      save();
    };
    try {
      await fn(emit);
    } catch (e) {
      emit(failedRow(name, e));
      console.error(`bench: ${name} failed:\n${rows[rows.length - 1].error}`);
    }
  }
  const loadEnd = loadText();
  save(loadEnd);
  emptyTrash();
  const f = (n: number) => (Number.isFinite(n) ? n.toFixed(n < 10 ? 3 : 1) : '-');
  const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ⏎ ');
  console.log(`\nmachine: ${machine}\nload average (1, 5, 15 min): at start ${loadStart}; at end ${loadEnd}\n`);
  console.log('| benchmark | ours (s) | theirs (s) | against | ratio | goal | met | load (1 min) | notes |\n|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.name} | ${f(r.ours)} | ${f(r.theirs)} | ${r.theirsName} | ${f(r.ratio)} | ${r.goal} | ${r.error ? 'failed' : r.met ? 'yes' : 'no'} | ${r.load ?? ''} | ${cell(r.error ? `failed: ${r.error.split('\n')[0]} (full error below)` : (r.notes ?? ''))} |`);
  for (const r of rows.filter((x) => x.error)) console.log(`\n${r.name} failed:\n${r.error}`);
  console.log(`\nresults: ${file}`);
  if (rows.some((r) => r.error)) process.exitCode = 1;
}

main().catch((e: Error) => {
  console.error(e.message);
  process.exit(2);
});
