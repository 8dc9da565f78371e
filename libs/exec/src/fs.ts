// File-system primitives every stage uses: atomic writes (temp name + rename), bounded
// parallelism, streaming hashes, and an exclusive lock.
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, openSync, closeSync, writeSync, writeFileSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, fsyncSync, unlinkSync, linkSync, utimesSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';

/**
 * A scratch name that records its owner, `<prefix>@<host>.<pid>`, so that a later run can remove
 * it once that process is gone (sweepScratch, removeStaleTemps). The host matters where files are
 * shared between runners: the store, and the compose on a fleet's shared filesystem.
 */
const HOST = hostname();
export const scratchName = (prefix: string) => `${prefix}@${HOST}.${process.pid}`;

const SCRATCH_OF = /@([^@/]+)\.(\d+)(?:-[0-9a-z]+)?$/;
/** Whether a scratchName (optionally with a `-<suffix>`) belongs to a dead process of this host. */
export function isDeadScratch(name: string): boolean {
  const m = SCRATCH_OF.exec(name);
  return !!m && m[1] === HOST && Number(m[2]) !== process.pid && !isAlive(Number(m[2]));
}

/** Removes the entries of `dir` that killed runs of this host left (isDeadScratch). Returns their names. */
export function sweepScratch(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed = names.filter(isDeadScratch);
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
    // A failed write (ENOSPC) must not leave its partial temp file beside the final name:
    // composes are published as they are, dotfiles included.
    rmSync(tmp, { force: true });
    const err = e as NodeJS.ErrnoException;
    if (err.code && !err.path) err.message = `${file}: ${err.message}`; // write/fsync errors name no file
    throw e;
  }
}

/**
 * writeFileAtomic, unless `file` already holds exactly `data`: then it is left alone (same inode,
 * same mtime), so a rerun that produces the same bytes changes nothing a mirror would re-fetch.
 * `mtime` (seconds) dates what is written: generated metadata carries its compose's time, so a
 * compose rebuilt from the store publishes the very same files. Returns whether it wrote.
 */
export function writeFileIfChanged(file: string, data: string | Buffer, mtime?: number): boolean {
  const want = typeof data === 'string' ? Buffer.from(data) : data;
  try {
    if (statSync(file).size === want.length && readFileSync(file).equals(want)) return false;
  } catch {
    // missing or unreadable: write it
  }
  writeFileAtomic(file, want, mtime);
  return true;
}

/** Writes a JSON file atomically, with sorted-insertion 2-space formatting and a final newline. */
export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
}

export function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(file, 'utf8')) as T;
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

export async function hashFile(file: string, algo: string): Promise<string> {
  const h = createHash(algo);
  await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), h);
  return h.digest('hex');
}

export const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

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

/**
 * An exclusive lock file holding the owner's pid. A lock whose owner is dead is taken over
 * (a killed run must not block the next one); a live owner makes this fail at once, naming it.
 */
export function acquireLock(file: string, what: string): () => void {
  mkdirSync(dirname(file), { recursive: true });
  removeStaleTemps(file);
  for (let attempt = 0; attempt < 3; attempt++) {
    // The lock appears with its pid in it (a link of a complete temp file): a reader never finds
    // it empty and takes it for a dead owner's.
    const tmp = tempName(file);
    writeFileSync(tmp, `${process.pid}\n`);
    try {
      linkSync(tmp, file);
      return () => rmSync(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    } finally {
      rmSync(tmp, { force: true });
    }
    const owner = readPid(file);
    // Our own pid counts as alive: a second holder inside this process must wait its turn too.
    if (owner && isAlive(owner)) throw new LockBusyError(what, owner, file);
    // Stale: its owner died. Move it aside under a name of our own and look at what we moved:
    // if a racing process had already replaced it with a live lock, put that one back.
    const aside = `${file}.stale-${process.pid}`;
    try {
      renameSync(file, aside);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    const moved = readPid(aside);
    if (moved && moved !== owner && isAlive(moved)) {
      try {
        linkSync(aside, file);
      } finally {
        unlinkSync(aside);
      }
      throw new LockBusyError(what, moved, file);
    }
    unlinkSync(aside);
  }
  // Three rounds of a lock changing hands under us: contended, as much as a live holder.
  throw new LockBusyError(what, undefined, file);
}

export class LockBusyError extends Error {
  constructor(what: string, readonly owner: number | undefined, readonly file: string) {
    super(`${what} is locked ${owner ? `by running process ${owner}` : '(changing hands)'} (${file}); wait for it to finish`);
    this.name = 'LockBusyError';
  }
}

/**
 * acquireLock, waiting while a live process (this one included) holds the lock: polls with a
 * backoff up to `maxPollMs`, tells `onWait` once who it waits for, gives up after `timeoutMs`.
 */
export async function acquireLockWaiting(
  file: string,
  what: string,
  opts: { timeoutMs?: number; maxPollMs?: number; onWait?: (why: string) => void } = {},
): Promise<() => void> {
  const deadline = Date.now() + (opts.timeoutMs ?? Infinity);
  for (let delay = 20, told = false; ; delay = Math.min(delay * 2, opts.maxPollMs ?? 500)) {
    try {
      return acquireLock(file, what);
    } catch (e) {
      if (!(e instanceof LockBusyError)) throw e;
      if (Date.now() >= deadline) throw new Error(`timed out after ${opts.timeoutMs} ms waiting: ${e.message}`);
      if (!told) opts.onWait?.(e.message);
      told = true;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

function readPid(file: string): number {
  try {
    return Number(readFileSync(file, 'utf8').trim()) || 0;
  } catch {
    return 0;
  }
}

function isAlive(pid: number): boolean {
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
