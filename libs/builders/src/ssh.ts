// iso-<arch> on a native builder reached over SSH (ppc64le and s390x, where Nx cannot run):
// lorax runs on the remote host in a work dir of its own, the tree comes back as a tar stream
// on ssh's stdout, and it is verified here exactly like a local lorax tree.
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join, posix } from 'node:path';
import { finished } from 'node:stream/promises';
import { revision, type Arch } from '@rocky/config';
import { bytes as fmtBytes, preflight, run, runPipe, ToolError } from '@rocky/exec';
import { loraxArgv, type BootTreeResult } from '@rocky/iso';
import { verifyTree } from './collect';
import { remoteSh } from './shell';
import { checkExtracted, extractTar } from './tar';
import { RemoteBuildError, tail, type ProbeResult, type RemoteBuildInput, type SshBuilder } from './types';

export interface SshOptions {
  /**
   * known_hosts file holding the builder's host key. Host keys are always checked
   * (StrictHostKeyChecking=yes); without this file, the user's own known_hosts is used.
   */
  knownHosts?: string;
  /** ssh_config file instead of ~/.ssh/config (`-F`; `/dev/null` for none). */
  configFile?: string;
  /** Seconds to wait for the TCP connection and the SSH handshake (default 15). */
  connectTimeoutSec?: number;
  /** How lorax is started on the builder (default `['lorax']`; e.g. `['sudo', '-n', 'lorax']`). */
  loraxCommand?: string[];
  /** Environment for the remote lorax run (PATH, TMPDIR...), applied with env(1). */
  remoteEnv?: Record<string, string>;
  /** Give up on lorax, and separately on the transfer, after this long (default 4 h each). */
  timeoutMs?: number;
  /** Log "still running" this often while lorax runs, so CI does not think the job hung (default 5 min). */
  heartbeatMs?: number;
}

const HOURS = 3600_000;

/** `user@host:port` for messages. */
/** What ssh needs to reach a host: a builder, or any other host of the site (pungi's compose host). */
export type SshHost = SshBuilder | Pick<SshBuilder, 'host' | 'user' | 'port' | 'identityFile'>;

export const sshTarget = (b: SshHost) => `${b.user ? `${b.user}@` : ''}${b.host}${b.port ? `:${b.port}` : ''}`;

/** The local ssh argv up to and including the host; the remote command line is appended. */
export function sshArgv(b: SshHost, o: Pick<SshOptions, 'knownHosts' | 'configFile' | 'connectTimeoutSec'> = {}): string[] {
  // A host that starts with '-' would be read as an option.
  if (!b.host || b.host.startsWith('-') || /\s/.test(b.host)) throw new Error(`invalid ssh builder host ${JSON.stringify(b.host)}`);
  const opt = (kv: string) => ['-o', kv];
  return [
    'ssh',
    '-T',
    ...(o.configFile ? ['-F', o.configFile] : []),
    ...opt('BatchMode=yes'),
    ...opt(`ConnectTimeout=${o.connectTimeoutSec ?? 15}`),
    ...opt('StrictHostKeyChecking=yes'),
    ...(o.knownHosts ? [...opt(`UserKnownHostsFile=${o.knownHosts}`), ...opt('GlobalKnownHostsFile=/dev/null')] : []),
    // lorax prints nothing for minutes at a time; keepalives tell a quiet link from a dead one.
    ...opt('ServerAliveInterval=30'),
    ...opt('ServerAliveCountMax=6'),
    ...opt('LogLevel=ERROR'),
    ...(b.port ? ['-p', String(b.port)] : []),
    ...(b.identityFile ? ['-i', b.identityFile, ...opt('IdentitiesOnly=yes')] : []),
    ...(b.user ? ['-l', b.user] : []),
    '--',
    b.host,
  ];
}

/** Runs lorax in the work dir ($1) and reports its status on stderr, so it is not confused with ssh's own 255. */
const LORAX_SCRIPT = 'cd "$1" || exit 97; shift; "$@"; rc=$?; echo "releng: lorax exit status $rc" >&2; exit $rc';
const MARKER = /^releng: lorax exit status (\d+)$/m;

/**
 * Builds the boot tree of `input.arch` on an SSH builder and collects it into `input.outDir`
 * (verified by collectLoraxTree; with `builder.mustBoot`, the boot ISO must also be bootable).
 * The remote work dir is removed whatever happens.
 */
export async function buildViaSsh(builder: SshBuilder, input: RemoteBuildInput, opts: SshOptions = {}): Promise<BootTreeResult> {
  preflight(['ssh', 'tar']);
  const { release, arch } = input;
  const log = input.log ?? (() => {});
  const where = `iso-${arch} on ${sshTarget(builder)}`;
  const workdir = builder.workdir.replace(/\/+$/, '');
  if (!posix.isAbsolute(builder.workdir) || !workdir) throw new Error(`${where}: the builder's workdir must be an absolute path below / (got ${builder.workdir})`);
  for (const k of Object.keys(opts.remoteEnv ?? {})) if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`${where}: invalid remote environment variable name ${k}`);
  const ssh = sshArgv(builder, opts);
  const timeoutMs = opts.timeoutMs ?? 4 * HOURS;
  mkdirSync(input.workDir, { recursive: true });
  const sessionLog = join(input.workDir, `ssh-${arch}.log`);

  log(`connecting to ${sshTarget(builder)}`);
  let remoteDir: string;
  try {
    const r = await run([...ssh, remoteSh('mkdir -p -- "$1" && mktemp -d "$1/iso-$2.XXXXXXXXXX"', [workdir, `${revision(release)}-${arch}`])], {
      timeoutMs: ((opts.connectTimeoutSec ?? 15) + 60) * 1000,
      logFile: sessionLog,
    });
    remoteDir = r.stdout.trim();
  } catch (e) {
    const sshFailed = !(e instanceof ToolError) || e.result.code === 255 || e.result.timedOut;
    throw new RemoteBuildError('connect', `${where}: ${sshFailed ? 'cannot connect' : `cannot create a work dir under ${workdir}`}: ${detail(e)}`, { cause: e });
  }
  // rm -rf runs on this path later: it must be exactly what mktemp made under the workdir.
  if (!remoteDir.startsWith(`${workdir}/iso-`) || /[\n/]|\.\./.test(remoteDir.slice(workdir.length + 1))) {
    throw new RemoteBuildError('connect', `${where}: mktemp printed an unexpected work dir ${JSON.stringify(remoteDir)}`);
  }
  log(`remote work dir ${remoteDir}`);

  try {
    const remoteOut = `${remoteDir}/lorax`;
    const remoteLog = `${remoteDir}/lorax-${arch}.log`;
    const argv = loraxArgv(release, arch, input.sources, remoteOut, remoteLog);
    const cmd = [...(opts.loraxCommand ?? ['lorax']), ...(argv[0] === 'lorax' ? argv.slice(1) : argv)];
    const env = Object.entries(opts.remoteEnv ?? {}).map(([k, v]) => `${k}=${v}`);
    log(`running lorax (${input.sources.length} source${input.sources.length === 1 ? '' : 's'})`);
    const started = Date.now();
    const beat = setInterval(() => log(`lorax still running (${Math.round((Date.now() - started) / 60_000)} min)`), opts.heartbeatMs ?? 300_000);
    try {
      await run([...ssh, remoteSh(LORAX_SCRIPT, [remoteDir, ...(env.length ? ['env', ...env] : []), ...cmd])], { timeoutMs, logFile: sessionLog, stdoutTail: true });
    } catch (e) {
      throw await loraxFailure(e, where, ssh, remoteLog, timeoutMs);
    } finally {
      clearInterval(beat);
    }
    log(`lorax finished in ${Math.round((Date.now() - started) / 1000)} s; transferring the tree`);

    const xfer = mkdtempSync(join(input.workDir, `lorax-${arch}-`));
    try {
      let n: number;
      try {
        n = await receiveTree(ssh, remoteDir, xfer, timeoutMs);
        checkExtracted(xfer, ['lorax']);
      } catch (e) {
        throw new RemoteBuildError('transfer', `${where}: transfer of ${remoteOut} failed: ${(e as Error).message}`, { cause: e });
      }
      log(`received ${fmtBytes(n)}; verifying`);
      return await verifyTree(where, join(xfer, 'lorax'), builder.mustBoot, input);
    } finally {
      // collectLoraxTree hardlinked what it kept into outDir.
      rmSync(xfer, { recursive: true, force: true });
    }
  } finally {
    try {
      await run([...ssh, remoteSh('rm -rf -- "$1"', [remoteDir])], { timeoutMs: ((opts.connectTimeoutSec ?? 15) + 600) * 1000, logFile: sessionLog });
      log(`removed ${remoteDir}`);
    } catch (e) {
      // Not fatal: the build's outcome stands; the leftover is named so someone can remove it.
      log(`warning: could not remove ${remoteDir} on ${sshTarget(builder)}: ${detail(e)}`);
    }
  }
}

/** Finds the lorax command on the builder (exit 3 when it is not there) and prints the builder's arch. */
const PROBE_SCRIPT = 'command -v -- "$1" >/dev/null || { echo "releng: $1 not found" >&2; exit 3; }; uname -m';

/**
 * Whether this host can build `arch` on the SSH builder, reading only: its key files, one
 * connection as the builds make it (BatchMode, host key checked, short timeout) running
 * `command -v <lorax command>` and `uname -m` there.
 */
export async function probeSsh(builder: SshBuilder, arch: Arch, opts: { connectTimeoutSec?: number } = {}): Promise<ProbeResult> {
  const out: ProbeResult = { problems: [], notes: [] };
  const problem = (field: string, message: string) => out.problems.push({ field, message });
  const target = sshTarget(builder);
  for (const field of ['identityFile', 'knownHosts'] as const) {
    const f = builder[field];
    try {
      if (f) accessSync(f, constants.R_OK);
    } catch (e) {
      problem(field, `cannot read ${f} (${(e as NodeJS.ErrnoException).code}): ${field === 'identityFile' ? `put the private key that ${target} accepts there` : `put ${target}'s host key there (ssh-keyscan${builder.port ? ` -p ${builder.port}` : ''} ${builder.host}, after checking its fingerprint)`}`);
    }
  }
  if (out.problems.length) return out;
  const connectTimeoutSec = opts.connectTimeoutSec ?? 5;
  const argv = [...sshArgv(builder, { knownHosts: builder.knownHosts, connectTimeoutSec }), remoteSh(PROBE_SCRIPT, [builder.loraxCommand[0]])];
  let machine: string;
  try {
    machine = (await run(argv, { timeoutMs: (connectTimeoutSec + 30) * 1000 })).stdout.trim();
  } catch (e) {
    const text = e instanceof ToolError ? `${e.result.stderr}\n${e.result.stdout}` : (e as Error).message;
    const code = e instanceof ToolError ? e.result.code : undefined;
    if (code === 3 && text.includes('releng: ')) problem('loraxCommand', `${builder.loraxCommand[0]} is not on ${target}'s PATH: install lorax there (dnf install lorax) or set loraxCommand`);
    else if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/.test(text))
      problem('knownHosts', `${target}'s host key is not in ${builder.knownHosts ?? "the user's known_hosts"}: add it (ssh-keyscan${builder.port ? ` -p ${builder.port}` : ''} ${builder.host}, after checking its fingerprint)`);
    else if (/Permission denied/.test(text)) problem('identityFile', `${target} refused ${builder.identityFile ?? "ssh's default keys"}: add its public key to ${builder.user ?? 'the user'}'s authorized_keys there`);
    else problem('host', `cannot connect to ${target}: ${detail(e)}`);
    return out;
  }
  out.notes.push(`${target} answers (${machine}), ${builder.loraxCommand[0]} found`);
  if (machine !== arch) problem('host', `${target} is ${machine || 'of an unknown arch'}, not ${arch}: lorax builds for the arch it runs on`);
  return out;
}

function detail(e: unknown): string {
  if (e instanceof ToolError) {
    if (e.result.timedOut) return 'timed out';
    return tail(`${e.result.stderr}\n${e.result.stdout}`, 10) || `ssh exited ${e.result.code}`;
  }
  return (e as Error).message;
}

async function loraxFailure(e: unknown, where: string, ssh: string[], remoteLog: string, timeoutMs: number): Promise<Error> {
  if (!(e instanceof ToolError)) return new RemoteBuildError('lorax', `${where}: cannot run lorax: ${(e as Error).message}`, { cause: e });
  const out = `${e.result.stdout}\n${e.result.stderr}`;
  const status = MARKER.exec(out);
  if (e.result.timedOut) return new RemoteBuildError('lorax', `${where}: lorax did not finish within ${Math.round(timeoutMs / 60_000)} min${logTail('its output', out)}`, { cause: e });
  if (!status) {
    const how = e.result.code === 97 ? 'cannot enter the remote work dir' : `the connection failed while lorax ran (ssh exit ${e.result.code})`;
    return new RemoteBuildError(e.result.code === 97 ? 'lorax' : 'connect', `${where}: ${how}${logTail('ssh output', out)}`, { cause: e });
  }
  let logText = '';
  try {
    logText = (await run([...ssh, remoteSh('tail -n 40 -- "$1"', [remoteLog])], { timeoutMs: 60_000 })).stdout;
  } catch {
    // No log (lorax not installed, or it died before opening it): its output says why.
  }
  const output = out.replace(MARKER, '');
  return new RemoteBuildError(
    'lorax',
    `${where}: lorax exited ${status[1]}${logTail(remoteLog, logText)}${logTail('its output', output, logText ? 10 : 30)}`,
    { cause: e },
  );
}

const logTail = (what: string, text: string, n = 30) => {
  const t = tail(text, n);
  return t ? `\n--- last lines of ${what} ---\n${t}` : '';
};

/** Streams `<remoteDir>/lorax` as a tar over ssh's stdout into `dest`; resolves with the bytes received. */
async function receiveTree(ssh: string[], remoteDir: string, dest: string, timeoutMs: number): Promise<number> {
  const archive = runPipe([...ssh, remoteSh('exec tar -C "$1" -cf - lorax', [remoteDir])], undefined, { timeoutMs });
  try {
    const n = await extractTar(archive, dest);
    // tar -x stops at the archive's end marker: drain what follows, since the sender's exit status
    // still counts (a remote tar that could not read a file pads it with zeros and exits 2).
    archive.resume();
    await finished(archive);
    return n;
  } catch (e) {
    // ssh's own failure (a ToolError the stream failed with) explains a truncated archive better than tar's "unexpected EOF".
    if (e instanceof ToolError) {
      if (e.result.timedOut) throw new Error(`no complete archive within ${Math.round(timeoutMs / 60_000)} min`);
      throw new Error(`${e.result.code === 255 ? 'ssh' : 'remote tar'} ${e.result.signal ? `was killed by ${e.result.signal}` : `exited ${e.result.code}`}: ${tail(e.result.stderr, 10)}`);
    }
    throw new Error(`unpacking failed: ${(e as Error).message}`);
  } finally {
    // Stop the sender if unpacking failed first: with nobody reading, it would block forever on a full pipe.
    archive.destroy();
  }
}
