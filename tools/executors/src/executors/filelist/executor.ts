import type { ExecutorContext } from '@nx/devkit';
import { runStage, notImplemented, type BaseOptions } from '../../stage';

export default async function filelistExecutor(opts: BaseOptions, ctx: ExecutorContext) {
  return runStage(opts, ctx, async () => notImplemented('filelist'));
}
