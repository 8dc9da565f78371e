// End-to-end tests run real `nx` in a temporary copy of this workspace (research/nx-notes.md
// §7.2): the files Nx needs are copied, node_modules is symlinked, and git is initialised so
// `nx affected` works.
import { cpSync, mkdtempSync, rmSync, symlinkSync, readFileSync, existsSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const repoRoot = resolve(__dirname, '../..');
const COPY = ['nx.json', '.env', 'package.json', 'package-lock.json', 'tsconfig.base.json', 'tsconfig.json', '.gitignore', 'tools', 'libs', 'apps', 'releases', 'sites', 'README.md'];

export interface TempWorkspace {
  dir: string;
  /** Runs nx; throws with its output on a non-zero exit. */
  nx(args: string[], env?: NodeJS.ProcessEnv): string;
  /** Runs nx and returns exit code, output and nx's pid, whatever the code. */
  nxResult(args: string[], env?: NodeJS.ProcessEnv): { code: number; output: string; pid: number };
  git(...args: string[]): string;
  runJson(): { tasks: { taskId: string; target: string; projectName: string; hash: string; cacheStatus: string; status: number; startTime: string; endTime: string }[] };
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
  const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' } });
  git('init', '-q', '-b', 'main');
  git('add', '-A');
  git('commit', '-qm', 'base');
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
    git,
    runJson: () => JSON.parse(readFileSync(join(dir, '.nx/cache/run.json'), 'utf8')),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
