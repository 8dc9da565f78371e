// Every stage, by the executor name that runs it: the executors, the fault suite and the tests
// look stages up here, so there is one list.
import { pungiProducerOf } from '@rocky/config';
import type { Stage } from './stage';
import type { StageContext } from './context';

// Each stage's module is loaded when its target runs, not before: a task's process then loads
// its own stage's libraries only (an iso task neither pungi's nor publishing's), a few hundred ms
// less at every task's start.
export const stages = {
  sync: async () => (await import('./sync')).syncStage,
  iso: async () => (await import('./iso')).isoStage,
  'iso-extra': async () => (await import('./iso-extra')).isoExtraStage,
  cloud: async () => (await import('./cloud')).cloudStage,
  finalize: async () => (await import('./finalize')).finalizeStage,
  staging: async () => (await import('./staging')).stagingStage,
  prod: async () => (await import('./prod')).prodStage,
  filelist: async () => (await import('./filelist')).filelistStage,
  rollback: async () => (await import('./rollback')).rollbackStage,
  'check-site': async () => (await import('./check-site')).checkSiteStage,
  compose: async () => (await import('./pungi-compose')).pungiComposeStage,
  'sign-repos': async () => (await import('./sign-repos')).signReposStage,
} as const satisfies Record<string, () => Promise<Stage<any, any>>>;

export type StageName = keyof typeof stages;

/**
 * The stage behind an Nx target: `iso-x86_64` is the iso stage, `update-staging` and
 * `staging-Extras` the staging stage, `compose-Extras` the compose stage, every other target is
 * its own. Given the context, the sync of a release pungi makes on this site assembles pungi's
 * composes instead of reposyncing, and its iso targets collect pungi's media instead of building.
 */
export async function stageForTarget(target: string, ctx?: Pick<StageContext, 'site' | 'release'>): Promise<Stage<unknown, unknown>> {
  const t = target.replace(/^update-/, '');
  if (ctx && pungiProducerOf(ctx.site, ctx.release)) {
    // pungi makes the compose and its media: sync assembles them, the iso targets collect them.
    if (t === 'sync') return (await import('./pungi')).pungiSyncStage as Stage<unknown, unknown>;
    if (t === 'iso-extra') return (await import('./pungi-media')).pungiIsoExtraStage as Stage<unknown, unknown>;
    if (/^iso-/.test(t)) return (await import('./pungi-media')).pungiIsoStage as Stage<unknown, unknown>;
  }
  const name = /^iso-(?!extra$)/.test(t) ? 'iso' : /^compose-/.test(t) ? 'compose' : /^staging-/.test(t) ? 'staging' : t;
  const load = (stages as Record<string, () => Promise<Stage<unknown, unknown>>>)[name];
  if (!load) throw new Error(`no stage runs the target ${target}; stages: ${Object.keys(stages).join(', ')}`);
  return load();
}
