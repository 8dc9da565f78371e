import type { ExecutorContext } from '@nx/devkit';
import { runStage, notImplemented, type BaseOptions } from '../../stage';

export default async function isoExecutor(opts: BaseOptions, ctx: ExecutorContext) {
  return runStage(opts, ctx, async () => notImplemented('iso'));
}
