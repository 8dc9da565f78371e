// Running external tools: argv arrays only (never a shell string), the command line logged,
// output captured (and optionally teed to a log file), a timeout, and an error that says which
// tool failed, how, and the tail of what it printed.
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Kill the tool (SIGTERM, then SIGKILL) after this many ms. */
  timeoutMs?: number;
  /** Data for the tool's stdin. */
  input?: string | Buffer;
  /** Append the command line and all output to this file. */
  logFile?: string;
  /** Exit codes that are not failures (default [0]). */
  okCodes?: number[];
  /** Print the command line before running it. */
  echo?: boolean;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class ToolError extends Error {
  constructor(
    readonly argv: string[],
    readonly result: RunResult & { signal?: string | null; timedOut?: boolean },
    /** The log file the tool's whole output went to (RunOptions.logFile). */
    readonly logFile?: string,
  ) {
    const how = result.timedOut ? 'timed out' : result.signal ? `was killed by ${result.signal}` : `exited ${result.code}`;
    // Both streams: a tool may print the cause on one and its progress on the other; showing
    // stderr alone hid a cause printed on stdout.
    const out = [outputTail('stderr', result.stderr), outputTail('stdout', result.stdout), logFile && `full log: ${logFile}`].filter(Boolean);
    super(`${argv[0]} ${how}: ${formatArgv(argv)}${out.length ? `\n${out.join('\n')}` : ''}`);
    this.name = 'ToolError';
  }
}

const TAIL_LINES = 15;
function outputTail(name: string, text: string): string {
  if (!text.trim()) return '';
  const lines = text.trimEnd().split('\n');
  return `${name}${lines.length > TAIL_LINES ? ` (last ${TAIL_LINES} of ${lines.length} lines)` : ''}:\n${lines.slice(-TAIL_LINES).join('\n')}`;
}

const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`);
export const formatArgv = (argv: string[]) => argv.map(quote).join(' ');

/** Opens the log a tool's run appends to, with its command line first. */
function openLog(argv: string[], logFile: string | undefined): WriteStream | undefined {
  if (!logFile) return undefined;
  mkdirSync(dirname(logFile), { recursive: true });
  const log = createWriteStream(logFile, { flags: 'a' });
  // A log that cannot be written must not crash the process; the tool's result still counts.
  log.on('error', (e) => console.error(`cannot write ${logFile}: ${e.message}`));
  log.write(`$ ${formatArgv(argv)}\n`);
  return log;
}

const notInstalled = (argv: string[], e: NodeJS.ErrnoException): Error =>
  e.code === 'ENOENT' ? new Error(`${argv[0]} is not installed (${missingHint(argv[0])})`) : e;

/** Runs a tool to completion. Rejects with a ToolError on a non-ok exit, a signal or a timeout. */
export function run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  if (opts.echo) console.log(`$ ${formatArgv(argv)}`);
  return new Promise((resolvePromise, reject) => {
    const log = openLog(argv, opts.logFile);
    const child = spawn(argv[0], argv.slice(1), {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => (out.push(d), log?.write(d)));
    child.stderr.on('data', (d: Buffer) => (err.push(d), log?.write(d)));
    let timedOut = false;
    const timer =
      opts.timeoutMs &&
      setTimeout(() => {
        timedOut = true;
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }, opts.timeoutMs);
    // Settle only once the log is on disk: an error message may send people to read it.
    const finish = (fn: () => void) => (log ? log.end(fn) : fn());
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer);
      finish(() => reject(notInstalled(argv, e)));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const result = { code: code ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
      finish(() => {
        if (!timedOut && !signal && (opts.okCodes ?? [0]).includes(result.code)) resolvePromise(result);
        else reject(new ToolError(argv, { ...result, signal, timedOut }, opts.logFile));
      });
    });
    child.stdin.on('error', () => {}); // a tool that exits without reading its stdin is not our error
    child.stdin.end(opts.input);
  });
}

/**
 * Runs a filter tool (`xz -dc`) as a stream: `input` is fed to its stdin and its stdout is the
 * returned stream, so no size limit applies and nothing is held in memory. The stream fails with
 * a ToolError (the tool's stderr in it, and in `logFile`) when the tool does not exit 0, and with
 * an install hint when it is missing. Destroying the stream stops the tool.
 */
export function runPipe(argv: string[], input: Readable, opts: Pick<RunOptions, 'cwd' | 'env' | 'logFile'> = {}): Readable {
  const out = new PassThrough();
  const log = openLog(argv, opts.logFile);
  const child = spawn(argv[0], argv.slice(1), { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
  const err: Buffer[] = [];
  let done = false;
  const settle = (e?: Error) => {
    if (done) return;
    done = true;
    const end = () => (e ? out.destroy(e) : out.end());
    if (log) log.end(end);
    else end();
  };
  child.stdout.pipe(out, { end: false });
  child.stderr.on('data', (d: Buffer) => (err.push(d), log?.write(d)));
  child.stdin.on('error', () => {}); // a tool that exits before reading all its input fails by its exit code
  input.on('error', (e) => {
    child.kill('SIGTERM');
    settle(e);
  });
  input.pipe(child.stdin);
  out.on('close', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  });
  child.on('error', (e: NodeJS.ErrnoException) => settle(notInstalled(argv, e)));
  child.on('close', (code, signal) => {
    const stderr = Buffer.concat(err).toString('utf8');
    settle(code === 0 ? undefined : new ToolError(argv, { code: code ?? -1, stdout: '', stderr, signal }));
  });
  return out;
}

/** run() for the few callers that cannot wait: the same errors (ToolError, install hint); stdout as bytes. */
export function runSync(argv: string[], opts: Pick<RunOptions, 'cwd' | 'env' | 'input'> = {}): Buffer {
  const r = spawnSync(argv[0], argv.slice(1), { cwd: opts.cwd, env: opts.env ?? process.env, input: opts.input, maxBuffer: Infinity });
  if (r.error) throw notInstalled(argv, r.error as NodeJS.ErrnoException);
  const stderr = r.stderr.toString('utf8');
  if (r.status !== 0) throw new ToolError(argv, { code: r.status ?? -1, stdout: '', stderr, signal: r.signal });
  return r.stdout;
}

/** Debian and Rocky package names of the tools the pipeline runs, for install hints. */
const PACKAGES: Record<string, [string, string]> = {
  rpm: ['rpm', 'rpm'],
  rpmbuild: ['rpm', 'rpm-build'],
  rpmsign: ['rpm', 'rpm-sign'],
  rpm2cpio: ['rpm2cpio', 'rpm'],
  rpmkeys: ['rpm', 'rpm'],
  createrepo_c: ['createrepo-c', 'createrepo_c'],
  modifyrepo_c: ['createrepo-c', 'createrepo_c'],
  dnf: ['dnf dnf-plugins-core', 'dnf dnf-plugins-core'],
  xorriso: ['xorriso', 'xorriso'],
  isoinfo: ['genisoimage', 'genisoimage (Rocky 8; Rocky 9 has no isoinfo)'],
  implantisomd5: ['isomd5sum', 'isomd5sum'],
  checkisomd5: ['isomd5sum', 'isomd5sum'],
  mksquashfs: ['squashfs-tools', 'squashfs-tools'],
  'mkfs.fat': ['dosfstools', 'dosfstools'],
  mcopy: ['mtools', 'mtools'],
  mmd: ['mtools', 'mtools'],
  'grub-mkstandalone': ['grub-common grub-efi-amd64-bin', 'grub2-tools-extra'],
  rsync: ['rsync', 'rsync'],
  gpg: ['gnupg', 'gnupg2'],
  gpgv: ['gpgv', 'gnupg2'],
  gpgconf: ['gnupg', 'gnupg2'],
  xz: ['xz-utils', 'xz'],
  zstd: ['zstd', 'zstd'],
  bzip2: ['bzip2', 'bzip2'],
  'qemu-img': ['qemu-utils', 'qemu-img'],
  'qemu-system-x86_64': ['qemu-system-x86', 'qemu-kvm'],
  ssh: ['openssh-client', 'openssh-clients'],
  lorax: ['(not in Debian: run on a Rocky host)', 'lorax'],
  podman: ['podman runc', 'podman'],
};

export function missingHint(tool: string): string {
  const p = PACKAGES[tool];
  return p ? `apt-get install ${p[0]} / dnf install ${p[1]}; or run scripts/setup.sh` : 'see scripts/setup.sh';
}

const found = new Map<string, boolean>();
/** Whether a tool is on PATH (cached). */
export function hasTool(tool: string): boolean {
  if (!found.has(tool)) {
    const r = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', tool], { stdio: 'ignore' });
    found.set(tool, r.status === 0);
  }
  return found.get(tool)!;
}

/** The tools of `tools` that are not installed, each with its install hint. */
export const missingTools = (tools: string[]): string[] => [...new Set(tools)].filter((t) => !hasTool(t)).map((t) => `${t} is missing (${missingHint(t)})`);

/** Fails before any work starts when a tool the stage needs is missing. */
export function preflight(tools: string[]): void {
  const missing = missingTools(tools);
  if (missing.length) throw new Error(`missing tools, nothing was changed: ${missing.join('; ')}`);
}

/**
 * Identifies one Nx invocation: every task of a run is forked from the same nx process, so its
 * pid plus its start time (from /proc, against pid reuse) names the run.
 */
export function nxRunId(): string {
  const ppid = process.ppid;
  let start = '';
  try {
    start = readFileSync(`/proc/${ppid}/stat`, 'utf8').split(') ')[1].split(' ')[19];
  } catch {
    // not Linux: the pid alone
  }
  return `${ppid}-${start}`;
}
