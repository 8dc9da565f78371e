// Mirror-safe tree publishing with rsync as the engine (DESIGN §6; peers §4.6; spec §4.4, §6.2.1).
//
// Readers (dnf clients, downstream mirrors) read the destination while we write it, so no
// moment may show a repomd.xml naming a file that is not there. One dry run plans every change;
// then only the planned paths are passed to rsync (--files-from), phase by phase:
//   1 content   new/changed packages, ISOs, images and every other non-metadata file; no deletions
//   2 metadata  repodata files other than repomd.xml(.asc), .treeinfo, .discinfo, media.repo, CHECKSUM*, metadata/
//   3 signature repomd.xml.asc (and .key), then
//   4 repomd    repomd.xml: the switch to the new metadata, one atomic rename per repo
//   5 links     symlinks (their targets are all in place by now)
//   6 delete    after a grace period (clients that fetched the old repomd.xml just before the switch
//               finish their downloads): first the repomd.xml of vanishing repos, then the rest,
//               and paths whose type changes (dir <-> file), which cannot be done without deleting
//   7 attrs     directory times (rsync's temp dirs and deletions touch them), so the result is exact
// Phases 1-4 use --delay-updates: a changed file is renamed into place, never seen half written.
// The plan counts deletions and refuses, before anything changes, above the deletion limit.
// A last dry run must report no difference (and for local destinations every file's size is
// compared), else publishing failed. An unchanged tree costs exactly one dry run.
import { lstatSync, mkdtempSync, readdirSync, rmSync, type Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { EventLog } from '@rocky/exec';
import {
  baseArgs,
  describeRsyncError,
  parseDestination,
  rsyncItemized,
  srcArg,
  writeFilesFrom,
  type Destination,
  type EntryType,
  type ItemizedEntry,
  type RsyncOptions,
} from './rsync';

export interface PublishOptions {
  /** Local source directory, or several merged in order (the first holding a path wins, as rsync does). */
  source: string | string[];
  /** Local path, `host:/path` or `rsync://host/module/path`. */
  dest: string;
  /** Delete what the source does not have. */
  delete: boolean;
  /** Plan only: compute exact adds/updates/deletes with bytes, change nothing (never refuses). */
  dryRun?: boolean;
  /** More deletions (non-directories) than this need confirmDeletions. */
  deletionLimit?: number;
  confirmDeletions?: boolean;
  /** rsync exclude patterns; excluded destination files are neither updated nor deleted. */
  excludes?: string[];
  /** `uid:gid` (--chown). */
  owner?: string;
  log?: EventLog;
  /** Wait between the repomd.xml switch and deletions (default 2000 ms). */
  deletionGraceMs?: number;
  bwlimitKiB?: number;
  rsync?: string;
  extraArgs?: string[];
  /** Where --files-from lists go (default: a temp dir, removed afterwards). */
  workDir?: string;
}

export interface PlannedEntry {
  path: string;
  type: EntryType;
  bytes: number;
  target?: string;
}

export interface PublishPlan {
  adds: PlannedEntry[];
  updates: PlannedEntry[];
  deletes: PlannedEntry[];
  /** Attribute-only changes (times, modes, owners). */
  attrs: PlannedEntry[];
  bytes: { add: number; update: number; delete: number };
}

export interface PhaseResult {
  name: string;
  entries: number;
  bytes: number;
  ms: number;
}

export interface PublishResult extends PublishPlan {
  source: string[];
  dest: string;
  dryRun: boolean;
  /** Whether anything was (or, for a dry run, would be) changed. */
  changed: boolean;
  phases: PhaseResult[];
  /** Verified after publishing (false for dry runs and unchanged trees, which need no verify). */
  verified: boolean;
  /** The deletions exceed deletionLimit and were not confirmed (a real run refuses). */
  needsConfirmation: boolean;
  ms: number;
}

export class DeletionLimitError extends Error {
  constructor(
    readonly count: number,
    readonly limit: number,
    readonly sample: string[],
  ) {
    super(
      `refusing to delete ${count} files (limit ${limit}); nothing was changed. ` +
        `Check the plan (e.g. ${sample.join(', ')}); if these deletions are intended, rerun with --confirmDeletions`,
    );
    this.name = 'DeletionLimitError';
  }
}

export class PublishError extends Error {
  constructor(
    readonly phase: string,
    readonly completed: string[],
    readonly dest: string,
    cause: unknown,
  ) {
    super(
      `publishing to ${dest} failed in phase '${phase}' (completed: ${completed.join(', ') || 'none'}): ${describeRsyncError(cause)}\n` +
        `Nothing is reported as published. Phases run in order, so metadata never names a missing file; rerun to finish.`,
    );
    this.name = 'PublishError';
  }
}

// --- classification -----------------------------------------------------------------------

const META_NAMES = new Set(['.treeinfo', '.discinfo', 'media.repo', 'extra_files.json', '.composeinfo']);
const META_DIRS = new Set(['repodata', 'metadata']);
const SIG_NAMES = new Set(['repomd.xml.asc', 'repomd.xml.key']);

/** Repository/compose metadata: published after the content it describes. */
export function isMetadataPath(path: string): boolean {
  const parts = path.split('/');
  const name = parts[parts.length - 1];
  return META_NAMES.has(name) || name.includes('CHECKSUM') || parts.some((p) => META_DIRS.has(p));
}

type Phase = 'content' | 'metadata' | 'signature' | 'repomd' | 'links';

function phaseOf(e: ItemizedEntry): Phase {
  const name = basename(e.path);
  if (e.type === 'symlink') return 'links';
  if (e.type !== 'dir' && name === 'repomd.xml') return 'repomd';
  if (e.type !== 'dir' && SIG_NAMES.has(name)) return 'signature';
  return isMetadataPath(e.path) ? 'metadata' : 'content';
}

const ancestors = (p: string): string[] => {
  const out: string[] = [];
  for (let i = p.lastIndexOf('/'); i > 0; i = p.lastIndexOf('/', i - 1)) out.push(p.slice(0, i));
  return out;
};

const toPlanned = (e: ItemizedEntry): PlannedEntry => ({ path: e.path, type: e.type, bytes: e.bytes, ...(e.target !== undefined ? { target: e.target } : {}) });

// --- the publisher ------------------------------------------------------------------------

interface Ctx {
  sources: string[];
  dest: Destination;
  o: PublishOptions;
  ropts: RsyncOptions;
  work: string;
  lists: number;
}

export async function publishTree(o: PublishOptions): Promise<PublishResult> {
  const t0 = Date.now();
  const sources = (Array.isArray(o.source) ? o.source : [o.source]).map((s) => s.replace(/\/+$/, ''));
  if (!sources.length) throw new Error('publishTree: no source');
  for (const s of sources) {
    if (parseDestination(s).remote) throw new Error(`publishTree: the source must be a local directory, not ${s}`);
    if (!lstatSync(s, { throwIfNoEntry: false })?.isDirectory()) throw new Error(`publishTree: source ${s} is not a directory`);
  }
  const dest = parseDestination(o.dest);
  const ropts: RsyncOptions = {
    rsync: o.rsync,
    owner: o.owner,
    excludes: o.excludes,
    bwlimitKiB: o.bwlimitKiB,
    // A remote side that vanishes must fail the pass, not hang it.
    extraArgs: [...(dest.remote ? ['--timeout=300', '--contimeout=60'] : []), ...(o.extraArgs ?? [])],
  };
  const ownWork = !o.workDir;
  const work = o.workDir ?? mkdtempSync(join(tmpdir(), 'publish-'));
  const c: Ctx = { sources, dest, o, ropts, work, lists: 0 };
  const log = o.log;
  try {
    // Plan: one dry run over everything. For an unchanged tree this is the only rsync run.
    let planRun;
    try {
      planRun = await dryRunDiff(c);
    } catch (e) {
      log?.event('publish-failed', { dest: dest.spec, phase: 'plan', completed: [], error: describeRsyncError(e).split('\n')[0] });
      throw new PublishError('plan', [], dest.spec, e);
    }
    const { entries } = planRun;
    const deleted = entries.filter((e) => e.deleted);
    await fillDeletionSizes(c, deleted);
    const live = entries.filter((e) => !e.deleted);
    const plan: PublishPlan = {
      adds: live.filter((e) => e.created).map(toPlanned),
      updates: live.filter((e) => !e.created && e.content).map(toPlanned),
      deletes: deleted.map(toPlanned),
      attrs: live.filter((e) => !e.created && !e.content).map(toPlanned),
      bytes: { add: 0, update: 0, delete: 0 },
    };
    plan.bytes.add = sum(plan.adds);
    plan.bytes.update = sum(plan.updates);
    plan.bytes.delete = sum(plan.deletes);
    const changed = entries.length > 0;
    const deleteCount = plan.deletes.filter((d) => d.type !== 'dir').length;
    const limit = o.deletionLimit ?? Infinity;
    const needsConfirmation = deleteCount > limit && !o.confirmDeletions;
    const base: Omit<PublishResult, 'phases' | 'verified' | 'ms'> = { ...plan, source: sources, dest: dest.spec, dryRun: !!o.dryRun, changed, needsConfirmation };
    log?.event('publish-plan', {
      source: sources,
      dest: dest.spec,
      dryRun: !!o.dryRun,
      adds: plan.adds.length,
      updates: plan.updates.length,
      deletes: plan.deletes.length,
      attrs: plan.attrs.length,
      bytes: plan.bytes,
    });
    log?.info(`publish ${sources.join(' + ')} -> ${dest.spec}: ${describePlan(plan)}`);

    // A dry run reports the plan (needsConfirmation says the real run would be refused).
    if (needsConfirmation && !o.dryRun) {
      const err = new DeletionLimitError(deleteCount, limit, plan.deletes.filter((d) => d.type !== 'dir').slice(0, 5).map((d) => d.path));
      log?.event('publish-refused', { dest: dest.spec, reason: 'deletion-limit', count: deleteCount, limit });
      throw err;
    }
    if (o.dryRun || !changed) {
      if (!changed) log?.event('publish-unchanged', { dest: dest.spec });
      return { ...base, phases: [], verified: false, ms: Date.now() - t0 };
    }

    const phases = await execute(c, entries);
    await verify(c);
    const result: PublishResult = { ...base, phases, verified: true, ms: Date.now() - t0 };
    log?.event('publish-done', { dest: dest.spec, phases: phases.map((p) => p.name), bytes: plan.bytes, ms: result.ms });
    return result;
  } finally {
    if (ownWork) rmSync(work, { recursive: true, force: true });
  }
}

export function describePlan(p: PublishPlan): string {
  const mb = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
  return `${p.adds.length} to add (${mb(p.bytes.add)}), ${p.updates.length} to update (${mb(p.bytes.update)}), ${p.deletes.length} to delete (${mb(p.bytes.delete)}), ${p.attrs.length} attribute-only`;
}

const sum = (xs: PlannedEntry[]) => xs.reduce((n, x) => n + (x.type === 'dir' ? 0 : x.bytes), 0);

function dryRunDiff(c: Ctx) {
  const args = ['-n', '-r', ...baseArgs(c.ropts), ...(c.o.delete ? ['--delete'] : []), ...c.sources.map(srcArg), `${c.dest.spec}/`];
  return rsyncItemized(args, c.ropts);
}

/** rsync does not report what a deleted file weighed: stat it locally, or list it remotely. */
async function fillDeletionSizes(c: Ctx, deleted: ItemizedEntry[]): Promise<void> {
  if (!deleted.length) return;
  if (c.dest.local) {
    for (const d of deleted) {
      const st = tryLstat(join(c.dest.local, d.path));
      if (st) Object.assign(d, { type: typeOf(st), bytes: st.isDirectory() ? 0 : st.size });
    }
    return;
  }
  // Remote: a dry-run pull of exactly those paths into an empty dir itemizes them with sizes.
  const empty = mkdtempSync(join(c.work, 'empty-'));
  const list = writeFilesFrom(join(c.work, `list-${c.lists++}`), deleted.map((d) => d.path));
  const r = await rsyncItemized(['-n', '-lptgoD', '--numeric-ids', ...(c.ropts.extraArgs ?? []), `--files-from=${list}`, '--from0', `${c.dest.spec}/`, `${empty}/`], { ...c.ropts, okCodes: [0, 23, 24] });
  const byPath = new Map(r.entries.map((e) => [e.path, e]));
  for (const d of deleted) {
    const e = byPath.get(d.path);
    if (e) Object.assign(d, { type: e.type, bytes: e.type === 'dir' ? 0 : e.bytes });
  }
}

function typeOf(st: Stats): EntryType {
  return st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : st.isCharacterDevice() || st.isBlockDevice() ? 'device' : 'special';
}

async function execute(c: Ctx, entries: ItemizedEntry[]): Promise<PhaseResult[]> {
  const { log } = c.o;
  // Paths that are deleted and recreated change type (dir <-> file): they can only be done by
  // deleting, so they wait for the deletion phase.
  // rsync itemizes dir -> file as deletions under X plus a new file X, and file -> dir as a
  // deletion of X plus a new dir X.
  const deletedPaths = new Set(entries.filter((e) => e.deleted).map((e) => e.path));
  const deletedParents = new Set([...deletedPaths].flatMap(ancestors));
  const replaced = new Set(entries.filter((e) => !e.deleted && (deletedPaths.has(e.path) || (e.type !== 'dir' && deletedParents.has(e.path)))).map((e) => e.path));
  const underReplaced = (p: string) => replaced.has(p) || ancestors(p).some((a) => replaced.has(a));

  const byPhase: Record<Phase, ItemizedEntry[]> = { content: [], metadata: [], signature: [], repomd: [], links: [] };
  const deferred: ItemizedEntry[] = [];
  const dirsToFix = new Set<string>(['.']);
  for (const e of entries) {
    for (const a of ancestors(e.path)) dirsToFix.add(a);
    if (e.deleted) continue;
    if (underReplaced(e.path)) deferred.push(e);
    else if (e.type === 'dir' && !e.created) dirsToFix.add(e.path); // attributes only
    else byPhase[phaseOf(e)].push(e);
  }
  const deletes = entries.filter((e) => e.deleted && !underReplaced(e.path));
  // A vanishing repo loses its repomd.xml first, so no reader finds it naming deleted files.
  const deleteFirst = deletes.filter((e) => e.type !== 'dir' && (basename(e.path) === 'repomd.xml' || SIG_NAMES.has(basename(e.path))));
  const deleteRest = deletes.filter((e) => !deleteFirst.includes(e));

  const phases: PhaseResult[] = [];
  const completed: string[] = [];
  const step = async (name: string, list: ItemizedEntry[], extra: string[], okCodes?: number[]) => {
    if (!list.length) return;
    const t = Date.now();
    log?.event('publish-phase-start', { dest: c.dest.spec, phase: name, entries: list.length });
    try {
      await passFiles(c, list, extra, okCodes);
    } catch (e) {
      log?.event('publish-failed', { dest: c.dest.spec, phase: name, completed: [...completed], error: describeRsyncError(e).split('\n')[0] });
      throw new PublishError(name, completed, c.dest.spec, e);
    }
    const r = { name, entries: list.length, bytes: list.reduce((n, x) => n + (x.type === 'dir' ? 0 : x.bytes), 0), ms: Date.now() - t };
    phases.push(r);
    completed.push(name);
    log?.event('publish-phase', { dest: c.dest.spec, ...r });
  };

  const delay = ['--delay-updates'];
  await step('content', byPhase.content, delay);
  await step('metadata', byPhase.metadata, delay);
  await step('signature', byPhase.signature, delay);
  await step('repomd', byPhase.repomd, delay);
  await step('links', byPhase.links, []);
  if (deletes.length || deferred.length) {
    if (phases.some((p) => p.name === 'repomd')) await sleep(c.o.deletionGraceMs ?? 2000);
    // rsync reports "vanished" (24) for missing directory args it then deletes.
    await step('delete-repomd', deleteFirst, ['--delete-missing-args', '--force'], [0, 24]);
    await step('delete', [...deleteRest, ...deferred], ['--delete-missing-args', '--force'], [0, 24]);
  }
  // Only directories some source still has (the others were deleted with their contents).
  const fixDirs = [...dirsToFix].filter((p) => c.sources.some((s) => tryLstat(join(s, p))?.isDirectory()));
  await step('attrs', fixDirs.map((p) => ({ path: p, type: 'dir' }) as ItemizedEntry), []);
  return phases;
}

/** lstat that returns undefined for ENOENT and ENOTDIR (a path under what is now a file). */
function tryLstat(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw e;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * One rsync pass over exactly `list`. With several sources, each path goes to the first source
 * that has it (paths that no source has are deletions: any source will do for those).
 */
async function passFiles(c: Ctx, list: ItemizedEntry[], extra: string[], okCodes?: number[]): Promise<void> {
  const groups = new Map<number, Set<string>>();
  for (const e of list) {
    let idx = 0;
    if (c.sources.length > 1) {
      const found = c.sources.findIndex((s) => tryLstat(join(s, e.path)) !== undefined);
      idx = found < 0 ? 0 : found;
    }
    const g = groups.get(idx) ?? new Set<string>();
    g.add(e.path);
    // rsync -H links a path to its group's first member only when that member is in the same run.
    if (e.hardlinkTo) g.add(e.hardlinkTo);
    groups.set(idx, g);
  }
  for (const [idx, paths] of [...groups].sort((a, b) => a[0] - b[0])) {
    const file = writeFilesFrom(join(c.work, `list-${c.lists++}`), [...paths]);
    // --mkpath: the destination's missing parents are created (locally and remotely alike).
    const args = [...baseArgs(c.ropts), '--mkpath', ...extra, `--files-from=${file}`, '--from0', srcArg(c.sources[idx]), `${c.dest.spec}/`];
    await rsyncItemized(args, { ...c.ropts, okCodes });
  }
}

/** The destination must now equal the sources: rsync sees no difference; locally, sizes agree. */
async function verify(c: Ctx): Promise<void> {
  const r = await dryRunDiff(c);
  if (r.entries.length) {
    const sample = r.entries.slice(0, 10).map((e) => `${e.code} ${e.path}`);
    c.o.log?.event('publish-failed', { dest: c.dest.spec, phase: 'verify', differences: r.entries.length, sample });
    throw new Error(`publishing to ${c.dest.spec} did not verify: rsync still sees ${r.entries.length} differences:\n  ${sample.join('\n  ')}`);
  }
  if (c.dest.local) {
    const problems = compareSizes(c.sources, c.dest.local, [...(c.o.excludes ?? []), '.~tmp~/']);
    if (problems.length) {
      c.o.log?.event('publish-failed', { dest: c.dest.spec, phase: 'verify', differences: problems.length, sample: problems.slice(0, 10) });
      throw new Error(`publishing to ${c.dest.spec} did not verify: ${problems.length} files differ in size or type:\n  ${problems.slice(0, 10).join('\n  ')}`);
    }
  }
  c.o.log?.event('publish-verified', { dest: c.dest.spec });
}

/**
 * Every source file (first source wins) exists in `dest` with the same type and size. Extra
 * destination files are the dry run's business (with or without --delete).
 */
export function compareSizes(sources: string[], dest: string, excludes: string[]): string[] {
  const match = excludeMatcher(excludes);
  const seen = new Set<string>();
  const problems: string[] = [];
  const walk = (src: string, rel: string) => {
    let names: string[];
    try {
      names = readdirSync(rel ? join(src, rel) : src);
    } catch {
      return;
    }
    for (const n of names) {
      const p = rel ? `${rel}/${n}` : n;
      const st = lstatSync(join(src, p));
      if (match(p, st.isDirectory())) continue;
      const first = !seen.has(p);
      seen.add(p);
      if (first) {
        const d = tryLstat(join(dest, p));
        if (!d) problems.push(`${p}: missing`);
        else if (typeOf(d) !== typeOf(st)) problems.push(`${p}: is a ${typeOf(d)}, not a ${typeOf(st)}`);
        else if (st.isFile() && d.size !== st.size) problems.push(`${p}: ${d.size} bytes, source has ${st.size}`);
      }
      if (st.isDirectory()) walk(src, p);
    }
  };
  for (const s of sources) walk(s, '');
  return problems;
}

/** A subset of rsync's exclude syntax: `name`, `dir/`, `/anchored`, `a/b`, with * ? [..] globs. */
export function excludeMatcher(patterns: string[]): (path: string, isDir: boolean) => boolean {
  const rules = patterns.map((raw) => {
    let p = raw;
    const dirOnly = p.endsWith('/');
    if (dirOnly) p = p.slice(0, -1);
    const anchored = p.startsWith('/');
    if (anchored) p = p.slice(1);
    const re = new RegExp(
      '^' +
        p
          .split('')
          .map((ch) => (ch === '*' ? '[^/]*' : ch === '?' ? '[^/]' : /[\\^$.|+(){}]/.test(ch) ? `\\${ch}` : ch))
          .join('')
          .replaceAll('[^/]*[^/]*', '.*') +
        '$',
    );
    return { re, dirOnly, anchored, hasSlash: p.includes('/') };
  });
  return (path, isDir) =>
    rules.some((r) => {
      if (r.dirOnly && !isDir) return false;
      if (r.anchored) return r.re.test(path);
      if (!r.hasSlash) return r.re.test(path.slice(path.lastIndexOf('/') + 1));
      const parts = path.split('/');
      for (let i = 0; i < parts.length; i++) if (r.re.test(parts.slice(i).join('/'))) return true;
      return false;
    });
}
