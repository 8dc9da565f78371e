// What every executor shares: build the stage context from Nx's, run one lib function, and
// turn any error into a clear failure. Executors stay thin; the work is in libs/.
import { appendFileSync, readFileSync } from 'node:fs';
import type { ExecutorContext } from '@nx/devkit';
import { loadRelease, loadSite } from '@rocky/config';
import type { StageContext } from '@rocky/stages';

export interface BaseOptions {
  release: string;
  dryRun?: boolean;
}

export function stageContext(opts: BaseOptions, ctx: ExecutorContext): StageContext {
  return {
    root: ctx.root,
    project: ctx.projectName ?? opts.release,
    release: loadRelease(ctx.root, opts.release),
    site: loadSite(ctx.root),
    dryRun: !!opts.dryRun,
    taskHash: process.env.NX_TASK_HASH,
  };
}

/** Runs a stage: success when it returns, a one-paragraph failure (no stack) when it throws. */
export async function runStage<O extends BaseOptions>(
  opts: O,
  ctx: ExecutorContext,
  fn: (s: StageContext, opts: O) => Promise<unknown>,
): Promise<{ success: boolean }> {
  try {
    await fn(stageContext(opts, ctx), opts);
    return { success: true };
  } catch (e) {
    const err = e as Error;
    console.error(`\n✖ ${ctx.projectName}:${ctx.targetName} failed: ${err.message}`);
    if (process.env.RELENG_DEBUG) console.error(err.stack);
    return { success: false };
  } finally {
    // Benchmarks ask each executor for its peak memory.
    if (process.env.RELENG_RSS_LOG) {
      appendFileSync(process.env.RELENG_RSS_LOG, JSON.stringify({ task: `${ctx.projectName}:${ctx.targetName}`, maxRssMiB: process.resourceUsage().maxRSS / 1024 }) + '\n');
    }
  }
}


/**
 * Identifies one Nx invocation: every task of a run is forked from the same nx process, so its
 * pid plus its start time (from /proc, against pid reuse) names the run.
 */
export function nxRunId(): string {
  const ppid = process.ppid;
  let start = '';
  try {
    start = readFileSync(`/proc/${ppid}/stat`, 'utf8').split(') ')[1].split(' ')[19];
  } catch {
    // not Linux: the pid alone
  }
  return `${ppid}-${start}`;
}

/** Projects whose `<target>` task is part of the current Nx run. */
export function projectsWithTargetInRun(ctx: ExecutorContext, target: string): string[] {
  return Object.values(ctx.taskGraph?.tasks ?? {})
    .filter((t) => t.target.target === target)
    .map((t) => t.target.project)
    .sort();
}
