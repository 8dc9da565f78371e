// Pipeline benchmark (issues 8, 17): `nx run rocky-9:finalize` in a temporary copy of the workspace
// on the flat fixture at scale 20 (the issue's size), from nothing (cold), again with nothing changed
// (warm), and after one aarch64 package changed upstream (incremental); and (the `scale` bench,
// issue 17; --scale-releases 1 standalone) all four releases on Rocky-shaped fixtures of growing
// size: wall times, peak memory of nx and of each executor, bytes on disk against unique bytes, Nx
// cache size, the fitted growth exponent.
// Standalone: node -r @swc-node/register bench/pipeline.ts [--scale 20] | [--scale-releases 1 --scale 3]
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { updatePackage } from '@rocky/upstream-fixture';
import type { FixtureShape } from '../apps/upstream-fixture/src/model';
import { tempWorkspace, nxEnv, type TempWorkspace } from '../test/helpers/workspace';
import { childrenCpuSeconds, deferDelete, fittedExponent, flag, lastStepGrowth, linearFit, load1, measured, median, standalone, stepCosts, type Emit } from './lib';

/** Runs of each incremental change (bash, baseos-tools-1); the rows report the median. */
const INC_RUNS = 3;

const du = (...paths: string[]) => Number(execFileSync('du', ['-scb', ...paths.filter(existsSync)], { encoding: 'utf8' }).trim().split('\n').pop()!.split('\t')[0]);

/**
 * Runs nx, timed from spawn to exit (wall, and CPU of nx and every process it waited for), sampling its peak RSS (VmHWM) from /proc meanwhile; the
 * executors report their own. Async, so the sampling never delays the end of the measurement.
 * nx's whole output (stdout and stderr, interleaved as they came) is kept in `<dir>/../<log>`
 * beside the workspace copy; a failure names it, how nx ended (code or signal) and its last lines.
 */
export async function timedNx(dir: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ seconds: number; cpuSeconds: number; nxPeakMiB: number; output: string }> {
  const cpu0 = childrenCpuSeconds();
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, ['node_modules/nx/dist/bin/nx.js', ...args], { cwd: dir, env: nxEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => chunks.push(d));
  child.stderr.on('data', (d: Buffer) => chunks.push(d));
  let peakKiB = 0;
  const timer = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) peakKiB = Math.max(peakKiB, Number(m[1]));
    } catch {
      /* exited between samples */
    }
  }, 100);
  // 'close', not 'exit': only then has all of stdout and stderr been read.
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c, s) => resolve([c, s]));
  });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  // nx has been waited for ('close' follows its exit), and it waited for its tasks in turn.
  const cpuSeconds = childrenCpuSeconds() - cpu0;
  clearInterval(timer);
  const output = Buffer.concat(chunks).toString();
  if (code !== 0) {
    const log = `${dir}.nx-${Date.now()}.log`;
    writeFileSync(log, output);
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    const tail = output.trim() ? output.trimEnd().split('\n').slice(-60).join('\n') : '(nx printed nothing)';
    throw new Error(`nx ${args.join(' ')} ${how} after ${seconds.toFixed(1)} s (peak RSS ${(peakKiB / 1024).toFixed(0)} MiB); whole output in ${log}; its last lines:\n${tail}`);
  }
  return { seconds, cpuSeconds, nxPeakMiB: peakKiB / 1024, output };
}

export interface PipelineOptions {
  /** The fixture's scale (flat shape: scale 1 is the test suite's fixture, ≈ 2k package files in the composes). */
  scale: number;
  /** Directory of the prebuilt fixtures (see ScaleOptions). */
  fixtures?: string;
}

export async function runPipelineBench(opts: PipelineOptions, emit: Emit): Promise<void> {
  const { ws, fx } = scaleWorkspace('flat', opts.scale, opts.fixtures ?? SCALE_FIXTURES);
  // The floor's copy of the workspace is removed at the end, not before the incremental runs: a
  // mass delete slows the runs right after it (see bench/sync.ts).
  let floor: Awaited<ReturnType<typeof nxFloor>> | undefined;
  try {
    const env = {};
    const args = ['run', 'rocky-9:finalize', '--outputStyle=static'];
    const loadCold = load1();
    const cold = await timedNx(ws.dir, args, env);
    const size = `flat x${opts.scale}, ${composePackages(ws.dir)} package files`;
    emit(measured({ name: `pipeline ${size}: cold (rocky-9 finalize)`, ours: cold.seconds, theirs: NaN, theirsName: '-', goal: 'report', notes: `CPU ${cold.cpuSeconds.toFixed(0)} s; load ${loadCold} -> ${load1()}; fixture build ${fx.seconds.toFixed(0)} s (load ${fx.load})` }));
    await timedNx(ws.dir, args, env); // the first warm run: its task list sizes the floor
    const tasks = ws.runJson().tasks;
    floor = await nxFloor(tasks, ws.dir);
    // Ours and the floor alternately (a warm run each, 5 times): measured one after the other,
    // a change in the machine's load between them showed as a difference of ours.
    const warmRuns: number[] = [];
    const floorRuns: number[] = [];
    for (let i = 0; i < 5; i++) {
      warmRuns.push((await timedNx(ws.dir, args, env)).seconds);
      floorRuns.push(await floor.run());
    }
    const warm = { seconds: median(warmRuns) };
    const runs = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(' ');
    emit(measured({ name: `pipeline ${size}: warm vs cold`, ours: warm.seconds, theirs: cold.seconds, theirsName: 'cold run', goal: 'report', notes: `warm (median of 5) ${((100 * warm.seconds) / cold.seconds).toFixed(1)}% of cold` }));
    emit(
      measured({
        name: `pipeline ${size}: warm vs Nx's floor (${tasks.length} cached tasks)`,
        ours: warm.seconds,
        theirs: median(floorRuns),
        theirsName: 'nx run, no-op tasks, all cached',
        goal: { within: 1.3 },
        notes: `same task graph and inputs minus ours (upstream fingerprints), in a copy of the workspace (its .env too); runs alternated, ours ${runs(warmRuns)}, floor ${runs(floorRuns)}`,
      }),
    );
    // bash is in the boot tree (comps core): its boot ISO is made anew; baseos-tools-1 is not.
    // Each is changed INC_RUNS times (a new release each time), every run followed by the floor
    // rerunning the same tasks: one run of a few seconds moved by ±0.5 s with the machine's
    // other tenants, so the row reports the median, and the stages of its median run.
    const incRuns: number[] = [];
    const floorIncRuns: number[] = [];
    const toolRuns: number[] = [];
    let rerun: string[] = [];
    for (const [name, what] of [['bash', 'in the boot tree'], ['baseos-tools-1', 'outside the boot tree']]) {
      const these: { seconds: number; cpuSeconds: number; load: string; stages: ReturnType<typeof stageTimeline>; reran: string[] }[] = [];
      for (let i = 0; i < INC_RUNS; i++) {
        await updatePackage({ root: join(ws.dir, '.releng/upstream'), project: 'rocky-9', repo: 'BaseOS', arch: 'aarch64', name });
        const load = load1();
        const since = Date.now();
        const inc = await timedNx(ws.dir, args, env);
        const reran = ws.runJson().tasks.filter((t) => t.cacheStatus === 'cache-miss').map((t) => t.target);
        these.push({ seconds: inc.seconds, cpuSeconds: inc.cpuSeconds, load: `${load} -> ${load1()}`, stages: stageTimeline(ws.dir, since), reran });
        floorIncRuns.push(await floor.incremental(reran));
        rerun = reran;
      }
      const mid = [...these].sort((a, b) => a.seconds - b.seconds)[Math.floor(these.length / 2)];
      const others = [...new Set(these.flatMap((r) => r.reran.filter((t) => /iso-(x86_64|ppc64le|s390x)/.test(t))))];
      emit(
        measured({
          name: `pipeline ${size}: incremental (1 aarch64 package ${what}: BaseOS ${name})`,
          ours: mid.seconds,
          theirs: cold.seconds,
          theirsName: 'cold run',
          goal: { within: 0.25 },
          notes: `median of ${these.length}, runs ${runs(these.map((r) => r.seconds))}; median run: CPU ${mid.cpuSeconds.toFixed(1)} s (${((100 * mid.cpuSeconds) / cold.cpuSeconds).toFixed(1)}% of cold's); load ${mid.load}; stages (s from nx's start): ${mid.stages.text}; reran: ${mid.reran.join(', ')}`,
          also: { ok: others.length === 0, why: `unaffected tasks reran: ${others.join(', ')}` },
        }),
      );
      incRuns.push(mid.seconds);
      toolRuns.push(mid.stages.toolSeconds);
    }
    // What Nx alone costs an incremental run: the share of the 25% goal left to the stages' work.
    const floorInc = median(floorIncRuns);
    const budget = 0.25 * cold.seconds;
    // The least such a run can take with these tools: Nx's floor, then the stages' external tools (dnf, mksquashfs, xorriso…) one stage after the other.
    const bound = floorInc + median(toolRuns);
    emit(
      measured({
        name: `pipeline ${size}: incremental vs Nx's floor (the same ${rerun.length} tasks rerun)`,
        ours: median(incRuns),
        theirs: floorInc,
        theirsName: 'nx run, the same tasks rerun, no-op executors',
        goal: 'report',
        notes: `floor ${((100 * floorInc) / cold.seconds).toFixed(1)}% of cold: of the incremental goal (25% of cold, ${budget.toFixed(1)} s) the stages' own work has ${(budget - floorInc).toFixed(1)} s; ours (medians) took ${incRuns.map((x) => (x - floorInc).toFixed(1)).join(' and ')} s over the floor, of which the stages' external tools ran ${runs(toolRuns)} s; floor + tools ${bound.toFixed(1)} s (${((100 * bound) / cold.seconds).toFixed(1)}% of cold), leaving our own code ${(budget - bound).toFixed(1)} s under the goal for its ${rerun.length} processes; runs alternated with ours, floor (median of ${floorIncRuns.length}) ${runs(floorIncRuns)}; same task graph as the warm floor, each task a forked process as ours`,
      }),
    );
  } finally {
    floor?.cleanup();
    deferDelete(ws.dir);
  }
}

/**
 * Each stage of the run that began at `since` (ms): `target @start-end`, when its process started,
 * and how long its external tools ran, from the site's event log (stage-start and done events);
 * `toolSeconds`: the tools' time of all the stages.
 */
function stageTimeline(dir: string, since: number): { text: string; toolSeconds: number } {
  type Event = { type: string; target: string; time: string; uptimeSeconds?: number; toolSeconds?: number; tools?: Record<string, number> };
  const events = readFileSync(join(dir, '.releng/state/events.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Event)
    .filter((e) => Date.parse(e.time) >= since);
  const at = (e: { time: string }) => ((Date.parse(e.time) - since) / 1000).toFixed(1);
  const done = events.filter((e) => e.type === 'done');
  const tools = (d: Event) => {
    const top = Object.entries(d.tools ?? {}).sort((a, b) => b[1] - a[1]).slice(0, 3);
    return d.toolSeconds === undefined ? '' : `; tools ${d.toolSeconds.toFixed(2)} s${top.length ? ` (${top.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')})` : ''}`;
  };
  const text = done
    .map((d) => {
      const start = events.find((e) => e.type === 'stage-start' && e.target === d.target);
      return `${d.target} @${start ? at(start) : '?'}-${at(d)} (${start?.uptimeSeconds !== undefined ? `its process started ${start.uptimeSeconds.toFixed(2)} s before` : 'start not logged'}${tools(d)})`;
    })
    .join(', ');
  return { text, toolSeconds: done.reduce((n, d) => n + (d.toolSeconds ?? 0), 0) };
}

/**
 * Nx's own cost of our runs, in a copy of the workspace without our plugin: project `floor` has
 * a target for each task ours ran, with our dependsOn edges, the same named inputs ours hash
 * (sources, site; not our upstream fingerprints), and a no-op executor of the workspace's own,
 * run by Nx as ours are (a forked process each). `floor:sync` reads a file per arch standing
 * for upstream and writes it out; an iso-<arch> hashes its arch's file of those, iso-extra and
 * finalize every output of their dependencies, as ours do. Made and its cache filled here;
 * `run()` times a warm run (every task cached); `incremental()` changes the aarch64 file and
 * times the run that follows, which must rerun the tasks an incremental run of ours reran
 * (`ours`) and no others; `cleanup()` removes the copy. The callers alternate these
 * with runs of ours.
 */
async function nxFloor(tasks: { target: string }[], from: string): Promise<{ run(): Promise<number>; incremental(ours: string[]): Promise<number>; cleanup(): void }> {
  const ws = tempWorkspace();
  try {
    const nxJson = JSON.parse(readFileSync(join(ws.dir, 'nx.json'), 'utf8')) as Record<string, unknown>;
    delete nxJson.plugins;
    writeFileSync(join(ws.dir, 'nx.json'), JSON.stringify(nxJson, null, 2));
    const names = tasks.map((t) => t.target);
    /** The arch of an `iso-<arch>` target, else undefined. */
    const isoArch = (n: string) => (n.startsWith('iso-') && n !== 'iso-extra' ? n.slice(4) : undefined);
    const arches = names.map(isoArch).filter((a) => a !== undefined);
    // The executor: plain JS, loaded by Nx from the workspace as ours are (tools/executors/executor.js).
    mkdirSync(join(ws.dir, 'floor-executor'), { recursive: true });
    writeFileSync(join(ws.dir, 'floor-executor/package.json'), JSON.stringify({ name: 'floor-executor', executors: './executors.json' }));
    writeFileSync(join(ws.dir, 'floor-executor/schema.json'), JSON.stringify({ type: 'object', properties: { arches: { type: 'array' } } }));
    writeFileSync(join(ws.dir, 'floor-executor/executors.json'), JSON.stringify({ executors: { noop: { implementation: './noop.js', schema: './schema.json', description: 'no-op' } } }));
    writeFileSync(
      join(ws.dir, 'floor-executor/noop.js'),
      `const { mkdirSync, readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
module.exports = async (options, context) => {
  const out = join(context.root, 'dist/floor', context.targetName);
  mkdirSync(out, { recursive: true });
  for (const a of options.arches ?? []) writeFileSync(join(out, a + '.json'), readFileSync(join(context.root, 'floor/upstream-' + a)));
  if (!options.arches) writeFileSync(join(out, 'out.json'), JSON.stringify({ at: Date.now() }));
  return { success: true };
};
`,
    );
    mkdirSync(join(ws.dir, 'floor'), { recursive: true });
    for (const a of arches) writeFileSync(join(ws.dir, `floor/upstream-${a}`), '{}');
    const allOutputs = { dependentTasksOutputFiles: '**/*.json', transitive: true };
    /** Our dependsOn edges, and what each target hashes besides the named inputs. */
    const edges = (n: string): { dependsOn: string[]; inputs: object[] } => {
      const arch = isoArch(n);
      if (n === 'sync') return { dependsOn: [], inputs: [{ fileset: '{workspaceRoot}/floor/upstream-*' }] };
      if (arch) return { dependsOn: ['sync'], inputs: [{ dependentTasksOutputFiles: `**/sync/${arch}.json`, transitive: false }] };
      if (n === 'iso-extra') return { dependsOn: ['iso-*', 'sync'], inputs: [allOutputs] };
      if (n === 'finalize') return { dependsOn: names.filter((x) => x !== 'finalize'), inputs: [allOutputs] };
      return { dependsOn: [], inputs: [] };
    };
    const target = (n: string) => {
      const { dependsOn, inputs } = edges(n);
      return {
        executor: './floor-executor:noop',
        cache: true,
        dependsOn,
        inputs: ['pipelineSource', 'site', ...inputs],
        outputs: [`{workspaceRoot}/dist/floor/${n}`],
        options: n === 'sync' ? { arches } : {},
      };
    };
    const project = { name: 'floor', targets: Object.fromEntries(names.map((n) => [n, target(n)])) };
    writeFileSync(join(ws.dir, 'floor/project.json'), JSON.stringify(project, null, 2));
    const args = ['run', 'floor:finalize', '--outputStyle=static'];
    await timedNx(ws.dir, args, {}); // fills the cache
    let bumps = 0;
    return {
      async run() {
        const { seconds } = await timedNx(ws.dir, args, {});
        if (ws.runJson().tasks.some((t) => t.cacheStatus !== 'local-cache-hit' && t.cacheStatus !== 'local-cache-kept-existing')) throw new Error(`the floor's warm run was not all cache hits (${from})`);
        return seconds;
      },
      async incremental(ours) {
        writeFileSync(join(ws.dir, 'floor/upstream-aarch64'), JSON.stringify({ bumps: ++bumps }));
        const { seconds } = await timedNx(ws.dir, args, {});
        const reran = ws.runJson().tasks.filter((t) => t.cacheStatus === 'cache-miss').map((t) => t.target);
        if (reran.sort().join(' ') !== [...ours].sort().join(' ')) throw new Error(`the floor's incremental run reran ${reran.join(', ') || 'nothing'}, ours ${ours.join(', ')} (${from})`);
        return seconds;
      },
      cleanup: () => deferDelete(ws.dir),
    };
  } catch (e) {
    ws.cleanup();
    throw e;
  }
}

/** Where the scale bench keeps the fixtures it builds (one per shape and scale, reused by later runs). */
export const SCALE_FIXTURES = join(tmpdir(), 'rocky-scale-fixtures');

export interface ScaleOptions {
  /** Fixture scales to run, smallest first (`rocky` shape: scale 1 ≈ 4,900 package files in the composes, 8 ≈ 31k, 16 ≈ 62k). */
  scales: number[];
  shape: FixtureShape;
  /** Directory of the prebuilt fixtures (`<shape>-<scale>/`, with `<shape>-<scale>.build.json`: its build time). */
  fixtures?: string;
}

/**
 * The fixture of a shape and scale, built once into `fixtures` (timed, with the load average)
 * and hardlinked into each workspace after that.
 */
function scaleFixture(shape: FixtureShape, scale: number, fixtures: string): { root: string; seconds: number; load: string } {
  const root = join(fixtures, `${shape}-${scale}`);
  const record = `${root}.build.json`;
  if (!existsSync(record)) {
    mkdirSync(fixtures, { recursive: true });
    const load = load1();
    const t0 = process.hrtime.bigint();
    execFileSync(process.execPath, ['-r', '@swc-node/register', 'apps/upstream-fixture/src/main.ts', 'build', '--root', root, '--scale', String(scale), '--shape', shape], { cwd: join(__dirname, '..'), stdio: 'ignore' });
    writeFileSync(record, JSON.stringify({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, load: `${load} -> ${load1()}` }));
  }
  return { root, ...(JSON.parse(readFileSync(record, 'utf8')) as { seconds: number; load: string }) };
}

/** A workspace copy on the fixture of `shape` and `scale` (built once, hardlinked in), its site set to that fixture. */
function scaleWorkspace(shape: FixtureShape, scale: number, fixtures: string): { ws: TempWorkspace; fx: ReturnType<typeof scaleFixture> } {
  const fx = scaleFixture(shape, scale, fixtures);
  const ws = tempWorkspace({ fixtureFrom: fx.root });
  try {
    const site = join(ws.dir, 'sites/local.yaml');
    const before = readFileSync(site, 'utf8');
    const after = before.replace('fixture: { root: .releng/upstream, scale: 1 }', `fixture: { root: .releng/upstream, scale: ${scale}, shape: ${shape} }`);
    if (after === before) throw new Error(`${site}: no \`fixture: { root: .releng/upstream, scale: 1 }\` to set the scale in`);
    writeFileSync(site, after);
    return { ws, fx };
  } catch (e) {
    ws.cleanup();
    throw e;
  }
}

/** Package files in the workspace's composes: one `.` each, counted without a shell (the path is an argument, not shell text). */
const composePackages = (dir: string) => execFileSync('find', [join(dir, '.releng/compose'), '-name', '*.rpm', '-printf', '.'], { encoding: 'utf8', maxBuffer: 1 << 30 }).length;

/**
 * The files under `dirs`: bytes of each inode once (hardlinks once) and of each distinct content
 * once (copies where a hardlink would do count once too), and the largest copies. Only files
 * whose size another file shares are hashed.
 */
function fileBytes(dirs: string[]): { inodes: number; contents: number; copies: string[] } {
  const out = execFileSync('find', [...dirs.filter(existsSync), '-type', 'f', '-printf', '%i %s %p\\n'], { encoding: 'utf8', maxBuffer: 1 << 30 });
  const inodes = new Map<string, { size: number; path: string }>();
  for (const line of out.split('\n')) {
    const m = /^(\d+) (\d+) (.*)$/.exec(line);
    if (m && !inodes.has(m[1])) inodes.set(m[1], { size: Number(m[2]), path: m[3] });
  }
  const bySize = new Map<number, string[]>();
  for (const f of inodes.values()) bySize.set(f.size, [...(bySize.get(f.size) ?? []), f.path]);
  let all = 0;
  let contents = 0;
  const copies: { bytes: number; paths: string[] }[] = [];
  for (const [size, paths] of bySize) {
    all += size * paths.length;
    if (paths.length === 1) contents += size;
    else {
      const byHash = new Map<string, string[]>();
      for (const p of paths) {
        const h = createHash('sha256').update(readFileSync(p)).digest('hex');
        byHash.set(h, [...(byHash.get(h) ?? []), p]);
      }
      contents += size * byHash.size;
      for (const g of byHash.values()) if (g.length > 1) copies.push({ bytes: size * (g.length - 1), paths: g });
    }
  }
  const top = copies.sort((a, b) => b.bytes - a.bytes).slice(0, 3).map((c) => `${c.paths.map((p) => p.slice(p.indexOf('.releng/'))).join(' = ')} (${c.bytes} bytes more)`);
  return { inodes: all, contents, copies: top };
}

interface ScalePoint {
  packages: number;
  /** Wall seconds of the cold run. */
  cold: number;
  /** CPU seconds of the cold run (nx and every process under it). */
  coldCpu: number;
}

const MiB = 2 ** 20;

/** One size: the four releases' `finalize` cold, warm and after one package changed upstream; every figure in the rows' notes. */
async function scalePoint(shape: FixtureShape, scale: number, fixtures: string, emit: Emit, cleanups: (() => void)[]): Promise<ScalePoint> {
  const { ws, fx } = scaleWorkspace(shape, scale, fixtures);
  cleanups.push(() => deferDelete(ws.dir));
  const args = ['run-many', '-t', 'finalize', '--outputStyle=static', '--parallel=2'];
  const loadCold = load1();
  const cold = await timedNx(ws.dir, args, {});
  const coldLoad = `${loadCold} -> ${load1()}`;
  const tasks = ws.runJson().tasks.length;
  const compose = join(ws.dir, '.releng/compose');
  const store = join(ws.dir, '.releng/store');
  const packages = composePackages(ws.dir);
  const size = `${packages} package files`;
  const perK = (sec: number) => `${((1000 * sec) / packages).toFixed(2)} s per 1,000 packages`;
  // Emitted at once: a size too large for the time left still gives its cold time.
  emit(measured({ name: `scale ${size} (${shape} x${scale}): cold`, ours: cold.seconds, theirs: NaN, theirsName: '-', goal: 'report', notes: `4 releases + SIGs, ${tasks} tasks; ${perK(cold.seconds)}; CPU ${cold.cpuSeconds.toFixed(0)} s (${perK(cold.cpuSeconds)}); load ${coldLoad}; fixture build ${fx.seconds.toFixed(0)} s (load ${fx.load}); nx peak ${cold.nxPeakMiB.toFixed(0)} MiB` }));
  const warm = await timedNx(ws.dir, args, {});
  await updatePackage({ root: join(ws.dir, '.releng/upstream'), project: 'rocky-9', repo: 'BaseOS', arch: 'aarch64', name: 'bash' });
  const inc = await timedNx(ws.dir, args, {});
  const reran = ws.runJson().tasks.filter((t) => t.cacheStatus === 'cache-miss').length;
  // Every stage's peak memory is in its `done` event of the site's event log (all three runs).
  const executors = readFileSync(join(ws.dir, '.releng/state/events.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; project: string; target: string; maxRssMiB: number })
    .filter((e) => e.type === 'done' && typeof e.maxRssMiB === 'number')
    .map((e) => ({ task: `${e.project}:${e.target}`, maxRssMiB: e.maxRssMiB }))
    .sort((a, b) => b.maxRssMiB - a.maxRssMiB);
  const worst = executors[0] ?? { task: '-', maxRssMiB: NaN };
  const nxPeak = Math.max(cold.nxPeakMiB, warm.nxPeakMiB, inc.nxPeakMiB);
  const disk = du(compose, store);
  const files = fileBytes([compose, store]);
  const cacheMiB = du(join(ws.dir, '.nx/cache')) / MiB;
  emit(
    measured({
      name: `scale ${size}: memory, disk, cache`,
      ours: NaN,
      theirs: NaN,
      theirsName: '-',
      goal: 'report',
      notes: `nx peak ${nxPeak.toFixed(0)} MiB; worst executor ${worst.maxRssMiB.toFixed(0)} MiB (${worst.task}), next ${executors.slice(1, 4).map((e) => `${e.task} ${e.maxRssMiB.toFixed(0)}`).join(', ')}; compose+store: du -b ${(disk / MiB).toFixed(1)} MiB (directories included), files ${(files.inodes / MiB).toFixed(1)} MiB (each inode once), distinct contents ${(files.contents / MiB).toFixed(1)} MiB; Nx cache ${cacheMiB.toFixed(1)} MiB`,
    }),
  );
  emit(measured({ name: `scale ${size}: warm`, ours: warm.seconds, theirs: cold.seconds, theirsName: 'cold run', goal: 'report', notes: `${perK(warm.seconds)}; ${((100 * warm.seconds) / cold.seconds).toFixed(1)}% of cold; CPU ${warm.cpuSeconds.toFixed(1)} s` }));
  emit(measured({ name: `scale ${size}: 1 package changed (rocky-9 BaseOS aarch64 bash)`, ours: inc.seconds, theirs: cold.seconds, theirsName: 'cold run', goal: 'report', notes: `${reran} tasks reran; ${((100 * inc.seconds) / cold.seconds).toFixed(1)}% of cold; CPU ${inc.cpuSeconds.toFixed(1)} s (${((100 * inc.cpuSeconds) / cold.cpuSeconds).toFixed(1)}% of cold's)` }));
  emit(measured({ name: `scale ${size}: every process under 1 GiB (MiB)`, ours: Math.max(nxPeak, worst.maxRssMiB), theirs: 1024, theirsName: '1 GiB', goal: { within: 1 }, notes: `nx ${nxPeak.toFixed(0)} MiB, worst executor ${worst.maxRssMiB.toFixed(0)} MiB (${worst.task})` }));
  emit(measured({ name: `scale ${size}: Nx cache under 20 MiB (MiB)`, ours: cacheMiB, theirs: 20, theirsName: '20 MiB', goal: { within: 1 } }));
  emit(
    measured({
      name: `scale ${size}: disk within 5% of unique bytes (MiB)`,
      ours: files.inodes / MiB,
      theirs: files.contents / MiB,
      theirsName: 'distinct contents',
      goal: { within: 1.05 },
      notes: `files of compose+store, each inode once, vs each content once; du -b with directories ${(disk / MiB).toFixed(1)} MiB; largest copies: ${files.copies.join(', ') || 'none'}`,
    }),
  );
  return { packages, cold: cold.seconds, coldCpu: cold.cpuSeconds };
}

/**
 * All four releases at real sizes (`npm run bench -- --only scale [--scales 1,3,8,16] [--shape rocky]`):
 * per size, cold, warm and one-package-changed runs with every figure of issue 17; across sizes,
 * the growth of cold time with package files (goal: linear), on CPU seconds, which the machine's
 * load barely moves, and on wall seconds as well.
 */
export async function runScaleBench(opts: ScaleOptions, emit: Emit): Promise<void> {
  const points: ScalePoint[] = [];
  // Each size's workspace is removed after the last size is measured: removed after its own size,
  // it was a mass delete right before the next size's cold run (see bench/sync.ts).
  const cleanups: (() => void)[] = [];
  try {
    for (const scale of opts.scales) points.push(await scalePoint(opts.shape, scale, opts.fixtures ?? SCALE_FIXTURES, emit, cleanups));
  } finally {
    for (const c of cleanups) c();
  }
  if (points.length < 3) return;
  const cpu = points.map((p) => ({ packages: p.packages, seconds: p.coldCpu }));
  const wall = points.map((p) => ({ packages: p.packages, seconds: p.cold }));
  const exponent = fittedExponent(cpu);
  const line = linearFit(cpu);
  // Faster than linear growth shows at the largest size: each package of the last step must cost
  // no more than the average package there, give or take the noise of a run (10%).
  const largest = cpu[cpu.length - 1];
  const last = lastStepGrowth(cpu);
  // The cost of each further 1,000 packages between neighbouring sizes.
  const marginal = stepCosts(cpu).map((c, i) => `${cpu[i].packages}-${cpu[i + 1].packages}: ${(1000 * c).toFixed(2)}`);
  emit(
    measured({
      name: `scale: cold CPU time grows no faster than linearly (exponent over ${points.map((p) => p.packages).join(', ')} packages)`,
      ours: exponent,
      theirs: 1,
      theirsName: 'linear',
      goal: { within: 1.1 },
      notes:
        `log-log slope of cold CPU seconds ${exponent.toFixed(3)} (wall ${fittedExponent(wall).toFixed(3)}); CPU ${cpu.map((p) => `${p.seconds.toFixed(0)} s`).join(', ')}; ` +
        `least squares CPU s = ${line.fixed.toFixed(0)} + ${(1000 * line.perPackage).toFixed(2)} per 1,000 packages; CPU s per further 1,000 packages ${marginal.join(', ')}; ` +
        `at ${largest.packages} packages the last step's packages cost ${(1000 * last.marginal).toFixed(2)} CPU s per 1,000, the average ${(1000 * last.average).toFixed(2)}; wall ${wall.map((p) => `${p.seconds.toFixed(0)} s`).join(', ')}`,
      also: { ok: last.marginal <= 1.1 * last.average, why: `at ${largest.packages} packages the last step's packages cost ${(1000 * last.marginal).toFixed(2)} CPU s per 1,000, over 1.1x the average ${(1000 * last.average).toFixed(2)}: faster than linear` },
    }),
  );
}

if (require.main === module) {
  standalone((emit) => (flag('scale-releases', 0) === 1 ? runScaleBench({ scales: [flag('scale', 3)], shape: 'rocky' }, emit) : runPipelineBench({ scale: flag('scale', 20) }, emit)));
}
