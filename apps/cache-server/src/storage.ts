// Entry storage on a directory: `<dir>/entries/<hash>` holds complete entries only, `<dir>/tmp/`
// holds uploads in progress. An upload is written and fsynced under a temp name and then
// hard-linked to its final name: link(2) fails if the name exists, so of two concurrent uploads
// of one hash exactly one wins and nobody ever sees a partial entry. The index (size and
// recency of every entry) lives in memory and is rebuilt from the directory on start, so a
// crash loses nothing that was acknowledged.
import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { link, lstat, mkdir, open, readdir, rm, unlink, utimes, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';

/** Nx hashes are decimal digits; this also admits other cache keys but never `.`, `/` or `%`. */
export const HASH_RE = /^[A-Za-z0-9_-]{1,128}$/;

export type StoreLog = (event: Record<string, unknown>) => void;

interface Entry {
  size: number;
  /** When the file's mtime was last bumped; limits utimes calls on hot entries. */
  touchedAt: number;
}

export interface StoreStats {
  entries: number;
  bytes: number;
  maxSize: number;
}

/** An open entry. `release()` must be called once the response is over (also on error). */
export interface ReadHandle {
  size: number;
  stream: Readable;
  release(): void;
}

/** The upload did not arrive complete (client went away, or body length mismatch). */
export class UploadAbortedError extends Error {
  override name = 'UploadAbortedError';
}

/** Eviction goes below the limit, not just to it, so that it runs once per batch of puts, not on every put. */
const EVICT_TO = 0.9;
/** A hit bumps the file's mtime at most this often: the mtime only matters to seed LRU order on restart. */
const TOUCH_INTERVAL_MS = 60_000;

/** open/fstat errors that mean the entry's path no longer holds a servable regular file. */
const DROP_ON = new Set(['ENOENT', 'ENOTFILE', 'ELOOP', 'EISDIR', 'ENOTDIR']);

function errCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

export class CacheStore {
  /** Map order is LRU order: the first key is the least recently used. */
  private readonly index = new Map<string, Entry>();
  private readonly readers = new Map<string, number>();
  /** Evicted entries whose unlink is still running; a new upload of the hash waits for it. */
  private readonly unlinking = new Map<string, Promise<void>>();
  private totalBytes = 0;
  private tmpSeq = 0;
  private syncInFlight?: Promise<void>;
  private syncNext?: Promise<void>;
  readonly entriesDir: string;
  readonly tmpDir: string;

  private constructor(
    readonly dir: string,
    readonly maxSize: number,
    private readonly log: StoreLog,
  ) {
    this.entriesDir = join(dir, 'entries');
    this.tmpDir = join(dir, 'tmp');
  }

  /** Opens (creating if needed) a storage directory: drops stale uploads, rebuilds the index. */
  static async open(dir: string, options: { maxSize: number; log?: StoreLog }): Promise<CacheStore> {
    const store = new CacheStore(dir, options.maxSize, options.log ?? (() => {}));
    await store.init();
    return store;
  }

  private async init(): Promise<void> {
    await mkdir(this.entriesDir, { recursive: true });
    // Anything in tmp/ is an upload that never got its 200 (the process died mid-body).
    const stale = await readdir(this.tmpDir).catch((e) => (errCode(e) === 'ENOENT' ? [] : Promise.reject(e)));
    await rm(this.tmpDir, { recursive: true, force: true });
    await mkdir(this.tmpDir, { recursive: true });

    const names = await readdir(this.entriesDir);
    const found: { hash: string; size: number; mtime: number }[] = [];
    const ignored: string[] = [];
    // Bounded concurrency: a large cache has many thousands of entries.
    let next = 0;
    const worker = async () => {
      while (next < names.length) {
        const name = names[next++];
        let st: Stats;
        try {
          st = await lstat(join(this.entriesDir, name));
        } catch {
          ignored.push(name);
          continue;
        }
        if (HASH_RE.test(name) && st.isFile()) found.push({ hash: name, size: st.size, mtime: st.mtimeMs });
        else ignored.push(name);
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
    found.sort((a, b) => a.mtime - b.mtime);
    for (const f of found) {
      this.index.set(f.hash, { size: f.size, touchedAt: f.mtime });
      this.totalBytes += f.size;
    }
    this.log({
      event: 'storage-open',
      dir: this.dir,
      entries: this.index.size,
      bytes: this.totalBytes,
      maxSize: this.maxSize,
      staleUploadsRemoved: stale.length,
      ...(ignored.length ? { ignored: ignored.slice(0, 20), ignoredCount: ignored.length } : {}),
    });
    this.evictIfNeeded();
  }

  stats(): StoreStats {
    return { entries: this.index.size, bytes: this.totalBytes, maxSize: this.maxSize };
  }

  has(hash: string): boolean {
    return this.index.has(hash);
  }

  /** Hashes from least to most recently used (for tests and diagnostics). */
  lruOrder(): string[] {
    return [...this.index.keys()];
  }

  entryPath(hash: string): string {
    return join(this.entriesDir, hash);
  }

  /**
   * Stores `body` (exactly `length` bytes) under `hash`. Resolves `stored` only once the entry is
   * durable (data and directory entry fsynced); `exists` if the hash was already there or another
   * upload of it won the race. Throws UploadAbortedError if the body did not arrive complete.
   */
  async put(hash: string, body: AsyncIterable<Buffer> | Iterable<Buffer>, length: number): Promise<'stored' | 'exists'> {
    if (this.index.has(hash)) return 'exists';
    const tmp = join(this.tmpDir, `${hash}.${process.pid}.${this.tmpSeq++}.${randomBytes(4).toString('hex')}`);
    let fh: FileHandle | undefined = await open(tmp, 'wx', 0o644);
    try {
      let written = 0;
      let writeError: unknown;
      try {
        for await (const chunk of body) {
          written += chunk.length;
          if (written > length) break;
          try {
            // write(2) may write less than asked; loop like fs.writeFile does.
            for (let off = 0; off < chunk.length; ) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
          } catch (e) {
            writeError = e;
            break;
          }
        }
      } catch (e) {
        throw new UploadAbortedError(`upload aborted after ${written} of ${length} bytes: ${(e as Error).message}`);
      }
      // A failed write (ENOSPC, EIO) is ours, not the client's: the caller reports it differently.
      if (writeError) throw writeError;
      if (written !== length) throw new UploadAbortedError(`body has ${written} bytes, Content-Length says ${length}`);
      await fh.sync();
      await fh.close();
      fh = undefined;
      await this.unlinking.get(hash);
      try {
        await link(tmp, this.entryPath(hash));
      } catch (e) {
        if (errCode(e) === 'EEXIST') return 'exists';
        throw e;
      }
      await this.syncEntriesDir();
      // A concurrent upload of the same hash cannot get here: its link failed with EEXIST.
      this.index.set(hash, { size: length, touchedAt: Date.now() });
      this.totalBytes += length;
      this.evictIfNeeded(hash);
      return 'stored';
    } finally {
      await fh?.close().catch(() => {});
      await unlink(tmp).catch(() => {});
    }
  }

  /**
   * Opens an entry for reading; undefined on a miss. Throws on a damaged entry (not a regular
   * file, unreadable): the caller answers 404 and logs. While open, the entry is never evicted.
   */
  async openRead(hash: string): Promise<ReadHandle | undefined> {
    const entry = this.index.get(hash);
    if (!entry) return undefined;
    // Registered before the first await, so an eviction running meanwhile skips this entry.
    this.readers.set(hash, (this.readers.get(hash) ?? 0) + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const n = (this.readers.get(hash) ?? 1) - 1;
      if (n > 0) this.readers.set(hash, n);
      else this.readers.delete(hash);
    };
    const path = this.entryPath(hash);
    let fh: FileHandle | undefined;
    try {
      // O_NOFOLLOW: a symlink planted in the storage must not serve some other file.
      fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
      const st = await fh.stat();
      if (!st.isFile()) throw Object.assign(new Error(`${path} is not a regular file`), { code: 'ENOTFILE' });
      if (st.size !== entry.size) {
        // Changed behind our back; trust the file and keep the accounting right.
        this.totalBytes += st.size - entry.size;
        entry.size = st.size;
      }
      const stream = fh.createReadStream(st.size > 0 ? { start: 0, end: st.size - 1 } : { start: 0 });
      this.touch(hash, entry);
      return {
        size: st.size,
        stream,
        release: () => {
          if (!stream.destroyed) stream.destroy();
          release();
        },
      };
    } catch (e) {
      await fh?.close().catch(() => {});
      release();
      // Structurally unservable: drop it so the numbers in /health stay true. The file (or
      // whatever sits there) is left for an operator to look at; a new upload gets 409.
      // Transient errors (EMFILE under load, EIO) and EACCES, which an operator may fix, keep it.
      if (DROP_ON.has(errCode(e) ?? '') && this.index.get(hash) === entry) {
        this.index.delete(hash);
        this.totalBytes -= entry.size;
      }
      throw e;
    }
  }

  /** Marks a hit: most recently used in memory now, and in the file's mtime for the next start. */
  private touch(hash: string, entry: Entry): void {
    this.index.delete(hash);
    this.index.set(hash, entry);
    const now = Date.now();
    if (now - entry.touchedAt < TOUCH_INTERVAL_MS) return;
    entry.touchedAt = now;
    const t = new Date(now);
    utimes(this.entryPath(hash), t, t).catch(() => {
      // Evicted meanwhile or unwritable: recency is an optimisation, never a reason to fail.
    });
  }

  /** Evicts least recently used entries down to 90% of the limit; `keep` (the entry just stored) last of all. */
  private evictIfNeeded(keep?: string): void {
    if (this.totalBytes <= this.maxSize) return;
    const target = Math.floor(this.maxSize * EVICT_TO);
    let evicted = 0;
    let freed = 0;
    let skipped = 0;
    for (const [hash, entry] of this.index) {
      if (this.totalBytes <= target) break;
      if (hash === keep) continue;
      if (this.readers.has(hash)) {
        skipped++;
        continue;
      }
      this.index.delete(hash);
      this.totalBytes -= entry.size;
      evicted++;
      freed += entry.size;
      const p = unlink(this.entryPath(hash))
        .catch((e) => {
          if (errCode(e) !== 'ENOENT') this.log({ event: 'evict-error', hash, error: (e as Error).message });
        })
        .finally(() => {
          if (this.unlinking.get(hash) === p) this.unlinking.delete(hash);
        });
      this.unlinking.set(hash, p);
    }
    this.log({ event: 'evict', evicted, freed, skippedInUse: skipped, entries: this.index.size, bytes: this.totalBytes });
  }

  /**
   * fsyncs the entries directory so a new link survives a power cut. Concurrent callers share
   * one fsync: whoever arrives while one runs waits for the next, which covers them.
   */
  private syncEntriesDir(): Promise<void> {
    if (!this.syncInFlight) {
      this.syncInFlight = this.fsyncDir().finally(() => {
        this.syncInFlight = undefined;
      });
      return this.syncInFlight;
    }
    this.syncNext ??= this.syncInFlight
      .catch(() => {})
      .then(() => {
        this.syncNext = undefined;
        return this.syncEntriesDir();
      });
    return this.syncNext;
  }

  private async fsyncDir(): Promise<void> {
    const fh = await open(this.entriesDir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  /** Waits for pending evictions; the store holds no other state that needs flushing. */
  async close(): Promise<void> {
    await Promise.all([...this.unlinking.values()]);
  }
}
