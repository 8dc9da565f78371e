// The stage contract and its one runner (DESIGN §5). A stage is plan → execute → verify →
// record; everything every stage repeats lives here: the dry run (plan, print, change nothing),
// the tool pre-flight, locks, the event log, the log prefix, timing, the summary line and the
// Nx manifests. Modelled on pungi's phases (validate/skip/start/stop, all validated before any
// runs), with a pure plan that a dry run can print and a test can inspect.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { distDir, eventsFile, stateDir } from '@rocky/config';
import { acquireLock, acquireLockWaiting, eventLog, formatDuration, missingTools, preflight, sweepScratch, jsonBytes, toolTime, writeFileIfChanged, type EventLog } from '@rocky/exec';
import { localStore } from '@rocky/store';
import type { StageContext } from './context';

export interface LockSpec {
  file: string;
  /** Who holds it, for the message a second run gets. */
  what: string;
  /** Wait this long for a live holder instead of refusing at once. */
  waitMs?: number;
}

export interface Recorded {
  /** The summary line (`rocky-9:sync: compose … 12 trees …`). */
  summary: string;
  /** Nx outputs: `<file name> → value`, written as JSON under the stage's dist dir. */
  manifests?: Record<string, unknown>;
}

export interface Stage<P, R> {
  readonly name: string;
  /** Changes nothing at all, not even the event log (check-site). */
  readonly readOnly?: boolean;
  /** Tools execute runs; all are checked before anything changes. */
  tools(ctx: StageContext): string[];
  /** Locks held from before the plan (real runs only) until record is done. */
  locks?(ctx: StageContext): LockSpec[];
  /** Pure: reads config, manifests and the current state, changes nothing anywhere. */
  plan(ctx: StageContext): Promise<P>;
  /** The plan for people: a summary line, then details (printed in full on dry runs). */
  describe(plan: P, ctx: StageContext): { summary: string; details?: string[] };
  execute(ctx: StageContext, plan: P): Promise<R>;
  /** Checks the result; a stage that cannot verify has failed. */
  verify(ctx: StageContext, plan: P, result: R): Promise<void>;
  /** Writes what the stage leaves behind and says what happened. */
  record(ctx: StageContext, plan: P, result: R): Promise<Recorded>;
  /** Releases what the plan holds open (a server, a verifier), after a dry run or a real one. */
  dispose?(plan: P): Promise<void>;
}

export type Outcome<P, R> = { dryRun: true; plan: P } | { dryRun: false; plan: P; result: R };

/** The Nx output directory of a target: `dist/<project>/sync`, `dist/<project>/iso/x86_64`. */
export function targetDistDir(ctx: Pick<StageContext, 'root' | 'project' | 'target'>): string {
  const m = /^iso-(?!extra$)(.+)$/.exec(ctx.target);
  return distDir(ctx.root, ctx.project, m ? `iso/${m[1]}` : ctx.target);
}

/** The stage's progress lines and event log (`<state>/events.jsonl`; nothing is written on dry runs). */
export function stageLog(ctx: Pick<StageContext, 'site' | 'project' | 'target' | 'dryRun' | 'run'>): EventLog {
  const base = eventLog(ctx.dryRun ? undefined : eventsFile(ctx.site), `[${ctx.project}:${ctx.target}]`);
  const common = { project: ctx.project, target: ctx.target, runId: ctx.run.id };
  return { info: base.info, event: (type, data = {}) => base.event(type, { ...common, ...data }) };
}

/** Runs one stage: the only way stages run (executors, tests and the fault suite alike). */
export async function runStage<P, R>(stage: Stage<P, R>, ctx: StageContext): Promise<Outcome<P, R>> {
  const log = stage.readOnly ? { ...ctx.log, event: () => {} } : ctx.log;
  const started = Date.now();
  const toolsSince = performance.now();
  const seconds = () => Math.round((Date.now() - started) / 100) / 10;
  if (ctx.dryRun) {
    const plan = await stage.plan(ctx);
    try {
      printPlan(stage, plan, ctx, true);
      const missing = missingTools(stage.tools(ctx));
      if (missing.length) log.info(`the real run would fail: ${missing.join('; ')}`);
      log.info('dry run: nothing was changed');
      return { dryRun: true, plan };
    } finally {
      await stage.dispose?.(plan);
    }
  }

  preflight(stage.tools(ctx));
  // uptimeSeconds: how long this process took to get here (Nx's executor start, our modules, the config), a task's fixed cost.
  log.event('stage-start', { stage: stage.name, uptimeSeconds: Math.round(process.uptime() * 1000) / 1000 });
  const unlocks: (() => void)[] = [];
  try {
    for (const l of stage.locks?.(ctx) ?? []) {
      unlocks.push(l.waitMs ? await acquireLockWaiting(l.file, l.what, { timeoutMs: l.waitMs, onWait: (why) => log.info(`waiting: ${why}`) }) : acquireLock(l.file, l.what));
    }
    const plan = await stage.plan(ctx);
    let rec: Recorded;
    let result: R;
    try {
      const { summary } = printPlan(stage, plan, ctx, false);
      log.event('plan', { stage: stage.name, summary, seconds: seconds() });
      // Work dirs and partial store objects killed runs on this host left go first, whatever this run reuses.
      if (!stage.readOnly) {
        const tmp = stateDir(ctx.site, 'tmp');
        const removed = sweepScratch(tmp);
        if (removed.length) log.info(`removed ${removed.length} work dir(s) of killed runs from ${tmp}: ${removed.join(', ')}`);
        localStore(ctx.site).sweepTemps();
      }
      result = await stage.execute(ctx, plan);
      await stage.verify(ctx, plan, result);
      rec = await stage.record(ctx, plan, result);
    } finally {
      await stage.dispose?.(plan);
    }
    if (rec.manifests) writeManifests(targetDistDir(ctx), rec.manifests);
    // toolSeconds: the part of the stage its external tools ran (tools: each one's total).
    const { seconds: toolSeconds, tools } = toolTime(toolsSince);
    log.event('done', { stage: stage.name, summary: rec.summary, seconds: seconds(), toolSeconds, tools, maxRssMiB: Math.round(process.resourceUsage().maxRSS / 1024) });
    log.info(`✔ ${rec.summary} (${formatDuration(Date.now() - started)})`);
    return { dryRun: false, plan, result };
  } catch (e) {
    log.event('failed', { stage: stage.name, error: (e as Error).message.split('\n')[0], seconds: seconds(), maxRssMiB: Math.round(process.resourceUsage().maxRSS / 1024) });
    throw e;
  } finally {
    for (const u of unlocks.reverse()) u();
  }
}

function printPlan<P, R>(stage: Stage<P, R>, plan: P, ctx: StageContext, full: boolean) {
  const d = stage.describe(plan, ctx);
  ctx.log.info(`plan: ${d.summary}`);
  const details = d.details ?? [];
  const shown = full || process.env.RELENG_VERBOSE ? details : details.slice(0, 20);
  for (const l of shown) ctx.log.info(`  ${l}`);
  if (shown.length < details.length) ctx.log.info(`  … ${details.length - shown.length} more (RELENG_VERBOSE=1 or --dryRun shows all)`);
  return d;
}

/** The stage's Nx outputs, and nothing else in its dist dir (a stale file would be cached as an output). */
function writeManifests(dir: string, manifests: Record<string, unknown>) {
  // Unchanged manifests (a rerun with nothing new) are left alone: no fsync per file.
  for (const [name, value] of Object.entries(manifests)) writeFileIfChanged(join(dir, name), jsonBytes(name, value));
  if (!existsSync(dir)) return;
  for (const n of readdirSync(dir)) if (!(n in manifests)) rmSync(join(dir, n), { recursive: true, force: true });
}
