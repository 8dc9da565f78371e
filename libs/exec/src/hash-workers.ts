// Hashing many files on several cores. Node's hashes run on the calling thread, so files
// "hashed in parallel" on the main thread share one core; worker threads each hash files, read
// with synchronous calls (no event-loop round trip per read), and many small files go to a worker
// in one message (a message per 16 KiB package cost more than its hashing).
import { statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { hashFile } from './fs';

// Plain JS (eval'd): workers do not go through the TypeScript loader.
const WORKER = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { openSync, readSync, closeSync } = require('node:fs');
const buf = Buffer.allocUnsafe(4 << 20);
parentPort.on('message', ({ files, algo }) => {
  const out = [];
  for (const file of files) {
    try {
      const h = createHash(algo);
      const fd = openSync(file, 'r');
      let size = 0;
      try {
        for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; size += n) h.update(buf.subarray(0, n));
      } finally {
        closeSync(fd);
      }
      out.push({ digest: h.digest('hex'), size });
    } catch (e) {
      return parentPort.postMessage({ out, error: e.message });
    }
  }
  parentPort.postMessage({ out });
});
`;

/** Below this many bytes in all (and few files), hashing on the main thread costs less than a worker's round trips. */
const SMALL = 64 << 20;
const FEW = 64;

export interface HashedFile {
  digest: string;
  /** Bytes hashed: the file's size as read. */
  size: number;
}

/** One caller's files: cut into batches that idle workers take in order, at most `limit` at once. */
interface Call {
  files: readonly string[];
  algo: string;
  batch: number;
  next: number;
  inFlight: number;
  limit: number;
  done: number;
  failed?: Error;
  onBatch(from: number, out: HashedFile[]): void;
  settle(e?: Error): void;
}

/**
 * The process's hash workers, kept between calls: starting a worker thread costs ~50 ms (more
 * on a busy machine), which every call paid again, and a stage hashes several times. An idle
 * worker is unref'd, so it never keeps the process alive.
 */
const pool: { w: Worker; busy: boolean }[] = [];
const calls: Call[] = [];

function grow(n: number): void {
  while (pool.length < n) {
    const slot = { w: new Worker(WORKER, { eval: true, execArgv: [] }), busy: false }; // not the parent's loaders (-r @swc-node/register)
    slot.w.unref();
    // A worker that dies (out of memory) fails the batch it had and leaves the pool.
    slot.w.on('error', () => {
      const i = pool.indexOf(slot);
      if (i >= 0) pool.splice(i, 1);
    });
    pool.push(slot);
  }
}

/** Starts the hash workers ahead of the first call (a stage that will hash soon, meanwhile busy with I/O). */
export function startHashWorkers(parallelism = availableParallelism()): void {
  if (parallelism >= 2) grow(parallelism);
}

function dispatch(): void {
  for (const slot of pool) {
    if (slot.busy) continue;
    const call = calls.find((c) => c.next < c.files.length && c.inFlight < c.limit && !c.failed);
    if (!call) return;
    const from = call.next;
    call.next = Math.min(call.files.length, from + call.batch);
    call.inFlight++;
    slot.busy = true;
    slot.w.ref();
    const finish = (r: { out: HashedFile[]; error?: string }) => {
      slot.w.off('message', finish);
      slot.w.off('error', died);
      slot.busy = false;
      slot.w.unref();
      call.inFlight--;
      call.done += r.out.length;
      try {
        call.onBatch(from, r.out);
      } catch (e) {
        call.failed ??= e as Error; // the caller's callback: its error is the call's
      }
      if (r.error !== undefined) call.failed ??= new Error(`${call.files[from + r.out.length]}: ${r.error}`);
      if (call.failed ? call.inFlight === 0 : call.done === call.files.length) {
        calls.splice(calls.indexOf(call), 1);
        call.settle(call.failed);
      }
      dispatch();
    };
    const died = (e: Error) => finish({ out: [], error: `hash worker failed: ${e.message}` });
    slot.w.on('message', finish);
    slot.w.once('error', died);
    slot.w.postMessage({ files: call.files.slice(from, call.next), algo: call.algo });
  }
}

/** Hex digests of `files` (in their order), hashed by up to `parallelism` worker threads. */
export async function hashFiles(files: readonly string[], algo = 'sha256', parallelism = availableParallelism()): Promise<string[]> {
  return (await hashFilesSized(files, algo, parallelism)).map((h) => h.digest);
}

/**
 * Digest and size of each of `files` (in their order): one read gives both, so the caller need
 * not stat them. `onHashed` is told each file's result as soon as it is known (a caller may act on
 * the first files while the others are read).
 */
export async function hashFilesSized(files: readonly string[], algo = 'sha256', parallelism = availableParallelism(), onHashed?: (i: number, h: HashedFile) => void): Promise<HashedFile[]> {
  const out = new Array<HashedFile>(files.length);
  if (!files.length) return out;
  const small = files.length < FEW && files.reduce((n, f) => n + (statSync(f, { throwIfNoEntry: false })?.size ?? 0), 0) < SMALL;
  if (small || parallelism < 2) {
    for (const [i, f] of files.entries()) {
      let size = 0;
      out[i] = { digest: await hashFile(f, algo, (n) => (size += n)).catch((e: Error) => Promise.reject(new Error(`${f}: ${e.message}`))), size };
      onHashed?.(i, out[i]);
    }
    return out;
  }
  // Batches small enough that the workers finish together, at most 64 files a message; after a
  // failure the others stop after their current batch.
  const limit = Math.min(parallelism, files.length);
  grow(limit);
  await new Promise<void>((resolve, reject) => {
    calls.push({
      files,
      algo,
      batch: Math.max(1, Math.min(64, Math.floor(files.length / (limit * 8)))),
      next: 0,
      inFlight: 0,
      limit,
      done: 0,
      onBatch: (from, hashed) =>
        hashed.forEach((h, k) => {
          out[from + k] = h;
          onHashed?.(from + k, h);
        }),
      settle: (e) => (e ? reject(e) : resolve()),
    });
    dispatch();
  });
  return out;
}
