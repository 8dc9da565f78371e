// Running external tools, through execa: argv arrays only (never a shell string), the command
// line logged, the output streamed to a log file as it comes (and to the terminal when verbose),
// bounded tails of stdout and stderr for the error, timeouts and cancellation (SIGTERM, then
// SIGKILL), and the tools killed when this process exits or is killed (execa's `cleanup`: on
// SIGTERM/SIGINT/SIGHUP too, even one that comes as the tool starts; not on a SIGKILL, which no
// process can catch). The error says which tool failed, how, and the tail of what it printed.
import { accessSync, appendFileSync, constants, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import type { Options, Result, ResultPromise, SyncOptions, SyncResult } from 'execa';
import { onExit } from 'signal-exit';

// Loaded with the first tool run: execa is ESM, and loading it (through require) costs every
// process that imports @rocky/exec ~80 ms, also the many that run no tool before their stage starts.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const execaLib = (): typeof import('execa') => require('execa');

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Stop the tool after this many ms (a ToolError with `timedOut`). */
  timeoutMs?: number;
  /** Stop the tool when this aborts (a ToolError with `canceled`). */
  cancelSignal?: AbortSignal;
  /** How long a stopped tool has between SIGTERM and SIGKILL (default 5 s). */
  killAfterMs?: number;
  /** Data for the tool's stdin (it gets EOF after it; without input, at once). */
  input?: string | Buffer | Readable;
  /** Append the command line and all output to this file, as it comes. */
  logFile?: string;
  /** Exit codes that are not failures (default [0]). */
  okCodes?: number[];
  /** Print the command line before running it. */
  echo?: boolean;
  /** Show what goes to the log file on this process's stdout/stderr too (default: RELENG_VERBOSE is set). */
  verbose?: boolean;
  /** Keep only the bounded tail of stdout, as for stderr: a chatty tool whose output only the log and the error need. */
  stdoutTail?: boolean;
  /** Called with each chunk of stdout instead of keeping or logging it (a walker parsing as the tool prints). */
  onStdout?: (chunk: Buffer) => void;
}

export interface RunResult {
  code: number;
  stdout: string;
  /** Its end (about TAIL_BYTES, from run; all of it from runSync): the log file has it whole. */
  stderr: string;
}

export interface ToolFailure extends RunResult {
  signal?: string | null;
  timedOut?: boolean;
  canceled?: boolean;
  /** Lines of each stream dropped before the kept tail (the log has them). */
  dropped?: { stdout?: number; stderr?: number };
}

export class ToolError extends Error {
  constructor(
    readonly argv: string[],
    readonly result: ToolFailure,
    /** The log file the tool's whole output went to (RunOptions.logFile). */
    readonly logFile?: string,
  ) {
    const how = result.timedOut ? 'timed out' : result.canceled ? 'was canceled' : result.signal ? `was killed by ${result.signal}` : `exited ${result.code}`;
    // Both streams: a tool may print the cause on one and its progress on the other; showing
    // stderr alone hid a cause printed on stdout.
    const d = result.dropped ?? {};
    const out = [outputTail('stderr', result.stderr, d.stderr), outputTail('stdout', result.stdout, d.stdout), logFile && `full log: ${logFile}`].filter(Boolean);
    super(`${argv[0]} ${how}: ${formatArgv(argv)}${out.length ? `\n${out.join('\n')}` : ''}`);
    this.name = 'ToolError';
  }
}

const TAIL_LINES = 15;
function outputTail(name: string, text: string, dropped = 0): string {
  if (!text.trim()) return '';
  const lines = text.trimEnd().split('\n');
  const total = dropped + lines.length;
  return `${name}${total > TAIL_LINES ? ` (last ${TAIL_LINES} of ${total} lines)` : ''}:\n${lines.slice(-TAIL_LINES).join('\n')}`;
}

/** What is kept of a stream for the error: whole chunks covering its last TAIL_BYTES, and how many lines went before. */
const TAIL_BYTES = 1 << 20;
class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  dropped = 0;
  push(b: Buffer): void {
    this.chunks.push(b);
    this.size += b.length;
    while (this.size - this.chunks[0].length >= TAIL_BYTES) {
      const d = this.chunks.shift()!;
      this.size -= d.length;
      for (let i = d.indexOf(10); i >= 0; i = d.indexOf(10, i + 1)) this.dropped++;
    }
  }
  text = (): string => Buffer.concat(this.chunks).toString('utf8');
}

const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`);
export const formatArgv = (argv: string[]) => argv.map(quote).join(' ');

/** Starts the log a tool's run appends to, with its command line first. */
export function openLog(argv: string[], logFile: string): { file: string; append: true } {
  mkdirSync(dirname(logFile), { recursive: true });
  appendFileSync(logFile, `$ ${formatArgv(argv)}\n`);
  return { file: logFile, append: true };
}

const notInstalled = (argv: string[]) => new Error(`${argv[0]} is not installed (${missingHint(argv[0])})`);

interface Started {
  sub: ResultPromise;
  out?: Tail;
  err: Tail;
  inputError?: Error;
}

/**
 * execa registers a tool's cleanup just after spawning it; a SIGTERM in between met no handler,
 * killed this process at once and left the tool running, orphaned (seen in CI under load). With
 * signal-exit's handlers held from the first tool on (the same emitter execa uses), a signal
 * waits for the end of the current tick, by which the cleanup is registered.
 */
let held = false;
function holdSignalHandlers(): void {
  if (held) return;
  held = true;
  onExit(() => {});
}

/**
 * Starts a tool. stdout is kept whole ('keep'), as a tail ('tail') or left to the caller
 * ('stream': not logged, e.g. a filter's data). stderr is always logged and kept as a tail.
 */
function start(argv: string[], opts: RunOptions, stdout: 'keep' | 'tail' | 'stream'): Started {
  holdSignalHandlers();
  if (opts.echo) console.log(`$ ${formatArgv(argv)}`);
  const log = opts.logFile ? openLog(argv, opts.logFile) : undefined;
  const verbose = log && (opts.verbose ?? Boolean(process.env.RELENG_VERBOSE));
  const targets = (std: 'inherit') => ['pipe', ...(log ? [log] : []), ...(verbose ? [std] : [])] as Options['stdout'];
  const input = opts.input ?? '';
  const sub = execaLib().execa(argv[0], argv.slice(1), {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    extendEnv: false,
    input,
    stdout: stdout === 'stream' ? 'pipe' : targets('inherit'),
    stderr: targets('inherit'),
    buffer: { stdout: stdout === 'keep', stderr: false },
    maxBuffer: Infinity,
    stripFinalNewline: false,
    timeout: opts.timeoutMs,
    cancelSignal: opts.cancelSignal,
    forceKillAfterDelay: opts.killAfterMs ?? 5000,
    reject: false,
  });
  const s: Started = { sub, err: new Tail() };
  sub.stderr!.on('data', (d: Buffer) => s.err.push(d));
  if (stdout === 'tail') {
    const out = (s.out = new Tail());
    sub.stdout!.on('data', (d: Buffer) => out.push(d));
  }
  // The caller's stream failing is the error to report, not what the tool made of its cut input.
  if (typeof input === 'object' && !Buffer.isBuffer(input)) input.once('error', (e) => (s.inputError ??= e));
  return s;
}

/** The tool's result, or the error that says how it failed. */
function settle(argv: string[], r: Result | SyncResult, tails: { out?: Tail; err?: Tail; inputError?: Error }, opts: RunOptions): RunResult {
  if (tails.inputError) throw tails.inputError;
  const toText = (v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : typeof v === 'string' ? v : '');
  const result: ToolFailure = {
    code: r.exitCode ?? -1,
    stdout: tails.out ? tails.out.text() : toText(r.stdout),
    stderr: tails.err ? tails.err.text() : toText(r.stderr),
  };
  const cause = (r as { cause?: NodeJS.ErrnoException }).cause;
  if (r.exitCode === undefined && !r.signal && !r.timedOut && !r.isCanceled) {
    if (cause?.code === 'ENOENT' && cause.syscall?.startsWith('spawn')) throw notInstalled(argv);
    throw cause ?? new Error(r.message);
  }
  if (!r.signal && !r.timedOut && !r.isCanceled && (opts.okCodes ?? [0]).includes(result.code)) {
    // Something else failed (the log file could not be written): not a result to go on with.
    if (cause) throw cause;
    return result;
  }
  result.signal = r.signal;
  result.timedOut = r.timedOut;
  result.canceled = r.isCanceled;
  result.dropped = { stdout: tails.out?.dropped, stderr: tails.err?.dropped };
  throw new ToolError(argv, result, opts.logFile);
}

/** Runs a tool to completion. Rejects with a ToolError on a non-ok exit, a signal, a timeout or cancellation. */
export async function run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  const s = start(argv, opts, opts.onStdout ? 'stream' : opts.stdoutTail ? 'tail' : 'keep');
  if (opts.onStdout) s.sub.stdout!.on('data', opts.onStdout);
  // execa settles once the tool exited and its output is in the log: an error may send people to read it.
  return settle(argv, await s.sub, s, opts);
}

/**
 * Runs a filter tool (`xz -dc`) as a stream: `input` (if any) is fed to its stdin and its stdout
 * is the returned stream, so no size limit applies and nothing is held in memory. The stream fails
 * with a ToolError (the tool's stderr in it, and in `logFile`) when the tool does not exit 0, and
 * with an install hint when it is missing. Destroying the stream stops the tool.
 */
export function runPipe(argv: string[], input: Readable | undefined, opts: Omit<RunOptions, 'input' | 'okCodes' | 'stdoutTail' | 'onStdout'> = {}): Readable {
  const out = new PassThrough();
  const s = start(argv, { ...opts, input }, 'stream');
  s.sub.stdout!.pipe(out, { end: false });
  out.on('close', () => s.sub.kill());
  s.sub.then(
    (r) => {
      try {
        settle(argv, r, s, opts);
        out.end();
      } catch (e) {
        out.destroy(e as Error);
      }
    },
    (e: Error) => out.destroy(e),
  );
  return out;
}

/** run() for the few callers that cannot wait: the same errors (ToolError, install hint) and log; stdout as bytes. */
export function runSync(argv: string[], opts: Pick<RunOptions, 'cwd' | 'env' | 'logFile' | 'okCodes'> & { input?: string | Buffer } = {}): Buffer {
  const log = opts.logFile ? openLog(argv, opts.logFile) : undefined;
  const to = (log ? ['pipe', log] : 'pipe') as SyncOptions['stdout'];
  const r = execaLib().execaSync(argv[0], argv.slice(1), {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    extendEnv: false,
    input: opts.input ?? '',
    stdout: to,
    stderr: to,
    encoding: 'buffer',
    maxBuffer: Infinity,
    stripFinalNewline: false,
    reject: false,
  } satisfies SyncOptions);
  settle(argv, r as SyncResult, {}, opts);
  return Buffer.from(r.stdout as unknown as Uint8Array);
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
  find: ['findutils', 'findutils'],
  tar: ['tar', 'tar'],
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
/**
 * Whether a tool is on PATH (cached): an executable file of that name in a PATH directory, as
 * `command -v` finds it, looked up here rather than by starting a shell per tool (a stage's
 * pre-flight asks for up to ten; a `sh` each cost its task ~0.1 s under load).
 */
export function hasTool(tool: string): boolean {
  if (!found.has(tool)) found.set(tool, toolPath(tool) !== undefined);
  return found.get(tool)!;
}

/** The file `tool` runs as (the first executable file of that name in PATH, or `tool` itself when it is a path), if any. */
export function toolPath(tool: string, path = process.env.PATH ?? ''): string | undefined {
  const candidates = tool.includes('/') ? [tool] : path.split(':').map((d) => join(d || '.', tool));
  return candidates.find(isExecutableFile);
}

/** An executable regular file (not a directory, which X_OK alone would accept). */
export function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
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
