// Failure behaviour: damaged storage, races, aborted uploads, kill -9, eviction.
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { parseCacheServerConfig } from './config';
import { startCacheServer, type LogLine, type RunningCacheServer } from './server';
import { CacheStore } from './storage';
import { request, sha256, tempDir, waitFor } from './testing';

const RW = 'rw-token-0123456789abcdef';
const RO = 'ro-token-0123456789abcdef';
const repoRoot = resolve(__dirname, '../../..');

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function storageDir(): string {
  const dir = tempDir('cache-robust-');
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function start(storage: string, extra: { maxSize?: number; maxEntrySize?: number } = {}) {
  const logs: LogLine[] = [];
  const server = await startCacheServer(
    parseCacheServerConfig({ port: 0, storage, maxSize: '1GiB', maxEntrySize: '64MiB', ...extra, tokens: { readWrite: [RW], readOnly: [RO] } }, 'test', {
      env: {},
    }),
    { log: (l) => logs.push(l) },
  );
  cleanups.push(() => server.close());
  return { server, logs };
}

const put = (s: RunningCacheServer, hash: string, body: Buffer | string) => request(s.url, `/v1/cache/${hash}`, { method: 'PUT', token: RW, body });
const get = (s: RunningCacheServer, hash: string) => request(s.url, `/v1/cache/${hash}`, { token: RW });
const lineFor = (logs: LogLine[], hash: string, method: string) => logs.filter((l) => l.hash === hash && l.method === method);

describe('damaged storage never yields a 5xx on GET', () => {
  it('answers 404 (and logs) when an entry was replaced by a directory, deleted, or symlinked', async () => {
    const { server, logs } = await start(storageDir());
    for (const h of ['11', '22', '33', '44']) expect((await put(server, h, randomBytes(5000))).status).toBe(200);
    const path = (h: string) => server.store.entryPath(h);

    rmSync(path('11'));
    mkdirSync(path('11'));
    unlinkSync(path('22'));
    writeFileSync(join(server.store.dir, 'elsewhere'), 'not an entry');
    rmSync(path('33'));
    symlinkSync(join(server.store.dir, 'elsewhere'), path('33'));

    for (const h of ['11', '22', '33']) {
      const r = await get(server, h);
      expect(r.status, h).toBe(404);
      await waitFor(() => lineFor(logs, h, 'GET').length > 0, `log line for ${h}`);
    }
    expect(lineFor(logs, '11', 'GET')[0].error).toMatch(/unreadable entry/);
    expect(lineFor(logs, '33', 'GET')[0].error).toMatch(/unreadable entry/);
    // The damaged entries left the index; the intact one is still served.
    expect(server.stats().entries).toBe(1);
    expect((await get(server, '44')).status).toBe(200);
    expect((await request(server.url, '/health')).status).toBe(200);
  });

  it.skipIf(process.getuid?.() === 0)('answers 404 when an entry is unreadable (chmod 000)', async () => {
    const { server } = await start(storageDir());
    await put(server, '55', 'secret');
    chmodSync(server.store.entryPath('55'), 0o000);
    expect((await get(server, '55')).status).toBe(404);
  });
});

describe('races and aborted uploads', () => {
  it('lets exactly one of many concurrent PUTs of a hash win, and stores its body whole', async () => {
    const { server } = await start(storageDir());
    const bodies = Array.from({ length: 12 }, (_, i) => randomBytes(256 * 1024 + i * 1000));
    const replies = await Promise.all(bodies.map((b) => put(server, '424242', b)));
    const statuses = replies.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(bodies.length - 1);
    const winner = bodies[statuses.indexOf(200)];
    const got = await get(server, '424242');
    expect(got.body.length).toBe(winner.length);
    expect(sha256(got.body)).toBe(sha256(winner));
    expect(readdirSync(server.store.tmpDir)).toEqual([]);
    expect(readdirSync(server.store.entriesDir)).toEqual(['424242']);
  });

  it('keeps no entry and no temp file when an upload is cut mid-body', async () => {
    const { server, logs } = await start(storageDir());
    const socket = connect(server.port, '127.0.0.1');
    await new Promise<void>((r) => socket.once('connect', () => r()));
    socket.write(`PUT /v1/cache/987654 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${RW}\r\nContent-Length: 1000000\r\n\r\n`);
    socket.write(randomBytes(200_000));
    await waitFor(() => readdirSync(server.store.tmpDir).length === 1, 'the upload to start');
    socket.destroy();
    await waitFor(() => lineFor(logs, '987654', 'PUT').length === 1, 'the aborted PUT to be logged');
    expect(lineFor(logs, '987654', 'PUT')[0].error).toMatch(/upload aborted/);
    expect((await get(server, '987654')).status).toBe(404);
    expect(readdirSync(server.store.tmpDir)).toEqual([]);
    // And the hash can still be stored properly afterwards.
    expect((await put(server, '987654', 'complete')).status).toBe(200);
  });

  it('removes stale temp files on start and keeps the entries', async () => {
    const dir = storageDir();
    const first = await start(dir);
    await put(first.server, '1001', 'kept');
    await first.server.close();
    writeFileSync(join(dir, 'tmp', '1002.123.0.deadbeef'), 'half an upload');
    const { server, logs } = await start(dir);
    expect(readdirSync(server.store.tmpDir)).toEqual([]);
    expect(logs.find((l) => l.event === 'storage-open')).toMatchObject({ entries: 1, staleUploadsRemoved: 1 });
    expect((await get(server, '1001')).body.toString()).toBe('kept');
    expect((await get(server, '1002')).status).toBe(404);
  });
});

describe('graceful shutdown', () => {
  it('finishes an upload in flight at close(), answers it with Connection: close, and releases idle keep-alive sockets', async () => {
    const dir = storageDir();
    const logs: LogLine[] = [];
    // A grace period longer than the test timeout: close() must finish by draining, not by cutting.
    const server = await startCacheServer(
      parseCacheServerConfig({ port: 0, storage: dir, tokens: { readWrite: [RW] } }, 'test', { env: {} }),
      { log: (l) => logs.push(l), shutdownGraceMs: 3_600_000 },
    );
    cleanups.push(() => server.close());
    const idle = new Agent({ keepAlive: true });
    cleanups.push(() => idle.destroy());
    expect((await request(server.url, '/health', { agent: idle })).status).toBe(200); // leaves an idle socket

    const body = randomBytes(100_000);
    const socket = connect(server.port, '127.0.0.1');
    await new Promise<void>((r) => socket.once('connect', () => r()));
    let reply = '';
    socket.on('data', (d) => (reply += d));
    const ended = new Promise<void>((r) => socket.once('close', () => r()));
    socket.write(`PUT /v1/cache/31337 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${RW}\r\nContent-Length: ${body.length}\r\n\r\n`);
    socket.write(body.subarray(0, 50_000));
    await waitFor(() => readdirSync(server.store.tmpDir).length === 1, 'the upload to start');

    const closed = server.close();
    socket.write(body.subarray(50_000));
    await closed;
    await ended;
    expect(reply).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(reply.toLowerCase()).toContain('connection: close');
    const reopened = await CacheStore.open(dir, { maxSize: 1 << 30 });
    expect(reopened.has('31337')).toBe(true);
  });
});

describe('kill -9 and restart', () => {
  function spawnMain(config: string): { child: ChildProcess; url: Promise<string>; lines: Record<string, unknown>[]; exited: Promise<number | null> } {
    // Raw: the server under test, read line by line as it starts and killed with SIGKILL by the test.
    const child = spawn(process.execPath, ['-r', '@swc-node/register', 'apps/cache-server/src/main.ts', '--config', config], {
      cwd: repoRoot,
      env: { ...process.env, RELENG_CACHE_RW_TOKENS: RW, RELENG_CACHE_RO_TOKENS: RO },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cleanups.push(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    const lines: Record<string, unknown>[] = [];
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const url = new Promise<string>((resolveUrl, reject) => {
      let buf = '';
      child.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = JSON.parse(buf.slice(0, i));
          buf = buf.slice(i + 1);
          lines.push(line);
          if (line.event === 'listening') resolveUrl(line.url);
        }
      });
      void exited.then((code) => reject(new Error(`server exited (${code}) before listening: ${stderr}`)));
    });
    url.catch(() => {}); // a test that expects the exit does not await the url

    return { child, url, lines, exited };
  }

  it('serves every acknowledged entry, intact, after SIGKILL mid-traffic and a restart', async () => {
    const dir = storageDir();
    const config = join(dir, 'cache-server.yaml');
    writeFileSync(config, `port: 0\nstorage: ${JSON.stringify(join(dir, 'store'))}\nmaxSize: 1GiB\n`);
    const first = spawnMain(config);
    const url = await first.url;

    const acked = new Map<string, string>();
    let stop = false;
    const worker = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const hash = `${w}_${i}`;
        const body = randomBytes(1000 + Math.floor(Math.random() * 100_000));
        try {
          const r = await request(url, `/v1/cache/${hash}`, { method: 'PUT', token: RW, body });
          expect(r.status).toBe(200);
          acked.set(hash, sha256(body));
          if (acked.size >= 200 && !stop) {
            stop = true;
            first.child.kill('SIGKILL');
          }
        } catch (e) {
          // Requests in flight at the kill fail (not asserted on); before it, none may.
          if (!stop) throw e;
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, (_, w) => worker(w)));
    expect(await first.exited).toBe(null); // killed by the signal
    expect(acked.size).toBeGreaterThanOrEqual(200);

    const second = spawnMain(config);
    const url2 = await second.url;
    expect(readdirSync(join(dir, 'store', 'tmp'))).toEqual([]);
    for (const [hash, sum] of acked) {
      const r = await request(url2, `/v1/cache/${hash}`, { token: RO });
      expect(r.status, hash).toBe(200);
      expect(sha256(r.body), hash).toBe(sum);
    }
    const health = JSON.parse((await request(url2, '/health')).body.toString());
    expect(health.entries).toBeGreaterThanOrEqual(acked.size);

    // Graceful stop on SIGTERM.
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    expect(second.lines.map((l) => l.event)).toContain('stopped');
  });

  it('exits 2 with the file and field named on an invalid config', async () => {
    const dir = storageDir();
    const config = join(dir, 'bad.yaml');
    writeFileSync(config, 'port: 99999\n');
    const { child, exited } = spawnMain(config);
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    expect(await exited).toBe(2);
    expect(stderr).toContain(config);
    expect(stderr).toMatch(/port: expected a number <= 65535/);
  });
});

describe('eviction', () => {
  const KB2 = () => randomBytes(2048);

  it('keeps the total under maxSize, evicting least recently used first, to 90%', async () => {
    const dir = storageDir();
    const { server } = await start(dir, { maxSize: 10 * 1024, maxEntrySize: 4096 });
    for (const h of ['a1', 'b2', 'c3', 'd4']) expect((await put(server, h, KB2())).status).toBe(200);
    expect((await get(server, 'a1')).status).toBe(200); // a1 is now the most recently used
    expect((await put(server, 'e5', KB2())).status).toBe(200); // exactly at the limit: nothing goes
    expect(server.stats()).toMatchObject({ entries: 5, bytes: 10 * 1024 });
    expect((await put(server, 'f6', KB2())).status).toBe(200); // over: evict b2, c3 (to <= 9216)
    expect(server.stats().bytes).toBeLessThanOrEqual(10 * 1024 * 0.9);
    expect(server.store.lruOrder()).toEqual(['d4', 'a1', 'e5', 'f6']);
    for (const h of ['b2', 'c3']) expect((await get(server, h)).status).toBe(404);
    for (const h of ['a1', 'd4', 'e5', 'f6']) expect((await get(server, h)).status).toBe(200);
    await waitFor(() => readdirSync(server.store.entriesDir).length === 4, 'evicted files to be unlinked');
    expect(readdirSync(server.store.entriesDir).sort()).toEqual(['a1', 'd4', 'e5', 'f6']);
  });

  it('seeds LRU order from file mtimes on start and bumps the mtime on a hit', async () => {
    const dir = storageDir();
    const first = await start(dir, { maxSize: 10 * 1024, maxEntrySize: 4096 });
    for (const h of ['a1', 'b2', 'c3', 'd4']) await put(first.server, h, KB2());
    await first.server.close();
    const now = Date.now() / 1000;
    const age = { b2: 4000, d4: 3000, a1: 2000, c3: 1000 };
    for (const [h, s] of Object.entries(age)) utimesSync(join(dir, 'entries', h), now - s, now - s);

    const { server } = await start(dir, { maxSize: 10 * 1024, maxEntrySize: 4096 });
    expect(server.store.lruOrder()).toEqual(['b2', 'd4', 'a1', 'c3']);
    // A hit on an entry untouched for a while updates its mtime, so the order survives restarts.
    const before = statSync(server.store.entryPath('b2')).mtimeMs;
    expect((await get(server, 'b2')).status).toBe(200);
    await waitFor(() => statSync(server.store.entryPath('b2')).mtimeMs > before + 1000_000, 'mtime bump');
    expect(server.store.lruOrder()).toEqual(['d4', 'a1', 'c3', 'b2']);
    await put(server, 'e5', KB2());
    await put(server, 'f6', KB2()); // evicts d4, a1
    expect(server.store.lruOrder()).toEqual(['c3', 'b2', 'e5', 'f6']);
  });

  it('never evicts an entry that is being read', async () => {
    const dir = storageDir();
    const store = await CacheStore.open(dir, { maxSize: 3000 });
    const bodies = new Map<string, Buffer>();
    for (const h of ['r1', 'r2', 'r3']) {
      bodies.set(h, randomBytes(1000));
      await store.put(h, [bodies.get(h)!], 1000);
    }
    const reading = await store.openRead('r1');
    expect(reading).toBeDefined();
    await store.put('r4', [randomBytes(1000)], 1000); // over the limit; r1 is the LRU but in use
    expect(store.has('r1')).toBe(true);
    expect(store.has('r2')).toBe(false);
    expect(store.has('r3')).toBe(false);
    const chunks: Buffer[] = [];
    for await (const c of reading!.stream) chunks.push(c as Buffer);
    reading!.release();
    expect(Buffer.concat(chunks).equals(bodies.get('r1')!)).toBe(true);
    await store.close();
  });
});
