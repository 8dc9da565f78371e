// The filelist stage (replaces sync-file-list-parallel.sh; spec §4.5): quick-fedora-mirror file
// lists for the production tree, generated only once every `prod` of the same Nx run is done,
// so a mirror never gets lists between two releases' syncs.
//
// How it knows: the stage context carries the tasks of this Nx run and an id of the run. Every prod appends `prod-done {project, runId}` to the site event log <site.state>/events.jsonl
// (also when it had nothing to do). A filelist task whose run still has a prod without that
// event defers (success, event `filelist-deferred`); the last filelist task of the run, which Nx
// starts after the last prod it depends on, finds them all and writes the lists
// (`filelist-written`, or `filelist-unchanged` when every list was already current).
//
// Modules (names as mirrors know them, spec §4.5):
//   rocky      <production>/<category>  fullfiletimelist-rocky, aliases fullfiletimelist and
//                                       fullfiletimelist-rocky-linux (what Rocky's script copies)
//   sig        <production>/<sigCategory> (mirror/pub/sig: every SIG release), when it exists:
//              fullfiletimelist-sig (+ fullfiletimelist)
//   root       <production>: fullfiletimelist-root, aliases fullfiletimelist and
//              fullfiletimelist-rocky (the name Rocky's script writes at the root)
// The root module contains the others' list files, so it is generated right after them (same
// lock): otherwise its lists would always describe the previous generation's lists, and every
// run would rewrite them once more. The SHA1 cache and the lists' lock live in <site.state>/publish/.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventsFile, publishLayout } from '@rocky/config';
import { generateFileLists, type FileListModule, type FileListResult } from '@rocky/publish';
import { projectsInRun, type StageContext } from './context';
import type { Stage } from './stage';

export interface FilelistPlan {
  /** Prods of this run not finished yet: this task defers to the run's last filelist task. */
  waitingFor: string[];
  /** Another filelist task of this run already listed the final tree. */
  alreadyDone: boolean;
  modules: FileListModule[];
}

export interface FilelistStageResult {
  status: 'written' | 'unchanged' | 'deferred';
  written: string[];
  unchanged: string[];
}

interface Event {
  type: string;
  runId?: string;
  project?: string;
}

function readEvents(file: string): Event[] {
  if (!existsSync(file)) return [];
  const out: Event[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    try {
      out.push(JSON.parse(line) as Event);
    } catch {
      // a line cut by a crash: not an event
    }
  }
  return out;
}

const ALIASES: Record<string, string[]> = { rocky: ['fullfiletimelist', 'fullfiletimelist-rocky-linux'], sig: ['fullfiletimelist'], root: ['fullfiletimelist', 'fullfiletimelist-rocky'] };

export const filelistStage: Stage<FilelistPlan, FilelistStageResult> = {
  name: 'filelist',
  tools: () => [],
  locks: (ctx) => [{ file: publishLayout(ctx.site, ctx.release).productionLock, what: 'production publishing', waitMs: 30 * 60_000 }],

  async plan(ctx) {
    const runId = ctx.run.id;
    const events = readEvents(eventsFile(ctx.site));
    // Both chains' prods: a run may promote a minor release of one release and an update push of another.
    const prods = [...new Set([...projectsInRun(ctx, 'prod'), ...projectsInRun(ctx, 'update-prod')])].sort();
    const done = new Set(events.filter((e) => e.type === 'prod-done' && e.runId === runId).map((e) => e.project));
    const waitingFor = prods.filter((p) => !done.has(p));
    const lastProd = events.reduce((i, e, k) => (e.type === 'prod-done' && e.runId === runId ? k : i), -1);
    const alreadyDone = prods.length > 0 && events.some((e, k) => k > lastProd && e.runId === runId && (e.type === 'filelist-written' || e.type === 'filelist-unchanged'));
    return { waitingFor, alreadyDone, modules: fileListModules(ctx.site) };
  },

  describe: (p) => ({
    summary: p.waitingFor.length
      ? `deferred: waiting for prod of ${p.waitingFor.join(', ')} (this run's last filelist task writes the lists)`
      : p.alreadyDone
        ? 'file lists were already generated in this run after its last prod'
        : `file lists for ${p.modules.map((m) => `${m.name} (${m.dir})`).join(', ') || 'nothing (no production tree yet)'}`,
  }),

  async execute(ctx, plan) {
    const empty = { written: [], unchanged: [] };
    if (plan.waitingFor.length) return { status: 'deferred', ...empty };
    if (plan.alreadyDone) return { status: 'unchanged', ...empty };
    const paths = publishLayout(ctx.site, ctx.release);
    const opts = { lockFile: paths.fileListLock, cacheFile: paths.fileListSha1Cache, log: (m: string) => ctx.log.info(m) };
    // The root module contains the others' list files, so it is generated right after them.
    const inner = plan.modules.filter((m) => m.name !== 'root');
    const root = plan.modules.filter((m) => m.name === 'root');
    const results: FileListResult[] = [];
    for (const mods of [inner, root]) if (mods.length) results.push(await generateFileLists(mods, { ...opts, aliases: pick(mods) }));
    const written = results.flatMap((r) => r.written);
    return { status: written.length ? 'written' : 'unchanged', written, unchanged: results.flatMap((r) => r.unchanged) };
  },

  async verify() {},

  async record(ctx, plan, r) {
    ctx.log.event(`filelist-${r.status}`, { written: r.written, waitingFor: plan.waitingFor });
    return { summary: r.status === 'deferred' ? `file lists deferred to this run's last filelist task` : `file lists ${r.status}: ${r.written.length} written, ${r.unchanged.length} unchanged` };
  },
};

const pick = (mods: FileListModule[]) => Object.fromEntries(mods.map((m) => [m.name, ALIASES[m.name] ?? []]));

/** The production modules that exist (see the header). */
export function fileListModules(site: StageContext['site']): FileListModule[] {
  const mods: FileListModule[] = [];
  const category = join(site.roots.production, site.category);
  if (existsSync(category)) mods.push({ name: 'rocky', dir: category });
  const sig = join(site.roots.production, site.sigCategory);
  if (existsSync(sig)) mods.push({ name: 'sig', dir: sig });
  if (existsSync(site.roots.production)) mods.push({ name: 'root', dir: site.roots.production });
  return mods;
}
