import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { stateDir, type ComposeKind, type Release, type Site } from '@rocky/config';
import { scratchName, type EventLog } from '@rocky/exec';
import { stageLog } from './stage';

/** The options a user may give a stage (each executor's schema.json admits its own subset). */
export interface StageOptions {
  /** prod: the staging digest a reviewer approved. */
  approve?: string;
  /** staging, prod: allow more deletions than the site's limit. */
  confirmDeletions?: boolean;
  /** rollback: the compose the latest link is to point at. */
  to?: string;
}

/** The Nx invocation a task belongs to: publishing stages coordinate through it. */
export interface RunInfo {
  id: string;
  /** Every task of the run, `project:target`. */
  tasks: string[];
}

/** What a stage needs to know, independent of Nx (executors build it from their context). */
export interface StageContext {
  /** Workspace root: dist/ manifests are written under it. */
  root: string;
  /** Nx project (release) name. */
  project: string;
  /** Nx target: `sync`, `iso-x86_64`, `staging`, `update-sync`… */
  target: string;
  /** The chain the target belongs to: `update-*` targets make and publish update composes. */
  kind: ComposeKind;
  release: Release;
  site: Site;
  dryRun: boolean;
  options: StageOptions;
  run: RunInfo;
  /** Progress lines (prefixed `[project:target]`) and the site's event log. */
  log: EventLog;
}

export type StageContextInput = Omit<StageContext, 'log' | 'options' | 'run' | 'kind'> & Partial<Pick<StageContext, 'options' | 'run'>>;

/** `update-staging` → update; every other target is of the produce chain. */
export const kindOfTarget = (target: string): ComposeKind => (target.startsWith('update-') ? 'update' : 'produce');

export function stageContext(c: StageContextInput): StageContext {
  const run = c.run ?? { id: `pid-${process.pid}`, tasks: [`${c.project}:${c.target}`] };
  const base = { ...c, kind: kindOfTarget(c.target), options: c.options ?? {}, run };
  return { ...base, log: stageLog(base) };
}

/** Projects whose `<target>` task is part of this run. */
export const projectsInRun = (ctx: Pick<StageContext, 'run'>, target: string): string[] =>
  ctx.run.tasks
    .map((t) => t.split(':'))
    .filter(([, tg]) => tg === target)
    .map(([p]) => p)
    .sort();

/** A work directory of this process under the site's `state/tmp`, not made: for a callee that makes it when needed (a plan writes nothing) and removes it. */
export const scratchPath = (ctx: Pick<StageContext, 'site'>, prefix: string): string => join(stateDir(ctx.site, 'tmp'), scratchName(prefix));

/** publishTree's work dir for this stage's publishes (one at a time). */
export const publishWorkDir = (ctx: Pick<StageContext, 'site' | 'project' | 'target'>): string => scratchPath(ctx, `publish-${ctx.project}-${ctx.target}`);

/** A work directory of this process under the site's `state/tmp` (created; runStage swept killed runs' dirs before execute). */
export function scratchDir(ctx: Pick<StageContext, 'site' | 'log'>, prefix: string): string {
  const dir = scratchPath(ctx, prefix);
  mkdirSync(dir, { recursive: true });
  return dir;
}
