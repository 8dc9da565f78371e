import type { ExecutorContext } from '@nx/devkit';
import { syncStage } from '@rocky/stages';
import { runStage, type BaseOptions } from '../../stage';

export default async function syncExecutor(opts: BaseOptions, ctx: ExecutorContext) {
  return runStage(opts, ctx, syncStage);
}
