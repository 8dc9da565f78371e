// Shared benchmark plumbing: timing with repetitions (median quoted), the load average, and the
// result row, whose `met` is computed here from the figures and the goal (never set by hand).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { isDeadScratch, scratchName } from '@rocky/exec';

/**
 * What a row must show. `faster`: theirs / ours >= x. `within`: ours / theirs <= x (ours at most
 * x times theirs; `within: 0.25` of a cold run reads "at most 25% of it"). `report`: no goal.
 */
export type Goal = { faster: number } | { within: number } | 'report';

export interface BenchRow {
  name: string;
  /** Seconds (median), ours. */
  ours: number;
  /** Seconds (median), what we are measured against. */
  theirs: number;
  theirsName: string;
  /** theirs / ours: > 1 means we are faster. */
  ratio: number;
  goal: string;
  met: boolean;
  notes?: string;
  /** 1-minute load average when the row's measurement started and when it ended. */
  load?: string;
  /** Why the row could not be measured: the full message. */
  error?: string;
}

/** Receives each row as soon as it is measured, so a later failure loses nothing measured before it. */
export type Emit = (row: BenchRow) => void;

export const goalText = (g: Goal): string => (g === 'report' ? 'report' : 'faster' in g ? `>= ${g.faster}x faster` : `<= ${g.within}x theirs`);

/**
 * A measured row: ratio and `met` from the figures. `also` is a further condition the goal has
 * besides the figures (e.g. "only the affected tasks reran"), with what to say when it fails.
 */
export function measured(r: { name: string; ours: number; theirs: number; theirsName: string; goal: Goal; notes?: string; also?: { ok: boolean; why: string } }): BenchRow {
  const ratio = r.theirs / r.ours;
  const figures = r.goal === 'report' ? true : 'faster' in r.goal ? ratio >= r.goal.faster : r.ours / r.theirs <= r.goal.within;
  const ok = Number.isFinite(ratio) && figures && (r.also?.ok ?? true);
  const notes = [r.goal !== 'report' && 'within' in r.goal ? `ours/theirs ${(r.ours / r.theirs).toFixed(2)}` : undefined, r.notes, r.also && !r.also.ok ? r.also.why : undefined].filter(Boolean).join('; ');
  return { name: r.name, ours: r.ours, theirs: r.theirs, theirsName: r.theirsName, ratio, goal: goalText(r.goal), met: ok, notes: notes || undefined };
}

/** A row that could not be measured: it keeps the whole message (and the cause's, if any). */
export function failedRow(name: string, e: unknown): BenchRow {
  return { name, ours: NaN, theirs: NaN, theirsName: '-', ratio: NaN, goal: '-', met: false, error: errorText(e) };
}

export function errorText(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const text = e.message.trim() || `${e.name} with no message${e.stack ? `: ${e.stack.split('\n').slice(1, 4).join(' ').trim()}` : ''}`;
  return e.cause !== undefined ? `${text}\ncaused by: ${errorText(e.cause)}` : text;
}

export const load1 = () => loadavg()[0].toFixed(2);

let clockTicks = 0;
/**
 * CPU seconds (user + system) of this process's children that have ended and been waited for,
 * and of theirs in turn (/proc/self/stat cutime + cstime): the difference around one awaited
 * child is that child's whole process tree. Far less sensitive to the machine's load than wall
 * time (a task waiting for a core costs no CPU); processes left running (daemons) are not in it.
 */
export function childrenCpuSeconds(): number {
  clockTicks ||= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  const stat = readFileSync('/proc/self/stat', 'utf8');
  // Fields after the command name (which may hold spaces): state is field 3, cutime 16, cstime 17.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) / clockTicks;
}

/** CPU seconds of this process and of its children waited for: a bench's own work and its tools'. */
export function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6 + childrenCpuSeconds();
}
export const loadText = () => loadavg().map((x) => x.toFixed(2)).join(' ');

/** Least-squares slope of log(seconds) against log(packages): 1 is linear growth, fixed costs pull it below 1. */
export function fittedExponent(points: { packages: number; seconds: number }[]): number {
  const xs = points.map((p) => Math.log(p.packages));
  const ys = points.map((p) => Math.log(p.seconds));
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  const sxy = xs.reduce((a, x, i) => a + (x - mx) * (ys[i] - my), 0);
  const sxx = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
  return sxy / sxx;
}

/**
 * Whether the largest size shows faster than linear growth: the cost of each package added in the
 * last step (from the second largest size to the largest, in seconds per package) against the
 * average cost per package at the largest size. Linear growth with fixed costs keeps the first
 * below the second; growth faster than linear shows as a margin above the average. Unlike a line
 * fitted to the smaller sizes and extrapolated, it does not hang on the smaller sizes' slope, which
 * their fixed costs and a run's noise can make anything, negative included (CPU 123, 118, 109 s
 * at 4,897, 8,516 and 15,968 packages put the 61,746-package prediction at 50 s).
 */
export function lastStepGrowth(points: { packages: number; seconds: number }[]): { marginal: number; average: number } {
  const last = points[points.length - 1];
  return { marginal: stepCosts(points)[points.length - 2], average: last.seconds / last.packages };
}

/** The cost of each package added between neighbouring sizes (seconds per package), one per step. */
export function stepCosts(points: { packages: number; seconds: number }[]): number[] {
  return points.slice(1).map((p, i) => (p.seconds - points[i].seconds) / (p.packages - points[i].packages));
}

/** seconds = fixed + perPackage * packages, least squares. */
export function linearFit(points: { packages: number; seconds: number }[]): { fixed: number; perPackage: number } {
  const mx = points.reduce((a, p) => a + p.packages, 0) / points.length;
  const my = points.reduce((a, p) => a + p.seconds, 0) / points.length;
  const perPackage = points.reduce((a, p) => a + (p.packages - mx) * (p.seconds - my), 0) / points.reduce((a, p) => a + (p.packages - mx) ** 2, 0);
  return { fixed: my - perPackage * mx, perPackage };
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Runs `fn` `reps` times (after `setup` each time) and returns the median seconds. */
export async function timeIt(reps: number, fn: () => unknown | Promise<unknown>, setup?: () => unknown | Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    await setup?.();
    const t0 = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return median(times);
}

export const sh = (argv: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) =>
  execFileSync(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'inherit'], maxBuffer: 1 << 30, ...opts });

export const flag = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};

const trash: string[] = [];

/**
 * Moves `path` aside now (a rename) and deletes it once every bench of the run is done
 * (emptyTrash). On a file system mounted with discard, as the bench machine's root is, a mass
 * delete slows the disk for seconds after it: deleted at the end of one bench, it slowed the
 * next one's first runs (the DVD bench's, which are ours: 1.21x the floor right after the sync
 * bench, 1.06x alone).
 */
export function deferDelete(path: string): void {
  // What a killed run of this host moved aside beside `path` goes too (a scratch name of a dead process).
  const dir = dirname(path);
  const prefix = `${basename(path)}.deleted@`;
  for (const n of existsSync(dir) ? readdirSync(dir) : []) if (n.startsWith(prefix) && isDeadScratch(n)) trash.push(join(dir, n));
  if (!existsSync(path)) return;
  const aside = `${path}.${scratchName('deleted')}-${trash.length}`;
  renameSync(path, aside);
  trash.push(aside);
}

/** Deletes what deferDelete moved aside. */
export function emptyTrash(): void {
  for (const p of trash.splice(0)) rmSync(p, { recursive: true, force: true });
}

/** For a bench run on its own: collects the rows it emits and prints them. */
export function standalone(bench: (emit: Emit) => Promise<void>): void {
  const rows: BenchRow[] = [];
  bench((r) => rows.push({ ...r, load: r.load ?? load1() })).then(
    () => (emptyTrash(), console.table(rows)),
    (e: unknown) => {
      emptyTrash();
      console.table(rows);
      console.error(errorText(e));
      process.exit(1);
    },
  );
}

/** The variables a `.env` file sets (KEY=VALUE lines; blank lines and # comments skipped): what Nx gives every task process of the workspace. */
export function dotEnv(file: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line); // a # line never matches
    if (m) vars[m[1]] = m[2];
  }
  return vars;
}
