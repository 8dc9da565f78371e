import type { ExecutorContext } from '@nx/devkit';
import type { Arch } from '@rocky/config';
import { isoStage } from '@rocky/stages';
import { runStage, type BaseOptions } from '../../stage';

export default async function isoExecutor(opts: BaseOptions & { arch: Arch }, ctx: ExecutorContext) {
  return runStage(opts, ctx, (s) => isoStage(s, opts.arch));
}
