// Real `dnf repoclosure` against local trees, with a private configuration: Debian's
// /etc/dnf/dnf.conf sets skip_if_unavailable=True, which would make a missing repo pass.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { run, ToolError } from '@rocky/exec';

export interface LocalRepo {
  id: string;
  path: string;
}

export interface ClosureResult {
  ok: boolean;
  /** Packages with unresolved dependencies, e.g. `broken-1.0-1.noarch` → [`does-not-exist`]. */
  broken: { package: string; repo: string; unresolved: string[] }[];
  argv: string[];
}

/** Rocky's repoclosure arch flags (empanadas repoclosure_map.arches). */
export function closureArchArgs(arch: string): string[] {
  const compat = arch === 'x86_64' ? ['x86_64', 'athlon', 'i686', 'i586', 'i486', 'i386'] : [arch];
  return [`--forcearch=${arch}`, ...[...compat, 'noarch'].map((a) => `--arch=${a}`)];
}

/** Writes a dnf.conf whose cache, logs and state stay inside `workDir`. */
export function dnfConfig(workDir: string): string {
  mkdirSync(join(workDir, 'repos.d'), { recursive: true });
  const conf = join(workDir, 'dnf.conf');
  writeFileSync(
    conf,
    [
      '[main]',
      `reposdir=${join(workDir, 'repos.d')}`,
      `cachedir=${join(workDir, 'cache')}`,
      `logdir=${join(workDir, 'log')}`,
      `persistdir=${join(workDir, 'persist')}`,
      'skip_if_unavailable=False',
      'gpgcheck=False',
      'install_weak_deps=False',
      'metadata_expire=0',
      '',
    ].join('\n'),
  );
  return conf;
}

export function dnfRepoArgs(repos: LocalRepo[]): string[] {
  return repos.flatMap((r) => [`--repofrompath=${r.id},${pathToFileURL(r.path).href}`, `--repo=${r.id}`]);
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

export async function repoclosure(opts: { check: LocalRepo; deps: LocalRepo[]; arch: string; releasever: number | string; workDir: string; logFile?: string }): Promise<ClosureResult> {
  const conf = dnfConfig(opts.workDir);
  const argv = [
    'dnf',
    '-q',
    '-c',
    conf,
    `--releasever=${opts.releasever}`,
    ...dnfRepoArgs([opts.check, ...opts.deps]),
    'repoclosure',
    `--check=${opts.check.id}`,
    ...closureArchArgs(opts.arch),
  ];
  try {
    await run(argv, { logFile: opts.logFile, timeoutMs: 30 * 60_000 });
    return { ok: true, broken: [], argv };
  } catch (e) {
    if (!(e instanceof ToolError) || e.result.code !== 1) throw e;
    const broken = parseClosureOutput(e.result.stdout + '\n' + e.result.stderr);
    // Exit 1 without a parsable report is a dnf failure (unreadable repo...), not a closure verdict.
    if (!broken.length) throw e;
    return { ok: false, broken, argv };
  }
}
