// dnf commands run as forks of one Python process that imported dnf once. Importing dnf costs
// ~0.3 CPU-s, most of a repoclosure of a few hundred packages, and a sync runs one check per
// repo x arch (34 for rocky-9). Each command is still a process of its own running dnf's own
// entry point with its own argv, exactly as /usr/bin/dnf does (`main.user_main(argv,
// exit_code=True)`), its stdout and stderr to files and its exit status reported: only the
// import is shared. Used only when the `dnf` on PATH is that standard launcher; anything else (a
// wrapper, another dnf) is run as a plain command.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { ToolError, openLog, recordToolRun, toolPath, type RunResult } from '@rocky/exec';

// The parent reads requests (one JSON object a line) on stdin: {"id", "argv", "out", "err"} runs
// dnf with argv in a fork, stdout and stderr to those files; {"kill": id, "signal": n} signals a
// running fork. It answers {"id", "code"} or {"id", "signal"} when a fork ended. At EOF on stdin
// (our process ended, however) it stops its forks, answers for them and exits.
const DRIVER = String.raw`
import atexit, json, os, selectors, signal, sys, traceback
if sys.path and sys.path[0] == '':
    del sys.path[0]  # as /usr/bin/dnf: no modules from the current directory
from dnf.cli import main

def child(req):
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    sel.close(); os.close(wake_r); os.close(wake_w)
    code = 1
    try:
        fd = os.open(os.devnull, os.O_RDONLY); os.dup2(fd, 0); os.close(fd)
        for n, path in ((1, req['out']), (2, req['err'])):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644); os.dup2(fd, n); os.close(fd)
        sys.argv = ['dnf'] + req['argv']
        main.user_main(req['argv'], exit_code=True)
        code = 0
    except SystemExit as e:
        if e.code is None: code = 0
        elif isinstance(e.code, int): code = e.code
        else: print(e.code, file=sys.stderr); code = 1
    except BaseException:
        traceback.print_exc()
    try:
        atexit._run_exitfuncs()
        sys.stdout.flush(); sys.stderr.flush()
    finally:
        os._exit(code & 0xff)

def report(id, status):
    ended = {'code': os.WEXITSTATUS(status)} if os.WIFEXITED(status) else {'signal': os.WTERMSIG(status)}
    os.write(1, (json.dumps(dict(ended, id=id)) + '\n').encode())

wake_r, wake_w = os.pipe()
os.set_blocking(wake_r, False); os.set_blocking(wake_w, False)
signal.set_wakeup_fd(wake_w)
signal.signal(signal.SIGCHLD, lambda *a: None)
sel = selectors.DefaultSelector()
sel.register(0, selectors.EVENT_READ, 'in')
sel.register(wake_r, selectors.EVENT_READ, 'wake')
forks = {}
buf = b''
while True:
    for key, _ in sel.select():
        if key.data == 'wake':
            while True:
                try:
                    if not os.read(wake_r, 512): break
                except BlockingIOError:
                    break
            continue
        data = os.read(0, 65536)
        if not data:
            for pid in forks: os.kill(pid, signal.SIGTERM)
            for pid, id in forks.items(): report(id, os.waitpid(pid, 0)[1])
            sys.exit(0)
        buf += data
        while b'\n' in buf:
            line, buf = buf.split(b'\n', 1)
            req = json.loads(line)
            if 'kill' in req:
                for pid, id in forks.items():
                    if id == req['kill']: os.kill(pid, req['signal'])
                continue
            pid = os.fork()
            if pid == 0: child(req)
            forks[pid] = req['id']
    while forks:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0: break
        report(forks.pop(pid), status)
`;

/** The interpreter (and its options) of the `dnf` on PATH, when it is dnf's standard Python launcher. */
export function dnfLauncher(path = process.env.PATH ?? ''): string[] | undefined {
  const file = toolPath('dnf', path);
  if (!file) return undefined;
  const text = readFileSync(file, 'utf8');
  const shebang = /^#!(\S*python\S*)([^\n]*)\n/.exec(text);
  if (!shebang || !/^from dnf\.cli import main\nmain\.user_main\(sys\.argv\[1:\], exit_code=True\)\s*$/m.test(text)) return undefined;
  return [shebang[1], ...shebang[2].trim().split(/\s+/).filter(Boolean)];
}

/** How a fork ended: its exit code, or the signal that killed it; `lost` when the server ended first. */
type Ended = { code?: number; signal?: number; lost?: true };
interface Pending {
  done(how: Ended): void;
}

export class DnfForks {
  private next = 0;
  private pending = new Map<number, Pending>();
  private failed?: Error;
  private constructor(private readonly proc: ChildProcessWithoutNullStreams) {
    let buf = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const { id, ...how } = JSON.parse(buf.slice(0, i)) as Ended & { id: number };
        buf = buf.slice(i + 1);
        const p = this.pending.get(id);
        this.pending.delete(id);
        p?.done(how);
      }
    });
    let err = '';
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-4096)));
    // 'close': after its last answer was read (the forks it stopped when closed are answered too).
    proc.once('close', (code, signal) => {
      this.failed ??= new Error(`the dnf fork server (${proc.spawnfile}) exited ${signal ?? code}${err.trim() ? `:\n${err.trim()}` : ''}`);
      for (const p of this.pending.values()) p.done({ lost: true });
      this.pending.clear();
    });
    proc.stdin.on('error', () => {}); // it exited: the close handler reports it
    // Not started (its interpreter went missing): every run fails with why.
    proc.once('error', (e) => {
      this.failed = new Error(`the dnf fork server (${proc.spawnfile}) did not start: ${e.message}`);
      for (const p of this.pending.values()) p.done({ lost: true });
      this.pending.clear();
    });
  }

  /** Starts the fork server, or undefined when the `dnf` on PATH is not the standard launcher (run it plainly then). */
  static start(): DnfForks | undefined {
    const launcher = dnfLauncher();
    if (!launcher) return undefined;
    return new DnfForks(spawn(launcher[0], [...launcher.slice(1), '-c', DRIVER], { stdio: ['pipe', 'pipe', 'pipe'] }));
  }

  /**
   * `argv` (`['dnf', ...]`) as @rocky/exec's run would run it: the command line and all output
   * in `logFile`, a ToolError on a failure, stopped (SIGTERM, then SIGKILL) after `timeoutMs`.
   * Its stdout and stderr go to files under `workDir` first (removed after).
   */
  async run(argv: string[], opts: { workDir: string; logFile?: string; timeoutMs?: number; killAfterMs?: number }): Promise<RunResult> {
    if (this.failed) throw this.failed;
    const id = this.next++;
    mkdirSync(opts.workDir, { recursive: true });
    const out = join(opts.workDir, `dnf-${id}.stdout`);
    const err = join(opts.workDir, `dnf-${id}.stderr`);
    if (opts.logFile) openLog(argv, opts.logFile);
    let timedOut = false;
    const timers: NodeJS.Timeout[] = [];
    const began = performance.now();
    const ended = await new Promise<Ended>((done) => {
      this.pending.set(id, { done });
      this.proc.stdin.write(`${JSON.stringify({ id, argv: argv.slice(1), out, err })}\n`);
      if (opts.timeoutMs) {
        timers.push(
          setTimeout(() => {
            timedOut = true;
            this.signal(id, 15);
            timers.push(setTimeout(() => this.signal(id, 9), opts.killAfterMs ?? 5000));
          }, opts.timeoutMs),
        );
      }
    });
    timers.forEach(clearTimeout);
    if (ended.lost) throw this.failed;
    recordToolRun(argv[0], began);
    const read = (f: string) => {
      try {
        return readFileSync(f, 'utf8');
      } catch {
        return '';
      }
    };
    const result = { code: ended.code ?? -1, stdout: read(out), stderr: read(err) };
    rmSync(out, { force: true });
    rmSync(err, { force: true });
    if (opts.logFile) appendFileSync(opts.logFile, result.stdout + result.stderr);
    // As run shows a logged tool's output when verbose (here once it ended).
    if (opts.logFile && process.env.RELENG_VERBOSE) (process.stdout.write(result.stdout), process.stderr.write(result.stderr));
    if (result.code === 0) return result;
    const signal = ended.signal === undefined ? null : (SIGNALS[ended.signal] ?? `signal ${ended.signal}`);
    throw new ToolError(argv, { ...result, signal, timedOut }, opts.logFile);
  }

  private signal(id: number, sig: number): void {
    if (this.pending.has(id)) this.proc.stdin.write(`${JSON.stringify({ kill: id, signal: sig })}\n`);
  }

  /** Ends the server (its running forks are stopped). */
  async close(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise((r) => this.proc.once('close', r));
    this.proc.stdin.end();
    await exited;
  }
}

/** Signal names by number (os.constants.signals inverted), as ToolError names them. */
const SIGNALS: Record<number, string> = Object.fromEntries(Object.entries(constants.signals).map(([name, n]) => [n, name]));
