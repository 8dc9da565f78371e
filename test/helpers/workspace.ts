// End-to-end tests run real `nx` in a temporary copy of this workspace (research/nx-notes.md
// §7.2): the files Nx needs are copied, node_modules is symlinked, and git is initialised so
// `nx affected` works.
import { cpSync, mkdtempSync, rmSync, symlinkSync, readFileSync, existsSync, readdirSync, renameSync, mkdirSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { acquireLockWaiting, isAlive } from '@rocky/exec';
import { removeSharedWorkspaces, sharedWorkspacePath } from './shared-names';

export const repoRoot = resolve(__dirname, '../..');
const COPY = ['nx.json', '.env', 'package.json', 'package-lock.json', 'tsconfig.base.json', 'tsconfig.json', '.gitignore', 'tools', 'libs', 'apps', 'releases', 'sites', 'README.md'];

/** Nx's record of its last run (.nx/cache/run.json). */
export interface RunJson {
  tasks: { taskId: string; target: string; projectName: string; hash: string; cacheStatus: string; status: number; startTime: string; endTime: string }[];
}

export interface TempWorkspace {
  dir: string;
  /** Runs nx; throws with its output on a non-zero exit. */
  nx(args: string[], env?: NodeJS.ProcessEnv): string;
  /** Runs nx and returns exit code, output and nx's pid, whatever the code. */
  nxResult(args: string[], env?: NodeJS.ProcessEnv): { code: number; output: string; pid: number };
  git(...args: string[]): string;
  runJson(): RunJson;
  cleanup(): void;
}

/** A fixture upstream at `dst` sharing `src`'s files (hardlinks), except gpg's homes: gpg may rewrite its files in place. */
export function linkFixture(src: string, dst: string): void {
  execFileSync('cp', ['-al', src, dst]);
  for (const home of ['gnupg', 'gnupg-sig']) {
    if (!existsSync(join(src, home))) continue;
    rmSync(join(dst, home), { recursive: true, force: true });
    execFileSync('cp', ['-a', join(src, home), join(dst, home)]);
  }
}

export const nxEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  ...process.env,
  NX_DAEMON: 'false',
  NX_NO_CLOUD: 'true',
  NX_TUI: 'false',
  NX_SKIP_NX_CACHE: undefined,
  CI: 'true',
  FORCE_COLOR: '0',
  ...extra,
});

/** `withTests`: copy the test files too (they are left out so that they never enter a task's hash; the projects' test targets need them). */
export function tempWorkspace(opts: { fixtureFrom?: string; withTests?: boolean } = {}): TempWorkspace {
  const dir = mkdtempSync(join(tmpdir(), 'rocky-ws-'));
  for (const f of COPY) {
    const src = join(repoRoot, f);
    if (!existsSync(src)) continue;
    cpSync(src, join(dir, f), { recursive: true, filter: (p) => !p.includes('/node_modules') && (!!opts.withTests || !/\.test\.ts$/.test(p)) });
  }
  symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'), 'dir');
  // A prebuilt fixture upstream is hardlinked in, so each workspace does not rebuild it.
  if (opts.fixtureFrom && existsSync(opts.fixtureFrom)) {
    execFileSync('mkdir', ['-p', join(dir, '.releng')]);
    linkFixture(opts.fixtureFrom, join(dir, '.releng/upstream'));
  }
  const git = gitIn(dir);
  git('init', '-q', '-b', 'main');
  git('add', '-A');
  git('commit', '-qm', 'base');
  return workspaceAt(dir);
}

const gitIn = (dir: string) => (...args: string[]) => execFileSync('git', args, { cwd: dir, encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' } });

/** The workspace at `dir` (made by tempWorkspace or copied from a shared one). */
function workspaceAt(dir: string): TempWorkspace {
  const nxBin = join(dir, 'node_modules/nx/dist/bin/nx.js');
  const nxResult = (args: string[], env?: NodeJS.ProcessEnv) => {
    const r = spawnSync(process.execPath, [nxBin, ...args], { cwd: dir, env: nxEnv(env), encoding: 'utf8', maxBuffer: 256 << 20 });
    return { code: r.status ?? -1, output: `${r.stdout}\n${r.stderr}`, pid: r.pid ?? -1 };
  };
  return {
    dir,
    nxResult,
    nx(args, env) {
      const r = nxResult(args, env);
      if (r.code !== 0) throw new Error(`nx ${args.join(' ')} exited ${r.code}:\n${r.output.slice(-6000)}`);
      return r.output;
    },
    git: gitIn(dir),
    runJson: () => JSON.parse(readFileSync(join(dir, '.nx/cache/run.json'), 'utf8')) as RunJson,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A private copy of a workspace shared by several test files, and the record of the nx run that built it. */
export interface SharedCopy {
  ws: TempWorkspace;
  /** run.json of the shared workspace's last build run (the copy's own run.json until it runs nx). */
  built: RunJson;
}

/**
 * A copy of a workspace built once per vitest run (its workers are children of the one vitest
 * process) and shared by the test files whose first nx run is the same: `prepare` edits a new
 * workspace on the fixture `fixtureFrom`, `build` runs nx in it. The first file that asks builds it under
 * a lock, the others wait for it; a file run alone builds its own. The shared workspace is named
 * by the run and by everything it is built from (the copied files after `prepare`, the code of
 * `prepare` and `build`), so a changed source or test builds anew.
 *
 * Each file gets a whole copy: the workspace files with .git, dist/ and .nx (its cache and
 * workspace data, so the copy's next `nx run` of the same targets is all cache hits), and
 * `.releng` copied in one `cp -a` (tests change its files in place: the event log, the
 * trees they damage; the compose's and trees' hardlinks to store objects are kept among the copy's
 * own files), except the fixture upstream, hardlinked like every workspace's (linkFixture).
 */
export async function sharedWorkspace(opts: { name: string; fixtureFrom: string; prepare(ws: TempWorkspace): void; build(ws: TempWorkspace): void }): Promise<SharedCopy> {
  const { name, prepare, build } = opts;
  const fresh = tempWorkspace({ fixtureFrom: opts.fixtureFrom });
  let base: string;
  try {
    prepare(fresh);
    base = sharedWorkspacePath(name, process.ppid, workspaceDigest(fresh.dir, `${prepare}\0${build}`));
    const release = await acquireLockWaiting(`${base}.lock`, `shared workspace ${name}`);
    try {
      if (!existsSync(base)) {
        removeSharedWorkspaces((pid) => !isAlive(pid));
        build(fresh);
        renameSync(fresh.dir, base); // whole or not at all
      }
    } finally {
      release();
    }
  } finally {
    fresh.cleanup();
  }
  const dir = mkdtempSync(join(tmpdir(), 'rocky-ws-'));
  const top = readdirSync(base).filter((e) => e !== '.releng');
  execFileSync('cp', ['-a', ...top.map((e) => join(base, e)), dir]);
  mkdirSync(join(dir, '.releng'));
  const releng = readdirSync(join(base, '.releng')).filter((e) => e !== 'upstream');
  if (releng.length) execFileSync('cp', ['-a', ...releng.map((e) => join(base, '.releng', e)), join(dir, '.releng')]);
  linkFixture(join(base, '.releng/upstream'), join(dir, '.releng/upstream'));
  const ws = workspaceAt(dir);
  return { ws, built: ws.runJson() };
}

/** sha256 of every file of a workspace as nx and the stages see it (.git, .releng and node_modules aside), and of `extra`. */
function workspaceDigest(dir: string, extra: string): string {
  const h = createHash('sha256').update(extra);
  const walk = (rel: string) => {
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (['.git', '.releng', 'node_modules'].includes(p)) continue;
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) h.update(`${p}\0`).update(readFileSync(join(dir, p))).update('\0');
    }
  };
  walk('');
  return h.digest('hex').slice(0, 16);
}
