// Real `dnf repoclosure` against local trees (the command line is dnf.ts's), and its report read.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { run, ToolError } from '@rocky/exec';
import { dnfConfig, repoclosureArgv, type LocalRepo } from './dnf';
import type { DnfForks } from './dnf-forks';

export interface ClosureResult {
  ok: boolean;
  /** Packages with unresolved dependencies, e.g. `broken-1.0-1.noarch` → [`does-not-exist`]. */
  broken: { package: string; repo: string; unresolved: string[] }[];
  argv: string[];
}

/** Parses dnf repoclosure's report: `package: X from R` followed by indented unresolved deps. */
export function parseClosureOutput(out: string): ClosureResult['broken'] {
  const broken: ClosureResult['broken'] = [];
  let cur: ClosureResult['broken'][number] | undefined;
  for (const line of out.split('\n')) {
    const m = /^package: (\S+) from (\S+)/.exec(line);
    if (m) {
      cur = { package: m[1], repo: m[2], unresolved: [] };
      broken.push(cur);
    } else if (cur && /^\s{4,}\S/.test(line)) {
      cur.unresolved.push(line.trim());
    }
  }
  return broken;
}

/** `forks`: run dnf as a fork of that server (the same command, without importing dnf again). */
export async function repoclosure(opts: { check: LocalRepo; deps: LocalRepo[]; arch: string; releasever: number | string; workDir: string; logFile?: string; forks?: DnfForks }): Promise<ClosureResult> {
  const argv = repoclosureArgv({ config: dnfConfig(opts.workDir), releasever: opts.releasever, check: opts.check, deps: opts.deps, arch: opts.arch });
  const how = { logFile: opts.logFile, timeoutMs: 30 * 60_000 };
  try {
    await (opts.forks ? opts.forks.run(argv, { ...how, workDir: opts.workDir }) : run(argv, how));
    return { ok: true, broken: [], argv };
  } catch (e) {
    if (!(e instanceof ToolError) || e.result.code !== 1) throw e;
    const broken = parseClosureOutput(e.result.stdout + '\n' + e.result.stderr);
    // Exit 1 without a parsable report is a dnf failure (unreadable repo...), not a closure verdict.
    if (!broken.length) throw e;
    return { ok: false, broken, argv };
  } finally {
    // dnf's cache (a .solv per repo, made again by every run: metadata_expire=0) is a copy of the
    // same metadata per check; the log and the verdict are what stay. Not rmSync: its unlinks
    // held the event loop (~50 ms a check) while the trees' links waited.
    await rm(join(opts.workDir, 'cache'), { recursive: true, force: true });
  }
}
