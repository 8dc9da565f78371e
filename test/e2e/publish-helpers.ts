// Plumbing of the publishing e2e test: nx with its pid (the run id the publishing executors
// record is `<nx pid>-<start time>`), tree listings to prove "nothing changed", the event log.
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { TempWorkspace } from '../helpers/workspace';

export type NxRun = ReturnType<TempWorkspace['nxResult']>;

/** ws.nxResult with static output; the pid is the run id's prefix (`<pid>-<start time>`). */
export const nxRun = (ws: TempWorkspace, args: string[], env?: NodeJS.ProcessEnv): NxRun => ws.nxResult([...args, '--outputStyle=static'], env);

/** Like nxRun, but throws with the output's tail on a non-zero exit. */
export function nxOk(ws: TempWorkspace, args: string[], env?: NodeJS.ProcessEnv): NxRun {
  const r = nxRun(ws, args, env);
  if (r.code !== 0) throw new Error(`nx ${args.join(' ')} exited ${r.code}:\n${r.output.slice(-6000)}`);
  return r;
}

/**
 * Every entry under `dir` with type, size, mtime (ns precision), inode and link target: equal
 * listings mean nothing was added, removed, replaced, rewritten or even touched. (Link counts are
 * left out: another tree hardlinking a file does not change it.)
 */
export function listing(dir: string): string[] {
  if (!existsSync(dir)) return ['<absent>'];
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(rel ? join(dir, rel) : dir).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(dir, p), { bigint: true });
      if (st.isSymbolicLink()) out.push(`l ${p} -> ${readlinkSync(join(dir, p))}`);
      else if (st.isDirectory()) {
        out.push(`d ${p} ${st.mtimeNs}`);
        walk(p);
      } else out.push(`f ${p} ${st.size} ${st.mtimeNs} ${st.ino}`);
    }
  };
  walk('');
  return out;
}

export interface PublishEvent {
  time: string;
  pid: number;
  type: string;
  project?: string;
  release?: string;
  runId?: string;
  reason?: string;
  changed?: boolean;
  written?: string[];
  waitingFor?: string[];
  [k: string]: unknown;
}

/** The JSON-lines event log, from line `from` on (0-based). */
export function readEvents(file: string, from = 0): PublishEvent[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .slice(from)
    .map((l) => JSON.parse(l) as PublishEvent);
}

/** The tasks of the last nx run (.nx/cache/run.json), by task id, with their start and end times. */
export const lastRunTasks = (ws: TempWorkspace) => Object.fromEntries(ws.runJson().tasks.map((t) => [t.taskId, t]));
