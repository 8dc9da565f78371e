import type { ExecutorContext } from '@nx/devkit';
import { stagingStage } from '@rocky/stages';
import { runStage, type BaseOptions } from '../../stage';

export default async function stagingExecutor(opts: BaseOptions, ctx: ExecutorContext) {
  return runStage(opts, ctx, stagingStage);
}
