// HTTP contract as Nx 22's client needs it, plus config validation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { CacheServerConfigError, loadCacheServerConfig, parseCacheServerConfig, parseSize } from './config';
import { startCacheServer, type LogLine, type RunningCacheServer } from './server';
import { request, sha256, tempDir } from './testing';

const RW = 'rw-token-0123456789abcdef';
const RO = 'ro-token-0123456789abcdef';

describe('HTTP API', () => {
  let dir: string;
  let server: RunningCacheServer;
  const logs: LogLine[] = [];

  beforeAll(async () => {
    dir = tempDir('cache-http-');
    server = await startCacheServer(
      parseCacheServerConfig(
        { port: 0, storage: join(dir, 'store'), maxSize: '64MiB', maxEntrySize: '1MiB', tokens: { readWrite: [RW], readOnly: [RO] } },
        'test',
        { env: {} },
      ),
      { log: (l) => logs.push(l) },
    );
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores with 200, serves identical bytes, and refuses to overwrite with 409', async () => {
    const body = randomBytes(300_000);
    const put = await request(server.url, '/v1/cache/1234567890', { method: 'PUT', token: RW, body });
    expect(put.status).toBe(200);
    const get = await request(server.url, '/v1/cache/1234567890', { token: RW });
    expect(get.status).toBe(200);
    expect(get.headers['content-type']).toBe('application/octet-stream');
    expect(get.headers['content-length']).toBe(String(body.length));
    expect(sha256(get.body)).toBe(sha256(body));
    const again = await request(server.url, '/v1/cache/1234567890', { method: 'PUT', token: RW, body: randomBytes(10) });
    expect(again.status).toBe(409);
    expect(sha256((await request(server.url, '/v1/cache/1234567890', { token: RW })).body)).toBe(sha256(body));
  });

  it('gives a read-only token 403 on PUT (nothing stored) and 200 on GET', async () => {
    expect((await request(server.url, '/v1/cache/555', { method: 'PUT', token: RO, body: 'x' })).status).toBe(403);
    expect((await request(server.url, '/v1/cache/555', { token: RW })).status).toBe(404);
    await request(server.url, '/v1/cache/556', { method: 'PUT', token: RW, body: 'shared' });
    const get = await request(server.url, '/v1/cache/556', { token: RO });
    expect(get.status).toBe(200);
    expect(get.body.toString()).toBe('shared');
  });

  it('answers 401 text/plain without a token or with an unknown one, on every endpoint but /health', async () => {
    for (const [method, path] of [
      ['GET', '/v1/cache/1'],
      ['PUT', '/v1/cache/1'],
      ['GET', '/nope'],
      ['DELETE', '/v1/cache/1'],
    ]) {
      const none = await request(server.url, path, { method, body: method === 'PUT' ? 'x' : undefined });
      expect(none.status, `${method} ${path}`).toBe(401);
      // Nx shows the body of a 401 only when the content type is exactly text/plain.
      expect(none.headers['content-type']).toBe('text/plain');
      const bad = await request(server.url, path, { method, token: 'wrong-token-0123456789', body: method === 'PUT' ? 'x' : undefined });
      expect(bad.status).toBe(401);
      expect(bad.body.toString()).toBe('bad token');
    }
    expect((await request(server.url, '/v1/cache/1', { headers: { authorization: `Basic ${RW}` } })).status).toBe(401);
  });

  it('answers 404 on a miss and on unknown paths, 405 on other methods', async () => {
    expect((await request(server.url, '/v1/cache/999999', { token: RW })).status).toBe(404);
    expect((await request(server.url, '/v2/whatever', { token: RW })).status).toBe(404);
    expect((await request(server.url, '/v1/cache/1', { method: 'DELETE', token: RW })).status).toBe(405);
  });

  it('rejects hashes that are not [A-Za-z0-9_-]{1,128} with 400 (no path traversal)', async () => {
    for (const hash of ['..%2F..%2Fetc%2Fpasswd', '%2e%2e', 'a.b', 'x'.repeat(129), 'a%00b', '']) {
      const get = await request(server.url, `/v1/cache/${hash}`, { token: RW });
      expect(get.status, hash).toBe(400);
      const put = await request(server.url, `/v1/cache/${hash}`, { method: 'PUT', token: RW, body: 'x' });
      expect(put.status, hash).toBe(400);
    }
    // Raw `..` segments (sent verbatim) never match the route.
    expect((await request(server.url, '/v1/cache/../../x', { token: RW })).status).toBe(404);
    expect((await request(server.url, '/v1/cache/Ab_-09', { token: RW })).status).toBe(404);
  });

  it('accepts the double slash a trailing slash in NX_SELF_HOSTED_REMOTE_CACHE_SERVER produces', async () => {
    expect((await request(server.url, '//v1/cache/777', { method: 'PUT', token: RW, body: 'slash' })).status).toBe(200);
    expect((await request(server.url, '/v1/cache/777', { token: RW })).body.toString()).toBe('slash');
  });

  it('requires Content-Length on PUT (411)', async () => {
    const r = await request(server.url, '/v1/cache/411', { method: 'PUT', token: RW, body: 'chunked', headers: { 'transfer-encoding': 'chunked' } });
    expect(r.status).toBe(411);
    expect((await request(server.url, '/v1/cache/411', { token: RW })).status).toBe(404);
  });

  it('refuses entries over maxEntrySize with 413, before reading the body', async () => {
    const r = await request(server.url, '/v1/cache/413', { method: 'PUT', token: RW, body: randomBytes(1024 * 1024 + 1) });
    expect(r.status).toBe(413);
    // Only headers sent: the answer must not wait for a body that is not coming.
    const status = await new Promise<string>((resolve, reject) => {
      const s = connect(server.port, '127.0.0.1', () =>
        s.write(`PUT /v1/cache/4130 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${RW}\r\nContent-Length: 999999999999\r\n\r\n`),
      );
      s.once('data', (d) => {
        resolve(d.toString().split('\r\n')[0]);
        s.destroy();
      });
      s.on('error', reject);
    });
    expect(status).toBe('HTTP/1.1 413 Payload Too Large');
    expect((await request(server.url, '/v1/cache/413', { token: RW })).status).toBe(404);
    // Exactly maxEntrySize is fine.
    expect((await request(server.url, '/v1/cache/4131', { method: 'PUT', token: RW, body: randomBytes(1024 * 1024) })).status).toBe(200);
  });

  it('keeps a keep-alive connection usable after early 403/409 answers to a PUT with a body', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      await request(server.url, '/v1/cache/8080', { method: 'PUT', token: RW, body: 'first', agent });
      const body = randomBytes(200_000);
      expect((await request(server.url, '/v1/cache/8080', { method: 'PUT', token: RW, body, agent })).status).toBe(409);
      expect((await request(server.url, '/v1/cache/8081', { method: 'PUT', token: RO, body, agent })).status).toBe(403);
      const get = await request(server.url, '/v1/cache/8080', { token: RO, agent });
      expect(get.status).toBe(200);
      expect(get.body.toString()).toBe('first');
    } finally {
      agent.destroy();
    }
  });

  it('serves /health without a token: entry count, bytes, limit', async () => {
    const r = await request(server.url, '/health');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json');
    const h = JSON.parse(r.body.toString());
    expect(h).toMatchObject({ status: 'ok', maxSize: 64 * 1024 * 1024, maxEntrySize: 1024 * 1024 });
    expect(h.entries).toBe(server.stats().entries);
    expect(h.entries).toBeGreaterThan(0);
    expect(h.bytes).toBe(server.stats().bytes);
  });

  it('logs one JSON-able line per request without the token', () => {
    const requests = logs.filter((l) => l.method);
    expect(requests.length).toBeGreaterThan(10);
    for (const l of requests) {
      expect(typeof l.status === 'number' || l.status === null).toBe(true);
      expect(JSON.stringify(l)).not.toContain(RW);
    }
  });
});

describe('config', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir('cache-config-');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, text: string) => {
    const f = join(dir, name);
    writeFileSync(f, text);
    return f;
  };
  const errorOf = (fn: () => unknown): CacheServerConfigError => {
    try {
      fn();
    } catch (e) {
      if (e instanceof CacheServerConfigError) return e;
      throw e;
    }
    throw new Error('expected a CacheServerConfigError');
  };

  it('parses sizes as bytes or with units (KB/MB/GB 1024-based like nx.json, KiB/MiB/GiB)', () => {
    expect(parseSize(1234)).toBe(1234);
    expect(parseSize('500MB')).toBe(500 * 1024 ** 2);
    expect(parseSize('2GiB')).toBe(2 * 1024 ** 3);
    expect(parseSize('1.5 GB')).toBe(1.5 * 1024 ** 3);
    expect(parseSize('10')).toBe(10);
    for (const bad of ['', 'GB', '5XB', '-1', -1, 1.5, true, null, '1e9']) expect(parseSize(bad), String(bad)).toBeUndefined();
  });

  it('loads the example file with its defaults resolved', () => {
    const c = loadCacheServerConfig(join(__dirname, '..', 'cache-server.example.yaml'), { env: {}, cwd: '/srv/x' });
    expect(c).toMatchObject({ port: 3900, host: '127.0.0.1', storage: '/srv/x/.releng/cache-server', maxSize: 50 * 1024 ** 3 });
    expect(c.tokens.readWrite).toHaveLength(1);
    expect(c.tokens.readOnly).toHaveLength(1);
  });

  it('names the file, field path and expectation; unknown keys are errors', () => {
    const f = write('bad.yaml', 'port: "80"\nmaxSize: lots\nstorge: /x\ntokens:\n  readWrite: [short]\n  admin: []\n');
    const e = errorOf(() => loadCacheServerConfig(f, { env: {} }));
    expect(e.file).toBe(f);
    expect(e.message).toContain(f);
    const byPath = Object.fromEntries(e.issues.map((i) => [i.path, i.message]));
    expect(byPath.port).toBe('expected number');
    expect(byPath.maxSize).toMatch(/expected a size/);
    expect(byPath['']).toMatch(/unknown key "storge"/);
    expect(byPath.tokens).toMatch(/unknown key "admin"/);
    expect(byPath['tokens.readWrite[0]']).toMatch(/16-512 printable/);
  });

  it('takes tokens from RELENG_CACHE_RW_TOKENS / RELENG_CACHE_RO_TOKENS and requires at least one', () => {
    const f = write('env.yaml', 'port: 0\n');
    expect(errorOf(() => loadCacheServerConfig(f, { env: {} })).issues[0]).toMatchObject({ path: 'tokens', message: expect.stringMatching(/no tokens/) });
    const c = loadCacheServerConfig(f, { env: { RELENG_CACHE_RW_TOKENS: ` ${RW} , ${RW}x`, RELENG_CACHE_RO_TOKENS: RO } });
    expect(c.tokens).toEqual({ readWrite: [RW, `${RW}x`], readOnly: [RO] });
    const both = errorOf(() => loadCacheServerConfig(f, { env: { RELENG_CACHE_RW_TOKENS: RW, RELENG_CACHE_RO_TOKENS: RW } }));
    expect(both.issues[0].message).toMatch(/both readWrite and readOnly/);
    const weak = errorOf(() => loadCacheServerConfig(f, { env: { RELENG_CACHE_RW_TOKENS: 'weak' } }));
    expect(weak.issues[0].path).toBe('$RELENG_CACHE_RW_TOKENS[0]');
    expect(weak.message).not.toContain('weak');
  });

  it('rejects maxEntrySize above maxSize, YAML syntax errors and duplicate keys', () => {
    const sizes = write('sizes.yaml', `maxSize: 1MB\nmaxEntrySize: 2MB\ntokens: { readWrite: [${RW}] }\n`);
    expect(errorOf(() => loadCacheServerConfig(sizes, { env: {} })).issues[0].path).toBe('maxEntrySize');
    const dup = write('dup.yaml', 'port: 1\nport: 2\n');
    expect(errorOf(() => loadCacheServerConfig(dup, { env: {} })).issues[0].path).toMatch(/^line/);
    expect(errorOf(() => loadCacheServerConfig(join(dir, 'missing.yaml'))).issues[0].message).toMatch(/cannot read/);
  });
});
