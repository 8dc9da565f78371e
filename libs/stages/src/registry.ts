// Every stage, by the executor name that runs it: the executors, the fault suite and the tests
// look stages up here, so there is one list.
import { pungiProducerOf } from '@rocky/config';
import type { Stage } from './stage';
import type { StageContext } from './context';
import { pungiSyncStage } from './pungi';
import { pungiComposeStage } from './pungi-compose';
import { pungiIsoExtraStage, pungiIsoStage } from './pungi-media';
import { signReposStage } from './sign-repos';
import { syncStage } from './sync';
import { isoStage } from './iso';
import { isoExtraStage } from './iso-extra';
import { cloudStage } from './cloud';
import { finalizeStage } from './finalize';
import { stagingStage } from './staging';
import { prodStage } from './prod';
import { filelistStage } from './filelist';
import { rollbackStage } from './rollback';
import { checkSiteStage } from './check-site';

export const stages = {
  sync: syncStage,
  iso: isoStage,
  'iso-extra': isoExtraStage,
  cloud: cloudStage,
  finalize: finalizeStage,
  staging: stagingStage,
  prod: prodStage,
  filelist: filelistStage,
  rollback: rollbackStage,
  'check-site': checkSiteStage,
  compose: pungiComposeStage,
  'sign-repos': signReposStage,
} as const satisfies Record<string, Stage<any, any>>;

export type StageName = keyof typeof stages;

/**
 * The stage behind an Nx target: `iso-x86_64` is the iso stage, `update-staging` and
 * `staging-Extras` the staging stage, `compose-Extras` the compose stage, every other target is
 * its own. Given the context, the sync of a release pungi makes on this site assembles pungi's
 * composes instead of reposyncing, and its iso targets collect pungi's media instead of building.
 */
export function stageForTarget(target: string, ctx?: Pick<StageContext, 'site' | 'release'>): Stage<unknown, unknown> {
  const t = target.replace(/^update-/, '');
  if (ctx && pungiProducerOf(ctx.site, ctx.release)) {
    // pungi makes the compose and its media: sync assembles them, the iso targets collect them.
    if (t === 'sync') return pungiSyncStage as Stage<unknown, unknown>;
    if (t === 'iso-extra') return pungiIsoExtraStage as Stage<unknown, unknown>;
    if (/^iso-/.test(t)) return pungiIsoStage as Stage<unknown, unknown>;
  }
  const name = /^iso-(?!extra$)/.test(t) ? 'iso' : /^compose-/.test(t) ? 'compose' : /^staging-/.test(t) ? 'staging' : t;
  const stage = (stages as Record<string, Stage<unknown, unknown>>)[name];
  if (!stage) throw new Error(`no stage runs the target ${target}; stages: ${Object.keys(stages).join(', ')}`);
  return stage;
}
