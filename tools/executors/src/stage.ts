// The one adapter every executor is: Nx's context in, a stage context out, the stage run by the
// runner of libs/stages, any error turned into a one-paragraph failure. Release and arch come
// from the project and the target, never from options a user could override.
import type { ExecutorContext } from '@nx/devkit';
import { loadRelease, loadSite } from '@rocky/config';
import { nxRunId } from '@rocky/exec';
// The runner, the context and the registry by path, not through @rocky/stages: its index loads
// every stage (pungi, publishing…), while a task needs its own stage only (registry.ts loads it).
import { runStage } from '../../../libs/stages/src/stage';
import { stageContext, type StageOptions } from '../../../libs/stages/src/context';
import { stageForTarget } from '../../../libs/stages/src/registry';

export interface ExecutorOptions extends StageOptions {
  dryRun?: boolean;
}

/** Set by the workspace plugin's preTasksExecution hook for `--dryRun`: every task of the run plans. */
export const dryRunOfRun = () => process.env.RELENG_DRY_RUN === '1';

export async function runTarget(opts: ExecutorOptions, ctx: ExecutorContext): Promise<{ success: boolean }> {
  const project = ctx.projectName!;
  const target = ctx.targetName!;
  try {
    const { dryRun, ...options } = opts;
    const s = stageContext({
      root: ctx.root,
      project,
      target,
      release: loadRelease(ctx.root, project),
      site: loadSite(ctx.root),
      dryRun: !!dryRun || dryRunOfRun(),
      options,
      run: { id: nxRunId(), tasks: Object.values(ctx.taskGraph?.tasks ?? {}).map((t) => `${t.target.project}:${t.target.target}`) },
    });
    await runStage(await stageForTarget(target, s), s);
    return { success: true };
  } catch (e) {
    const err = e as Error;
    console.error(`\n✖ ${project}:${target} failed: ${err.message}`);
    if (process.env.RELENG_DEBUG) console.error(err.stack);
    return { success: false };
  }
}
