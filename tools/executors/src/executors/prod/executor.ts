import type { ExecutorContext } from '@nx/devkit';
import { prodStage } from '@rocky/stages';
import { nxRunId, runStage, type BaseOptions } from '../../stage';

export interface ProdOptions extends BaseOptions {
  approve?: string;
  confirmDeletions?: boolean;
}

export default async function prodExecutor(opts: ProdOptions, ctx: ExecutorContext) {
  return runStage(opts, ctx, (s) => prodStage(s, { approve: opts.approve, confirmDeletions: opts.confirmDeletions, runId: nxRunId() }));
}
