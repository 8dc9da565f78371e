// Plumbing of the fault suite: stage child processes with counted kill points, store and tree
// snapshots, checksum and temp-file checks, upstream metadata that is signed garbage, tmpfs mounts.
import { spawn, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { sha256, sha256File, writeFileAtomic } from '@rocky/exec';
import type { StageContext } from '@rocky/stages';
import { detachSign } from '../../apps/upstream-fixture/src/gpg';
import { FixtureLayout } from '../../apps/upstream-fixture/src/paths';
import { repoRoot } from '../helpers/workspace';

/** Small seeded PRNG (mulberry32): a failing kill point can be replayed with FAULT_SEED. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ChildResult {
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Ops the run performed (FAULT_COUNT). */
  ops?: number;
  /** The op it was killed at, and what that op was. */
  killedAt?: string;
}

/**
 * Runs `stage` in test/faults/run-stage.ts. With `faultAt`, the child freezes at that op and this
 * SIGKILLs its whole process group (it is spawned detached: its tools die with it, as when a
 * runner is killed). Async spawn: the fixture server lives in this process and must keep serving.
 */
export function runStageChild(stage: string, ctx: StageContext, opts: { faultAt?: number; count?: boolean; tmpdir?: string } = {}): Promise<ChildResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, SWC_NODE_PROJECT: join(repoRoot, 'tsconfig.base.json') };
  // A killed run cannot remove its own temp dirs (gpgv homes, rsync file lists): keep them where the test cleans up.
  if (opts.tmpdir) {
    mkdirSync(opts.tmpdir, { recursive: true });
    env.TMPDIR = opts.tmpdir;
  }
  if (opts.faultAt) env.FAULT_AT = String(opts.faultAt);
  if (opts.count) env.FAULT_COUNT = '1';
  const child = spawn(process.execPath, ['-r', '@swc-node/register', join(repoRoot, 'test/faults/run-stage.ts'), stage, JSON.stringify(ctx)], {
    cwd: repoRoot,
    env,
    detached: !!opts.faultAt,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let killedAt: string | undefined;
  child.stderr!.on('data', (d) => (stderr += d));
  child.stdout!.on('data', (d) => {
    stdout += d;
    const m = /^fault-point (.*)$/m.exec(stdout);
    if (m && !killedAt) {
      killedAt = m[1];
      process.kill(-child.pid!, 'SIGKILL');
    }
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      const ops = /^fault-ops (\d+)$/m.exec(stdout);
      resolve({ pid: child.pid!, code, signal, stdout, stderr, killedAt, ops: ops ? Number(ops[1]) : undefined });
    });
  });
}

/** Every object in a store (cacache content-v2): sha256 → inode, mtime. */
export function storeObjects(storeDir: string): Map<string, { ino: number; mtimeMs: number; file: string }> {
  const out = new Map<string, { ino: number; mtimeMs: number; file: string }>();
  const base = join(storeDir, 'content-v2', 'sha256');
  if (!existsSync(base)) return out;
  for (const a of readdirSync(base))
    for (const b of readdirSync(join(base, a)))
      for (const rest of readdirSync(join(base, a, b))) {
        const file = join(base, a, b, rest);
        const st = lstatSync(file);
        out.set(a + b + rest, { ino: st.ino, mtimeMs: st.mtimeMs, file });
      }
  return out;
}

/** Store objects whose bytes do not hash to their name (a partial or wrong object). */
export async function badStoreObjects(storeDir: string): Promise<string[]> {
  const bad: string[] = [];
  for (const [sha, o] of storeObjects(storeDir)) if ((await sha256File(o.file)) !== sha) bad.push(o.file);
  return bad;
}

/** Files under `dir` (relative path → inode), optionally skipping paths matched by `skip`. */
export function inodes(dir: string, skip?: RegExp): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const rel = relative(dir, p);
      if (skip?.test(rel)) continue;
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.set(rel, lstatSync(p).ino);
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

/** Temp names our writers (`.<name>.tmp@<host>.<pid>-<n>`) or rsync (`.~tmp~`, `.<name>.XXXXXX`) leave when killed. */
const TEMP = /^\..+\.tmp@|^\.~tmp~$|^\.[^/]+\.[A-Za-z0-9]{6}$/;
export function tempFiles(dirs: string[]): string[] {
  const hits: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      // dotfiles that are part of a compose, not temp names
      if (TEMP.test(e.name) && !['.treeinfo', '.discinfo'].includes(e.name)) hits.push(p);
      if (e.isDirectory()) walk(p);
    }
  };
  for (const d of dirs) if (existsSync(d)) walk(d);
  return hits;
}

/** Files whose content differs from the sha256 a manifest gives (or that are missing). */
export async function mismatches(entries: { file: string; sha256: string }[]): Promise<string[]> {
  const bad: string[] = [];
  for (const e of entries) {
    if (!existsSync(e.file)) bad.push(`${e.file}: missing`);
    else if ((await sha256File(e.file)) !== e.sha256) bad.push(`${e.file}: sha256 differs from the manifest`);
  }
  return bad;
}

/** `rsync -n --itemize-changes` from `src` to `dest`: what a copy would still change (empty = equal). */
export function rsyncDiff(src: string, dest: string, excludes: string[] = []): string[] {
  const r = spawnSync('rsync', ['-n', '-rlptD', '-H', '--itemize-changes', ...excludes.map((x) => `--exclude=${x}`), `${src}/`, `${dest}/`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`rsync -n failed: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean);
}

// --- upstream metadata that is garbage but correctly signed ---------------------------------

/**
 * Replaces a fixture tree's repomd.xml by `text`, signed with the fixture key (a broken build
 * system signs what it produces). New files are renamed over the old names: fixture files are
 * hardlinks shared with other copies. Returns a function that puts the original back.
 */
export async function signedRepomd(fixtureRoot: string, tree: string, text: string | ((old: string) => string)): Promise<() => void> {
  const file = join(tree, 'repodata', 'repomd.xml');
  const [old, oldAsc] = [readFileSync(file), readFileSync(`${file}.asc`)];
  writeFileAtomic(file, typeof text === 'string' ? text : text(old.toString('utf8')));
  await detachSign(new FixtureLayout(fixtureRoot).key('main'), file);
  return () => {
    writeFileAtomic(file, old);
    writeFileAtomic(`${file}.asc`, oldAsc);
  };
}

/** A primary.xml.gz of garbage that repomd.xml (re-signed) names with its right checksums. */
export async function garbagePrimary(fixtureRoot: string, tree: string): Promise<() => void> {
  const xml = Buffer.from('<?xml version="1.0"?>\n<metadata packages="1"><package type="rpm"><name>bash</name>\0\0 not xml at all');
  const gz = gzipSync(xml);
  const href = `repodata/${sha256(gz)}-primary.xml.gz`;
  writeFileAtomic(join(tree, href), gz);
  const restore = await signedRepomd(fixtureRoot, tree, (old) => {
    // Rewrite only the primary <data> record: location, checksums and sizes.
    return old.replace(/<data type="primary">[\s\S]*?<\/data>/, (rec) =>
      rec
        .replace(/<checksum type="sha256">[0-9a-f]+<\/checksum>/, `<checksum type="sha256">${sha256(gz)}</checksum>`)
        .replace(/<open-checksum type="sha256">[0-9a-f]+<\/open-checksum>/, `<open-checksum type="sha256">${sha256(xml)}</open-checksum>`)
        .replace(/<location href="[^"]+"\/>/, `<location href="${href}"/>`)
        .replace(/<size>\d+<\/size>/, `<size>${gz.length}</size>`)
        .replace(/<open-size>\d+<\/open-size>/, `<open-size>${xml.length}</open-size>`),
    );
  });
  return () => {
    restore();
    rmSync(join(tree, href), { force: true });
  };
}

// --- tmpfs --------------------------------------------------------------------------------------

/** Whether this process may mount a tmpfs (root in a sandbox may still lack CAP_SYS_ADMIN). */
export function canMountTmpfs(): { ok: boolean; why: string } {
  const dir = mkdtempSync(join(tmpdir(), 'rocky-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'pipe' });
    execFileSync('umount', [dir], { stdio: 'pipe' });
    return { ok: true, why: '' };
  } catch (e) {
    return { ok: false, why: String((e as { stderr?: Buffer }).stderr ?? (e as Error).message).trim() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const mountTmpfs = (dir: string, size: string) => execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
/** Resizes a mounted tmpfs in place (its files stay). */
export const resizeTmpfs = (dir: string, size: string) => execFileSync('mount', ['-o', `remount,size=${size}`, dir], { stdio: 'pipe' });
/** KiB used on the filesystem of `dir`. */
export const usedKiB = (dir: string) => Number(execFileSync('df', ['--output=used', '-k', dir], { encoding: 'utf8' }).trim().split('\n')[1]);
export const isMounted = (dir: string) => readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === dir);
