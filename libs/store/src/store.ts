// The content-addressed artifact store. Packages, repodata, ISOs and images are kept once, by
// sha256, and hardlinked into every compose that needs them: a second compose of the same
// upstream downloads nothing, and releases that share packages share the bytes on disk.
//
// On disk it is a cacache cache (content-v2/sha256/aa/bb/rest + index-v5 for named keys), so
// `cacache.verify` can check it. Content is written by us rather than through cacache.put
// because cacache can only copy bytes in; we stream a download straight into the store
// (hashing as it goes) and ingest a locally built ISO by hardlink, so no byte is written twice.
import { createHash, randomBytes } from 'node:crypto';
import { accessSync, createWriteStream, linkSync, mkdirSync, promises as fsp, constants, unlinkSync, writeFile, writeFileSync, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { pipeline } from 'node:stream/promises';
import { Transform, type Readable } from 'node:stream';
import { isLocalFileSystem, removeStaleTemps, scratchName, sha256File, sweepScratch, tempName } from '@rocky/exec';
// Pinned cacache 20: the content path is part of its on-disk format.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { contentDir } = require('cacache/lib/content/path') as { contentDir: (cache: string) => string };
/** cacache itself, for verify only: loading it whole costs ~80 ms (get, put, rm and verify with their dependencies). */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const cacache = (): typeof import('cacache') => require('cacache');
/** cacache's index of named keys (what `cacache.index.insert` and `cacache.get.info` call), loaded on first use: ~30 ms less than all of cacache in every stage that looks up a key. */
interface EntryIndex {
  insert(cache: string, key: string, integrity: string, opts: { size: number; metadata: unknown }): Promise<unknown>;
  find(cache: string, key: string): Promise<{ size?: number; metadata?: unknown } | null>;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const entryIndex = (): EntryIndex => require('cacache/lib/entry-index');

/** Objects up to this size are stored from memory (putStream, putBytes), bigger ones streamed to disk. */
export const SMALL_OBJECT = 1 << 20;

/** fs.writeFile with a callback: the promise API's FileHandle per file cost ~40% more CPU for 10 kB objects. */
const writeFileCb = promisify(writeFile);

/** A temp file of ours already gone is no error. */
const goneOk = (e: unknown) => {
  if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
};

/** Removes a temp file of ours; one syscall (fsp.rm stats it twice first). */
const unlinkQuiet = (file: string) => fsp.unlink(file).catch(goneOk);

/** `sha256` of `size` bytes that arrived, checked against what was announced; IntegrityError names both. */
function checked(sha256: string, size: number, expect: { sha256?: string; size?: number; what: string }): string {
  if (expect.size !== undefined && size !== expect.size) throw new IntegrityError(expect.what, `${expect.sha256 ?? '?'} (${expect.size} bytes)`, `${sha256} (${size} bytes)`);
  if (expect.sha256 && sha256 !== expect.sha256) throw new IntegrityError(expect.what, expect.sha256, sha256);
  return sha256;
}

export const integrityOf = (sha256hex: string) => `sha256-${Buffer.from(sha256hex, 'hex').toString('base64')}`;
const HEX64 = /^[0-9a-f]{64}$/;

export class IntegrityError extends Error {
  constructor(
    readonly what: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`${what}: checksum mismatch (expected sha256 ${expected}, got ${actual})`);
    this.name = 'IntegrityError';
  }
}

export interface StoredObject {
  sha256: string;
  size: number;
}

/** Temp file names of this process: a random part drawn once (a reused pid must not meet a killed run's file), then a counter. */
const putToken = randomBytes(5).toString('hex');
let putCounter = 0;

export class Store {
  /** `put@<host>.<pid>`, made once: asking the OS for the host name per object showed in profiles. */
  private readonly scratch = scratchName('put');

  /** cacache's directory of sha256 content: `<hex[0:2]>/<hex[2:4]>/<hex[4:]>` under it (its content path, built here: going through its integrity parser cost ~40 µs an object). */
  private readonly content: string;

  /**
   * `localFs`: the calls a sync makes per package (has(), a small object's write, link and
   * unlink, its directory, materialize()'s link) are synchronous, as suits a store on a local
   * file system (isLocalFileSystem, the default). Through the thread pool each costs several
   * times the CPU: 20,000 access + link took 1.5-1.9 CPU-s against 0.5-0.7, and a cold sync of
   * 20,020 small packages spent 11.7-14.8 CPU-s in its own process against 8.5-9.2.
   */
  constructor(
    readonly dir: string,
    private readonly localFs = isLocalFileSystem(dir),
  ) {
    this.content = join(contentDir(dir), 'sha256');
  }

  /**
   * Removes the partial objects killed writers of this host left (the directory may be shared by
   * runners). The runner's to call, before a real run changes anything: a dry run changes nothing.
   */
  sweepTemps(): string[] {
    return sweepScratch(join(this.dir, 'tmp'));
  }

  /** Path of an object's bytes in the store (whether or not it is there). */
  pathOf(sha256: string): string {
    if (!HEX64.test(sha256)) throw new Error(`not a sha256: ${sha256}`);
    return `${this.content}/${sha256.slice(0, 2)}/${sha256.slice(2, 4)}/${sha256.slice(4)}`;
  }

  /** A local path holding the object's bytes (remote stores fetch it into their local cache first). */
  async localPath(sha256: string): Promise<string> {
    return this.pathOf(sha256);
  }

  async has(sha256: string): Promise<boolean> {
    try {
      if (this.localFs) accessSync(this.pathOf(sha256));
      else await fsp.access(this.pathOf(sha256));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * has() of many objects. Those under a first-level directory (content-v2/sha256/<aa>) that does
   * not exist are answered by one listing, not a call each: a cold store's plan asks nothing more.
   */
  async hasMany(shas: string[]): Promise<boolean[]> {
    if (!shas.length) return [];
    const top = dirname(dirname(dirname(this.pathOf(shas[0]))));
    const present = new Set(await fsp.readdir(top).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? [] : Promise.reject(e))));
    return Promise.all(shas.map((h) => present.has(h.slice(0, 2)) && this.has(h)));
  }

  async size(sha256: string): Promise<number | undefined> {
    try {
      return (await fsp.stat(this.pathOf(sha256))).size;
    } catch {
      return undefined;
    }
  }

  // Directories known to exist: creating them once saves a syscall per object on hot paths.
  private dirs = new Map<string, Promise<unknown>>();
  private mkdir(dir: string): Promise<unknown> {
    let p = this.dirs.get(dir);
    if (!p) {
      if (this.localFs) {
        mkdirSync(dir, { recursive: true }); // a failure throws here, and is not remembered
        p = Promise.resolve();
      } else p = fsp.mkdir(dir, { recursive: true });
      this.dirs.set(dir, p);
    }
    return p;
  }

  private async tmpFile(): Promise<string> {
    const tmp = join(this.dir, 'tmp');
    await this.mkdir(tmp);
    return join(tmp, `${this.scratch}-${putToken}${(putCounter++).toString(36)}`);
  }

  /**
   * Puts a verified temp file at its content path. An object that is already there (a concurrent
   * writer just stored the same bytes) is kept, never renamed over: on Linux, link(2) from a path
   * that another writer renames over at that moment fails with ENOENT when the replaced inode
   * loses its last link, so a concurrent materialize() of the object would fail ("store object
   * ... is missing"). A hard link creates the object whole or finds it there.
   */
  private async commit(tmp: string, sha256: string): Promise<void> {
    const dest = this.pathOf(sha256);
    await this.mkdir(dirname(dest));
    try {
      if (this.localFs) linkSync(tmp, dest);
      else await fsp.link(tmp, dest);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return this.unlinkTemp(tmp);
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EMLINK') throw e;
      await fsp.rename(tmp, dest); // no hard links on this filesystem
      return;
    }
    await this.unlinkTemp(tmp);
  }

  /** Removes a committed temp file's name, as unlinkQuiet does (a synchronous call on a local file system). */
  private async unlinkTemp(tmp: string): Promise<void> {
    if (!this.localFs) return unlinkQuiet(tmp);
    try {
      unlinkSync(tmp);
    } catch (e) {
      goneOk(e);
    }
  }

  /**
   * Streams `source` into the store, verifying its sha256 (and size) when given. Nothing is
   * committed unless the whole stream arrived and matched: a failed or killed transfer leaves
   * only a temp file, never a wrong object.
   */
  async putStream(source: Readable, expect: { sha256?: string; size?: number; what: string }, onData?: (n: number, chunk: Buffer) => void): Promise<StoredObject> {
    const tmp = await this.tmpFile();
    const hash = createHash('sha256');
    let size = 0;
    // Small objects of announced size (nearly every package and repodata file) are read into
    // memory and written with one call: a write stream and a Transform per object cost more CPU
    // than the bytes do (a sync of 2,000 small packages is bound by it).
    if (expect.size !== undefined && expect.size <= SMALL_OBJECT) {
      try {
        const chunks: Buffer[] = [];
        for await (const c of source as AsyncIterable<Buffer | string>) {
          const chunk = typeof c === 'string' ? Buffer.from(c) : c;
          size += chunk.length;
          if (size > expect.size) throw new IntegrityError(expect.what, `${expect.sha256 ?? '?'} (${expect.size} bytes)`, `more than ${expect.size} bytes`);
          hash.update(chunk);
          chunks.push(chunk);
          onData?.(chunk.length, chunk);
        }
        return await this.commitBytes(tmp, checked(hash.digest('hex'), size, expect), chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
      } catch (e) {
        throw await this.discard(tmp, e, expect.what);
      }
    }
    const tap = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        size += chunk.length;
        onData?.(chunk.length, chunk);
        cb(null, chunk);
      },
    });
    try {
      // Created read-only (the open descriptor can still write): store objects are immutable,
      // hardlinked into many trees, so nothing may ever modify one in place.
      await pipeline(source, tap, createWriteStream(tmp, { mode: 0o444 }));
      const sha256 = checked(hash.digest('hex'), size, expect);
      await this.commit(tmp, sha256);
      return { sha256, size };
    } catch (e) {
      throw await this.discard(tmp, e, expect.what);
    }
  }

  /**
   * Stores bytes already in memory (a small download), verified against `expect` as putStream
   * verifies a stream. Bytes the store has are not written again (a compose's repomd.xml, the
   * same as the last compose's): as when a concurrent writer stored them first, the object stays.
   * `absent`: the caller found the object missing moments ago (a sync's plan), so the store is
   * not asked again; a copy stored since is kept all the same.
   */
  async putBytes(buf: Buffer, expect: { sha256?: string; size?: number; what: string; absent?: boolean }): Promise<StoredObject> {
    const sha256 = checked(createHash('sha256').update(buf).digest('hex'), buf.length, expect);
    if (!expect.absent && (await this.has(sha256))) return { sha256, size: buf.length };
    const tmp = await this.tmpFile();
    try {
      return await this.commitBytes(tmp, sha256, buf);
    } catch (e) {
      throw await this.discard(tmp, e, expect.what);
    }
  }

  /** Verified bytes written whole (one call, read-only from the start) under `tmp`, then committed. */
  private async commitBytes(tmp: string, sha256: string, buf: Buffer): Promise<StoredObject> {
    if (this.localFs) writeFileSync(tmp, buf, { mode: 0o444, flag: 'wx' });
    else await writeFileCb(tmp, buf, { mode: 0o444, flag: 'wx' });
    await this.commit(tmp, sha256);
    return { sha256, size: buf.length };
  }

  /** Removes a failed put's temp file and returns its error, a write error naming what was being stored where. */
  private async discard(tmp: string, e: unknown, what: string): Promise<unknown> {
    await unlinkQuiet(tmp);
    // A write error (ENOSPC) names no file: say what was being stored, and where. Only writes:
    // download errors keep their messages, which the retry logic reads.
    const err = e as NodeJS.ErrnoException;
    if (err.syscall === 'write' && !err.path) err.message = `${err.message} (storing ${what} in ${this.dir})`;
    return e;
  }

  /**
   * Ingests a local file (an ISO just built, an image collected). Same filesystem: hardlink,
   * no copy. The file is hashed once here unless the caller already knows its sha256.
   */
  async putFile(file: string, known?: StoredObject): Promise<StoredObject> {
    const st = await fsp.stat(file);
    const sha256 = known?.sha256 ?? (await sha256File(file));
    if (await this.has(sha256)) {
      await this.relinkTo(file, st, sha256);
      return { sha256, size: st.size };
    }
    const tmp = await this.tmpFile();
    try {
      await fsp.link(file, tmp);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
      await fsp.copyFile(file, tmp, constants.COPYFILE_FICLONE);
    }
    await fsp.chmod(tmp, 0o444);
    await this.commit(tmp, sha256);
    return { sha256, size: st.size };
  }

  /**
   * The same bytes are stored already (a rebuilt boot ISO equal to the last one, a file another
   * compose brought): `file` becomes a hardlink to the object, as a first put would have left it,
   * instead of a second copy on disk. Renamed over under a temp name, so `file` is never missing
   * or partial; left as it is on another filesystem.
   */
  private async relinkTo(file: string, st: Stats, sha256: string): Promise<void> {
    const obj = await fsp.stat(this.pathOf(sha256)).catch(() => undefined);
    if (!obj || obj.dev !== st.dev || obj.ino === st.ino || obj.size !== st.size) return;
    removeStaleTemps(file);
    const tmp = tempName(file);
    await fsp.link(this.pathOf(sha256), tmp);
    try {
      await fsp.rename(tmp, file);
    } catch (e) {
      await unlinkQuiet(tmp);
      throw e;
    }
  }

  /**
   * Makes `dest` hold the object: hardlink (reflink or copy across filesystems), written under
   * a temp name and renamed, so `dest` is never partial. A `dest` that already is the object
   * (same inode) is left alone.
   */
  async materialize(sha256: string, dest: string): Promise<'linked' | 'copied' | 'present'> {
    const src = this.pathOf(sha256);
    await this.mkdir(dirname(dest));
    // Common case, one syscall: a hard link is created whole or not at all, never partial.
    try {
      // dest on another file system fails at once (EXDEV) whichever call makes the link.
      if (this.localFs) linkSync(src, dest);
      else await fsp.link(src, dest);
      return 'linked';
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new Error(`store object ${sha256} is missing (${src})`);
      if (code !== 'EEXIST' && code !== 'EXDEV' && code !== 'EMLINK') throw e;
    }
    const [s, d] = await Promise.all([fsp.stat(src), fsp.stat(dest).catch(() => undefined)]);
    if (d && d.ino === s.ino && d.dev === s.dev) return 'present';
    // Replace (or cross a filesystem) under a temp name, then rename: dest is never partial.
    removeStaleTemps(dest);
    const tmp = tempName(dest);
    let how: 'linked' | 'copied' = 'linked';
    try {
      await fsp.link(src, tmp);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EXDEV' && code !== 'EMLINK') throw e;
      await fsp.copyFile(src, tmp, constants.COPYFILE_FICLONE);
      how = 'copied';
    }
    await fsp.rename(tmp, dest);
    return how;
  }

  /**
   * Places bytes made here (generated metadata: a tree's .treeinfo) at `dest` as a store object,
   * hardlinked, dated `mtime` (s; bytes that carry their date are dated alike wherever linked):
   * the same bytes made by many composes are one inode, and no file is written and fsync'd per
   * compose. Kept in this host's store only: any runner makes them alike, so a shared store does
   * not get them.
   */
  async placeBytes(bytes: Buffer, dest: string, mtime: number): Promise<void> {
    const obj = await this.putBytes(bytes, { what: dest });
    await this.materialize(obj.sha256, dest);
    await fsp.utimes(dest, mtime, mtime);
  }

  /** Records a named key → object (e.g. a DVD by the digest of its inputs). */
  async setKey(key: string, obj: StoredObject, metadata: Record<string, unknown> = {}): Promise<void> {
    await entryIndex().insert(this.dir, key, integrityOf(obj.sha256), { size: obj.size, metadata: { ...metadata, sha256: obj.sha256 } });
  }

  /** The object a key names, if the key exists and its bytes are still in the store. */
  async getKey(key: string): Promise<(StoredObject & { metadata: Record<string, unknown> }) | undefined> {
    // cacache.get.info without its memoization (nothing here memoizes).
    const info = await entryIndex().find(this.dir, key);
    if (!info) return undefined;
    const metadata = (info.metadata ?? {}) as Record<string, unknown>;
    const sha256 = String(metadata.sha256 ?? '');
    if (!HEX64.test(sha256) || !(await this.has(sha256))) return undefined;
    return { sha256, size: info.size ?? 0, metadata };
  }

  /** cacache's own check of the content files against their names. */
  async verify(): Promise<{ verifiedContent: number; badContentCount: number }> {
    const stats = await cacache().verify(this.dir);
    return { verifiedContent: stats.verifiedContent, badContentCount: stats.badContentCount };
  }
}

