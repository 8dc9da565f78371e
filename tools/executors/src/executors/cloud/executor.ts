import type { ExecutorContext } from '@nx/devkit';
import { cloudStage } from '@rocky/stages';
import { runStage, type BaseOptions } from '../../stage';

export default async function cloudExecutor(opts: BaseOptions, ctx: ExecutorContext) {
  return runStage(opts, ctx, cloudStage);
}
