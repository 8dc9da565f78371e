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

/** Below this many bytes in all (and few files), starting workers (about 15 ms) costs more than it saves. */
const SMALL = 64 << 20;
const FEW = 64;

export interface HashedFile {
  digest: string;
  /** Bytes hashed: the file's size as read. */
  size: number;
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
  // Batches small enough that the workers finish together, at most 64 files a message.
  const workers = Math.max(1, Math.min(parallelism, files.length));
  const batch = Math.max(1, Math.min(64, Math.floor(files.length / (workers * 8))));
  let next = 0;
  const worker = async () => {
    const w = new Worker(WORKER, { eval: true, execArgv: [] }); // not the parent's loaders (-r @swc-node/register)
    try {
      while (next < files.length) {
        const from = next;
        next = Math.min(files.length, next + batch);
        const r = await new Promise<{ out: HashedFile[]; error?: string }>((resolve, reject) => {
          w.once('message', resolve);
          w.once('error', reject);
          w.postMessage({ files: files.slice(from, next), algo });
        });
        w.removeAllListeners('error');
        r.out.forEach((h, k) => {
          out[from + k] = h;
          onHashed?.(from + k, h);
        });
        if (r.error !== undefined) {
          next = files.length; // the others stop after their current batch
          throw new Error(`${files[from + r.out.length]}: ${r.error}`);
        }
      }
    } finally {
      await w.terminate();
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
  return out;
}
