import { afterAll, describe, it, expect, onTestFinished } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync, existsSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireLock, acquireLockWaiting, isLocalFileSystem, readJson, statMany, writeFileAtomic, writeFilesIfChanged, writeJsonAtomic, mapLimit, allOrFirstFailure, scratchName, sweepScratch, LockBusyError } from './fs';
import { gunzipSync } from 'node:zlib';
import { hashFiles, hashFilesSized, startHashWorkers } from './hash-workers';
import { run, runSync, ToolError, preflight } from './run';

/** Runs `fn` as if on host `host` (RELENG_HOSTNAME), restoring the real host after. */
async function asHost<T>(host: string, fn: () => T | Promise<T>): Promise<T> {
  const before = process.env.RELENG_HOSTNAME;
  process.env.RELENG_HOSTNAME = host;
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env.RELENG_HOSTNAME;
    else process.env.RELENG_HOSTNAME = before;
  }
}

/** A process on host `host` that takes the lock and holds it until it is killed (it never releases it). */
async function lockHolder(file: string, what: string, host: string): Promise<ChildProcess> {
  const script = `require(${JSON.stringify(join(__dirname, 'fs.ts'))}).acquireLock(process.argv[1], process.argv[2]); console.log('locked'); setInterval(() => {}, 1 << 30);`;
  // A raw spawn: a process that lives until the test kills it, read as it starts.
  const child = spawn(process.execPath, ['-r', '@swc-node/register', '-e', script, file, what], { env: { ...process.env, RELENG_HOSTNAME: host }, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  await Promise.race([once(child.stdout!, 'data'), once(child, 'exit')]);
  if (!out.includes('locked')) throw new Error(`the lock holder did not lock ${file}`);
  return child;
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
}

/** Whether this process may mount a tmpfs (root in a sandbox may still lack CAP_SYS_ADMIN). */
function canMountTmpfs(): boolean {
  const d = mkdtempSync(join(tmpdir(), 'exec-mnt-'));
  try {
    runSync(['mount', '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', d]);
    runSync(['umount', d]);
    return true;
  } catch {
    return false;
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
}

describe('exec primitives', () => {
  it('a .json.gz manifest is gzipped compact JSON, the same bytes every time, and reads back whole', () => {
    const d = mkdtempSync(join(tmpdir(), 'json-gz-'));
    try {
      const value = { trees: [{ path: 'BaseOS/x86_64/os', packages: Array.from({ length: 200 }, (_, i) => ({ path: `Packages/p${i}.rpm`, sha256: 'a'.repeat(64), size: i })) }] };
      writeJsonAtomic(join(d, 'a.json.gz'), value);
      writeJsonAtomic(join(d, 'b.json.gz'), value);
      writeJsonAtomic(join(d, 'c.json'), value);
      const gz = readFileSync(join(d, 'a.json.gz'));
      expect(gz.equals(readFileSync(join(d, 'b.json.gz')))).toBe(true);
      expect(gunzipSync(gz).toString()).toBe(JSON.stringify(value));
      expect(readJson(join(d, 'a.json.gz'))).toEqual(value);
      expect(readJson(join(d, 'c.json'))).toEqual(value);
      expect(gz.length * 8).toBeLessThan(statSync(join(d, 'c.json')).size);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  const dir = mkdtempSync(join(tmpdir(), 'exec-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  it('a lock refuses a second holder (in this process too) and takes over a dead owner (also a pid-only lock of an older version)', () => {
    const f = join(dir, 'a.lock');
    const release = acquireLock(f, 'thing');
    expect(() => acquireLock(f, 'thing')).toThrow(/locked by running process/);
    release();
    writeFileSync(f, '999999999\n'); // a pid that does not exist: a killed run's lock, written by an older version (a pid only) on this host
    const again = acquireLock(f, 'thing');
    expect(JSON.parse(readFileSync(f, 'utf8'))).toMatchObject({ host: hostname(), pid: process.pid, what: 'thing' });
    again();
    expect(existsSync(f)).toBe(false);
  });
  it('a lock records host, pid, what and since; a dead owner on another host is not taken over there, only on its own host', async () => {
    // A compose root on NFS: runner-a's sync was killed; runner-b cannot see runner-a's pids.
    const f = join(dir, 'nfs/.sync-Rocky-9.lock');
    const a = await lockHolder(f, 'sync of rocky-9', 'runner-a');
    const pid = a.pid!;
    await kill(a);
    const text = readFileSync(f, 'utf8');
    const err = await asHost('runner-b', () => acquireLock(f, 'sync of rocky-9')).catch((e) => e);
    expect(readFileSync(f, 'utf8'), "runner-b took over runner-a's lock").toBe(text);
    expect(err).toBeInstanceOf(LockBusyError);
    const held = JSON.parse(text);
    expect(held).toEqual({ host: 'runner-a', pid, what: 'sync of rocky-9', since: expect.stringMatching(/^\d{4}-\d\d-\d\dT[\d:.]+Z$/) });
    expect(err.message).toBe(`sync of rocky-9 is locked by process ${pid} on host runner-a (sync of rocky-9, since ${held.since}) (${f}); only runner-a can tell whether it still runs: wait for it, or remove the lock if that run is gone`);
    expect(err.holder).toEqual(held);
    // runner-a sees its process is dead: the next run there takes the lock over.
    const release = await asHost('runner-a', () => acquireLock(f, 'sync of rocky-9'));
    expect(JSON.parse(readFileSync(f, 'utf8'))).toMatchObject({ host: 'runner-a', pid: process.pid });
    release();
    expect(readdirSync(join(dir, 'nfs'))).toEqual([]);
    // A lock removed by hand (its host was thought gone) and taken by another host since stays
    // with its new owner when the first holder releases.
    const first = acquireLock(f, 'sync of rocky-9');
    const other = JSON.stringify({ host: 'runner-b', pid: 1234, what: 'sync of rocky-9', since: new Date().toISOString() }) + '\n';
    writeFileSync(f, other);
    first();
    expect(readFileSync(f, 'utf8')).toBe(other);
    rmSync(f);
  });
  it('another host waits for a live owner, bounded, naming it; the owner host refuses naming its running process', async () => {
    const f = join(dir, 'nfs/production.lock');
    const a = await lockHolder(f, 'production publishing', 'runner-a');
    try {
      const since = JSON.parse(readFileSync(f, 'utf8')).since;
      const waits: string[] = [];
      // The owner may be gone with its host: this host cannot see it die, so waiting is bounded.
      const err = await asHost('runner-b', () => acquireLockWaiting(f, 'file lists', { timeoutMs: 100, onWait: (w) => waits.push(w) })).catch((e) => e);
      const busy = `file lists is locked by process ${a.pid} on host runner-a (production publishing, since ${since}) (${f})`;
      expect(err.message).toMatch(`timed out after 100 ms waiting: ${busy}`);
      expect(waits).toEqual([expect.stringContaining(busy)]);
      await asHost('runner-a', () => expect(() => acquireLock(f, 'file lists')).toThrow(`file lists is locked by running process ${a.pid} on this host (runner-a) (production publishing, since ${since}) (${f}); wait for it to finish`));
    } finally {
      await kill(a);
    }
  });
  it.skipIf(process.getuid?.() !== 0 || !canMountTmpfs())('a lock that cannot be created (disk full, read-only) names the lock file and leaves no temp file', async () => {
    const mnt = join(dir, 'tiny');
    mkdirSync(join(mnt), { recursive: true });
    runSync(['mount', '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt]);
    try {
      const f = join(mnt, 'work/.finalize.lock');
      mkdirSync(join(mnt, 'work'));
      expect(() => writeFileSync(join(mnt, 'filler'), Buffer.alloc(1 << 20))).toThrow(/ENOSPC/); // the disk is full
      const err = (() => {
        try {
          acquireLock(f, 'finalize of Rocky-9.7-20251120.0');
        } catch (e) {
          return e as NodeJS.ErrnoException;
        }
      })();
      expect(readdirSync(join(mnt, 'work')), 'files left beside the lock').toEqual([]);
      expect(err?.code).toBe('ENOSPC');
      expect(err?.message).toMatch(`cannot create the lock ${f} for finalize of Rocky-9.7-20251120.0: ENOSPC: no space left on device`);
      runSync(['mount', '-o', 'remount,ro', mnt]);
      expect(() => acquireLock(f, 'finalize of Rocky-9.7-20251120.0')).toThrow(`cannot create the lock ${f} for finalize of Rocky-9.7-20251120.0: EROFS: read-only file system`);
    } finally {
      runSync(['umount', mnt]);
    }
  });
  it('sweeps the scratch of dead processes of this host, and nothing else', () => {
    const d = join(dir, 'scratch');
    // Raw: what matters is a pid, of a process that exited and of one that lives until killed below.
    const dead = spawnSync('true').pid!; // exited: its pid names a killed run
    const live = spawn('sleep', ['30']);
    try {
      const host = hostname();
      const names = {
        deadDir: `iso-rocky-9-x86_64@${host}.${dead}`,
        deadFile: `put@${host}.${dead}-0a1b2c`,
        liveDir: `iso-rocky-9-aarch64@${host}.${live.pid}`,
        mine: scratchName('extra-rocky-9-x86_64-dvd'),
        otherHost: `put@another-runner.example.org.${dead}-0a1b2c`,
        unrelated: 'cacache-tmp-1234',
      };
      for (const [k, n] of Object.entries(names)) (k.endsWith('Dir') || k === 'mine' ? mkdirSync(join(d, n, 'sub'), { recursive: true }) : writeFileSync(join(d, n), 'x'));
      expect(sweepScratch(d).sort()).toEqual([names.deadDir, names.deadFile].sort());
      expect(readdirSync(d).sort()).toEqual([names.liveDir, names.mine, names.otherHost, names.unrelated].sort());
      expect(sweepScratch(join(dir, 'no-such-dir'))).toEqual([]);
    } finally {
      live.kill();
    }
  });
  it('hashes files on worker threads, in order, as sha256sum does; a missing file is named', async () => {
    // Over 64 MiB in all: worker threads; the small sets below hash on this thread.
    const files = [0, 1, 70_000_001, 12].map((n, i) => {
      const f = join(dir, `h${i}.bin`);
      writeFileSync(f, Buffer.alloc(n, i + 1));
      return f;
    });
    const want = runSync(['sha256sum', ...files]).toString().trim().split('\n').map((l) => l.split(' ')[0]);
    expect(await hashFiles(files, 'sha256', 3)).toEqual(want);
    expect(await hashFiles([files[2]], 'md5')).toEqual([runSync(['md5sum', files[2]]).toString().split(' ')[0]]);
    await expect(hashFiles([files[0], join(dir, 'missing.iso')])).rejects.toThrow(/missing\.iso: ENOENT/);
    await expect(hashFiles([files[2], join(dir, 'missing.iso')])).rejects.toThrow(/missing\.iso: ENOENT/);
  });
  it('hashes many small files in batches on worker threads, with their sizes; a missing file in a batch is named', async () => {
    // 300 files: over FEW, so batches of them go to the workers whatever their total size.
    const files = Array.from({ length: 300 }, (_, i) => {
      const f = join(dir, `s${i}.rpm`);
      writeFileSync(f, Buffer.alloc(i * 37, i % 251));
      return f;
    });
    const want = runSync(['sha256sum', ...files]).toString().trim().split('\n').map((l) => l.split(' ')[0]);
    const got = await hashFilesSized(files, 'sha256', 2);
    expect(got.map((h) => h.digest)).toEqual(want);
    expect(got.map((h) => h.size)).toEqual(files.map((_, i) => i * 37));
    // On this thread too (few files), sizes as read.
    expect(await hashFilesSized(files.slice(0, 3), 'sha256', 1)).toEqual(got.slice(0, 3));
    const broken = [...files.slice(0, 150), join(dir, 'gone.rpm'), ...files.slice(150)];
    await expect(hashFilesSized(broken, 'sha256', 2)).rejects.toThrow(/gone\.rpm: ENOENT/);
  });
  it("calls at once share the process's hash workers: each gets its own files' digests, one call's failure or callback error is its own", async () => {
    const files = Array.from({ length: 400 }, (_, i) => {
      const f = join(dir, `c${i}.rpm`);
      writeFileSync(f, Buffer.alloc(i * 11 + 1, i % 253));
      return f;
    });
    const want = runSync(['sha256sum', ...files]).toString().trim().split('\n').map((l) => l.split(' ')[0]);
    startHashWorkers(2);
    const seen: number[] = [];
    const [a, b, broken, throwing] = await Promise.allSettled([
      hashFilesSized(files.slice(0, 200), 'sha256', 2, (i) => seen.push(i)),
      hashFiles(files.slice(200), 'sha256', 3),
      hashFiles([...files.slice(0, 100), join(dir, 'gone-too.rpm'), ...files.slice(100, 200)], 'sha256', 2),
      hashFiles(files, 'sha256', 2).then(() => hashFilesSized(files.slice(0, 100), 'sha256', 2, () => {
        throw new Error('the caller gave up');
      })),
    ]);
    expect(a.status === 'fulfilled' && a.value.map((h) => h.digest)).toEqual(want.slice(0, 200));
    expect(a.status === 'fulfilled' && a.value.map((h) => h.size)).toEqual(files.slice(0, 200).map((_, i) => i * 11 + 1));
    expect(seen.sort((x, y) => x - y)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(b.status === 'fulfilled' && b.value).toEqual(want.slice(200));
    expect(broken.status === 'rejected' && String(broken.reason)).toMatch(/gone-too\.rpm: ENOENT/);
    expect(throwing.status === 'rejected' && String(throwing.reason)).toMatch(/the caller gave up/);
    // And the workers still serve the next call.
    expect(await hashFiles(files, 'sha256', 2)).toEqual(want);
  });
  it('idle hash workers do not keep a process alive', async () => {
    const script = `const { hashFiles } = require(${JSON.stringify(join(__dirname, 'hash-workers.ts'))}); hashFiles(process.argv.slice(1), 'sha256', 2).then((s) => console.log(s.length));`;
    const files = Array.from({ length: 100 }, (_, i) => {
      const f = join(dir, `x${i}.rpm`);
      writeFileSync(f, Buffer.alloc(i + 1));
      return f;
    });
    // Fails by the test's timeout if the process never exits (and is killed then).
    const child = spawn(process.execPath, ['-r', '@swc-node/register', '-e', script, ...files], { stdio: ['ignore', 'pipe', 'pipe'] });
    onTestFinished(() => void child.kill('SIGKILL'));
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d));
    child.stderr!.on('data', (d: Buffer) => (err += d));
    const [status] = (await once(child, 'exit')) as [number];
    expect(err).toBe('');
    expect([status, out.trim()]).toEqual([0, '100']);
  });
  it('a waiting lock queues behind the holder, says once what it waits for, and can give up', async () => {
    const f = join(dir, 'w.lock');
    const release = acquireLock(f, 'lists');
    const waits: string[] = [];
    let got = false;
    const waiting = acquireLockWaiting(f, 'lists', { onWait: (w) => waits.push(w) }).then((u) => ((got = true), u));
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toBe(false);
    await expect(acquireLockWaiting(f, 'lists', { timeoutMs: 50 })).rejects.toThrow(/timed out after 50 ms waiting: lists is locked by running process/);
    release();
    (await waiting)();
    expect(got).toBe(true);
    expect(waits).toEqual([expect.stringMatching(/^lists is locked by running process \d+/)]);
  });
  it('writes atomically, leaving no temp file', () => {
    writeFileAtomic(join(dir, 'sub/x.txt'), 'hello');
    expect(readFileSync(join(dir, 'sub/x.txt'), 'utf8')).toBe('hello');
    expect(readdirSync(join(dir, 'sub'))).toEqual(['x.txt']);
  });
  it('isLocalFileSystem: a memory file system is local, a path not made yet is judged by its parent, procfs is not', () => {
    expect(isLocalFileSystem('/dev/shm')).toBe(true);
    expect(isLocalFileSystem(`/dev/shm/not-made-${process.pid}/store`)).toBe(true);
    expect(isLocalFileSystem('/proc')).toBe(false);
  });
  it('statMany: stats in order, undefined for what is not there, other errors thrown; the same with synchronous calls and the promise API', async () => {
    const d = join(dir, 'statmany');
    mkdirSync(d);
    writeFileSync(join(d, 'a'), 'aaa');
    writeFileSync(join(d, 'b'), 'b');
    symlinkSync('loop', join(d, 'loop'));
    const paths = [join(d, 'a'), join(d, 'missing'), join(d, 'a', 'under-a-file'), join(d, 'b')];
    for (const local of [true, false]) {
      expect((await statMany(paths, local)).map((st) => st?.size)).toEqual([3, undefined, undefined, 1]);
      await expect(statMany([join(d, 'a'), join(d, 'loop')], local)).rejects.toThrow(/ELOOP/);
    }
    expect(await statMany([])).toEqual([]);
    expect((await statMany(paths)).map((st) => st?.size)).toEqual([3, undefined, undefined, 1]);
  });
  it('writeFilesIfChanged: writes what differs, dated as asked, leaves identical files as they are, and no temp file', async () => {
    const d = join(dir, 'many');
    const f = (i: number) => join(d, i < 2 ? 'deep' : '', `f${i}`);
    expect(await writeFilesIfChanged(Array.from({ length: 40 }, (_, i) => ({ file: f(i), data: `text ${i}\n`, mtime: 1_700_000_000 })))).toBe(40);
    const before = statSync(f(3));
    expect(readFileSync(f(0), 'utf8')).toBe('text 0\n');
    expect(before.mtimeMs).toBe(1_700_000_000_000);
    expect(await writeFilesIfChanged([{ file: f(3), data: 'text 3\n', mtime: 1 }, { file: f(4), data: Buffer.from('new 4\n') }])).toBe(1);
    expect(statSync(f(3)).ino).toBe(before.ino);
    expect(statSync(f(3)).mtimeMs).toBe(before.mtimeMs);
    expect(readFileSync(f(4), 'utf8')).toBe('new 4\n');
    expect(readdirSync(d).filter((n) => n.includes('.tmp@'))).toEqual([]);
    // A failure names the file and leaves no temp beside it.
    mkdirSync(join(d, 'f5.dir'));
    await expect(writeFilesIfChanged([{ file: join(d, 'f5.dir'), data: 'x' }])).rejects.toThrow(/f5\.dir/);
    expect(readdirSync(d).filter((n) => n.includes('.tmp@'))).toEqual([]);
  });
  it('bounds concurrency and keeps order', async () => {
    let active = 0;
    let peak = 0;
    const out = await mapLimit([5, 1, 4, 2, 3], 2, async (n) => {
      peak = Math.max(peak, ++active);
      await new Promise((r) => setTimeout(r, n));
      active--;
      return n * 10;
    });
    expect(out).toEqual([50, 10, 40, 20, 30]);
    expect(peak).toBe(2);
  });
  it('reports a failing tool with its output, and a missing tool with an install hint', async () => {
    const err = await run(['sh', '-c', 'echo boom >&2; exit 3'], { logFile: join(dir, 'logs/deep/t.log') }).catch((e) => e);
    expect(err).toBeInstanceOf(ToolError);
    expect(err.message).toMatch(/exited 3[\s\S]*boom/);
    expect(readFileSync(join(dir, 'logs/deep/t.log'), 'utf8')).toContain('boom');
    expect(err.message).toContain(`full log: ${join(dir, 'logs/deep/t.log')}`);
    await expect(run(['no-such-tool-xyz'])).rejects.toThrow(/not installed/);
    expect(() => preflight(['sh', 'createrepo_c', 'no-such-tool-xyz'])).toThrow(/missing tools, nothing was changed: no-such-tool-xyz is missing/);
  });
  it("a failing tool's error shows the tails of both stdout and stderr, and names its log", async () => {
    const script = 'for i in $(seq 1 20); do echo "copying $i"; done; echo "cannot write /out: No space left" >&2; exit 4';
    const log = join(dir, 'logs/both.log');
    const err = await run(['sh', '-c', script], { logFile: log }).catch((e) => e);
    const stdout = Array.from({ length: 15 }, (_, i) => `copying ${i + 6}`).join('\n');
    expect(err.message).toBe(`sh exited 4: sh -c '${script}'\nstderr:\ncannot write /out: No space left\nstdout (last 15 of 20 lines):\n${stdout}\nfull log: ${log}`);
    expect(err.logFile).toBe(log);
    // Without a log file and with output on stdout only.
    expect((await run(['sh', '-c', 'echo only-out; exit 1']).catch((e) => e)).message).toBe(`sh exited 1: sh -c 'echo only-out; exit 1'\nstdout:\nonly-out`);
  });
});

describe('allOrFirstFailure', () => {
  it('the first failure stops the others, and is thrown once they have all ended', async () => {
    const ended: string[] = [];
    // Never ends on its own: only the abort ends it, with an error of its own that must not win.
    const waits = (signal: AbortSignal) => new Promise<string>((_, reject) => signal.addEventListener('abort', () => (ended.push('waiter'), reject(new Error('aborted')))));
    const fails = async () => {
      await Promise.resolve();
      throw new Error('first');
    };
    await expect(allOrFirstFailure<string>([waits, fails])).rejects.toThrow(/^first$/);
    expect(ended).toEqual(['waiter']);
  });

  it('takes a failure a task reports while it goes on, and gives every result when none fails', async () => {
    const reports = async (signal: AbortSignal, fail: (e: unknown) => void) => {
      fail(new Error('reported'));
      return signal.aborted ? 'saw the abort' : 'no abort';
    };
    await expect(allOrFirstFailure([reports])).rejects.toThrow(/^reported$/);
    expect(await allOrFirstFailure([async () => 1, async () => 2])).toEqual([1, 2]);
  });
});
