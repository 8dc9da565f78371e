import type { ExecutorContext } from '@nx/devkit';
import { isoExtraStage } from '@rocky/stages';
import { runStage, type BaseOptions } from '../../stage';

export default async function isoExtraExecutor(opts: BaseOptions, ctx: ExecutorContext) {
  return runStage(opts, ctx, isoExtraStage);
}
