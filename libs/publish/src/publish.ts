// Mirror-safe tree publishing with rsync as the engine (DESIGN §6; peers §4.6; spec §4.4, §6.2.1).
//
// Readers (dnf clients, downstream mirrors, people running `sha256sum -c CHECKSUM`) read the
// destination while we write it, so no moment may show a repomd.xml naming a file that is not
// there, or a CHECKSUM disagreeing with a file it names. Before anything changes, the sources are
// checked (names a mirror file list can carry; no symlink leaving the tree) while one dry run plans
// every change; a changed file that a destination CHECKSUM names is refused (changed media go
// out under new names). Then only the planned paths are passed to rsync (--files-from), phase by phase:
//   1 content   new/changed packages, ISOs, images, every other non-metadata file, and the
//               symlinks a CHECKSUM of the source names (aliases of ISOs); no deletions
//   2 metadata  repodata files other than repomd.xml(.asc), .treeinfo, .discinfo, media.repo, CHECKSUM*, metadata/
//     (when an alias a published checksum list names moves to other bytes, as a new cloud image's
//     `latest` link does: interim-lists, those lists without it; aliases, the alias moved; checksums,
//     the lists as they are)
//   3 signature repomd.xml.asc (and .key), then
//   4 repomd    repomd.xml: the switch to the new metadata, one atomic rename per repo
//   5 links     the other symlinks (their targets are all in place by now)
//   6 delete    after a grace period (clients that fetched the old repomd.xml just before the switch
//               finish their downloads): first the repomd.xml and CHECKSUM files of vanishing trees,
//               then the rest; only the planned paths (receiver-side risk/protect rules, see rsync.ts)
//   7 replace   paths whose type changes (dir <-> file), which cannot be done without deleting
//   8 attrs     directory times (deletions touch them), so the result is exact
// Every file is written to rsync's temp dir (--temp-dir: `.~tmp~` at the destination's top, the
// name every mirror tool skips, or a directory outside the tree) and renamed into place: never
// seen half written, and no temp name appears beside the published files. A killed run's temp
// files are removed by the next run, before it publishes anything.
// The plan counts deletions and refuses, before anything changes, above the deletion limit.
// A last dry run must report no difference (and for local destinations every file's size is
// compared), else publishing failed. An unchanged tree costs one dry run and, beside it, find's walk of the sources.
import { isUtf8 } from 'node:buffer';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, type Stats } from 'node:fs';
import { basename, dirname, isAbsolute, join, posix, resolve } from 'node:path';
import { splitBytes } from './filelist-walk';
import { allOrFirstFailure, run, sha256File, type EventLog } from '@rocky/exec';
import {
  baseArg,
  baseArgs,
  deletionArgs,
  deletionRules,
  describeRsyncError,
  filesFromStdin,
  parseDestination,
  rsyncItemized,
  rsyncList,
  rsyncRemoteLines,
  srcArg,
  type Destination,
  type EntryType,
  type ItemizedEntry,
  type ListedEntry,
  type RsyncOptions,
} from './rsync';

export interface PublishOptions {
  /** Local source directory, or several merged in order (the first holding a path wins, as rsync does). */
  source: string | string[];
  /** Local path, `host:/path` or `rsync://host/module/path`. */
  dest: string;
  /** Delete what the source does not have. */
  delete: boolean;
  /** Plan only: compute exact adds/updates/deletes with bytes, change nothing (the deletion limit does not refuse it; bad sources and CHECKSUM conflicts do). */
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
  /**
   * A directory of this run for skeleton trees, deletion rules and interim checksum lists, made
   * when first needed and removed afterwards with all it holds.
   * A dry run writes nothing anywhere: not here, not in the OS temp dir, not at the destination.
   * Stages pass a scratch name under the site's state/tmp, whose dead runs' dirs runStage sweeps:
   * a SIGKILLed publish leaves nothing for good.
   */
  workDir: string;
  /**
   * For a local destination: an absolute directory, outside the mirrored tree and on the
   * destination's filesystem (files are renamed from it into place), for rsync's temp files;
   * publishTree empties it before and removes it after publishing. Default (and always for
   * remote destinations): `.~tmp~` at the destination's top.
   */
  tempDir?: string;
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

/** The sources or the plan would put something on the mirrors that must never be there; nothing was changed. */
export class PublishRefusedError extends Error {
  constructor(
    readonly dest: string,
    readonly reason: 'source' | 'checksum',
    readonly problems: string[],
  ) {
    const shown = problems.slice(0, 20);
    super(
      `refusing to publish to ${dest}; nothing was changed:\n  ${shown.join('\n  ')}` +
        (problems.length > shown.length ? `\n  ... and ${problems.length - shown.length} more` : '') +
        (reason === 'checksum' ? '\nA published CHECKSUM names these files: changed media must be published under new names.' : ''),
    );
    this.name = 'PublishRefusedError';
  }
}

// --- classification -----------------------------------------------------------------------

const META_NAMES = new Set(['.treeinfo', '.discinfo', 'media.repo', 'extra_files.json', '.composeinfo']);
const META_DIRS = new Set(['repodata', 'metadata']);
const SIG_NAMES = new Set(['repomd.xml.asc', 'repomd.xml.key']);
/** rsync's temp dir name (its --delay-updates default), which mirror tools skip. */
const TEMP_NAME = '.~tmp~';

/** Repository/compose metadata: published after the content it describes. */
export function isMetadataPath(path: string): boolean {
  const parts = path.split('/');
  const name = parts[parts.length - 1];
  return META_NAMES.has(name) || name.includes('CHECKSUM') || parts.some((p) => META_DIRS.has(p));
}

/** A checksum list readers verify with `sha256sum -c`: `CHECKSUM`, `<file>.CHECKSUM`, and the clearsigned `CHECKSUM.asc`. */
export const isChecksumList = (name: string): boolean => /(^|\.)CHECKSUM(\.asc)?$/.test(name);

/**
 * What `sha256sum -c` checks in a checksum list: its BSD-tag SHA256 lines (`SHA256 (name) = hex`),
 * name -> lower-case digest. Other lines (size comments, a PGP armor) are not checked by readers either.
 */
export function checksumDigests(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^SHA256 \((.*)\) = ([0-9a-fA-F]{64})\r?$/.exec(line);
    if (m) out.set(m[1], m[2].toLowerCase());
  }
  return out;
}

type Phase = 'content' | 'metadata' | 'signature' | 'repomd' | 'links';

function phaseOf(e: ItemizedEntry, checksummed: (path: string) => boolean): Phase {
  const name = basename(e.path);
  // An alias a CHECKSUM names must be in place before that CHECKSUM is.
  if (e.type === 'symlink') return checksummed(e.path) ? 'content' : 'links';
  if (e.type !== 'dir' && name === 'repomd.xml') return 'repomd';
  if (e.type !== 'dir' && SIG_NAMES.has(name)) return 'signature';
  return isMetadataPath(e.path) ? 'metadata' : 'content';
}

const ancestors = (p: string): string[] => {
  const out: string[] = [];
  for (let i = p.lastIndexOf('/'); i > 0; i = p.lastIndexOf('/', i - 1)) out.push(p.slice(0, i));
  return out;
};
const dirOf = (p: string) => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '.');
const isTempPath = (p: string) => p.split('/').some((x) => x.startsWith(TEMP_NAME));

const toPlanned = (e: ItemizedEntry): PlannedEntry => ({ path: e.path, type: e.type, bytes: e.bytes, ...(e.target !== undefined ? { target: e.target } : {}) });

// --- what a mirror can carry ------------------------------------------------------------------

const bufferOf = (name: string | Uint8Array) => (typeof name === 'string' ? Buffer.from(name) : Buffer.from(name.buffer, name.byteOffset, name.byteLength));

/**
 * Why `name` (one path component, as bytes or text) cannot be published, or undefined when it
 * can. Mirror file lists are tab- and line-separated text (quick-fedora-mirror's
 * fullfiletimelist `<mtime>\t<type>\t<size>\t<path>`, fullfilelist one path a line; peers §4.2,
 * spec §5) and reports and event logs are UTF-8 JSON: a name must be valid UTF-8 without control
 * characters (tab and newline break the lists, CR ends a line for CRLF-tolerant readers, the
 * others are invisible). The one rule for every writer of names (publishing, file lists).
 */
export function mirrorNameProblem(name: string | Uint8Array): string | undefined {
  const b = bufferOf(name);
  if (!isUtf8(b)) return 'is not valid UTF-8';
  const i = b.findIndex((x) => x < 0x20 || x === 0x7f);
  return i < 0 ? undefined : `contains the control character ${escapeName(b.subarray(i, i + 1))}`;
}

const ESCAPES: Record<number, string> = { 9: '\\t', 10: '\\n', 13: '\\r', 0x5c: '\\\\' };
const hex2 = (x: number) => x.toString(16).padStart(2, '0');

/** A name for messages: valid UTF-8 as is, control characters and invalid bytes escaped (`\n`, `\xff`). */
export function escapeName(name: string | Uint8Array): string {
  const b = bufferOf(name);
  let out = '';
  for (let i = 0; i < b.length; ) {
    const x = b[i];
    const len = x < 0x80 ? 1 : x >= 0xf0 ? 4 : x >= 0xe0 ? 3 : x >= 0xc2 ? 2 : 0;
    if (x < 0x20 || x === 0x7f || x === 0x5c) out += ESCAPES[x] ?? `\\x${hex2(x)}`;
    else if (len && i + len <= b.length && isUtf8(b.subarray(i, i + len))) {
      out += b.toString('utf8', i, i + len);
      i += len;
      continue;
    } else out += `\\x${hex2(x)}`;
    i++;
  }
  return out;
}

/** A symlink in a published tree must stay inside it: relative, and not climbing above the tree's top. */
export function linkProblem(path: string, target: string): string | undefined {
  if (target.startsWith('/')) return 'the symlink is absolute (a mirror would serve its own host\'s file, or a dangling link)';
  const resolved = posix.normalize(posix.join(posix.dirname(path), target));
  if (resolved === '..' || resolved.startsWith('../')) return `the symlink resolves outside the tree (to ${escapeName(resolved)})`;
  return undefined;
}

/** find's test for a name that may not be publishable: a byte outside printable ASCII (LC_ALL=C: bytes). */
const UNUSUAL_NAME = '*[! -~]*';

/**
 * Every name and symlink of the sources that must not reach a mirror, each naming the file (what
 * `excludes` and rsync's temp dirs hide is not published, so not checked). Names are read as bytes.
 * find walks each source and prints only what may be a problem, the symlinks and the names with a
 * byte outside printable ASCII (Rocky's trees have a few): each is checked exactly here. So the
 * walk costs no stat and no JavaScript per entry, in a process of its own (publishTree runs it
 * beside the plan's dry run).
 */
export async function sourceProblems(sources: string[], excludes: string[] = []): Promise<string[]> {
  const skip = excludeMatcher([...excludes, `${TEMP_NAME}/`]);
  const problems: string[] = [];
  const check = (root: string, type: string, p: Buffer, target: Buffer) => {
    const path = p.toString('utf8');
    // Inside an excluded directory, or excluded itself.
    if (ancestors(path).some((a) => skip(a, true)) || skip(path, type === 'd')) return;
    const bad = mirrorNameProblem(p.subarray(p.lastIndexOf(0x2f) + 1));
    if (bad) problems.push(`${root}/${escapeName(p)}: the name ${bad}; mirror file lists cannot carry it`);
    const why = type === 'l' ? linkProblem(path, target.toString('utf8')) : undefined;
    if (why) problems.push(`${root}/${escapeName(p)} -> ${escapeName(target)}: ${why}`);
  };
  // The first failure stops the other walks (they are of no use now) and is the one reported.
  const walk = (root: string) => async (signal: AbortSignal) => {
    const out: Buffer[] = [];
    try {
      // Records of three NUL-terminated fields: type, path under the root, symlink target (else empty).
      await run(['find', '.', '-mindepth', '1', '(', '-type', 'l', '-o', '-name', UNUSUAL_NAME, ')', '-printf', '%y\\0%P\\0%l\\0'], {
        cwd: root,
        env: { ...process.env, LC_ALL: 'C' },
        cancelSignal: signal,
        onStdout: (b) => out.push(b),
      });
    } catch (e) {
      throw new Error(`checking the names in ${root}: ${(e as Error).message}`, { cause: e });
    }
    return [...splitBytes(Buffer.concat(out), 0)];
  };
  (await allOrFirstFailure(sources.map(walk))).forEach((fields, s) => {
    for (let i = 0; i + 2 < fields.length; i += 3) check(sources[s], fields[i].toString(), fields[i + 1], fields[i + 2]);
  });
  return problems;
}

// --- the publisher ------------------------------------------------------------------------

interface Ctx {
  sources: string[];
  dest: Destination;
  o: PublishOptions;
  ropts: RsyncOptions;
  /** A path in the work dir (which this makes). */
  work: (name: string) => string;
  lists: number;
  /** --temp-dir's value, and the local path publishTree manages with fs calls (local destinations). */
  temp: { arg: string; local?: string };
  /** Alias symlinks that a destination checksum list names and that now point at other bytes -> those lists. */
  moving: Map<string, string[]>;
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
  const temp = tempDirFor(dest, o.tempDir);
  const log = o.log;
  const refuse = (reason: 'source' | 'checksum', problems: string[]) => {
    if (!problems.length) return;
    log?.event('publish-refused', { dest: dest.spec, reason, count: problems.length, sample: problems.slice(0, 10) });
    throw new PublishRefusedError(dest.spec, reason, problems);
  };
  const ropts: RsyncOptions = {
    rsync: o.rsync,
    owner: o.owner,
    excludes: o.excludes,
    bwlimitKiB: o.bwlimitKiB,
    // A remote side that vanishes must fail the pass, not hang it.
    extraArgs: [...(dest.remote ? ['--timeout=300', '--contimeout=60'] : []), ...(o.extraArgs ?? [])],
  };
  // A dry run writes nothing anywhere (a stage's plan is pure): file lists go to rsync through
  // stdin, deletion sizes and remote CHECKSUM lists are read without a copy (listRemote, remoteDigests).
  let workDir: string | undefined;
  const work = (name: string) => {
    if (o.dryRun) throw new Error(`publishTree: a dry run writes nothing, but wanted ${name} in the work dir`);
    if (!workDir) {
      workDir = o.workDir;
      mkdirSync(workDir, { recursive: true, mode: 0o700 });
    }
    return join(workDir, name);
  };
  const c: Ctx = { sources, dest, o, ropts, work, lists: 0, temp, moving: new Map() };
  try {
    // Plan: one dry run over everything (for an unchanged tree the only rsync run), and at the
    // same time the check of the sources: both only read, each in processes of its own (two
    // cores). Names and symlinks no mirror may get are refused before anything changes (a dry
    // run says so too); the refusal stops the plan.
    const stopPlan = new AbortController();
    const planning = dryRunDiff(c, stopPlan.signal);
    planning.catch(() => undefined); // awaited below, unless the sources are refused first
    try {
      refuse('source', await sourceProblems(sources, o.excludes));
    } catch (e) {
      stopPlan.abort();
      await planning.catch(() => undefined);
      throw e;
    }
    let planRun;
    try {
      planRun = await planning;
    } catch (e) {
      log?.event('publish-failed', { dest: dest.spec, phase: 'plan', completed: [], error: describeRsyncError(e).split('\n')[0] });
      throw new PublishError('plan', [], dest.spec, e);
    }
    // rsync temp files a killed run left (they are no content: removed first, not counted).
    const leftovers = planRun.entries.filter((e) => e.deleted && isTempPath(e.path)).map((e) => e.path);
    const entries = planRun.entries.filter((e) => !(e.deleted && isTempPath(e.path)));
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
    // (Without --delete the dry run does not report a temp dir left in the destination: look for it.)
    const tempLeft = !o.tempDir && !!temp.local && tryLstat(temp.local) !== undefined;
    const changed = entries.length > 0 || leftovers.length > 0 || tempLeft;
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
      leftovers: leftovers.length,
      bytes: plan.bytes,
    });
    log?.info(`publish ${sources.join(' + ')} -> ${dest.spec}: ${describePlan(plan)}`);
    // A file a published CHECKSUM names keeps its bytes: readers verify them at any moment.
    const sums = await checksumConflicts(c, live);
    refuse('checksum', sums.problems);
    c.moving = sums.moving;

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

    const phases = await execute(c, entries, leftovers);
    await verify(c);
    const result: PublishResult = { ...base, phases, verified: true, ms: Date.now() - t0 };
    log?.event('publish-done', { dest: dest.spec, phases: phases.map((p) => p.name), bytes: plan.bytes, ms: result.ms });
    return result;
  } finally {
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  }
}

export function describePlan(p: PublishPlan): string {
  const mb = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
  return `${p.adds.length} to add (${mb(p.bytes.add)}), ${p.updates.length} to update (${mb(p.bytes.update)}), ${p.deletes.length} to delete (${mb(p.bytes.delete)}), ${p.attrs.length} attribute-only`;
}

const sum = (xs: PlannedEntry[]) => xs.reduce((n, x) => n + (x.type === 'dir' ? 0 : x.bytes), 0);

/** rsync's --temp-dir, checked: a local temp dir outside the tree must share the destination's filesystem. */
function tempDirFor(dest: Destination, tempDir: string | undefined): Ctx['temp'] {
  if (tempDir === undefined) return { arg: TEMP_NAME, local: dest.local ? join(dest.local, TEMP_NAME) : undefined };
  if (!dest.local) throw new Error(`publishTree: tempDir is for local destinations; ${dest.spec} keeps rsync's temp files in ${TEMP_NAME}/ at its top`);
  if (!isAbsolute(tempDir)) throw new Error(`publishTree: tempDir ${tempDir} must be an absolute path`);
  const t = resolve(tempDir);
  const d = resolve(dest.local);
  if (t === d || t.startsWith(`${d}/`) || d.startsWith(`${t}/`)) throw new Error(`publishTree: tempDir ${tempDir} must be outside the destination ${dest.spec} (mirrors would see it)`);
  if (deviceOf(t) !== deviceOf(d))
    throw new Error(`publishTree: tempDir ${tempDir} is not on the filesystem of ${dest.spec}: rsync would copy each file over its final name instead of renaming it into place`);
  return { arg: t, local: t };
}

/** The device of `p`, or of its nearest existing ancestor. */
function deviceOf(p: string): number {
  for (let q = p; ; q = dirname(q)) {
    const st = statSync(q, { throwIfNoEntry: false });
    if (st) return st.dev;
    if (q === dirname(q)) throw new Error(`no existing ancestor of ${p}`);
  }
}

function dryRunDiff(c: Ctx, cancelSignal?: AbortSignal) {
  const args = ['-n', '-r', ...baseArgs(c.ropts), ...(c.o.delete ? ['--delete'] : []), ...c.sources.map(srcArg), `${c.dest.spec}/`];
  return rsyncItemized(args, { ...c.ropts, cancelSignal });
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
  // Remote: a listing of exactly those paths.
  const listed = await listRemote(c, deleted.map((d) => d.path));
  for (const d of deleted) {
    const e = listed.get(d.path);
    if (e) Object.assign(d, { type: e.type, bytes: e.type === 'dir' ? 0 : e.bytes });
  }
}

/**
 * A listing (writes nothing) of `paths` at a remote destination: path -> entry; missing paths are
 * absent. From the base, naming the full paths: an rsync 3.5.0 daemon sending with --files-from
 * from a subdirectory of its module reports every file as vanished.
 */
async function listRemote(c: Ctx, paths: string[]): Promise<Map<string, ListedEntry>> {
  const under = c.dest.under ? `${c.dest.under}/` : '';
  const list = filesFromStdin(paths.map((p) => under + p));
  const listed = await rsyncList(['-lptgoD', ...(c.ropts.extraArgs ?? []), ...list.args], baseArg(c.dest), { ...c.ropts, input: list.input, okCodes: [0, 23, 24] });
  const wanted = new Set(paths);
  const out = new Map<string, ListedEntry>();
  for (const e of listed) {
    if (!e.name.startsWith(under)) continue;
    const rel = e.name.slice(under.length);
    // A symlink's line is `name -> target`: its name is the part before one of the arrows that is a wanted path.
    let path: string | undefined = wanted.has(rel) ? rel : undefined;
    for (let i = rel.indexOf(' -> '); path === undefined && e.type === 'symlink' && i >= 0; i = rel.indexOf(' -> ', i + 1)) if (wanted.has(rel.slice(0, i))) path = rel.slice(0, i);
    if (path !== undefined) out.set(path, e);
  }
  return out;
}

function typeOf(st: Stats): EntryType {
  return st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : st.isCharacterDevice() || st.isBlockDevice() ? 'device' : 'special';
}

// --- CHECKSUM lists ---------------------------------------------------------------------------

/** The checksum lists in directory `dir` of a local tree: [relative path, text]. */
function checksumListsIn(root: string, dir: string): [string, string][] {
  let names: string[];
  try {
    names = readdirSync(join(root, dir));
  } catch {
    return [];
  }
  return names
    .filter(isChecksumList)
    .map((n) => (dir === '.' ? n : `${dir}/${n}`))
    .filter((p) => tryLstat(join(root, p))?.isFile())
    .map((p) => [p, readFileSync(join(root, p), 'utf8')]);
}

/** The first source holding `path`. */
function sourceOf(c: Ctx, path: string): string | undefined {
  return c.sources.find((s) => tryLstat(join(s, path)) !== undefined);
}

/** Where a checksum list naming `path` sits, as Rocky writes them: the directory's CHECKSUM (and its clearsigned .asc), the file's own `<file>.CHECKSUM`. */
const listsNaming = (path: string) => {
  const d = dirOf(path);
  return [...['CHECKSUM', 'CHECKSUM.asc'].map((n) => (d === '.' ? n : `${d}/${n}`)), `${path}.CHECKSUM`];
};

/**
 * Changes that would make a destination checksum list disagree with a file it names: a file
 * that exists there and whose bytes change (refused: each problem names the file and both
 * digests), and an alias symlink that now points at other bytes (a new cloud image's `latest`
 * link: published in steps, see execute).
 */
async function checksumConflicts(c: Ctx, live: ItemizedEntry[]): Promise<{ problems: string[]; moving: Map<string, string[]> }> {
  const problems: string[] = [];
  const moving = new Map<string, string[]>();
  const changed = live.filter((e) => !e.created && e.content && (e.type === 'file' || e.type === 'symlink'));
  if (!changed.length) return { problems, moving };
  const lists = [...new Set(changed.flatMap((e) => listsNaming(e.path)))];
  const digests = c.dest.local ? localDigests(c.dest.local, lists) : await remoteDigests(c, lists);
  for (const e of changed) {
    const name = basename(e.path);
    const naming = listsNaming(e.path).filter((l) => digests.get(l)?.has(name));
    if (!naming.length) continue;
    const src = sourceOf(c, e.path);
    const now = src ? await sha256File(join(src, e.path)).catch(() => undefined) : undefined;
    const differ = naming.filter((l) => digests.get(l)!.get(name) !== now);
    if (!differ.length) continue;
    if (e.type === 'symlink') moving.set(e.path, naming);
    else problems.push(`${e.path}: its bytes would change (sha256 ${digests.get(differ[0])!.get(name)} -> ${now ?? 'no file'}) but the destination's ${differ[0]} names it with ${digests.get(differ[0])!.get(name)}`);
  }
  return { problems, moving };
}

/** The digests of the checksum lists `lists` (those that are files) in the local tree `root`. */
function localDigests(root: string, lists: string[]): Map<string, Map<string, string>> {
  const digests = new Map<string, Map<string, string>>();
  for (const l of lists) if (tryLstat(join(root, l))?.isFile()) digests.set(l, checksumDigests(readFileSync(join(root, l), 'utf8')));
  return digests;
}

/** The largest remote checksum list a dry run reads (through rsync's messages, see remoteDigests). */
const DRY_READ_MAX = 256 << 10;

/**
 * A remote destination's checksum lists that exist there as files. The real run pulls them into
 * its work dir: the bytes exactly as published, whatever rsync prints. A dry run writes nothing
 * anywhere, so it reads each list's lines through rsyncRemoteLines; a list it cannot read whole
 * fails the dry run (a preview that missed a refusal would be worse than none).
 */
async function remoteDigests(c: Ctx, lists: string[]): Promise<Map<string, Map<string, string>>> {
  const under = c.dest.under ? `${c.dest.under}/` : '';
  if (!c.o.dryRun) {
    // One pull of every list (those missing there are reported as vanished). From the base,
    // naming the full paths: an rsync 3.5.0 daemon sending with --files-from from a subdirectory
    // of its module reports every file as vanished.
    const pulled = mkdtempSync(c.work('dest-lists-'));
    const list = filesFromStdin(lists.map((l) => under + l));
    await rsyncItemized([...list.args, ...(c.ropts.extraArgs ?? []), baseArg(c.dest), srcArg(pulled)], { ...c.ropts, input: list.input, okCodes: [0, 23, 24] });
    return localDigests(join(pulled, under), lists);
  }
  const digests = new Map<string, Map<string, string>>();
  const there = [...(await listRemote(c, lists))].filter(([, e]) => e.type === 'file');
  const root = `${c.dest.base!.endsWith('/') ? '/' : ''}${under}`;
  for (const [l, entry] of there) {
    // run() keeps stderr's last MiB: a list this size comes back whole (Rocky's are a few KiB).
    if (entry.bytes > DRY_READ_MAX) throw new Error(`dry run: the destination's ${l} (${entry.bytes} bytes) is too large to read without copying it; run without --dryRun to see the plan's refusals`);
    // rsync reports a line under the remote directory it read from (`/srv/x/SHA256 (...) = ...`
    // over ssh), so each line is taken from its `SHA256 (`.
    const lines = await rsyncRemoteLines(baseArg(c.dest), root + l, c.ropts);
    const text = lines.map((x) => x.slice(Math.max(0, x.indexOf('SHA256 ('))));
    const read = checksumDigests(text.join('\n'));
    // rsync skips the `#` size comments; a list with content must give digests.
    if (entry.bytes > 0 && read.size === 0)
      throw new Error(`dry run: could not read the destination's ${l} (${entry.bytes} bytes) without copying it; run without --dryRun to see the plan's refusals`);
    digests.set(l, read);
  }
  return digests;
}

/** A checksum list without the entries (and size comments) of `names`. */
function withoutNames(text: string, names: Set<string>): string {
  return text
    .split('\n')
    .filter((line) => {
      const m = /^# (.+): \d+ bytes$/.exec(line) ?? /^[A-Za-z0-9-]+ \((.*)\) = \S*$/.exec(line);
      return !m || !names.has(m[1]);
    })
    .join('\n');
}

// --- executing the plan -----------------------------------------------------------------------

async function execute(c: Ctx, entries: ItemizedEntry[], leftovers: string[]): Promise<PhaseResult[]> {
  const { log } = c.o;
  // Paths that are deleted and recreated change type (dir <-> file): they can only be done by
  // deleting, so they wait for the deletion phase.
  // rsync itemizes dir -> file as deletions under X plus a new file X, and file -> dir as a
  // deletion of X plus a new dir X.
  const deletedPaths = new Set(entries.filter((e) => e.deleted).map((e) => e.path));
  const deletedParents = new Set([...deletedPaths].flatMap(ancestors));
  const replaced = new Set(entries.filter((e) => !e.deleted && (deletedPaths.has(e.path) || (e.type !== 'dir' && deletedParents.has(e.path)))).map((e) => e.path));
  const underReplaced = (p: string) => replaced.has(p) || ancestors(p).some((a) => replaced.has(a));

  // Names the source's checksum lists carry, per directory (for aliases: see phaseOf).
  const listed = new Map<string, Set<string>>();
  const checksummed = (p: string) => {
    const d = dirOf(p);
    if (!listed.has(d)) listed.set(d, new Set(c.sources.flatMap((s) => checksumListsIn(s, d).flatMap(([, text]) => [...checksumDigests(text).keys()]))));
    return listed.get(d)!.has(basename(p));
  };

  const byPhase: Record<Phase, ItemizedEntry[]> = { content: [], metadata: [], signature: [], repomd: [], links: [] };
  const deferred: ItemizedEntry[] = [];
  const aliases: ItemizedEntry[] = [];
  const dirsToFix = new Set<string>(['.']);
  for (const e of entries) {
    for (const a of ancestors(e.path)) dirsToFix.add(a);
    if (e.deleted) continue;
    if (underReplaced(e.path)) deferred.push(e);
    else if (e.type === 'dir' && !e.created) dirsToFix.add(e.path); // attributes only
    else if (c.moving.has(e.path)) aliases.push(e);
    else byPhase[phaseOf(e, checksummed)].push(e);
  }
  // An alias a published list names moves to other bytes (a new image's `latest` link): no list
  // may name it while it moves. So each such list goes out first without it (the interim
  // version; a signed .asc cannot be rewritten: it is removed), then the alias moves, then the
  // lists go out as they are.
  const interimDir = c.work('interim');
  const interim: ItemizedEntry[] = [];
  const removedFirst: string[] = [];
  const finalLists: ItemizedEntry[] = [];
  const movingNames = new Map<string, Set<string>>();
  for (const a of aliases) movingNames.set(dirOf(a.path), (movingNames.get(dirOf(a.path)) ?? new Set()).add(basename(a.path)));
  for (const l of new Set([...c.moving.values()].flat())) {
    const src = sourceOf(c, l);
    const entry = { path: l, type: 'file' } as ItemizedEntry;
    if (src) finalLists.push(entry);
    if (src && !l.endsWith('.asc')) {
      const text = readFileSync(join(src, l), 'utf8');
      mkdirSync(dirname(join(interimDir, l)), { recursive: true });
      writeFileSync(join(interimDir, l), withoutNames(text, movingNames.get(dirOf(l))!));
      interim.push(entry);
    } else removedFirst.push(l);
  }
  const later = new Set(finalLists.map((e) => e.path));
  byPhase.metadata = byPhase.metadata.filter((e) => !later.has(e.path));
  // Every planned removal: deletions, and the old form of paths whose type changes.
  const removals = [...new Set([...deletedPaths, ...replaced])];
  // A vanishing tree loses its repomd.xml and CHECKSUM lists first, so no reader finds them naming deleted files.
  const indexFirst = new Set(entries.filter((e) => e.deleted && e.type !== 'dir' && !underReplaced(e.path) && isIndexName(basename(e.path))).map((e) => e.path));
  const removeRest = removals.filter((p) => !indexFirst.has(p));

  const phases: PhaseResult[] = [];
  const completed: string[] = [];
  const fail = (phase: string, e: unknown) => {
    log?.event('publish-failed', { dest: c.dest.spec, phase, completed: [...completed], error: describeRsyncError(e).split('\n')[0] });
    return new PublishError(phase, completed, c.dest.spec, e);
  };
  const step = async (name: string, count: number, bytes: number, fn: () => Promise<void>) => {
    if (!count) return;
    const t = Date.now();
    log?.event('publish-phase-start', { dest: c.dest.spec, phase: name, entries: count });
    try {
      await fn();
    } catch (e) {
      await removeTempDir(c).catch(() => undefined); // best effort: the next run removes what is left
      throw fail(name, e);
    }
    const r = { name, entries: count, bytes, ms: Date.now() - t };
    phases.push(r);
    completed.push(name);
    log?.event('publish-phase', { dest: c.dest.spec, ...r });
  };
  const bytesOf = (list: ItemizedEntry[]) => list.reduce((n, x) => n + (x.type === 'dir' ? 0 : x.bytes), 0);
  const transfer = (name: string, list: ItemizedEntry[]) => step(name, list.length, bytesOf(list), () => passFiles(c, list, [`--temp-dir=${c.temp.arg}`]));
  const remove = (name: string, paths: string[]) => step(name, paths.length, 0, () => deletePaths(c, paths));

  try {
    await prepare(c, entries, leftovers);
  } catch (e) {
    throw fail('prepare', e);
  }
  await transfer('content', byPhase.content);
  await transfer('metadata', byPhase.metadata);
  if (aliases.length) {
    await step('interim-lists', interim.length, 0, () => passFiles(c, interim, [`--temp-dir=${c.temp.arg}`], [interimDir]));
    await step('aliases', aliases.length, 0, async () => {
      await deletePaths(c, removedFirst);
      await passFiles(c, aliases, []);
    });
    await transfer('checksums', finalLists);
  }
  await transfer('signature', byPhase.signature);
  await transfer('repomd', byPhase.repomd);
  await step('links', byPhase.links.length, bytesOf(byPhase.links), () => passFiles(c, byPhase.links, []));
  if (removals.length) {
    if (phases.some((p) => p.name === 'repomd')) await sleep(c.o.deletionGraceMs ?? 2000);
    await remove('delete-indexes', [...indexFirst]);
    await remove('delete', removeRest);
    await transfer('replace', deferred);
  }
  try {
    await removeTempDir(c);
  } catch (e) {
    throw fail('attrs', e);
  }
  // Only directories some source still has (the others were deleted with their contents).
  const fixDirs = [...dirsToFix].filter((p) => c.sources.some((s) => tryLstat(join(s, p))?.isDirectory()));
  await step('attrs', fixDirs.length, 0, () => passFiles(c, fixDirs.map((p) => ({ path: p, type: 'dir' }) as ItemizedEntry), []));
  return phases;
}

const isIndexName = (name: string) => name === 'repomd.xml' || SIG_NAMES.has(name) || isChecksumList(name);

/**
 * Before the first file goes out: the destination's missing parents (rsync creates only the last
 * component, and --mkpath is 3.2.3+), a killed run's temp files removed, the temp dir made.
 */
async function prepare(c: Ctx, entries: ItemizedEntry[], leftovers: string[]): Promise<void> {
  if (entries.some((e) => e.path === '.' && e.created)) {
    if (c.dest.local) mkdirSync(c.dest.local, { recursive: true });
    else if (c.dest.under) await pushDirs(c, baseArg(c.dest), [c.dest.under]);
  }
  if (c.temp.local) rmSync(c.temp.local, { recursive: true, force: true });
  if (leftovers.length || !c.temp.local) await deletePaths(c, leftovers, c.temp.local ? [] : TEMP_RISK);
  if (c.temp.local) mkdirSync(c.temp.local, { recursive: true });
  else await pushDirs(c, srcArg(c.dest.spec), [TEMP_NAME]);
}

/** The temp dir and everything in it (local: by path; remote: `.~tmp~` by a delete pass). */
async function removeTempDir(c: Ctx): Promise<void> {
  if (c.temp.local) rmSync(c.temp.local, { recursive: true, force: true });
  else await deletePaths(c, [], TEMP_RISK);
}

const TEMP_RISK = [`/${TEMP_NAME}`, `/${TEMP_NAME}/**`];

/** Creates directories `rels` (and their parents) in the remote directory `into`: an rsync push of empty dirs, no attributes. */
async function pushDirs(c: Ctx, into: string, rels: string[]): Promise<void> {
  const skel = mkdtempSync(c.work('dirs-'));
  for (const r of rels) mkdirSync(join(skel, r), { recursive: true });
  await rsyncItemized(['-r', ...(c.ropts.extraArgs ?? []), srcArg(skel), into], c.ropts);
}

/** Deletes exactly `paths` (and what `extraRisk` patterns match) from the destination; see rsync.ts. */
async function deletePaths(c: Ctx, paths: string[], extraRisk: string[] = []): Promise<void> {
  if (!paths.length && !extraRisk.length) return;
  const skel = mkdtempSync(c.work('skeleton-'));
  // Directories to look into: the parents of the paths, unless a parent goes too (then it holds the rest).
  const gone = new Set(paths);
  for (const p of paths) {
    const parent = dirOf(p);
    if (parent !== '.' && !gone.has(parent) && !ancestors(p).some((a) => gone.has(a))) mkdirSync(join(skel, parent), { recursive: true });
  }
  const rules = c.work(`rules-${c.lists++}`);
  writeFileSync(rules, deletionRules(paths, extraRisk));
  await rsyncItemized(deletionArgs(c.ropts, rules, skel, c.dest.spec), c.ropts);
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

/** One rsync pass over exactly `list`. With several sources, each path goes to the first source that has it. */
async function passFiles(c: Ctx, list: ItemizedEntry[], extra: string[], sources = c.sources): Promise<void> {
  const groups = new Map<number, Set<string>>();
  for (const e of list) {
    let idx = 0;
    if (sources.length > 1) {
      const found = sources.findIndex((s) => tryLstat(join(s, e.path)) !== undefined);
      idx = found < 0 ? 0 : found;
    }
    const g = groups.get(idx) ?? new Set<string>();
    g.add(e.path);
    // rsync -H links a path to its group's first member only when that member is in the same run.
    if (e.hardlinkTo) g.add(e.hardlinkTo);
    groups.set(idx, g);
  }
  for (const [idx, paths] of [...groups].sort((a, b) => a[0] - b[0])) {
    const list = filesFromStdin([...paths]);
    const args = [...baseArgs(c.ropts), ...extra, ...list.args, srcArg(sources[idx]), `${c.dest.spec}/`];
    await rsyncItemized(args, { ...c.ropts, input: list.input });
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
