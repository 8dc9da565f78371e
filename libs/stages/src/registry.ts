// Every stage, by the executor name that runs it: the executors, the fault suite and the tests
// look stages up here, so there is one list.
import type { Stage } from './stage';
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
} as const satisfies Record<string, Stage<any, any>>;

export type StageName = keyof typeof stages;

/** The stage behind an Nx target: `iso-x86_64` is the iso stage, `update-staging` the staging stage, every other target is its own. */
export function stageForTarget(target: string): Stage<unknown, unknown> {
  const t = target.replace(/^update-/, '');
  const name = /^iso-(?!extra$)/.test(t) ? 'iso' : t;
  const stage = (stages as Record<string, Stage<unknown, unknown>>)[name];
  if (!stage) throw new Error(`no stage runs the target ${target}; stages: ${Object.keys(stages).join(', ')}`);
  return stage;
}
