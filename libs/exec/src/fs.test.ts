import { describe, it, expect } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync, existsSync, readFileSync, readdirSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireLock, acquireLockWaiting, writeFileAtomic, mapLimit, scratchName, sweepScratch } from './fs';
import { hashFiles } from './hash-workers';
import { run, ToolError, preflight } from './run';

describe('exec primitives', () => {
  const dir = mkdtempSync(join(tmpdir(), 'exec-'));
  it('a lock refuses a second holder (in this process too) and takes over a dead owner', () => {
    const f = join(dir, 'a.lock');
    const release = acquireLock(f, 'thing');
    expect(() => acquireLock(f, 'thing')).toThrow(/locked by running process/);
    release();
    writeFileSync(f, '999999999\n'); // a pid that does not exist: a killed run's lock
    const again = acquireLock(f, 'thing');
    expect(readFileSync(f, 'utf8').trim()).toBe(String(process.pid));
    again();
    expect(existsSync(f)).toBe(false);
  });
  it('sweeps the scratch of dead processes of this host, and nothing else', () => {
    const d = join(dir, 'scratch');
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
    const want = spawnSync('sha256sum', files, { encoding: 'utf8' }).stdout.trim().split('\n').map((l) => l.split(' ')[0]);
    expect(await hashFiles(files, 'sha256', 3)).toEqual(want);
    expect(await hashFiles([files[2]], 'md5')).toEqual([spawnSync('md5sum', [files[2]], { encoding: 'utf8' }).stdout.split(' ')[0]]);
    await expect(hashFiles([files[0], join(dir, 'missing.iso')])).rejects.toThrow(/missing\.iso: ENOENT/);
    await expect(hashFiles([files[2], join(dir, 'missing.iso')])).rejects.toThrow(/missing\.iso: ENOENT/);
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
    await expect(run(['no-such-tool-xyz'])).rejects.toThrow(/not installed/);
    expect(() => preflight(['sh', 'createrepo_c', 'no-such-tool-xyz'])).toThrow(/missing tools, nothing was changed: no-such-tool-xyz is missing/);
  });
});
