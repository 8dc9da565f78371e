import type { ExecutorContext } from '@nx/devkit';
import { stagingStage } from '@rocky/stages';
import { runStage, type BaseOptions } from '../../stage';

export default async function stagingExecutor(opts: BaseOptions & { confirmDeletions?: boolean }, ctx: ExecutorContext) {
  return runStage(opts, ctx, (s) => stagingStage(s, { confirmDeletions: opts.confirmDeletions }));
}
