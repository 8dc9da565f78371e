// Pipeline benchmark (issue 8): `nx run rocky-9:finalize` in a temporary copy of the workspace,
// from nothing (cold), again with nothing changed (warm), and after one aarch64 package changed
// upstream (incremental); and (the `scale` bench, --scale-releases 1 standalone) all four
// releases at a larger fixture scale: wall time, peak memory of nx and of each executor, bytes on
// disk, Nx cache size.
// Standalone: node -r @swc-node/register bench/pipeline.ts [--scale 20] [--scale-releases 1]
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { updatePackage } from '@rocky/upstream-fixture';
import { tempWorkspace, nxEnv } from '../test/helpers/workspace';
import { sharedFixture } from '../test/helpers/fixture';
import { flag, measured, median, standalone, type Emit } from './lib';

const du = (...paths: string[]) => Number(execFileSync('du', ['-scb', ...paths.filter(existsSync)], { encoding: 'utf8' }).trim().split('\n').pop()!.split('\t')[0]);

/**
 * Runs nx, timed from spawn to exit, sampling its peak RSS (VmHWM) from /proc meanwhile; the
 * executors report their own. Async, so the sampling never delays the end of the measurement.
 * nx's whole output (stdout and stderr, interleaved as they came) is kept in `<dir>/../<log>`
 * beside the workspace copy; a failure names it, how nx ended (code or signal) and its last lines.
 */
export async function timedNx(dir: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ seconds: number; nxPeakMiB: number; output: string }> {
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
  clearInterval(timer);
  const output = Buffer.concat(chunks).toString();
  if (code !== 0) {
    const log = `${dir}.nx-${Date.now()}.log`;
    writeFileSync(log, output);
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    const tail = output.trim() ? output.trimEnd().split('\n').slice(-60).join('\n') : '(nx printed nothing)';
    throw new Error(`nx ${args.join(' ')} ${how} after ${seconds.toFixed(1)} s (peak RSS ${(peakKiB / 1024).toFixed(0)} MiB); whole output in ${log}; its last lines:\n${tail}`);
  }
  return { seconds, nxPeakMiB: peakKiB / 1024, output };
}

export async function runPipelineBench(_opts: Record<string, never>, emit: Emit): Promise<void> {
  const ws = tempWorkspace({ fixtureFrom: await sharedFixture() });
  try {
    const env = {};
    const cold = await timedNx(ws.dir, ['run', 'rocky-9:finalize', '--outputStyle=static'], env);
    const warmRuns: number[] = [];
    for (let i = 0; i < 3; i++) warmRuns.push((await timedNx(ws.dir, ['run', 'rocky-9:finalize', '--outputStyle=static'], env)).seconds);
    const warm = { seconds: median(warmRuns) };
    emit(measured({ name: 'pipeline warm vs cold (rocky-9 finalize)', ours: warm.seconds, theirs: cold.seconds, theirsName: 'cold run', goal: 'report', notes: `warm (median of 3) ${((100 * warm.seconds) / cold.seconds).toFixed(1)}% of cold` }));
    const tasks = ws.runJson().tasks;
    const floor = await nxFloor(tasks, ws.dir);
    emit(measured({ name: `pipeline warm vs Nx's floor (${tasks.length} cached tasks)`, ours: warm.seconds, theirs: floor, theirsName: 'nx run, no-op tasks, all cached', goal: { within: 1.3 }, notes: `same task graph and inputs minus ours (upstream fingerprints), in a copy of the workspace (its .env too)` }));
    await updatePackage({ root: join(ws.dir, '.releng/upstream'), project: 'rocky-9', repo: 'BaseOS', arch: 'aarch64', name: 'bash' });
    const inc = await timedNx(ws.dir, ['run', 'rocky-9:finalize', '--outputStyle=static'], env);
    const reran = ws.runJson().tasks.filter((t) => t.cacheStatus === 'cache-miss').map((t) => t.target);
    const others = reran.filter((t) => /iso-(x86_64|ppc64le|s390x)/.test(t));
    emit(
      measured({
        name: 'pipeline incremental (1 aarch64 package)',
        ours: inc.seconds,
        theirs: cold.seconds,
        theirsName: 'cold run',
        goal: { within: 0.25 },
        notes: `reran: ${reran.join(', ')}`,
        also: { ok: others.length === 0, why: `unaffected tasks reran: ${others.join(', ')}` },
      }),
    );
  } finally {
    ws.cleanup();
  }
}

/**
 * Nx's own cost of a warm run: `nx run floor:finalize` over as many tasks as ours ran, every one
 * a cache hit, in a copy of the workspace without our plugin. Each task hashes the same named
 * inputs ours do (sources, site) and restores one small output; the executor is a shell no-op,
 * never run when cached. Returns the median of 3 warm runs.
 */
async function nxFloor(tasks: { target: string }[], from: string): Promise<number> {
  const ws = tempWorkspace();
  try {
    const nxJson = JSON.parse(readFileSync(join(ws.dir, 'nx.json'), 'utf8')) as Record<string, unknown>;
    delete nxJson.plugins;
    writeFileSync(join(ws.dir, 'nx.json'), JSON.stringify(nxJson, null, 2));
    const names = tasks.map((t) => t.target.replace(/[^\w-]/g, '_'));
    const others = names.filter((n) => n !== 'finalize');
    const target = (n: string) => ({
      executor: 'nx:run-commands',
      cache: true,
      inputs: ['pipelineSource', 'site'],
      outputs: [`{workspaceRoot}/dist/floor/${n}`],
      options: { command: `mkdir -p dist/floor/${n} && echo '{}' > dist/floor/${n}/manifest.json` },
      ...(n === 'finalize' ? { dependsOn: others } : {}),
    });
    const project = { name: 'floor', targets: Object.fromEntries([...others, 'finalize'].map((n) => [n, target(n)])) };
    execFileSync('mkdir', ['-p', join(ws.dir, 'floor')]);
    writeFileSync(join(ws.dir, 'floor/project.json'), JSON.stringify(project, null, 2));
    const args = ['run', 'floor:finalize', '--outputStyle=static'];
    await timedNx(ws.dir, args, {}); // fills the cache
    const times: number[] = [];
    for (let i = 0; i < 3; i++) times.push((await timedNx(ws.dir, args, {})).seconds);
    if (ws.runJson().tasks.some((t) => t.cacheStatus !== 'local-cache-hit' && t.cacheStatus !== 'local-cache-kept-existing')) throw new Error(`the floor's warm run was not all cache hits (${from})`);
    return median(times);
  } finally {
    ws.cleanup();
  }
}

/** All four releases at a larger fixture scale (`npm run bench -- --only scale`). */
export async function runScaleBench(opts: { scale?: number }, emit: Emit): Promise<void> {
  const scale = opts.scale ?? 20;
  const ws = tempWorkspace();
  try {
    const site = join(ws.dir, 'sites/local.yaml');
    writeFileSync(site, readFileSync(site, 'utf8').replace('fixture: { root: .releng/upstream, scale: 1 }', `fixture: { root: .releng/upstream, scale: ${scale} }`));
    execFileSync(process.execPath, ['-r', '@swc-node/register', 'apps/upstream-fixture/src/main.ts', 'build', '--root', '.releng/upstream', '--scale', String(scale)], { cwd: ws.dir, stdio: 'ignore' });
    const run = await timedNx(ws.dir, ['run-many', '-t', 'finalize', '--outputStyle=static', '--parallel=2'], {});
    const tasks = ws.runJson().tasks.length;
    const warm = await timedNx(ws.dir, ['run-many', '-t', 'finalize', '--outputStyle=static', '--parallel=2'], {});
    // Every stage's peak memory is in its `done` event of the site's event log.
    const executors = readFileSync(join(ws.dir, '.releng/state/events.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; project: string; target: string; maxRssMiB: number })
      .filter((e) => e.type === 'done')
      .map((e) => ({ task: `${e.project}:${e.target}`, maxRssMiB: e.maxRssMiB }));
    const worst = executors.sort((a, b) => b.maxRssMiB - a.maxRssMiB)[0];
    const disk = du(join(ws.dir, '.releng/compose'), join(ws.dir, '.releng/store'));
    const cache = du(join(ws.dir, '.nx/cache'));
    const files = Number(execFileSync('sh', ['-c', `find ${join(ws.dir, '.releng/compose')} -name '*.rpm' | wc -l`], { encoding: 'utf8' }));
    emit(
      measured({
        name: `scale: 4 releases, fixture x${scale}`,
        ours: run.seconds,
        theirs: NaN,
        theirsName: '-',
        goal: 'report',
        notes: `${files} package files in composes, ${tasks} tasks; warm rerun ${warm.seconds.toFixed(1)} s (${((100 * warm.seconds) / run.seconds).toFixed(1)}% of cold); nx peak ${run.nxPeakMiB.toFixed(0)} MiB; executor peak ${worst?.maxRssMiB.toFixed(0)} MiB (${worst?.task}); compose+store ${(disk / 2 ** 30).toFixed(2)} GiB (hardlinks once); Nx cache ${(cache / 2 ** 20).toFixed(1)} MiB`,
      }),
    );
  } finally {
    ws.cleanup();
  }
}

if (require.main === module) {
  standalone((emit) => (flag('scale-releases', 0) === 1 ? runScaleBench({ scale: flag('scale', 20) }, emit) : runPipelineBench({}, emit)));
}
