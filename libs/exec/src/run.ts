// Running external tools: argv arrays only (never a shell string), the command line logged,
// output captured (and optionally teed to a log file), a timeout, and an error that says which
// tool failed, how, and the tail of what it printed.
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';

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
  ) {
    const out = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-15).join('\n');
    const how = result.timedOut ? 'timed out' : result.signal ? `was killed by ${result.signal}` : `exited ${result.code}`;
    super(`${argv[0]} ${how}: ${formatArgv(argv)}${out ? `\n${out}` : ''}`);
    this.name = 'ToolError';
  }
}

const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`);
export const formatArgv = (argv: string[]) => argv.map(quote).join(' ');

/** Runs a tool to completion. Rejects with a ToolError on a non-ok exit, a signal or a timeout. */
export function run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  if (opts.echo) console.log(`$ ${formatArgv(argv)}`);
  return new Promise((resolvePromise, reject) => {
    let log: WriteStream | undefined;
    if (opts.logFile) {
      mkdirSync(dirname(opts.logFile), { recursive: true });
      log = createWriteStream(opts.logFile, { flags: 'a' });
      // A log that cannot be written must not crash the process; the tool's result still counts.
      log.on('error', (e) => console.error(`cannot write ${opts.logFile}: ${e.message}`));
      log.write(`$ ${formatArgv(argv)}\n`);
    }
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
      finish(() => reject(e.code === 'ENOENT' ? new Error(`${argv[0]} is not installed (${missingHint(argv[0])})`) : e));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const result = { code: code ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
      finish(() => {
        if (!timedOut && !signal && (opts.okCodes ?? [0]).includes(result.code)) resolvePromise(result);
        else reject(new ToolError(argv, { ...result, signal, timedOut }));
      });
    });
    child.stdin.on('error', () => {}); // a tool that exits without reading its stdin is not our error
    child.stdin.end(opts.input);
  });
}

/** Debian and Rocky package names of the tools the pipeline runs, for install hints. */
const PACKAGES: Record<string, [string, string]> = {
  rpm: ['rpm', 'rpm'],
  rpmbuild: ['rpm', 'rpm-build'],
  rpmsign: ['rpm', 'rpm-sign'],
  rpmkeys: ['rpm', 'rpm'],
  createrepo_c: ['createrepo-c', 'createrepo_c'],
  modifyrepo_c: ['createrepo-c', 'createrepo_c'],
  dnf: ['dnf dnf-plugins-core', 'dnf dnf-plugins-core'],
  xorriso: ['xorriso', 'xorriso'],
  isoinfo: ['genisoimage', 'genisoimage'],
  implantisomd5: ['isomd5sum', 'isomd5sum'],
  checkisomd5: ['isomd5sum', 'isomd5sum'],
  mksquashfs: ['squashfs-tools', 'squashfs-tools'],
  'mkfs.fat': ['dosfstools', 'dosfstools'],
  mcopy: ['mtools', 'mtools'],
  mmd: ['mtools', 'mtools'],
  'grub-mkstandalone': ['grub-common grub-efi-amd64-bin', 'grub2-tools-extra'],
  rsync: ['rsync', 'rsync'],
  gpg: ['gnupg', 'gnupg2'],
  'qemu-img': ['qemu-utils', 'qemu-img'],
  'qemu-system-x86_64': ['qemu-system-x86', 'qemu-kvm'],
  ssh: ['openssh-client', 'openssh-clients'],
  lorax: ['(not in Debian: run on a Rocky host)', 'lorax'],
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
