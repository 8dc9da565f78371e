// The one place that talks to rsync (and `cp -al`): argv building, destinations (local paths,
// `host:/path`, `rsync://host/module/path`), and parsing `--itemize-changes` output into entries.
//
// The receivers in the field are rsync 3.1.3 (Rocky 8), 3.2.3 (Rocky 9), 3.2.7 (Debian 12), 3.4.x
// and 3.5: every option used here is in 3.1.3's man page (the tests run 3.2.7-1+deb12u6 and 3.5.0).
// Deliberately not used: --mkpath (added in 3.2.3: an older server rejects it), and
// --delete-missing-args with --files-from, which receivers with the 2025 security fixes (3.4.0+,
// and backports such as Debian's 3.2.7-1+deb12u6) refuse ("invalid file mode 00 ... protocol
// incompatibility", RsyncProject/rsync#910).
import { run, ToolError, type RunResult } from '@rocky/exec';

/** rsync's itemize string (`%i`), size (`%l`) and name (`%n%L`), separated so names may hold spaces. */
export const OUT_FORMAT = '%i|%l|%n%L';

export type EntryType = 'file' | 'dir' | 'symlink' | 'device' | 'special';

export interface ItemizedEntry {
  /** Relative path, no trailing slash. */
  path: string;
  type: EntryType;
  /** The rsync itemize code, e.g. `>f+++++++++`, `*deleting`. */
  code: string;
  /** New in the destination. */
  created: boolean;
  /** To be (or was) deleted from the destination. */
  deleted: boolean;
  /** Content or target changes (not only attributes). */
  content: boolean;
  /** Bytes: file size (for deletions filled in by the caller), symlink target length, 0 for dirs. */
  bytes: number;
  /** Symlink target, for symlinks. */
  target?: string;
  /** Hardlinked to this path (rsync -H), when rsync reports it so. */
  hardlinkTo?: string;
}

const TYPES: Record<string, EntryType> = { f: 'file', d: 'dir', L: 'symlink', D: 'device', S: 'special' };

/** rsync escapes unprintable bytes in names as `\#ooo`. */
function unescape(s: string): string {
  if (!s.includes('\\#')) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; ) {
    const m = /^\\#([0-7]{3})/.exec(s.slice(i, i + 5));
    if (m) {
      bytes.push(parseInt(m[1], 8));
      i += 5;
    } else {
      const cp = s.codePointAt(i)!;
      bytes.push(...Buffer.from(String.fromCodePoint(cp)));
      i += cp > 0xffff ? 2 : 1;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * Parses rsync output written with `--out-format=OUT_FORMAT` (`-i`). Lines that are not
 * itemized entries (warnings, the `./` root with only a time change is kept) are returned in
 * `other`, so callers can show them.
 */
export function parseItemized(stdout: string): { entries: ItemizedEntry[]; other: string[] } {
  const entries: ItemizedEntry[] = [];
  const other: string[] = [];
  for (const line of stdout.split('\n')) {
    if (!line) continue;
    const m = /^([<>ch.*][^|]{8,10})\|(\d+)\|(.*)$/.exec(line);
    if (!m) {
      other.push(line);
      continue;
    }
    const [, rawCode, len, rest] = m;
    const code = rawCode.trimEnd();
    if (code === '*deleting') {
      const isDir = rest.endsWith('/');
      const path = unescape(isDir ? rest.slice(0, -1) : rest);
      // rsync does not say what a deleted non-directory was; callers stat it when they need to.
      entries.push({ path, type: isDir ? 'dir' : 'file', code, created: false, deleted: true, content: true, bytes: 0 });
      continue;
    }
    const type = TYPES[code[1]];
    if (!type) {
      other.push(line);
      continue;
    }
    let name = rest;
    let target: string | undefined;
    let hardlinkTo: string | undefined;
    if (type === 'symlink') {
      const i = name.indexOf(' -> ');
      if (i >= 0) [name, target] = [name.slice(0, i), unescape(name.slice(i + 4))];
    } else if (code[0] === 'h') {
      const i = name.indexOf(' => ');
      if (i >= 0) [name, hardlinkTo] = [name.slice(0, i), unescape(name.slice(i + 4))];
    }
    if (type === 'dir' && name.endsWith('/')) name = name.slice(0, -1);
    const flags = code.slice(2);
    const created = flags.startsWith('+++');
    // `>`/`<`: data transferred; `c`: created/changed locally (dirs, links); `h`: hardlink;
    // `.`: attributes only. A symlink with `c` flag in position 3 has a new target.
    const content = created || code[0] === '>' || code[0] === '<' || code[0] === 'h' || (type === 'symlink' && code[0] === 'c');
    entries.push({ path: unescape(name || '.'), type, code, created, deleted: false, content, bytes: type === 'dir' ? 0 : Number(len), target, hardlinkTo });
  }
  return { entries, other };
}

export interface Destination {
  /** As given, without a trailing slash. */
  spec: string;
  remote: boolean;
  /** For local destinations: the absolute directory. */
  local?: string;
  /** For remote destinations: the part that exists for sure (`host:/`, `host:`, `host::module`, `rsync://host/module`)... */
  base?: string;
  /** ...and the path under it, whose missing components a publish creates. */
  under?: string;
}

/** `host:/path`, `user@host:path`, `host::module/path` and `rsync://...` are remote; anything else is a local path. */
export function parseDestination(spec: string): Destination {
  const trimmed = spec.replace(/\/+$/, '') || '/';
  const remote = /^rsync:\/\//.test(trimmed) || /^[^/]*:/.test(trimmed);
  if (!remote) return { spec: trimmed, remote, local: trimmed };
  const m = /^(rsync:\/\/[^/]+\/[^/]+|[^/:]*::[^/]+|[^/:]*:\/?)(.*)$/.exec(trimmed);
  return { spec: trimmed, remote, base: m ? m[1] : trimmed, under: m ? m[2].replace(/^\/+/, '') : '' };
}

/** A remote destination's base as a directory argument (`host:` stays the home directory). */
export const baseArg = (d: Destination): string => (d.base!.endsWith(':') || d.base!.endsWith('/') ? d.base! : `${d.base}/`);

export interface RsyncOptions {
  /** rsync binary (tests may wrap it). */
  rsync?: string;
  /** `uid:gid` for `--chown`. */
  owner?: string;
  excludes?: string[];
  /** KiB/s, for throttled links. */
  bwlimitKiB?: number;
  timeoutMs?: number;
  /** Extra arguments (e.g. `-e ssh -i key`) appended before the paths. */
  extraArgs?: string[];
}

/** Flags every pass shares: Rocky's `-rlptDSHog` minus `-r` (passes choose recursion), numeric ids, owner. */
export function baseArgs(o: RsyncOptions): string[] {
  // rsync's --delay-updates temp dirs are never content: hidden on the sending side only, so a
  // killed run's leftovers in the destination are still deleted.
  const a = ['-lptgoD', '-S', '-H', '--numeric-ids', '--filter=H .~tmp~/'];
  if (o.owner) a.push(`--chown=${o.owner}`);
  if (o.bwlimitKiB) a.push(`--bwlimit=${o.bwlimitKiB}`);
  for (const x of o.excludes ?? []) a.push(`--exclude=${x}`);
  if (o.extraArgs) a.push(...o.extraArgs);
  return a;
}

/** `src/` with the trailing slash that makes rsync copy the contents. */
export const srcArg = (dir: string) => (dir.endsWith('/') ? dir : `${dir}/`);

export interface RsyncRun {
  argv: string[];
  result: RunResult;
  entries: ItemizedEntry[];
  other: string[];
}

/** Runs rsync with itemized output and parses it. `okCodes` defaults to [0]; `input` is its stdin (a `--files-from=-` list); `cancelSignal` stops it. */
export async function rsyncItemized(args: string[], o: RsyncOptions & { okCodes?: number[]; input?: string; cancelSignal?: AbortSignal }): Promise<RsyncRun> {
  const argv = [o.rsync ?? 'rsync', '--itemize-changes', `--out-format=${OUT_FORMAT}`, ...args];
  const result = await run(argv, { timeoutMs: o.timeoutMs, okCodes: o.okCodes, input: o.input, cancelSignal: o.cancelSignal });
  return { argv, result, ...parseItemized(result.stdout) };
}

// --- deleting exactly the planned paths ----------------------------------------------------
//
// A pass with -r --delete over a skeleton (the planned paths' parent directories, nothing else)
// and receiver-side filter rules: `R /<path>` (risk) for every planned path, then `P *` (protect)
// for everything else. --existing --ignore-existing transfer and create nothing (the rsync man
// page's delete-only idiom). Only what the plan lists can go: a file that appeared since the plan
// is protected (and its directory, no longer empty, stays). What this relies on, from rsync's man
// page: protect (P) and risk (R) rules (since 2.6.4; receiver-side, so a client sends them to a
// daemon), --from0 applying to merge files (2.6.4), --existing with --ignore-existing transferring
// nothing "if all you want to do is delete extraneous files" (3.1.3's page; --existing since 2.6.x),
// `**` matching across slashes. Checked against 3.2.7-1+deb12u6 and 3.5.0 by the tests.

/** A filter-rule pattern matching exactly `path`: wildcards are escaped (backslashes only count as escapes in a pattern that has one). */
export function exactPattern(path: string): string {
  return /[*?[]/.test(path) ? path.replace(/[\\*?[]/g, (ch) => `\\${ch}`) : path;
}

/** The rules of a delete pass (NUL-separated, read with --from0: names may hold newlines). */
export function deletionRules(paths: string[], extraRisk: string[] = []): string {
  return [...paths.map((p) => `R /${exactPattern(p)}`), ...extraRisk.map((r) => `R ${r}`), 'P *'].map((r) => `${r}\0`).join('');
}

/** argv (after the binary) of a delete pass: `skeleton` is a local directory of the parent dirs only. */
export function deletionArgs(o: RsyncOptions, rulesFile: string, skeleton: string, dest: string): string[] {
  return ['-r', '--delete', '--existing', '--ignore-existing', '--from0', `--filter=merge ${rulesFile}`, ...(o.extraArgs ?? []), srcArg(skeleton), srcArg(dest)];
}

// --- hardlinked tree copies (staging's private tree; linkCopy itself is in @rocky/exec) -------

export interface LinkDestSync {
  from: string;
  to: string;
  /** Absolute directory whose identical files are hardlinked instead of copied (default `from`). */
  linkDest?: string;
  excludes?: string[];
  /** Delete what `from` does not have (excluded paths are kept). */
  delete?: boolean;
  rsync?: string;
}

/** `rsync -rlptgoD -H --numeric-ids [--exclude=..] [--delete] --link-dest=<linkDest> from/ to/`. */
export function linkDestArgv(o: LinkDestSync): string[] {
  return [
    o.rsync ?? 'rsync',
    '-rlptgoD',
    '-H',
    '--numeric-ids',
    ...(o.excludes ?? []).map((x) => `--exclude=${x}`),
    ...(o.delete ? ['--delete'] : []),
    `--link-dest=${o.linkDest ?? o.from}`,
    srcArg(o.from),
    srcArg(o.to),
  ];
}

export const linkDestSync = (o: LinkDestSync): Promise<RunResult> => run(linkDestArgv(o));

/**
 * The options and stdin that pass `paths` to rsync as its file list: `--files-from=-` with
 * `--from0` (NUL-separated, so any name survives), both in 3.1.3. Through stdin, no list file is
 * written (a dry run writes nothing anywhere); over a daemon or ssh the client forwards the list.
 */
export const filesFromStdin = (paths: string[]): { args: string[]; input: string } => ({ args: ['--files-from=-', '--from0'], input: paths.map((p) => `${p}\0`).join('') });

/** One entry of `rsync --list-only` (`-rw-r--r--  1,007 2026/12/06 22:00:00 name[ -> target]`). */
export interface ListedEntry {
  type: EntryType;
  bytes: number;
  /** The rest of the line: the name, and ` -> target` for a symlink. */
  name: string;
}

const LIST_TYPES: Record<string, EntryType> = { '-': 'file', d: 'dir', l: 'symlink', c: 'device', b: 'device' };

/**
 * rsync wants a destination with --files-from; with --list-only (and -n) it neither makes nor
 * uses it, so a listing writes nothing.
 */
const LIST_DEST = '/nonexistent/';

/** Runs `rsync -n --list-only <args> <source>` and parses what it lists. */
export async function rsyncList(args: string[], source: string, o: RsyncOptions & { okCodes?: number[]; input?: string }): Promise<ListedEntry[]> {
  const result = await run([o.rsync ?? 'rsync', '-n', '--list-only', ...args, source, LIST_DEST], { timeoutMs: o.timeoutMs, okCodes: o.okCodes, input: o.input });
  return parseListing(result.stdout);
}

/**
 * The lines of the text file `file` on the remote side of `source` (`:path` as --files-from
 * takes it: under the module for a daemon, else the remote shell's path), read without a copy: a
 * dry run writes nothing, and rsync hands a file's bytes to nothing but a file. rsync reads
 * that file on the remote side as its --files-from list (2.6.0+) and reports each line that names
 * no file there (`link_stat "<line>" failed`, `rsync: [sender] link_stat ...` since 3.2.0); -8
 * keeps UTF-8 unescaped. For small lists (run() keeps stderr's last MiB) whose lines are not paths
 * (CHECKSUM lines are not).
 */
export async function rsyncRemoteLines(source: string, file: string, o: RsyncOptions): Promise<string[]> {
  const argv = [o.rsync ?? 'rsync', '-n', '-8', '--list-only', `--files-from=:${file}`, ...(o.extraArgs ?? []), source, LIST_DEST];
  const result = await run(argv, { timeoutMs: o.timeoutMs, okCodes: [0, 23] });
  const lines: string[] = [];
  for (const line of result.stderr.split('\n')) {
    const m = /^rsync: (?:\[sender\] )?link_stat "(.*)"(?: \(in [^)]*\))? failed: /.exec(line);
    if (m) lines.push(unescape(m[1]));
  }
  return lines;
}

/**
 * Parses `rsync --list-only` output. Sizes are digit-grouped by default since 3.1.0 (`1,007`, or
 * `1.007` where the locale's decimal point is a comma): the separators are dropped. Names keep
 * rsync's `\#ooo` escapes undone.
 */
export function parseListing(stdout: string): ListedEntry[] {
  const out: ListedEntry[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^([-dlcbps])\S{9}\s+([\d,.]+) \d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d (.*)$/.exec(line);
    if (m) out.push({ type: LIST_TYPES[m[1]] ?? 'special', bytes: Number(m[2].replace(/[,.]/g, '')), name: unescape(m[3]) });
  }
  return out;
}

/** rsync's exit codes that mean the other side went away or the link broke. */
const LINK_CODES: Record<number, string> = {
  5: 'error starting client-server protocol',
  10: 'error in socket I/O',
  12: 'error in rsync protocol data stream (the other side went away?)',
  20: 'received SIGUSR1 or SIGINT',
  23: 'partial transfer due to error',
  24: 'some source files vanished',
  25: '--max-delete stopped deletions',
  30: 'timeout in data send/receive',
  35: 'timeout waiting for daemon connection',
};

/** One line saying what an rsync failure means. */
export function describeRsyncError(e: unknown): string {
  if (e instanceof ToolError) {
    const why = LINK_CODES[e.result.code];
    return why ? `${e.message.split('\n')[0]} (${why})\n${e.message.split('\n').slice(1).join('\n')}` : e.message;
  }
  return (e as Error).message;
}
