// File-tree helpers for boot trees: walking, hardlink copies and directory moves. Trees may hold
// files hardlinked from the content-addressed store, so nothing here writes into an existing file.
import { copyFileSync, linkSync, lstatSync, mkdirSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { byteOrder } from '@rocky/compose';
import { hashFiles, tempName } from '@rocky/exec';
import type { BuiltFile } from './types';

/** fs-extra, loaded for a move across file systems only: ~25 ms of a task's time. */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const fsExtra = (): typeof import('fs-extra') => require('fs-extra');

/** Regular files under `dir`, as sorted `/`-separated paths relative to it (symlinks are not followed). */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  walk('');
  return out.sort(byteOrder);
}

/** Sum of the sizes of the regular files under `dir` (to choose a squashfs compressor). */
export function treeBytes(dir: string): number {
  let total = 0;
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) total += lstatSync(p).size;
    }
  };
  walk(dir);
  return total;
}

/** Hardlinks `src` to `dst`, copying when they are on different file systems. */
export function linkOrCopy(src: string, dst: string): void {
  mkdirSync(dirname(dst), { recursive: true });
  try {
    linkSync(src, dst);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK') throw e;
    const tmp = tempName(dst);
    copyFileSync(src, tmp);
    renameSync(tmp, dst);
  }
}

/** A copy of the tree `src` at `dst` made of hardlinks (copies across file systems); symlinks are kept as symlinks. */
export function linkTree(src: string, dst: string): void {
  mkdirSync(dst, { recursive: true });
  for (const e of readdirSync(src, { withFileTypes: true })) {
    const s = join(src, e.name);
    const d = join(dst, e.name);
    if (e.isDirectory()) linkTree(s, d);
    else if (e.isSymbolicLink()) symlinkSync(readlinkSync(s), d);
    else if (e.isFile()) linkOrCopy(s, d);
  }
}

/** Moves a directory; across file systems it is copied (timestamps and symlinks as they are), then the source removed. `dst` must not exist. */
export function moveDir(src: string, dst: string): void {
  // A rename on one file system (nearly always); fs-extra (loaded then) copies across them, and refuses an existing `dst`.
  if (!existsSync(dst)) {
    mkdirSync(dirname(dst), { recursive: true });
    try {
      return renameSync(src, dst);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    }
  }
  fsExtra().moveSync(src, dst);
}

/**
 * Puts the finished directory `ready` at `final`, replacing what was there. Readers see the old
 * tree or the new one under `final`, never a half-written one.
 */
export function replaceDir(ready: string, final: string): void {
  if (!existsSync(final)) {
    renameSync(ready, final);
    return;
  }
  const old = tempName(final);
  renameSync(final, old);
  renameSync(ready, final);
  rmSync(old, { recursive: true, force: true });
}

/** BuiltFile records for every file of a tree, paths relative to it; `known` hashes are reused. */
export async function describeTree(dir: string, known: Map<string, string> = new Map()): Promise<BuiltFile[]> {
  const files = listFiles(dir);
  const unknown = files.filter((rel) => !known.has(rel));
  const sums = new Map(known);
  (await hashFiles(unknown.map((rel) => join(dir, rel)))).forEach((sum, i) => sums.set(unknown[i], sum));
  return files.map((rel) => ({ path: rel, sha256: sums.get(rel)!, size: lstatSync(join(dir, rel)).size }));
}

/**
 * Promise.all that waits for every promise before rejecting, so no tool started for one of
 * them is still running (or reading a file about to be removed) when the caller cleans up.
 */
export async function settleAll<T extends readonly unknown[]>(ps: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const rs = await Promise.allSettled(ps as readonly Promise<unknown>[]);
  const bad = rs.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (bad) throw bad.reason;
  return rs.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}
