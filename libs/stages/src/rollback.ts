// The rollback target: points the release's latest link at an earlier finished compose (an
// update push that went wrong), atomically; `nx run <release>:update-staging
// --excludeTaskDependencies` then publishes it, and prod promotes it with an approval as usual.
// The composes themselves are never changed: rolling forward again is the same command. The
// rollback holds until the next update-sync runs (a changed upstream makes a new compose).
import { existsSync, readlinkSync } from 'node:fs';
import { basename, dirname, relative, resolve } from 'node:path';
import { composeRoot } from '@rocky/config';
import { symlinkAtomic } from '@rocky/exec';
import { composesOf, isFinished, type ComposeDir } from './composes';
import type { Stage } from './stage';

export interface RollbackPlan {
  to: ComposeDir;
  from?: string;
}

export const rollbackStage: Stage<RollbackPlan, { changed: boolean }> = {
  name: 'rollback',
  tools: () => [],
  locks: (ctx) => [{ file: composeRoot(ctx.site, ctx.release).syncLock, what: `sync of ${ctx.project}` }],

  async plan(ctx) {
    const want = ctx.options.to;
    const all = [...composesOf(ctx.site, ctx.release, 'produce'), ...composesOf(ctx.site, ctx.release, 'update')];
    const list = all.filter((c) => isFinished(c) && existsSync(c.layout.syncRecord)).map((c) => c.id);
    if (!want) throw new Error(`rollback needs --to=<compose>; the finished composes of ${ctx.project}: ${list.join(', ') || 'none'}`);
    const to = all.find((c) => c.id === want);
    if (!to || !list.includes(want)) throw new Error(`${want} is not a finished compose of ${ctx.project}; the finished composes: ${list.join(', ') || 'none'}`);
    const { latest } = composeRoot(ctx.site, ctx.release);
    const from = existsSync(latest) ? basename(resolve(dirname(latest), readlinkSync(latest))) : undefined;
    return { to, from };
  },

  describe: (p, ctx) => ({
    summary: p.from === p.to.id ? `${composeRoot(ctx.site, ctx.release).latest} already points at ${p.to.id}` : `point ${basename(composeRoot(ctx.site, ctx.release).latest)} at ${p.to.id} (now ${p.from ?? 'nothing'})`,
  }),

  async execute(ctx, plan) {
    if (plan.from === plan.to.id) return { changed: false };
    const { latest } = composeRoot(ctx.site, ctx.release);
    symlinkAtomic(relative(dirname(latest), plan.to.layout.dir), latest);
    ctx.log.event('rollback', { from: plan.from, to: plan.to.id });
    return { changed: true };
  },

  async verify(ctx, plan) {
    const { latest } = composeRoot(ctx.site, ctx.release);
    if (resolve(dirname(latest), readlinkSync(latest)) !== plan.to.layout.dir) throw new Error(`${latest} does not point at ${plan.to.id}`);
  },

  async record(ctx, plan, r) {
    const latest = basename(composeRoot(ctx.site, ctx.release).latest);
    return { summary: `${latest} → ${plan.to.id}${r.changed ? ` (was ${plan.from})` : ''}; publish it with \`nx run ${ctx.project}:update-staging --excludeTaskDependencies\`` };
  },
};
