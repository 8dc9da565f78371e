// File-system primitives every stage uses: atomic writes (temp name + rename), bounded
// parallelism, streaming hashes, and an exclusive lock.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, type Stats, promises as fsp, statfsSync, mkdirSync, openSync, closeSync, writeSync, writeFileSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, fsyncSync, unlinkSync, linkSync, utimesSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { gunzipSync, gzipSync } from 'node:zlib';
import { run, type RunResult } from './run';

/**
 * This host's name, as scratch names and locks record it. RELENG_HOSTNAME overrides it: for
 * runners whose hostname is not stable (a container's changes with every job) or not unique, and
 * for tests that play two hosts.
 */
export function hostName(): string {
  const h = process.env.RELENG_HOSTNAME || hostname();
  if (!/^[\w.-]+$/.test(h)) throw new Error(`RELENG_HOSTNAME: ${JSON.stringify(h)} is not a host name (letters, digits, '.', '-', '_')`);
  return h;
}

/**
 * A scratch name that records its owner, `<prefix>@<host>.<pid>`, so that a later run can remove
 * it once that process is gone (sweepScratch, removeStaleTemps). The host matters where files are
 * shared between runners: the store, and the compose on a fleet's shared filesystem.
 */
export const scratchName = (prefix: string) => `${prefix}@${hostName()}.${process.pid}`;

const SCRATCH_OF = /@([^@/]+)\.(\d+)(?:-[0-9a-z]+)?$/;
/** Whether a scratchName (optionally with a `-<suffix>`) belongs to a dead process of this host. */
export function isDeadScratch(name: string): boolean {
  const m = SCRATCH_OF.exec(name);
  return !!m && m[1] === hostName() && Number(m[2]) !== process.pid && !isAlive(Number(m[2]));
}

/**
 * Removes the entries of `dir` that killed runs of this host left (isDeadScratch), those of them
 * `which` accepts (default: all). Returns their names.
 */
export function sweepScratch(dir: string, which: (name: string) => boolean = () => true): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed = names.filter((n) => isDeadScratch(n) && which(n));
  for (const n of removed) rmSync(join(dir, n), { recursive: true, force: true });
  return removed;
}

let tmpCounter = 0;
/** A temporary name beside `file` (same directory, so the rename is atomic): `.<name>.tmp@<host>.<pid>-<n>`. */
export const tempName = (file: string) => join(dirname(file), `${scratchName(`.${basename(file)}.tmp`)}-${tmpCounter++}`);

/**
 * Removes temps of `file` whose writer is dead: a SIGKILLed run cannot clean up, and its temp
 * would otherwise stay beside the final name for good (and be published with the compose).
 */
export function removeStaleTemps(file: string): void {
  let names: string[];
  try {
    names = readdirSync(dirname(file));
  } catch {
    return;
  }
  const prefix = `.${basename(file)}.tmp@`;
  for (const n of names) if (n.startsWith(prefix) && isDeadScratch(n)) rmSync(join(dirname(file), n), { force: true });
}

/** Writes `data` to `file` atomically: readers see the old content or the new, never a part. `mtime` in seconds. */
export function writeFileAtomic(file: string, data: string | Buffer, mtime?: number): void {
  mkdirSync(dirname(file), { recursive: true });
  removeStaleTemps(file);
  const tmp = tempName(file);
  const fd = openSync(tmp, 'w', 0o644);
  try {
    try {
      writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (mtime !== undefined) utimesSync(tmp, mtime, mtime);
    renameSync(tmp, file);
  } catch (e) {
    failedWrite(file, tmp, e);
  }
}

/**
 * A failed write (ENOSPC) must not leave its partial temp file beside the final name: composes
 * are published as they are, dotfiles included. Write and fsync errors name no file: this one does.
 */
function failedWrite(file: string, tmp: string, e: unknown): never {
  rmSync(tmp, { force: true });
  const err = e as NodeJS.ErrnoException;
  if (err.code && !err.path) err.message = `${file}: ${err.message}`;
  throw e;
}

/**
 * writeFileAtomic, unless `file` already holds exactly `data`: then it is left alone (same inode,
 * same mtime), so a rerun that produces the same bytes changes nothing a mirror would re-fetch.
 * `mtime` (seconds) dates what is written: generated metadata carries its compose's time, so a
 * compose rebuilt from the store publishes the very same files. Returns whether it wrote.
 */
export function writeFileIfChanged(file: string, data: string | Buffer, mtime?: number): boolean {
  const want = typeof data === 'string' ? Buffer.from(data) : data;
  if (holds(file, want)) return false;
  writeFileAtomic(file, want, mtime);
  return true;
}

/** A file for writeFilesIfChanged: its bytes, and its mtime in seconds (unset: now). */
export interface FileToWrite {
  file: string;
  data: string | Buffer;
  mtime?: number;
}

/**
 * writeFileIfChanged of many files, with the same guarantees for each (temp name, fsync, rename;
 * an unchanged file left alone), their writes and fsyncs in flight together: a journal commits
 * concurrent fsyncs together, where one after another each waited for its own commit (finalize's
 * ~110 `<name>.CHECKSUM` files took ~0.3 s so). Returns how many it wrote.
 */
export async function writeFilesIfChanged(files: readonly FileToWrite[]): Promise<number> {
  let written = 0;
  await mapLimit(files, 16, async ({ file, data, mtime }) => {
    const want = typeof data === 'string' ? Buffer.from(data) : data;
    if (holds(file, want)) return;
    mkdirSync(dirname(file), { recursive: true });
    removeStaleTemps(file);
    const tmp = tempName(file);
    try {
      const fh = await fsp.open(tmp, 'w', 0o644);
      try {
        await fh.writeFile(want);
        await fh.sync();
      } finally {
        await fh.close();
      }
      if (mtime !== undefined) await fsp.utimes(tmp, mtime, mtime);
      await fsp.rename(tmp, file);
    } catch (e) {
      failedWrite(file, tmp, e);
    }
    written++;
  });
  return written;
}

/** Whether `file` holds exactly `want` (missing or unreadable: no). */
function holds(file: string, want: Buffer): boolean {
  try {
    return statSync(file).size === want.length && readFileSync(file).equals(want);
  } catch {
    return false;
  }
}

/** Writes a JSON file atomically (jsonBytes: 2-space formatting and a final newline, or gzipped for `.json.gz`). */
export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, jsonBytes(file, value));
}

/** A JSON file's bytes: 2-space formatted, or for a `.json.gz` name compact and gzipped (deterministic: no name, no time in the header). */
export function jsonBytes(file: string, value: unknown): Buffer {
  if (file.endsWith('.json.gz')) return gzipSync(JSON.stringify(value), { level: 6 });
  return Buffer.from(JSON.stringify(value, null, 2) + '\n');
}

/** Reads a JSON file (`.json.gz`: gzipped). */
export function readJson<T>(file: string): T {
  const data = readFileSync(file);
  return JSON.parse((file.endsWith('.gz') ? gunzipSync(data) : data).toString('utf8')) as T;
}

/** symlinkAtomic, unless `link` already points at `target` (then it is left as it is). */
export function symlinkIfChanged(target: string, link: string): boolean {
  try {
    if (readlinkSync(link) === target) return false;
  } catch {
    // missing, or not a link: replace it
  }
  symlinkAtomic(target, link);
  return true;
}

/** Points `link` at `target` atomically: a new symlink under a temp name, renamed over the old. */
export function symlinkAtomic(target: string, link: string): void {
  mkdirSync(dirname(link), { recursive: true });
  removeStaleTemps(link);
  const tmp = tempName(link);
  symlinkSync(target, tmp);
  renameSync(tmp, link);
}

/** sha256 of a file, streamed (Node's hash is several times faster than coreutils here). */
export const sha256File = (file: string) => hashFile(file, 'sha256');

/** `onBytes` is told each chunk's length as it is hashed. */
export async function hashFile(file: string, algo: string, onBytes?: (n: number) => void): Promise<string> {
  const h = createHash(algo);
  const stream = createReadStream(file, { highWaterMark: 1 << 20 });
  if (onBytes) stream.on('data', (c) => onBytes(c.length));
  await pipeline(stream, h);
  return h.digest('hex');
}

export const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/**
 * Runs `tasks` together, all given one AbortSignal. The first failure (a task's rejection, or an
 * error it passes to `fail` while it goes on) aborts the signal for the others, and is the error
 * thrown once every task has settled: no task's process is left running, and the others' errors
 * from being aborted do not hide it.
 */
export async function allOrFirstFailure<R>(tasks: ((signal: AbortSignal, fail: (e: unknown) => void) => Promise<R>)[]): Promise<R[]> {
  const stop = new AbortController();
  let first: { error: unknown } | undefined;
  const fail = (error: unknown) => {
    first ??= { error };
    stop.abort();
  };
  const settled = await Promise.allSettled(tasks.map((t) => t(stop.signal, fail).catch((e: unknown) => (fail(e), Promise.reject(e)))));
  if (first) throw first.error;
  return settled.map((r) => (r as PromiseFulfilledResult<R>).value);
}

/** Maps over items with at most `limit` promises in flight; results keep the input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (next < items.length && failed === undefined) {
      const i = next++;
      try {
        results[i] = await fn(items[i], i);
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failed !== undefined) throw failed;
  return results;
}

/** Who holds a lock: recorded in the lock file, so that anyone who finds it can name the owner. */
export interface LockHolder {
  host: string;
  pid: number;
  /** What the owner locked it for, and when (ISO time); absent in a lock of an older version. */
  what?: string;
  since?: string;
}

/**
 * An exclusive lock file recording its owner (host, pid, what, since). Only the owner's host can
 * tell whether the owner still runs: there, a lock whose owner is dead is taken over (a killed
 * run must not block the next one); anywhere else it is busy, as is a live owner. A busy lock
 * makes this fail at once, naming the owner.
 */
export function acquireLock(file: string, what: string): () => void {
  mkdirSync(dirname(file), { recursive: true });
  removeStaleTemps(file);
  const mine = `${JSON.stringify({ host: hostName(), pid: process.pid, what, since: new Date().toISOString() } satisfies LockHolder)}\n`;
  for (let attempt = 0; attempt < 3; attempt++) {
    if (createLock(file, mine, what)) return () => releaseLock(file, mine);
    const seen = readLock(file);
    if (!seen) continue; // released meanwhile
    if (!isStale(seen.holder)) throw new LockBusyError(what, file, seen.holder);
    // Stale: its owner, a process of this host, died. Move it aside under a name of our own and
    // look at what we moved: if a racing process had already replaced it, put that one back.
    const aside = `${file}.stale@${hostName()}.${process.pid}`;
    try {
      renameSync(file, aside);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    const moved = readLock(aside);
    if (moved && moved.text !== seen.text && !isStale(moved.holder)) {
      try {
        linkSync(aside, file);
      } finally {
        unlinkSync(aside);
      }
      throw new LockBusyError(what, file, moved.holder);
    }
    unlinkSync(aside);
  }
  // Three rounds of a lock changing hands under us: contended, as much as a live holder.
  throw new LockBusyError(what, file);
}

/**
 * Creates `file` holding `text`, whole (a link of a complete temp file: a reader never finds it
 * empty). False when it exists. A failure to create it (ENOSPC, EROFS, EACCES) names the lock,
 * and leaves no temp file behind.
 */
function createLock(file: string, text: string, what: string): boolean {
  const tmp = tempName(file);
  try {
    writeFileSync(tmp, text);
    linkSync(tmp, file);
    return true;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EEXIST' && err.syscall === 'link') return false;
    err.message = `cannot create the lock ${file} for ${what}: ${err.message}`;
    throw err;
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** Removes the lock if it is still ours: one removed by hand (its host was thought gone) and taken since is left to its new owner. */
function releaseLock(file: string, mine: string): void {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return; // gone already
  }
  if (text === mine) rmSync(file, { force: true });
}

/** The lock in `file` (undefined when there is none). A pid alone is a lock of an older version, written on this host. */
function readLock(file: string): { text: string; holder: LockHolder } | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  if (/^\d+\n?$/.test(text)) return { text, holder: { host: hostName(), pid: Number(text) } };
  try {
    const h = JSON.parse(text) as LockHolder;
    if (typeof h.host === 'string' && Number.isInteger(h.pid)) return { text, holder: h };
  } catch {
    // not JSON: named below
  }
  throw new Error(`${file}: not a lock this tool wrote (${JSON.stringify(text.slice(0, 80))}); remove it if nothing holds it`);
}

/** Our own pid counts as alive: a second holder inside this process must wait its turn too. */
const isStale = (h: LockHolder) => h.host === hostName() && !isAlive(h.pid);

export class LockBusyError extends Error {
  /** The owner's pid (undefined while the lock changes hands). */
  readonly owner: number | undefined;
  constructor(
    what: string,
    readonly file: string,
    readonly holder?: LockHolder,
  ) {
    super(`${what} is locked ${describeHolder(holder)} (${file}); ${!holder || holder.host === hostName() ? 'wait for it to finish' : `only ${holder.host} can tell whether it still runs: wait for it, or remove the lock if that run is gone`}`);
    this.name = 'LockBusyError';
    this.owner = holder?.pid;
  }
  /** Whether the owner is on another host (this one cannot tell whether it still runs). */
  get foreign(): boolean {
    return !!this.holder && this.holder.host !== hostName();
  }
}

function describeHolder(h: LockHolder | undefined): string {
  if (!h) return '(changing hands)';
  const about = [h.what, h.since && `since ${h.since}`].filter(Boolean).join(', ');
  return `${h.host === hostName() ? `by running process ${h.pid} on this host (${h.host})` : `by process ${h.pid} on host ${h.host}`}${about ? ` (${about})` : ''}`;
}

/** How long acquireLockWaiting waits, by default, for a lock held on another host (which may be gone for good). */
export const FOREIGN_LOCK_WAIT_MS = 30 * 60_000;

/**
 * acquireLock, waiting while the lock is busy: polls with a backoff up to `maxPollMs`, tells
 * `onWait` once who it waits for, gives up after `timeoutMs`. A lock held on another host is
 * waited for at most `timeoutMs` or, by default, FOREIGN_LOCK_WAIT_MS: this host cannot see
 * that owner die.
 */
export async function acquireLockWaiting(
  file: string,
  what: string,
  opts: { timeoutMs?: number; maxPollMs?: number; onWait?: (why: string) => void } = {},
): Promise<() => void> {
  const start = Date.now();
  for (let delay = 20, told = false; ; delay = Math.min(delay * 2, opts.maxPollMs ?? 500)) {
    try {
      return acquireLock(file, what);
    } catch (e) {
      if (!(e instanceof LockBusyError)) throw e;
      const limit = opts.timeoutMs ?? (e.foreign ? FOREIGN_LOCK_WAIT_MS : Infinity);
      if (Date.now() - start >= limit) throw new Error(`timed out after ${limit} ms waiting: ${e.message}`);
      if (!told) opts.onWait?.(e.message);
      told = true;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/**
 * statfs magic numbers of the disk and memory file systems (ext2/3/4, xfs, btrfs, tmpfs, overlayfs,
 * zfs, f2fs): their metadata calls are answered from the kernel's caches in microseconds.
 */
const LOCAL_FS_TYPES = new Set([0xef53, 0x58465342, 0x9123683e, 0x01021994, 0x794c7630, 0x2fc12fc1, 0xf2f52010]);

/**
 * Whether `path` (or, not made yet, its nearest existing parent) is on a local disk or memory
 * file system. There a synchronous metadata call (access, link) costs less main-thread time
 * than the promise API's trip through libuv's thread pool; on NFS, CIFS, FUSE or Ceph a call may
 * wait a network round trip, so those keep the promise API and the event loop keeps running.
 */
export function isLocalFileSystem(path: string): boolean {
  let p = path;
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  try {
    return LOCAL_FS_TYPES.has(Number(statfsSync(p).type));
  } catch {
    return false;
  }
}

/**
 * `stat` of many paths, in order (undefined: not there). On a local file system a loop of
 * statSync, microseconds each from the kernel's caches. Elsewhere each may be a server round trip
 * (an NFS client's attribute cache is long stale for a compose another runner wrote a week
 * ago), so 32 are in flight at once, through the thread pool (.env sets UV_THREADPOOL_SIZE).
 * `local`: whether the paths are on a local file system (default: what the first one's is).
 */
export async function statMany(paths: readonly string[], local = !paths.length || isLocalFileSystem(paths[0])): Promise<(Stats | undefined)[]> {
  // A path through a file (ENOTDIR) is not there either.
  const absent = (e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return undefined;
    throw e;
  };
  if (local)
    return paths.map((p) => {
      try {
        return statSync(p, { throwIfNoEntry: false }); // no exception made for a missing file
      } catch (e) {
        return absent(e as NodeJS.ErrnoException);
      }
    });
  return mapLimit(paths, 32, (p) => fsp.stat(p).catch(absent));
}

/** Whether process `pid` exists (on this host; one of another user's counts). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Human-readable byte counts for progress and plans. */
export function bytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) (n /= 1024), i++;
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}

/**
 * Copies every `*.log` under `from` (a work dir about to be removed) into `to`, flattened, so a
 * tool's full output survives its scratch dir. Returns the copied paths.
 */
export function keepLogs(from: string, to: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, depth: number) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory() && depth < 3) walk(p, depth + 1);
      else if (e.isFile() && e.name.endsWith('.log')) {
        mkdirSync(to, { recursive: true });
        const dest = join(to, e.name);
        writeFileSync(dest, readFileSync(p));
        out.push(dest);
      }
    }
  };
  walk(from, 0);
  return out;
}

/** `cp -al from/. to/`: `to` gets every entry of `from`, files as hardlinks (same filesystem). */
export const linkCopyArgv = (from: string, to: string): string[] => ['cp', '-al', `${from}/.`, `${to}/`];

export const linkCopy = (from: string, to: string): Promise<RunResult> => run(linkCopyArgv(from, to));
