// dnf as a user of the published trees runs it: local trees by --repofrompath, packages and
// repomd.xml signatures checked (gpgcheck, repo_gpgcheck) with the given key, into a throwaway
// installroot whose rpmdb later commands see (dnf updateinfo lists advisories of what is installed).
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface DnfRoot {
  dir: string;
  /** dnf with `repos` (id → tree path) only; throws with its output unless it exits 0. */
  run(repos: Record<string, string>, args: string[]): string;
  /** The same, returning the result whatever the exit code. */
  spawn(repos: Record<string, string>, args: string[]): SpawnSyncReturns<string>;
  /** Stops the gpg-agents repo_gpgcheck started and removes the root. */
  close(): void;
}

export function dnfRoot(opts: { releasever: number; key: string; arch: string; platform: string }): DnfRoot {
  const dir = mkdtempSync(join(tmpdir(), 'dnf-root-'));
  const spawn = (repos: Record<string, string>, args: string[]) =>
    spawnSync(
      'dnf',
      [
        '-y',
        '-q',
        '--noplugins',
        `--releasever=${opts.releasever}`,
        `--forcearch=${opts.arch}`,
        `--installroot=${join(dir, 'root')}`,
        '--setopt=reposdir=/dev/null',
        `--setopt=cachedir=${join(dir, 'cache')}`,
        '--setopt=skip_if_unavailable=False',
        '--setopt=install_weak_deps=False',
        '--setopt=tsflags=noscripts',
        // The platform pseudo-module the streams require (a host that is not EL has none).
        `--setopt=module_platform_id=${opts.platform}`,
        ...Object.entries(repos).flatMap(([id, path]) => [`--repofrompath=${id},file://${path}`, `--setopt=${id}.gpgcheck=1`, `--setopt=${id}.repo_gpgcheck=1`, `--setopt=${id}.gpgkey=file://${opts.key}`]),
        ...Object.keys(repos).map((id) => `--repo=${id}`),
        ...args,
      ],
      { encoding: 'utf8' },
    );
  return {
    dir,
    spawn,
    run(repos, args) {
      const r = spawn(repos, args);
      if (r.status !== 0) throw new Error(`dnf ${args.join(' ')} exited ${r.status}:\n${r.stdout}${r.stderr}`);
      return r.stdout;
    },
    close() {
      // repo_gpgcheck leaves one gpg-agent per repo, in a `pubring` homedir under the cache.
      const walk = (d: string, depth: number) => {
        if (depth > 4 || !existsSync(d)) return;
        for (const e of readdirSync(d, { withFileTypes: true })) {
          if (!e.isDirectory()) continue;
          if (e.name === 'pubring') spawnSync('gpgconf', ['--homedir', join(d, e.name), '--kill', 'all']);
          else walk(join(d, e.name), depth + 1);
        }
      };
      walk(join(dir, 'cache'), 0);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `dnf updateinfo list` lines as `[advisory id, package NEVRA]`. */
export const advisoryLines = (out: string): [string, string][] =>
  out
    .split('\n')
    .map((l) => l.replace(/^i\s+/, '').trim().split(/\s+/))
    .filter((f) => f.length >= 3 && /^RL[SBE]A-/.test(f[0]))
    .map((f) => [f[0], f[f.length - 1]]);
