import type { ExecutorContext } from '@nx/devkit';
import { finalizeStage } from '@rocky/stages';
import { runStage, type BaseOptions } from '../../stage';

export default async function finalizeExecutor(opts: BaseOptions, ctx: ExecutorContext) {
  return runStage(opts, ctx, finalizeStage);
}
