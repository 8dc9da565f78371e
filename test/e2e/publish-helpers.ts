// Plumbing of the publishing e2e tests: the file's workspace with its step timer, nx with its pid
// (the run id the publishing executors record is `<nx pid>-<start time>`), tree listings to prove
// "nothing changed", the event log.
import { afterAll, beforeAll } from 'vitest';
import { existsSync, lstatSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { sharedWorkspace, tempWorkspace, type RunJson, type SharedCopy, type TempWorkspace } from '../helpers/workspace';
import { sharedFixture } from '../helpers/fixture';
export { listing } from '../helpers/listing';

export interface E2eWorkspace {
  /** Set by the time the file's own beforeAll hooks run. */
  ws: TempWorkspace;
  /** A workspace copied from a shared one: the record of the nx run that built it. */
  built?: RunJson;
  /** <workspace>/.releng */
  R: string;
  eventsFile: string;
  /** Runs `fn`, recording its time under `name` for the closing line. */
  step<T>(name: string, fn: () => T): T;
}

/**
 * The one temporary workspace (on the shared fixture) of an e2e file, made before its tests
 * (`prepare` edits it before any nx run; or a copy of a shared workspace, `{ shared }`) and
 * removed after them, with a closing line `<label> times (s): {setup, every step}; total` that
 * says where the file's time went.
 */
export function e2eWorkspace(label: string, setup?: ((ws: TempWorkspace) => void) | { shared: () => Promise<SharedCopy> }): E2eWorkspace {
  const times: Record<string, number> = {};
  const t0 = Date.now();
  const w = {
    step<T>(name: string, fn: () => T): T {
      const t = Date.now();
      try {
        return fn();
      } finally {
        times[name] = (Date.now() - t) / 1000;
      }
    },
  } as E2eWorkspace;
  beforeAll(async () => {
    if (setup && 'shared' in setup) ({ ws: w.ws, built: w.built } = await setup.shared());
    else {
      w.ws = tempWorkspace({ fixtureFrom: await sharedFixture() });
      setup?.(w.ws);
    }
    w.R = join(w.ws.dir, '.releng');
    w.eventsFile = join(w.R, 'state/events.jsonl');
    times.setup = (Date.now() - t0) / 1000;
  });
  afterAll(() => {
    console.log(`${label} times (s): ${JSON.stringify(times)}; total ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    w.ws?.cleanup();
  });
  return w;
}

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

/**
 * Keeps only `keep` of a release's arches in the workspace (its repos and cloud images too): a
 * file whose tests are about one arch's trees does not build the other arches' ISOs and trees.
 * The fixture is planned from the releases' arches, so a trimmed release has fixture packages of
 * its own to build in the workspace's copy of the shared fixture.
 */
export function trimArches(ws: TempWorkspace, release: string, keep: string[]): void {
  const file = join(ws.dir, 'releases', release, 'release.yaml');
  const doc = parse(readFileSync(file, 'utf8')) as { arches: string[]; repos: { arches?: string[] }[]; cloud?: { images: Record<string, { arches?: string[] }> } };
  doc.arches = doc.arches.filter((a) => keep.includes(a));
  doc.repos = doc.repos.filter((r) => !r.arches || r.arches.some((a) => keep.includes(a))).map((r) => (r.arches ? { ...r, arches: r.arches.filter((a) => keep.includes(a)) } : r));
  for (const [k, img] of Object.entries(doc.cloud?.images ?? {})) {
    if (!img.arches) continue;
    img.arches = img.arches.filter((a) => keep.includes(a));
    if (!img.arches.length) delete doc.cloud!.images[k];
  }
  writeFileSync(file, stringify(doc));
}


/**
 * rocky-9 staged, the whole pipeline for x86_64 and aarch64 (`nx run rocky-9:staging`), on the
 * local site without rocky-8's pungi producer: the first run of publish.test (its rocky-8 syncs
 * from the fixture's repos, as rocky-9 does), publish-damage.test and updates.test, built once per
 * vitest run and copied for each (helpers/workspace.ts sharedWorkspace). No producer makes
 * rocky-9: without rocky-8's its pipeline is the same.
 */
export const rocky9Staged = async (): Promise<SharedCopy> =>
  sharedWorkspace({
    name: 'rocky9-staged',
    fixtureFrom: await sharedFixture(),
    prepare: (ws) => {
      const edit = (file: string, change: (doc: Record<string, unknown>) => void) => {
        const doc = parse(readFileSync(join(ws.dir, file), 'utf8')) as Record<string, unknown>;
        change(doc);
        writeFileSync(join(ws.dir, file), stringify(doc));
      };
      edit('sites/local.yaml', (site) => delete site.producers);
      edit('releases/rocky-8/release.yaml', (rel) => delete rel.composes);
      // Publishing is per tree: two of rocky-9's arches show it (the whole release is pipeline.test.ts's).
      trimArches(ws, 'rocky-9', ['x86_64', 'aarch64']);
    },
    build: (ws) => nxOk(ws, ['run', 'rocky-9:staging']),
  });

/** The task ids of a run that ran (cache misses), sorted. */
export const ranTasks = (run: RunJson) => run.tasks.filter((t) => t.cacheStatus === 'cache-miss').map((t) => t.taskId).sort();
