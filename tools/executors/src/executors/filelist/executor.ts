import type { ExecutorContext } from '@nx/devkit';
import { filelistStage } from '@rocky/stages';
import { nxRunId, projectsWithTargetInRun, runStage, type BaseOptions } from '../../stage';

// File lists run after every `prod` of the same Nx run: the stage defers while a prod of this
// run has not finished, and the last filelist task of the run writes the lists.
export default async function filelistExecutor(opts: BaseOptions, ctx: ExecutorContext) {
  return runStage(opts, ctx, (s) => filelistStage(s, { prodProjectsInRun: projectsWithTargetInRun(ctx, 'prod'), runId: nxRunId() }));
}
