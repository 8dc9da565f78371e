// The tool runner's stops: a timeout, a cancellation, a tool that ignores SIGTERM, and this
// process being killed. Each tool is a `tail -f` of a file named for the test, so whatever it
// is running as (sh, or tail after exec) is found in /proc by that name: the check is that no
// such process is left, whenever the stop came.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { hasTool, recordToolRun, run, runPipe, runSync, toolTime, ToolError } from './run';

let dir: string;
let n = 0;
beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'rocky-run-'))));
afterAll(() => {
  for (const pid of readdirSync(dir).flatMap((m) => running(join(dir, m)))) process.kill(pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** A file to follow, unique to the calling test. */
function marker(): string {
  const m = join(dir, `marker-${++n}`);
  writeFileSync(m, '');
  return m;
}

/** Live processes (not zombies) with `arg` on their command line. */
function running(arg: string, program?: string): number[] {
  const pids: number[] = [];
  for (const p of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      const state = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1][0];
      if (argv.includes(arg) && state !== 'Z' && (!program || argv[0] === program)) pids.push(Number(p));
    } catch {
      // gone while we looked
    }
  }
  return pids;
}

const follow = (m: string, prelude = '') => ['sh', '-c', `${prelude}exec tail -f "$1"`, 'sh', m];

/** Polls until `cond` holds (no time limit: the test's own timeout stops a hang). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 20));
}

// A stopped tool is waited for without a time limit; a tool left running would wait forever, so
// these tests get a hang guard shorter than the suite's.
describe('run: stopping a tool', { timeout: 300_000 }, () => {
  it('a timeout stops the tool: a ToolError that says so, and no process left', async () => {
    const m = marker();
    const err = await run(follow(m), { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ToolError);
    expect((err as ToolError).result.timedOut).toBe(true);
    expect((err as Error).message).toMatch(/^sh timed out: sh -c /);
    expect(running(m)).toEqual([]);
  });

  it('cancellation stops the running tool: a ToolError that says so, and its pid is gone', async () => {
    const m = marker();
    const ac = new AbortController();
    const p = run(follow(m), { cancelSignal: ac.signal }).catch((e: unknown) => e);
    await until(() => running(m, 'tail').length > 0);
    const pids = running(m);
    ac.abort();
    const err = await p;
    expect(err).toBeInstanceOf(ToolError);
    expect((err as ToolError).result.canceled).toBe(true);
    expect((err as Error).message).toMatch(/^sh was canceled: /);
    for (const pid of pids) expect(existsSync(`/proc/${pid}`)).toBe(false);
  });

  it('a tool that ignores SIGTERM gets SIGKILL after the grace period', async () => {
    const m = marker();
    const ac = new AbortController();
    // An ignored signal stays ignored across exec: tail itself ignores SIGTERM.
    const p = run(follow(m, `trap '' TERM; `), { cancelSignal: ac.signal, killAfterMs: 200 }).catch((e: unknown) => e);
    await until(() => running(m, 'tail').length > 0);
    ac.abort();
    const err = (await p) as ToolError;
    expect(err.result.canceled).toBe(true);
    expect(err.result.signal).toBe('SIGKILL');
    expect(running(m)).toEqual([]);
  });

  it('a tool that still runs when this process is killed (SIGTERM) is stopped with it', async () => {
    const m = marker();
    const node = nodeScript(`require(${JSON.stringify(join(__dirname, 'run.ts'))}).run(${JSON.stringify(follow(m))});`);
    try {
      await until(() => running(m, 'tail').length > 0);
      node.kill('SIGTERM');
      await once(node, 'exit');
      await until(() => running(m).length === 0);
    } finally {
      node.kill('SIGKILL');
    }
  });

  it('a SIGTERM that comes right after the tool was spawned, before anything else ran, stops the tool too', async () => {
    // The signal is sent from inside spawn's return, before anything after the spawn ran: the
    // window a loaded machine's scheduler opened in CI (when the cleanup was registered after the
    // spawn and no handler was held), made certain.
    const m = marker();
    const node = nodeScript(`
      const cp = require('node:child_process');
      const { syncBuiltinESMExports } = require('node:module');
      const spawn = cp.spawn;
      cp.spawn = (...a) => { const c = spawn(...a); process.kill(process.pid, 'SIGTERM'); return c; };
      syncBuiltinESMExports();
      require(${JSON.stringify(join(__dirname, 'run.ts'))}).run(${JSON.stringify(follow(m))});`);
    try {
      const [code, signal] = await once(node, 'exit');
      expect([code, signal]).toEqual([null, 'SIGTERM']);
      await until(() => running(m).length === 0);
    } finally {
      node.kill('SIGKILL');
    }
  });

  it('a signal that aborted before the run cancels it at once', async () => {
    const m = marker();
    const err = (await run(follow(m), { cancelSignal: AbortSignal.abort() }).catch((e: unknown) => e)) as ToolError;
    expect(err).toBeInstanceOf(ToolError);
    expect(err.result.canceled).toBe(true);
    expect(running(m)).toEqual([]);
  });

  it('a tool that exited is forgotten: no exit handler is left behind for it', async () => {
    // signal-exit's handlers, shared by every copy of it through this global.
    const handlers = () => (globalThis as unknown as Record<symbol, { listeners: { exit: unknown[] } }>)[Symbol.for('signal-exit emitter')].listeners.exit.length;
    await run(['true']);
    const before = handlers();
    await run(['true']);
    await run(['sh', '-c', 'exit 3'], { okCodes: [3] });
    await run(['no-such-tool-xyz']).catch(() => {});
    await run(['sh', '-c', 'exit 1']).catch(() => {});
    expect(handlers()).toBe(before);
  });

  it('a consumer that stops reading a filter stops the filter', async () => {
    const m = marker();
    const out = runPipe(['sh', '-c', 'exec yes "$1"', 'sh', m], undefined);
    for await (const _ of out) break; // the first chunk, then the stream is destroyed
    await until(() => running(m).length === 0);
  });
});

describe('run: output', () => {
  it('streams the output to the log while the tool runs, and to the terminal when verbose', async () => {
    const m = marker();
    const log = join(dir, 'live.log');
    const ac = new AbortController();
    const p = run(['sh', '-c', 'echo started; echo warming up >&2; exec tail -f "$1"', 'sh', m], { logFile: log, cancelSignal: ac.signal }).catch((e: unknown) => e);
    await until(() => existsSync(log) && /started/.test(readFileSync(log, 'utf8')) && /warming up/.test(readFileSync(log, 'utf8')));
    ac.abort();
    expect((await p) as ToolError).toBeInstanceOf(ToolError);
    expect(readFileSync(log, 'utf8')).toMatch(/^\$ sh -c /);

    const vlog = join(dir, 'verbose.log');
    const node = nodeScript(`require(${JSON.stringify(join(__dirname, 'run.ts'))}).run(['sh', '-c', 'echo to-out; echo to-err >&2'], { logFile: ${JSON.stringify(vlog)}, verbose: true }).then(() => console.log('done'));`);
    let stdout = '';
    let stderr = '';
    node.stdout!.on('data', (d: Buffer) => (stdout += d));
    node.stderr!.on('data', (d: Buffer) => (stderr += d));
    const [code] = await once(node, 'exit');
    expect(code).toBe(0);
    expect(stdout).toBe('to-out\ndone\n');
    expect(stderr).toBe('to-err\n');
    expect(readFileSync(vlog, 'utf8')).toMatch(/^\$ sh -c .*\n(to-out\nto-err\n|to-err\nto-out\n)$/);
  });

  it('keeps bounded tails for the error when the whole output is in the log', async () => {
    const log = join(dir, 'big.log');
    const err = (await run(['sh', '-c', 'seq 1 400000; seq 1 400000 >&2; exit 2'], { logFile: log, stdoutTail: true }).catch((e: unknown) => e)) as ToolError;
    expect(err).toBeInstanceOf(ToolError);
    // 2.7 MB per stream; about 1 MiB of each is kept, and the message still counts every line.
    for (const s of [err.result.stdout, err.result.stderr]) {
      expect(s.length).toBeLessThan(1.2 * 2 ** 20);
      expect(s.endsWith('399999\n400000\n')).toBe(true);
    }
    expect(err.message).toContain('stdout (last 15 of 400000 lines):\n399986\n');
    expect(err.message).toContain('stderr (last 15 of 400000 lines):\n399986\n');
    expect(readFileSync(log, 'utf8').split('\n').length).toBe(2 * 400000 + 2);
  });

  it('runSync: the same errors, the log, and stdout as bytes', () => {
    const log = join(dir, 'sync.log');
    expect(runSync(['sh', '-c', 'printf "a\\0b"; echo note >&2'], { logFile: log }).equals(Buffer.from('a\0b'))).toBe(true);
    expect(readFileSync(log, 'utf8')).toMatch(/^\$ sh -c .*\na\0bnote\n$/);
    expect(() => runSync(['sh', '-c', 'echo bad >&2; exit 5'])).toThrow(/^sh exited 5: [^]*stderr:\nbad$/);
    expect(() => runSync(['no-such-tool-xyz'])).toThrow(/^no-such-tool-xyz is not installed/);
  });
});

describe('run: input, environment, failures', () => {
  it('feeds a string, a Buffer or a stream to stdin, then EOF; without input, EOF at once', async () => {
    expect((await run(['cat'], { input: 'text\n' })).stdout).toBe('text\n');
    expect((await run(['cat'], { input: Buffer.from('a\0b') })).stdout).toBe('a\0b');
    expect((await run(['cat'], { input: Readable.from([Buffer.from('one '), Buffer.from('two')]) })).stdout).toBe('one two');
    expect((await run(['cat'])).stdout).toBe('');
    expect((await run(['cat'], { input: '' })).stdout).toBe('');
  });

  it('a failing input stream is the error, not what the tool made of its cut input', async () => {
    const input = new Readable({ read() {} });
    input.push('partial ');
    setImmediate(() => input.destroy(new Error('disk read failed')));
    // cat exits 0 on the EOF it gets: only the input's error says the data was incomplete.
    await expect(run(['cat'], { input })).rejects.toThrow(/^disk read failed$/);
  });

  it('a tool that exits without reading its input is no crash (EPIPE), and the rest of the stream is dropped', async () => {
    const big = Buffer.alloc(8 << 20, 'x');
    expect((await run(['sh', '-c', 'echo done'], { input: big })).stdout).toBe('done\n');
    const stream = Readable.from((function* () {
      for (let i = 0; i < 1000; i++) yield big.subarray(0, 1 << 20);
    })());
    expect((await run(['sh', '-c', 'exit 0'], { input: stream })).code).toBe(0);
    await until(() => stream.destroyed);
    expect(runSync(['true'], { input: big }).length).toBe(0);
  });

  it('lets go of an input stream the tool did not read before it settles: the caller reads on from its source', async () => {
    const source = new PassThrough();
    const feed = source.pipe(new PassThrough());
    source.write('not read by the tool');
    // stdout and stderr closed first: the tool's 'close' comes before its stdin's.
    await run(['sh', '-c', 'exec >&- 2>&-; sleep 0.1'], { input: feed });
    expect(feed.destroyed).toBe(true);
    // Destroying the feed paused the source (unpipe): that came before this resume, not after.
    source.resume();
    source.end('what follows');
    await finished(source);
    await expect(run(['no-such-tool-xyz'], { input: Readable.from(['x']) })).rejects.toThrow(/is not installed/);
  });

  it('gives the tool exactly the environment asked for, and its cwd', async () => {
    const env = { PATH: process.env.PATH, ONLY: 'this' };
    const { stdout } = await run(['sh', '-c', 'echo "$ONLY ${HOME-no-home} $(pwd)"'], { env, cwd: dir });
    expect(stdout).toBe(`this no-home ${dir}\n`);
    expect(runSync(['sh', '-c', 'echo "$ONLY ${HOME-no-home}"'], { env }).toString()).toBe('this no-home\n');
  });

  it('the whole output is in the log when run settles, stdout to onStdout and not logged', async () => {
    const log = join(dir, 'settled.log');
    await run(['sh', '-c', 'seq 1 300000; seq 1 300000 >&2'], { logFile: log, stdoutTail: true });
    expect(readFileSync(log, 'utf8').split('\n').length).toBe(2 * 300000 + 2);
    // With each write to the log held back (a slow disk), run still settles only after the last one.
    const slog = join(dir, 'slow.log');
    const node = nodeScript(`
      const fs = require('node:fs');
      for (const k of ['write', 'writev']) { const f = fs[k]; fs[k] = (...a) => { const cb = a.pop(); f(...a, (...r) => setTimeout(() => cb(...r), 200)); }; }
      require(${JSON.stringify(join(__dirname, 'run.ts'))}).run(['sh', '-c', 'echo out; echo err >&2'], { logFile: ${JSON.stringify(slog)} })
        .then(() => process.stdout.write(fs.readFileSync(${JSON.stringify(slog)}, 'utf8')));`);
    let printed = '';
    node.stdout!.on('data', (d: Buffer) => (printed += d));
    expect((await once(node, 'exit'))[0]).toBe(0);
    expect(printed).toMatch(/^\$ sh -c .*\n(out\nerr\n|err\nout\n)$/);
    const flog = join(dir, 'filter.log');
    const chunks: Buffer[] = [];
    const r = await run(['sh', '-c', 'echo data; echo note >&2'], { logFile: flog, onStdout: (c) => chunks.push(c) });
    expect([Buffer.concat(chunks).toString(), r.stdout, r.stderr]).toEqual(['data\n', '', 'note\n']);
    expect(readFileSync(flog, 'utf8')).toMatch(/^\$ sh -c .*\nnote\n$/);
  });

  it('a missing tool says how to install it; another spawn error is thrown as it is; okCodes', async () => {
    await expect(run(['no-such-tool-xyz'])).rejects.toThrow(/^no-such-tool-xyz is not installed \(see scripts\/setup.sh\)$/);
    const plain = join(dir, 'not-executable');
    writeFileSync(plain, '');
    await expect(run([plain])).rejects.toMatchObject({ code: 'EACCES' });
    expect((await run(['sh', '-c', 'exit 24'], { okCodes: [0, 24] })).code).toBe(24);
    await expect(run(['sh', '-c', 'exit 1'], { okCodes: [0, 24] })).rejects.toThrow(/^sh exited 1: sh -c 'exit 1'$/);
    await expect(run(['true'], { timeoutMs: -1 })).rejects.toThrow(/timeoutMs must be a non-negative number/);
  });

  it('runPipe: the tool\'s stdout as a stream; a failure or a missing tool fails the stream', async () => {
    const out = runPipe(['cat'], Readable.from(['a', 'b']));
    const chunks: Buffer[] = [];
    for await (const c of out) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('ab');
    const failing = async (s: Readable) => {
      for await (const _ of s);
    };
    const err = await failing(runPipe(['sh', '-c', 'echo partial; echo broken >&2; exit 3'], undefined)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ToolError);
    expect((err as ToolError).result).toMatchObject({ code: 3, stderr: 'broken\n' });
    await expect(failing(runPipe(['no-such-tool-xyz'], undefined))).rejects.toThrow(/^no-such-tool-xyz is not installed/);
  });
});

describe('toolTime', () => {
  it('sums each tool by name and counts the time any ran once, from `since` on', () => {
    const since = performance.now() + 1e9; // after every real run of this file
    recordToolRun('/usr/bin/xorriso', since, since + 1000);
    recordToolRun('dnf', since + 500, since + 2000); // overlaps xorriso by 0.5 s
    recordToolRun('dnf', since + 3000, since + 3250);
    expect(toolTime(since)).toEqual({ seconds: 2.25, tools: { xorriso: 1, dnf: 1.75 } });
    expect(toolTime(since + 2500)).toEqual({ seconds: 0.25, tools: { dnf: 0.25 } });
  });
  it('run and runSync record the tools they ran, not one that could not start', async () => {
    const since = performance.now();
    await run(['true']);
    runSync(['true']);
    await expect(run(['no-such-tool-xyz'])).rejects.toThrow(/not installed/);
    const t = toolTime(since, performance.now());
    expect(Object.keys(t.tools)).toEqual(['true']);
    expect(t.seconds).toBeGreaterThan(0);
    expect(t.seconds).toBeLessThanOrEqual(t.tools.true + 1e-3);
  });
});

describe('hasTool', () => {
  it('finds an executable file on PATH without starting a shell: not a plain file, not a directory', () => {
    // PATH holds only this directory: no `sh` to ask, so the answer is the lookup's own.
    const bin = join(dir, 'bin');
    mkdirSync(join(bin, 'releng-dir-tool'), { recursive: true });
    writeFileSync(join(bin, 'releng-exec-tool'), '#!/bin/sh\n');
    chmodSync(join(bin, 'releng-exec-tool'), 0o755);
    writeFileSync(join(bin, 'releng-plain-tool'), '');
    const saved = process.env.PATH;
    process.env.PATH = `/nonexistent-dir:${bin}`;
    try {
      expect(hasTool('releng-exec-tool')).toBe(true);
      expect(hasTool('releng-plain-tool')).toBe(false);
      expect(hasTool('releng-dir-tool')).toBe(false);
      expect(hasTool('releng-absent-tool')).toBe(false);
      expect(hasTool(join(bin, 'releng-exec-tool'))).toBe(true);
    } finally {
      process.env.PATH = saved;
    }
  });
});

/** A node process running `code` with this directory's modules, killed when the test ends, pass or fail (a hung one too). */
function nodeScript(code: string): ChildProcess {
  const child = spawn(process.execPath, ['-r', '@swc-node/register', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
  onTestFinished(() => void child.kill('SIGKILL'));
  return child;
}
