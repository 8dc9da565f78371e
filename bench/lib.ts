// Shared benchmark plumbing: timing with repetitions (median quoted) and the result row.
import { execFileSync } from 'node:child_process';

export interface BenchRow {
  name: string;
  /** Seconds (median), ours. */
  ours: number;
  /** Seconds (median), the tool a release engineer would otherwise use. */
  theirs: number;
  theirsName: string;
  /** theirs / ours: > 1 means we are faster. For "within Nx of the floor" goals, ours / theirs is shown in `goal`. */
  ratio: number;
  goal: string;
  met: boolean;
  notes?: string;
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
