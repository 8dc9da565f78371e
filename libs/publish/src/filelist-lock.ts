// Waiting exclusive lock for list generation. acquireLock fails at once when a live process
// holds the lock, and treats a lock holding our own pid as stale; list generation must instead
// queue behind the holder (like the flock in quick-fedora-mirror's wrapper), whether the holder
// is another process or another call in this one.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { acquireLock } from '@rocky/exec';

const chains = new Map<string, Promise<void>>();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function withWaitingLock<T>(file: string, what: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const key = resolve(file);
  // In-process queue first: acquireLock cannot tell two callers in one pid apart.
  const prev = chains.get(key) ?? Promise.resolve();
  let done!: () => void;
  const mine = new Promise<void>((r) => (done = r));
  const tail = prev.then(() => mine);
  chains.set(key, tail);
  try {
    await prev;
    const release = await acquireWaiting(key, what, timeoutMs);
    try {
      return await fn();
    } finally {
      release();
    }
  } finally {
    done();
    if (chains.get(key) === tail) chains.delete(key);
  }
}

async function acquireWaiting(file: string, what: string, timeoutMs: number): Promise<() => void> {
  const deadline = Date.now() + timeoutMs;
  let delay = 20;
  for (;;) {
    try {
      return acquireLock(file, what);
    } catch (e) {
      // Contention shows as a live holder's lock file, or as it vanishing mid-check (ENOENT);
      // anything else (permissions, a bad path) is a real error.
      const contended = existsSync(file) || (e as NodeJS.ErrnoException).code === 'ENOENT';
      if (!contended) throw e;
      if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for the lock: ${(e as Error).message}`);
      await sleep(delay);
      delay = Math.min(delay * 2, 500);
    }
  }
}
