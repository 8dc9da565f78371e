// The command line, checked before any task runs (the plugin's preTasksExecution hook):
//  - Options a target does not declare are errors. Nx validates a task's options against its
//    schema only when that task starts, after its dependencies already ran for real; a typo such
//    as `--dryrun` must stop the run before anything happens.
//  - `--dryRun` makes the whole run a dry run. Nx passes options to the tasks asked for only,
//    not to the tasks they depend on, and caches what they do: so every task of the run is told
//    through the environment (RELENG_DRY_RUN), and the Nx cache is neither read nor written
//    (NX_SKIP_NX_CACHE), so a plan is never stored or replayed as a result.
//  - Upstream and pungi compose fingerprints (fingerprint.ts) are computed for the releases of the run, once.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PreTasksExecution } from '@nx/devkit';
import { fingerprintEnv } from './fingerprint';

/** Our targets and the executor behind each (the plugin infers them from release files). */
export function executorOf(target: string): string | undefined {
  if (/^iso-(?!extra$)[a-z0-9_]+$/.test(target)) return 'iso';
  if (['sync', 'iso-extra', 'cloud', 'finalize', 'staging', 'prod', 'filelist', 'rollback', 'check-site', 'sign-repos'].includes(target)) return target;
  // Releases pungi makes: one task per compose, and per-compose staging (names.ts composeTarget).
  const pungi = /^(?:update-)?(compose|staging)-[A-Za-z0-9][A-Za-z0-9._+-]*$/.exec(target);
  if (pungi) return pungi[1];
  const update = /^update-(sync|staging|prod|filelist)$/.exec(target);
  return update?.[1];
}

/** The options an executor's schema.json declares. */
export function executorOptions(executor: string): string[] {
  const schema = JSON.parse(readFileSync(join(__dirname, 'executors', executor, 'schema.json'), 'utf8')) as { properties: Record<string, unknown> };
  return Object.keys(schema.properties);
}

const camel = (s: string) => s.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** Nx's own options for running tasks (from Nx's yargs definitions, so they follow the pinned Nx). */
function nxOptions(): Set<string> {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const shared = require('nx/src/command-line/yargs-utils/shared-options') as Record<string, (y: unknown) => unknown>;
  let y = (require('yargs') as (a: string[]) => unknown)([]);
  /* eslint-enable @typescript-eslint/no-require-imports */
  for (const f of ['withRunOneOptions', 'withRunManyOptions', 'withAffectedOptions', 'withRunOptions', 'withOutputStyleOption', 'withTuiOptions', 'withVerbose', 'withBatch', 'withConfiguration', 'withTargetAndConfigurationOption', 'withExcludeOption']) {
    if (typeof shared[f] === 'function') y = shared[f](y);
  }
  const o = (y as { getOptions(): { key: Record<string, unknown>; alias: Record<string, string[]> } }).getOptions();
  return new Set([...Object.keys(o.key), ...Object.values(o.alias).flat(), 'help', 'h', 'version', 'skipNxCache', 'skipRemoteCache', 'disableNxCache', 'disableRemoteCache'].map(camel));
}

export interface CommandLine {
  /** `run`, `run-many`, `affected`, or `run` for the infix form `nx p:t`. */
  command: string;
  /** Targets asked for. */
  targets: string[];
  /** Projects asked for (`nx run p:t`, `-p a,b`); undefined for every project (or a pattern, affected). */
  projects?: string[];
  /** Every `--flag` (camelCase, without `no-`) with its value. */
  flags: { name: string; value: string | boolean }[];
}

/** Reads nx's argv (`[node, nx.js, command, …]`). Only names matter, and dryRun's value. */
export function parseCommandLine(argv: string[]): CommandLine {
  const args = argv.slice(2);
  const flags: CommandLine['flags'] = [];
  const positional: string[] = [];
  const targets: string[] = [];
  let projects: string[] | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--') break;
    if (!a.startsWith('-') || a === '-') {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    let name = a.replace(/^--?/, '').slice(0, eq < 0 ? undefined : eq - (a.startsWith('--') ? 2 : 1));
    let value: string | boolean = eq < 0 ? true : a.slice(eq + 1);
    if (name.startsWith('no-')) ((name = name.slice(3)), (value = false));
    name = camel(name);
    if (name === 't' || name === 'targets' || name === 'target' || name === 'p' || name === 'projects') {
      const list = value === true ? [] : [String(value)];
      while (value === true && i + 1 < args.length && !args[i + 1].startsWith('-')) list.push(args[++i]);
      const names = list.flatMap((x) => x.split(',')).filter(Boolean);
      if (name.startsWith('t')) targets.push(...names);
      else projects = [...(projects ?? []), ...names];
    } else if (value === true && (args[i + 1] === 'true' || args[i + 1] === 'false')) value = args[++i] === 'true';
    flags.push({ name, value: value === 'true' ? true : value === 'false' ? false : value });
  }
  let command = positional[0] ?? '';
  if (command === 'run' || command.includes(':')) {
    const spec = positional.find((x) => x.includes(':'));
    command = 'run';
    if (spec) ((projects = [spec.split(':')[0]]), targets.push(spec.split(':')[1]));
  }
  // Patterns and tags (`rocky-*`, `tag:…`, `!x`) name projects Nx resolves: count every project.
  if (command === 'affected' || projects?.some((p) => !/^[A-Za-z0-9][\w.-]*$/.test(p))) projects = undefined;
  return { command, targets, projects, flags };
}

/** Targets of ours that run alone: no fingerprint is hashed by them or by a task they run after. */
const ALONE = ['check-site', 'rollback', 'sign-repos'];

/**
 * Whether a task of `target` hashes an upstream fingerprint or depends on one that does: every
 * target of ours but those that run alone and pungi's composes and their own staging (they read
 * what pungi made, not the upstream repos).
 */
export function needsUpstream(target: string): boolean {
  const e = executorOf(target);
  return !!e && ![...ALONE, 'compose'].includes(e) && !/^(update-)?staging-/.test(target);
}

/**
 * Whether a task of `target` may hash a pungi compose fingerprint or depend on one that does:
 * every target of ours but those that run alone (a release pungi makes chains sync, and so every
 * later target, after its compose tasks; a release without composes has no compose fingerprint).
 */
export function needsComposes(target: string): boolean {
  const e = executorOf(target);
  return !!e && !ALONE.includes(e);
}

/**
 * Rejects options the asked-for targets do not declare; returns whether the run is a dry run.
 * Runs of targets that are not ours (tests, type checks) are left to Nx.
 */
export function checkCommandLine(argv: string[]): { dryRun: boolean } {
  const cl = parseCommandLine(argv);
  if (!['run', 'run-many', 'affected'].includes(cl.command) || !cl.targets.length) return { dryRun: false };
  const executors = cl.targets.map(executorOf);
  if (executors.some((e) => !e)) return { dryRun: false };
  const known = nxOptions();
  const allowed = new Map<string, string[]>();
  for (const [i, e] of executors.entries()) allowed.set(cl.targets[i], executorOptions(e!));
  const ours = new Set([...allowed.values()].flat());
  const unknown = cl.flags.filter((f) => !known.has(f.name) && ![...allowed.values()].every((opts) => opts.includes(f.name)));
  if (unknown.length) {
    const list = [...allowed].map(([t, opts]) => `${t}: ${opts.map((o) => `--${o}`).join(', ')}`).join('; ');
    const names = unknown.map((f) => `--${f.name}`).join(', ');
    throw new Error(`unknown option ${names}${unknown.some((f) => ours.has(f.name)) ? ' (not an option of every target asked for)' : ''}; nothing was run. Options: ${list}; and Nx's own (nx run --help).`);
  }
  const dry = cl.flags.filter((f) => f.name === 'dryRun').pop();
  return { dryRun: !!dry && dry.value !== false };
}

/**
 * Before any task runs: unknown options stop the run, `--dryRun` makes every task of the run
 * plan only, with the Nx cache neither read nor written (see above), and the upstream and
 * compose fingerprints of the run's releases are computed for the tasks' hashes.
 */
export const preTasksExecution: PreTasksExecution = async (_options, context) => {
  const { dryRun } = checkCommandLine(context.argv);
  if (dryRun) {
    process.env.RELENG_DRY_RUN = '1';
    process.env.NX_SKIP_NX_CACHE = 'true';
    return; // nothing is read from or written to the cache: no upstream is read either
  }
  const cl = parseCommandLine(context.argv);
  if (!['run', 'run-many', 'affected'].includes(cl.command)) return;
  const needed = { upstream: cl.targets.some(needsUpstream), composes: cl.targets.some(needsComposes) };
  if (needed.upstream || needed.composes) Object.assign(process.env, await fingerprintEnv(context.workspaceRoot, cl.projects, needed));
};
