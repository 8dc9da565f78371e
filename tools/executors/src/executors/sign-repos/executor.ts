import type { ExecutorContext } from '@nx/devkit';
import { runTarget } from '../../stage';
import type { Options } from './schema';

export default function executor(opts: Options, ctx: ExecutorContext) {
  return runTarget(opts, ctx);
}
