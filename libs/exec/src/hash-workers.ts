// Hashing many large files on several cores. Node's hashes run on the calling thread, so files
// "hashed in parallel" on the main thread share one core; worker threads each hash a file.
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
parentPort.on('message', ({ file, algo }) => {
  try {
    const h = createHash(algo);
    const fd = openSync(file, 'r');
    try {
      for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
    } finally {
      closeSync(fd);
    }
    parentPort.postMessage({ digest: h.digest('hex') });
  } catch (e) {
    parentPort.postMessage({ error: e.message });
  }
});
`;

/** Below this many bytes in all, starting workers (about 15 ms) costs more than it saves. */
const SMALL = 64 << 20;

/** Hex digests of `files` (in their order), hashed by up to `parallelism` worker threads. */
export async function hashFiles(files: readonly string[], algo = 'sha256', parallelism = availableParallelism()): Promise<string[]> {
  const out = new Array<string>(files.length);
  if (!files.length) return out;
  const total = files.reduce((n, f) => n + (statSync(f, { throwIfNoEntry: false })?.size ?? 0), 0);
  if (total < SMALL || parallelism < 2) {
    for (const [i, f] of files.entries()) out[i] = await hashFile(f, algo).catch((e: Error) => Promise.reject(new Error(`${f}: ${e.message}`)));
    return out;
  }
  let next = 0;
  const worker = async () => {
    const w = new Worker(WORKER, { eval: true, execArgv: [] }); // not the parent's loaders (-r @swc-node/register)
    try {
      while (next < files.length) {
        const i = next++;
        const r = await new Promise<{ digest?: string; error?: string }>((resolve, reject) => {
          w.once('message', resolve);
          w.once('error', reject);
          w.postMessage({ file: files[i], algo });
        });
        w.removeAllListeners('error');
        if (r.error !== undefined) {
          next = files.length; // the others stop after their current file
          throw new Error(`${files[i]}: ${r.error}`);
        }
        out[i] = r.digest!;
      }
    } finally {
      await w.terminate();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(parallelism, files.length)) }, worker));
  return out;
}
