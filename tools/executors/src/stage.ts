// What every executor shares: resolve the workspace, load release and site, turn any error
// into a clear failure. Executors stay thin; the work is in libs/.
import type { ExecutorContext } from '@nx/devkit';
import { loadRelease, loadSite, type Release, type Site } from '@rocky/config';

export interface StageContext {
  root: string;
  project: string;
  target: string;
  release: Release;
  site: Site;
  dryRun: boolean;
  /** The Nx task hash: a key for artifacts kept outside Nx. */
  taskHash?: string;
  nx: ExecutorContext;
}

export interface BaseOptions {
  release: string;
  dryRun?: boolean;
}

export function stageContext(opts: BaseOptions, ctx: ExecutorContext): StageContext {
  return {
    root: ctx.root,
    project: ctx.projectName ?? opts.release,
    target: ctx.targetName ?? '',
    release: loadRelease(ctx.root, opts.release),
    site: loadSite(ctx.root),
    dryRun: !!opts.dryRun,
    taskHash: process.env.NX_TASK_HASH,
    nx: ctx,
  };
}

/** Runs a stage: success when it returns, a one-paragraph failure (no stack) when it throws. */
export async function runStage<O extends BaseOptions>(
  opts: O,
  ctx: ExecutorContext,
  fn: (s: StageContext, opts: O) => Promise<void>,
): Promise<{ success: boolean }> {
  try {
    await fn(stageContext(opts, ctx), opts);
    return { success: true };
  } catch (e) {
    const err = e as Error;
    console.error(`\n✖ ${ctx.projectName}:${ctx.targetName} failed: ${err.message}`);
    if (process.env.RELENG_DEBUG) console.error(err.stack);
    return { success: false };
  }
}

export function notImplemented(stage: string): never {
  throw new Error(`the ${stage} stage is not implemented yet`);
}
