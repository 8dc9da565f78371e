// The filelist stage (replaces sync-file-list-parallel.sh; spec §4.5): quick-fedora-mirror file
// lists for the production tree, generated only once every `prod` of the same Nx run is done,
// so a mirror never gets lists between two releases' syncs.
//
// How it knows: the executor passes the projects whose `prod` task is in this Nx run and an id
// of the run. Every prod appends `prod-done {project, runId}` to <site.state>/publish/events.jsonl
// (also when it had nothing to do). A filelist task whose run still has a prod without that
// event defers (success, event `filelist-deferred`); the last filelist task of the run, which Nx
// starts after the last prod it depends on, finds them all and writes the lists
// (`filelist-written`, or `filelist-unchanged` when every list was already current).
//
// Modules (names as mirrors know them, spec §4.5):
//   rocky      <production>/<category>  fullfiletimelist-rocky, aliases fullfiletimelist and
//                                       fullfiletimelist-rocky-linux (what Rocky's script copies)
//   sig        <production>/mirror/pub/sig, when it exists: fullfiletimelist-sig (+ fullfiletimelist)
//   root       <production>: fullfiletimelist-root, aliases fullfiletimelist and
//              fullfiletimelist-rocky (the name Rocky's script writes at the root)
// The root module contains the others' list files, so it is generated right after them (same
// lock): otherwise its lists would always describe the previous generation's lists, and every
// run would rewrite them once more. The SHA1 cache and the lists' lock live in <site.state>/publish/.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { acquireLockWaiting, eventLog } from '@rocky/exec';
import { generateFileLists, type FileListModule, type FileListResult } from '@rocky/publish';
import { publishPaths } from './staging';
import type { StageContext } from './context';

export interface FilelistOptions {
  /** Projects whose `prod` task is part of this Nx run. */
  prodProjectsInRun: string[];
  /** Identifies this Nx invocation. */
  runId: string;
}

export interface FilelistStageResult {
  status: 'written' | 'unchanged' | 'deferred' | 'dry-run';
  /** Projects of this run whose prod has not finished (deferred). */
  waitingFor: string[];
  written: string[];
  unchanged: string[];
}

interface Event {
  type: string;
  runId?: string;
  project?: string;
  release?: string;
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

export async function filelistStage(s: StageContext, o: FilelistOptions): Promise<FilelistStageResult> {
  const { site } = s;
  const paths = publishPaths(site, s.release);
  const log = eventLog(s.dryRun ? undefined : paths.publishEvents, `[filelist ${s.project}]`);
  const events = readEvents(paths.publishEvents);
  const done = new Set(events.filter((e) => e.type === 'prod-done' && e.runId === o.runId).map((e) => e.project ?? e.release));
  const waitingFor = o.prodProjectsInRun.filter((p) => !done.has(p));
  const empty = { written: [], unchanged: [] };
  if (waitingFor.length) {
    log.info(`deferred: waiting for prod of ${waitingFor.join(', ')} (this run's last filelist task writes the lists)`);
    if (!s.dryRun) log.event('filelist-deferred', { project: s.project, runId: o.runId, waitingFor });
    return { status: 'deferred', waitingFor, ...empty };
  }
  const modules = fileListModules(site);
  if (s.dryRun) {
    log.info(`dry run: would generate file lists for ${modules.map((m) => `${m.name} (${m.dir})`).join(', ')}`);
    return { status: 'dry-run', waitingFor: [], ...empty };
  }
  // Another filelist task of this run already listed the final tree: nothing can have changed since.
  const lastProd = events.reduce((i, e, k) => (e.type === 'prod-done' && e.runId === o.runId ? k : i), -1);
  const already = events.findIndex((e, k) => k > lastProd && e.runId === o.runId && (e.type === 'filelist-written' || e.type === 'filelist-unchanged'));
  if (o.prodProjectsInRun.length && already >= 0) {
    log.info('file lists were already generated in this run after its last prod');
    log.event('filelist-unchanged', { project: s.project, runId: o.runId, reason: 'already generated in this run' });
    return { status: 'unchanged', waitingFor: [], ...empty };
  }

  const unlock = await acquireLockWaiting(paths.productionLock, 'production publishing', { timeoutMs: 30 * 60_000 });
  try {
    const opts = {
      lockFile: join(site.state, 'publish', 'locks', 'filelist.lock'),
      cacheFile: join(site.state, 'publish', 'filelist-sha1-cache.json'),
      aliases: { rocky: ['fullfiletimelist', 'fullfiletimelist-rocky-linux'], sig: ['fullfiletimelist'], root: ['fullfiletimelist', 'fullfiletimelist-rocky'] },
      log: (m: string) => log.info(m),
    };
    const inner = modules.filter((m) => m.name !== 'root');
    const results: FileListResult[] = [];
    if (inner.length) results.push(await generateFileLists(inner, { ...opts, aliases: pick(opts.aliases, inner) }));
    const root = modules.find((m) => m.name === 'root');
    if (root) results.push(await generateFileLists([root], { ...opts, aliases: pick(opts.aliases, [root]) }));
    const written = results.flatMap((r) => r.written);
    const unchanged = results.flatMap((r) => r.unchanged);
    const status = written.length ? 'written' : 'unchanged';
    log.event(`filelist-${status}`, { project: s.project, runId: o.runId, written, files: results.reduce((n, r) => n + r.files, 0) });
    log.info(`file lists ${status}: ${written.length} written, ${unchanged.length} unchanged`);
    return { status, waitingFor: [], written, unchanged };
  } finally {
    unlock();
  }
}

const pick = (aliases: Record<string, string[]>, mods: FileListModule[]) => Object.fromEntries(mods.map((m) => [m.name, aliases[m.name] ?? []]));

/** The production modules that exist (see the header). */
export function fileListModules(site: StageContext['site']): FileListModule[] {
  const mods: FileListModule[] = [];
  const category = join(site.roots.production, site.category);
  if (existsSync(category)) mods.push({ name: 'rocky', dir: category });
  const sig = join(site.roots.production, 'mirror', 'pub', 'sig');
  if (existsSync(sig)) mods.push({ name: 'sig', dir: sig });
  if (existsSync(site.roots.production)) mods.push({ name: 'root', dir: site.roots.production });
  return mods;
}
