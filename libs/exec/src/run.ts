// Running external tools with node:child_process: argv arrays only (never a shell string), the
// command line logged, the output streamed to a log file as it comes (and to the terminal when
// verbose), bounded tails of stdout and stderr for the error, timeouts and cancellation (SIGTERM,
// then SIGKILL), and the tools killed when this process exits or is killed (signal-exit: on
// SIGTERM/SIGINT/SIGHUP too, even one that comes as the tool starts; not on a SIGKILL, which no
// process can catch). The error says which tool failed, how, and the tail of what it printed.
// Not execa: loading it (ESM, ~100 modules) cost every task process 88-120 ms before its first tool.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, appendFileSync, constants, createWriteStream, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { finished, PassThrough, type Readable } from 'node:stream';
import { onExit } from 'signal-exit';

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

/** Every tool run of this process: its name and when it ran (performance.now() ms). */
const toolRuns: { name: string; start: number; end: number }[] = [];

/** Records a tool's run (run and runSync do; DnfForks for its forks). */
export function recordToolRun(argv0: string, start: number, end = performance.now()): void {
  toolRuns.push({ name: argv0.slice(argv0.lastIndexOf('/') + 1), start, end });
}

/**
 * The wall time of the tools this process ran between `since` and `until` (performance.now() ms): per tool, and
 * `seconds` while at least one ran (overlaps counted once). A stage's done event carries it, so the
 * event log tells how much of a stage was its external tools and how much was this process.
 */
export function toolTime(since = 0, until = Infinity): { seconds: number; tools: Record<string, number> } {
  const runs = toolRuns.filter((r) => r.start >= since && r.end <= until).sort((a, b) => a.start - b.start);
  const tools: Record<string, number> = {};
  let busy = 0;
  let covered = -Infinity;
  for (const r of runs) {
    tools[r.name] = (tools[r.name] ?? 0) + (r.end - r.start) / 1000;
    busy += Math.max(0, r.end - Math.max(r.start, covered));
    covered = Math.max(covered, r.end);
  }
  const round = (v: number) => Math.round(v * 1000) / 1000;
  return { seconds: round(busy / 1000), tools: Object.fromEntries(Object.entries(tools).map(([k, v]) => [k, round(v)])) };
}

const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`);
export const formatArgv = (argv: string[]) => argv.map(quote).join(' ');

/** Starts the log a tool's run appends to, with its command line first. */
export function openLog(argv: string[], logFile: string): string {
  mkdirSync(dirname(logFile), { recursive: true });
  appendFileSync(logFile, `$ ${formatArgv(argv)}\n`);
  return logFile;
}

const notInstalled = (argv: string[]) => new Error(`${argv[0]} is not installed (${missingHint(argv[0])})`);

/** How a tool's run ended, for settle. */
interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut?: boolean;
  canceled?: boolean;
  stdout: string;
  stderr: string;
  dropped?: { stdout?: number; stderr?: number };
  /** The caller's input stream failed: the error to report, not what the tool made of its cut input. */
  inputError?: Error;
  /** The tool could not be started. */
  spawnError?: NodeJS.ErrnoException;
  /** Something else failed (the log file could not be written): not a result to go on with. */
  error?: Error;
}

/**
 * signal-exit's handlers, held from the first tool on. Without one, a SIGTERM that comes as a tool
 * starts, before its cleanup is registered, kills this process at once and leaves the tool
 * running, orphaned (seen in CI under load); with them, the signal waits for the end of the tick.
 * Held for good rather than loaded per tool: each unload sets process.emit and reallyExit back to
 * what they were when signal-exit was loaded, undoing whatever patched them since.
 */
let held = false;
function holdSignalHandlers(): void {
  if (held) return;
  held = true;
  onExit(() => {});
}

interface Started {
  child: ChildProcess;
  /** SIGTERM, then SIGKILL after the grace period if the tool is still running. */
  stop: () => void;
  /** Once the tool exited and all its output is in the log file. */
  done: Promise<Outcome>;
}

const ms = (name: string, v: number | undefined): number | undefined => {
  if (v !== undefined && !(Number.isFinite(v) && v >= 0)) throw new TypeError(`RunOptions.${name} must be a non-negative number of ms, got ${v}`);
  return v;
};

/**
 * Starts a tool. stdout is kept whole ('keep'), as a tail ('tail') or left to the caller
 * ('stream': not logged, e.g. a filter's data). stderr is always logged and kept as a tail.
 */
function start(argv: string[], opts: RunOptions, stdout: 'keep' | 'tail' | 'stream'): Started {
  const timeoutMs = ms('timeoutMs', opts.timeoutMs);
  const killAfterMs = ms('killAfterMs', opts.killAfterMs) ?? 5000;
  if (opts.echo) console.log(`$ ${formatArgv(argv)}`);
  const log = opts.logFile ? createWriteStream(openLog(argv, opts.logFile), { flags: 'a' }) : undefined;
  const verbose = log && (opts.verbose ?? Boolean(process.env.RELENG_VERBOSE));
  holdSignalHandlers();
  const began = performance.now();
  let c: ChildProcess;
  try {
    c = spawn(argv[0], argv.slice(1), { cwd: opts.cwd, env: opts.env ?? process.env, stdio: 'pipe' });
  } catch (e) {
    log?.destroy();
    throw e;
  }
  // In the spawn's tick: a signal that came in between waits for the tick's end (holdSignalHandlers).
  const forget = onExit(() => void c.kill());
  const o: Outcome = { code: null, signal: null, stdout: '', stderr: '' };

  // Output: to the log (the sources wait while it is behind), the terminal when verbose, and the kept text.
  const teed: Readable[] = [];
  const tee = (src: Readable, keep: (d: Buffer) => void, std: NodeJS.WriteStream) => {
    teed.push(src);
    src.on('data', (d: Buffer) => {
      keep(d);
      if (verbose) std.write(d);
      if (log && !log.destroyed && !log.write(d)) {
        src.pause();
        log.once('drain', () => src.resume());
      }
    });
  };
  log?.on('error', (e) => {
    o.error ??= e;
    for (const src of teed) src.resume();
  });
  const err = new Tail();
  tee(c.stderr!, (d) => err.push(d), process.stderr);
  const out = stdout === 'tail' ? new Tail() : undefined;
  const kept: Buffer[] = [];
  if (stdout !== 'stream') tee(c.stdout!, out ? (d) => out.push(d) : (d) => kept.push(d), process.stdout);

  // Input, then EOF. A tool that exits (or closes stdin) before reading it all is no error (EPIPE);
  // the rest of the caller's stream is then not wanted.
  c.stdin!.on('error', (e: NodeJS.ErrnoException) => e.code !== 'EPIPE' && (o.error ??= e));
  const input = opts.input ?? '';
  let released: Promise<void> | undefined;
  if (typeof input === 'string' || Buffer.isBuffer(input)) c.stdin!.end(input);
  else {
    input.on('error', (e) => {
      o.inputError ??= e;
      c.stdin!.end();
    });
    // Settled only once the stream is let go: destroying it unpipes (and so pauses) whatever
    // feeds it, which must not come after the caller resumed that to read on (tar.ts does).
    released = new Promise((resolve) =>
      c.stdin!.once('close', () => {
        if (input.readable) input.destroy();
        finished(input, { writable: false }, () => resolve());
      }),
    );
    input.pipe(c.stdin!);
  }

  // Stopping: a timeout, a cancellation, runPipe's consumer gone.
  const running = () => c.exitCode === null && c.signalCode === null;
  let killTimer: NodeJS.Timeout | undefined;
  const stop = () => {
    if (!running() || killTimer) return;
    c.kill('SIGTERM');
    killTimer = setTimeout(() => running() && c.kill('SIGKILL'), killAfterMs);
  };
  const timer = timeoutMs
    ? setTimeout(() => {
        if (running() && !o.canceled) o.timedOut = true;
        stop();
      }, timeoutMs)
    : undefined;
  const cancel = () => {
    if (running() && !o.timedOut) o.canceled = true;
    stop();
  };
  if (opts.cancelSignal?.aborted) cancel();
  else opts.cancelSignal?.addEventListener('abort', cancel, { once: true });
  // A tool that exited is forgotten: nothing left to kill or to wait for.
  const exited = () => {
    forget();
    clearTimeout(timer);
    clearTimeout(killTimer);
    opts.cancelSignal?.removeEventListener('abort', cancel);
  };
  c.once('exit', exited);

  const done = new Promise<Outcome>((resolve) => {
    c.on('error', (e: NodeJS.ErrnoException) => (c.pid === undefined ? (o.spawnError = e) : (o.error ??= e)));
    // 'close': the tool exited and its stdout and stderr ended (no 'exit' when it could not start).
    c.once('close', (code, signal) => {
      exited();
      if (c.pid !== undefined) recordToolRun(argv[0], began);
      Object.assign(o, { code, signal, stdout: out ? out.text() : Buffer.concat(kept).toString('utf8'), stderr: err.text(), dropped: { stdout: out?.dropped, stderr: err.dropped } });
      const flushed =
        log &&
        new Promise<void>((r) => {
          log.end();
          finished(log, (e) => {
            if (e) o.error ??= e;
            r();
          });
        });
      void Promise.all([flushed, released]).then(() => resolve(o));
    });
  });
  return { child: c, stop, done };
}

/** The tool's result, or the error that says how it failed. */
function settle(argv: string[], o: Outcome, opts: RunOptions): RunResult {
  if (o.inputError) throw o.inputError;
  if (o.spawnError) throw o.spawnError.code === 'ENOENT' ? notInstalled(argv) : o.spawnError;
  const result: ToolFailure = { code: o.code ?? -1, stdout: o.stdout, stderr: o.stderr };
  if (!o.signal && !o.timedOut && !o.canceled && (opts.okCodes ?? [0]).includes(result.code)) {
    if (o.error) throw o.error;
    return result;
  }
  result.signal = o.signal ?? undefined;
  result.timedOut = Boolean(o.timedOut);
  result.canceled = Boolean(o.canceled);
  result.dropped = o.dropped ?? {};
  throw new ToolError(argv, result, opts.logFile);
}

/** Runs a tool to completion. Rejects with a ToolError on a non-ok exit, a signal, a timeout or cancellation. */
export async function run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  const s = start(argv, opts, opts.onStdout ? 'stream' : opts.stdoutTail ? 'tail' : 'keep');
  if (opts.onStdout) s.child.stdout!.on('data', opts.onStdout);
  // Settles once the tool exited and its output is in the log: an error may send people to read it.
  return settle(argv, await s.done, opts);
}

/**
 * Runs a filter tool (`xz -dc`) as a stream: `input` (if any) is fed to its stdin and its stdout
 * is the returned stream, so no size limit applies and nothing is held in memory. The stream fails
 * with a ToolError (the tool's stderr in it, and in `logFile`) when the tool does not exit 0, and
 * with an install hint when it is missing. Destroying the stream stops the tool.
 */
export function runPipe(argv: string[], input: Readable | undefined, opts: Omit<RunOptions, 'input' | 'okCodes' | 'stdoutTail' | 'onStdout'> = {}): Readable {
  const out = new PassThrough();
  let s: Started;
  try {
    s = start(argv, { ...opts, input }, 'stream');
  } catch (e) {
    return out.destroy(e as Error);
  }
  const stdout = s.child.stdout!;
  stdout.pipe(out, { end: false });
  // Its unread stdout destroyed too: it would keep the tool's pipe, and this process, open.
  out.on('close', () => {
    s.stop();
    stdout.destroy();
  });
  void s.done.then((o) => {
    try {
      settle(argv, o, opts);
      out.end();
    } catch (e) {
      out.destroy(e as Error);
    }
  });
  return out;
}

/** run() for the few callers that cannot wait: the same errors (ToolError, install hint) and log; stdout as bytes. */
export function runSync(argv: string[], opts: Pick<RunOptions, 'cwd' | 'env' | 'logFile' | 'okCodes'> & { input?: string | Buffer } = {}): Buffer {
  const log = opts.logFile ? openLog(argv, opts.logFile) : undefined;
  const began = performance.now();
  const r = spawnSync(argv[0], argv.slice(1), { cwd: opts.cwd, env: opts.env ?? process.env, input: opts.input ?? '', maxBuffer: Infinity });
  if (r.pid) recordToolRun(argv[0], began);
  // The output goes to the log once the tool exited: stdout, then stderr.
  if (log && r.stdout) appendFileSync(log, Buffer.concat([r.stdout, r.stderr]));
  const e = r.error as NodeJS.ErrnoException | undefined;
  const started = r.status !== null || r.signal !== null;
  settle(argv, {
    code: r.status,
    signal: r.signal,
    stdout: r.stdout?.toString('utf8') ?? '',
    stderr: r.stderr?.toString('utf8') ?? '',
    spawnError: started ? undefined : e,
    // A tool that did not read all its input is no error.
    error: started && e?.code !== 'EPIPE' ? e : undefined,
  }, opts);
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
  find: ['findutils', 'findutils'],
  xargs: ['findutils', 'findutils'],
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
