// dnf's command lines, built in one place. Every call reads only the repos it is given
// (--repofrompath, no system repo), with a private configuration whose cache, logs and state
// stay in a work dir: Debian's /etc/dnf/dnf.conf sets skip_if_unavailable=True, which would
// make a missing repo pass, and dnf needs --releasever on a host that is not the release.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** A repo tree on this machine. */
export interface LocalRepo {
  id: string;
  path: string;
}
/** A repo by local path or by URL (http://, file://). */
export type DnfRepo = LocalRepo | { id: string; url: string };

export interface DnfOptions {
  /** A dnf.conf (dnfConfig writes one). */
  config: string;
  releasever: number | string;
  repos: DnfRepo[];
  forcearch?: string;
  quiet?: boolean;
  assumeyes?: boolean;
  nogpgcheck?: boolean;
  /** Further `--setopt=key=value`, in order. */
  setopt?: [string, string][];
  /**
   * The only dnf plugins loaded (`--disableplugin=*`, then `--enableplugin=` each). Unset: every
   * plugin the host has, as a user's `dnf` would.
   */
  plugins?: string[];
}

/** Writes a dnf.conf whose cache, logs and state stay inside `workDir`. */
export function dnfConfig(workDir: string): string {
  mkdirSync(join(workDir, 'repos.d'), { recursive: true });
  const conf = join(workDir, 'dnf.conf');
  writeFileSync(
    conf,
    [
      '[main]',
      `reposdir=${join(workDir, 'repos.d')}`,
      `cachedir=${join(workDir, 'cache')}`,
      `logdir=${join(workDir, 'log')}`,
      `persistdir=${join(workDir, 'persist')}`,
      'skip_if_unavailable=False',
      'gpgcheck=False',
      'install_weak_deps=False',
      'metadata_expire=0',
      '',
    ].join('\n'),
  );
  return conf;
}

const repoUrl = (r: DnfRepo) => ('url' in r ? r.url : pathToFileURL(r.path).href);

export function dnfRepoArgs(repos: DnfRepo[]): string[] {
  return [...repos.map((r) => `--repofrompath=${r.id},${repoUrl(r)}`), ...repos.map((r) => `--repo=${r.id}`)];
}

/** `dnf <global options> <command...>`; reposdir and skip_if_unavailable are pinned whatever the config says. */
export function dnfArgv(o: DnfOptions, command: string[]): string[] {
  return [
    'dnf',
    ...(o.quiet ? ['-q'] : []),
    ...(o.assumeyes ? ['-y'] : []),
    `--config=${o.config}`,
    ...(o.forcearch ? [`--forcearch=${o.forcearch}`] : []),
    `--releasever=${o.releasever}`,
    '--setopt=reposdir=/dev/null',
    '--setopt=skip_if_unavailable=False',
    ...(o.setopt ?? []).map(([k, v]) => `--setopt=${k}=${v}`),
    ...(o.nogpgcheck ? ['--nogpgcheck'] : []),
    ...pluginArgs(o.plugins),
    ...dnfRepoArgs(o.repos),
    ...command,
  ];
}

/**
 * Plugins limited to those named. dnf imports and runs every plugin the host has on each call
 * (22 with Debian 12's dnf-plugins-core, one of them regenerating a completion cache): about 40%
 * of a repoclosure forked from the dnf fork server at fixture x20 (0.165 s down to 0.095 s). A
 * host's own plugin configuration (a versionlock list) must not reach a check of compose
 * metadata either. dnf 4.2 to 4.14 (Rocky 8 and 9) apply `--enableplugin` to what
 * `--disableplugin` matched.
 */
export function pluginArgs(plugins: string[] | undefined): string[] {
  if (!plugins) return [];
  return ['--disableplugin=*', ...plugins.map((p) => `--enableplugin=${p}`)];
}

/** Rocky's repoclosure arch flags (empanadas repoclosure_map.arches). */
export function closureArchArgs(arch: string): string[] {
  const compat = arch === 'x86_64' ? ['x86_64', 'athlon', 'i686', 'i586', 'i486', 'i386'] : [arch];
  return [`--forcearch=${arch}`, ...[...compat, 'noarch'].map((a) => `--arch=${a}`)];
}

/** `dnf repoclosure` of `check`, its dependencies resolved against `check` and `deps`. */
export function repoclosureArgv(o: { config: string; releasever: number | string; check: LocalRepo; deps: LocalRepo[]; arch: string }): string[] {
  return dnfArgv({ config: o.config, releasever: o.releasever, repos: [o.check, ...o.deps], quiet: true, plugins: ['repoclosure'] }, ['repoclosure', `--check=${o.check.id}`, ...closureArchArgs(o.arch)]);
}

/** `dnf reposync` of every repo into `<dest>/<repo id>/`, packages of `arches` only. */
export function reposyncArgv(o: Omit<DnfOptions, 'assumeyes'> & { dest: string; arches: string[]; downloadMetadata?: boolean }): string[] {
  const { dest, arches, downloadMetadata, ...base } = o;
  return dnfArgv({ ...base, assumeyes: true }, ['reposync', ...(downloadMetadata ? ['--download-metadata'] : []), ...arches.map((a) => `--arch=${a}`), '-p', dest]);
}

