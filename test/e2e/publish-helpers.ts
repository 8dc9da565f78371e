// Plumbing of the publishing e2e test: nx with its pid (the run id the publishing executors
// record is `<nx pid>-<start time>`), tree listings to prove "nothing changed", the event log.
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TempWorkspace } from '../helpers/workspace';
export { listing } from '../helpers/listing';

export type NxRun = ReturnType<TempWorkspace['nxResult']>;

/** ws.nxResult with static output; the pid is the run id's prefix (`<pid>-<start time>`). */
export const nxRun = (ws: TempWorkspace, args: string[], env?: NodeJS.ProcessEnv): NxRun => ws.nxResult([...args, '--outputStyle=static'], env);

/** Like nxRun, but throws with the output's tail on a non-zero exit. */
export function nxOk(ws: TempWorkspace, args: string[], env?: NodeJS.ProcessEnv): NxRun {
  const r = nxRun(ws, args, env);
  if (r.code !== 0) throw new Error(`nx ${args.join(' ')} exited ${r.code}:\n${r.output.slice(-6000)}`);
  return r;
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

/** [path, type letter, size] of every entry under `dir` (paths relative to `base`). */
export function entries(base: string, rel: string): Array<[string, string, number]> {
  const out: Array<[string, string, number]> = [];
  const walk = (p: string) => {
    for (const name of readdirSync(join(base, p))) {
      const q = `${p}/${name}`;
      const st = lstatSync(join(base, q));
      if (st.isSymbolicLink()) out.push([q, 'l', st.size]);
      else if (st.isDirectory()) {
        out.push([q, 'd', st.size]);
        walk(q);
      } else out.push([q, 'f', st.size]);
    }
  };
  walk(rel);
  return out;
}
