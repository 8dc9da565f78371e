// The fixture server over a small directory: static serving, traversal and private paths, and
// every fault kind as a plain Node http client sees it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveFixture, repoUrlPath, type FixtureServer } from './index';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** The response ended before Content-Length bytes arrived. */
  aborted: boolean;
}

function get(url: string, method = 'GET', headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      let aborted = false;
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('aborted', () => (aborted = true));
      res.on('error', () => (aborted = true));
      res.on('close', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), aborted: aborted || !res.complete }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A raw request line, as a hostile client would send it (http.request normalizes nothing, but be explicit). */
function raw(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    let out = '';
    s.on('data', (d) => (out += d.toString('latin1')));
    s.on('end', () => resolve(out));
    s.on('error', reject);
  });
}

describe('serveFixture', () => {
  let dir: string;
  let server: FixtureServer;
  let presigning: FixtureServer | undefined;
  const repo = repoUrlPath('rocky-9', 'BaseOS', 'x86_64');
  const body = Buffer.alloc(10_000, 0x61);
  body.write('<?xml version="1.0"?><repomd/>');
  const rpm = Buffer.from('\xed\xab\xee\xdb not really an rpm', 'latin1');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fixture-server-'));
    mkdirSync(join(dir, repo, 'repodata'), { recursive: true });
    writeFileSync(join(dir, repo, 'repodata', 'repomd.xml'), body);
    mkdirSync(join(dir, repo, 'Packages', 'b'), { recursive: true });
    writeFileSync(join(dir, repo, 'Packages', 'b', 'bash-5.1-1.x86_64.rpm'), rpm);
    mkdirSync(join(dir, 'gnupg'));
    writeFileSync(join(dir, 'gnupg', 'secret'), 'secret');
    mkdirSync(join(dir, '.fixture'));
    writeFileSync(join(dir, '.fixture', 'state.json'), '{}');
    mkdirSync(join(dir, 'apollo/rocky-linux/8/BaseOS/x86_64'), { recursive: true });
    writeFileSync(join(dir, 'apollo/rocky-linux/8/BaseOS/x86_64/updateinfo.xml'), '<updates>\n</updates>\n');
    server = await serveFixture({ root: dir });
  });
  afterAll(async () => {
    await server?.close();
    await presigning?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const url = (p: string) => `${server.url}/${p}`;
  const file = `${repo}/repodata/repomd.xml`;

  it('serves files with Content-Length on loopback, answers HEAD without a body, 404 for the missing', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const r = await get(url(file));
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe(String(body.length));
    expect(r.body.equals(body)).toBe(true);
    const h = await get(url(file), 'HEAD');
    expect(h.status).toBe(200);
    expect(h.headers['content-length']).toBe(String(body.length));
    expect(h.body.length).toBe(0);
    expect((await get(url(`${repo}/repodata/nope.xml`))).status).toBe(404);
    expect((await get(url(repo))).status).toBe(404); // directories are not files
    expect((await get(url(file), 'POST')).status).toBe(405);
  });

  it("plays Apollo's updateinfo API: per product, major, repo and ?arch=; 404 without advisories, 400 without a valid arch", async () => {
    const api = (p: string) => url(`api/v3/updateinfo/${p}`);
    const r = await get(api('rocky-linux/8/BaseOS/updateinfo.xml?arch=x86_64'));
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/xml');
    expect(r.body.toString()).toBe('<updates>\n</updates>\n');
    const none = await get(api('rocky-linux/8/BaseOS/updateinfo.xml?arch=aarch64'));
    expect([none.status, none.body.toString().trim()]).toEqual([404, 'No advisories found']);
    expect((await get(api('rocky-linux/8/AppStream/updateinfo.xml?arch=x86_64'))).status).toBe(404);
    expect((await get(api('rocky-linux/8/BaseOS/updateinfo.xml'))).status).toBe(400);
    expect((await get(api('rocky-linux/8/BaseOS/updateinfo.xml?arch=..'))).status).toBe(400);
  });

  it('rejects path traversal and hides the key and the build cache', async () => {
    const res = await raw(server.port, '/v1/../../../../etc/passwd');
    expect(res).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw(server.port, '/v1/%2e%2e/%2e%2e/%2e%2e/etc/passwd')).toMatch(/^HTTP\/1\.1 400/);
    expect((await get(url('gnupg/secret'))).status).toBe(404);
    expect((await get(url('.fixture/state.json'))).status).toBe(404);
  });

  it('injects 404 and 500, expiring after `times`', async () => {
    server.setFaults([{ match: 'repomd.xml', kind: 'status500', times: 2 }]);
    expect((await get(url(file))).status).toBe(500);
    expect((await get(url(file))).status).toBe(500);
    expect((await get(url(file))).status).toBe(200);
    server.setFaults([{ match: /repodata\/.*\.xml$/, kind: 'status404' }]);
    for (let i = 0; i < 3; i++) expect((await get(url(file))).status).toBe(404);
    server.setFaults([]);
    expect((await get(url(file))).status).toBe(200);
  });

  it('delays `slow` requests by delayMs while other requests are served', async () => {
    server.setFaults([{ match: 'repomd', kind: 'slow', delayMs: 500, times: 1 }]);
    const done: string[] = [];
    const slow = get(url(file)).then((r) => (done.push('slow'), r));
    await new Promise((r) => setTimeout(r, 20)); // let the slow request reach the server first
    const fast = get(url(`${repo}/repodata/missing`)).then((r) => (done.push('fast'), r));
    const [s, f] = await Promise.all([slow, fast]);
    expect(done).toEqual(['fast', 'slow']);
    expect(s.status).toBe(200);
    expect(s.body.equals(body)).toBe(true);
    expect(f.status).toBe(404);
  });

  it('truncates: promises the whole length, sends half, hangs up', async () => {
    server.setFaults([{ match: 'repomd.xml', kind: 'truncate', times: 1 }]);
    const r = await get(url(file));
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe(String(body.length));
    expect(r.body.length).toBe(body.length / 2);
    expect(r.aborted).toBe(true);
    const again = await get(url(file));
    expect(again.body.equals(body)).toBe(true);
  });

  it('corrupts: same length, different bytes', async () => {
    server.setFaults([{ match: 'repomd.xml', kind: 'corrupt', times: 1 }]);
    const r = await get(url(file));
    expect(r.status).toBe(200);
    expect(r.body.length).toBe(body.length);
    expect(r.body.equals(body)).toBe(false);
    expect((await get(url(file))).body.equals(body)).toBe(true);
  });

  it('records every request, faulted or not, and can forget them', async () => {
    server.clearRequests();
    server.setFaults([{ match: 'repomd.xml', kind: 'status404', times: 1 }, { match: 'repomd.xml', kind: 'truncate', times: 1 }]);
    await get(url(file));
    await get(url(file));
    await get(url(file));
    await get(url(file), 'HEAD');
    const recs = server.requests.map((r) => [r.method, r.path, r.status, r.bytes]);
    expect(recs).toEqual([
      ['GET', `/${file}`, 404, expect.any(Number)],
      ['GET', `/${file}`, 200, body.length / 2],
      ['GET', `/${file}`, 200, body.length],
      ['HEAD', `/${file}`, 200, 0],
    ]);
    expect(server.requests.every((r) => r.time > 0)).toBe(true);
    server.clearRequests();
    expect(server.requests).toHaveLength(0);
  });

  it('injects 503 with the Retry-After it is given', async () => {
    server.setFaults([{ match: 'repomd.xml', kind: 'status503', retryAfter: '7', times: 1 }]);
    const r = await get(url(file));
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toBe('7');
    expect((await get(url(file))).status).toBe(200);
  });

  it('trickles: promises the whole length, then one byte per delayMs; stops when the client leaves', async () => {
    const pkg = `${repo}/Packages/b/bash-5.1-1.x86_64.rpm`;
    server.setFaults([{ match: 'bash', kind: 'trickle', delayMs: 1, times: 1 }]);
    server.clearRequests();
    const whole = await get(url(pkg));
    expect(whole.status).toBe(200);
    expect(whole.body.equals(rpm)).toBe(true);
    // With the pause (30 s), the client gets the headers and one byte, then nothing.
    server.setFaults([{ match: 'repomd.xml', kind: 'trickle', times: 1 }]);
    const first = await new Promise<{ length: string | undefined; chunk: Buffer }>((resolve, reject) => {
      const req = request(url(file), { agent: false }, (res) => res.once('data', (c: Buffer) => (resolve({ length: res.headers['content-length'], chunk: c }), req.destroy())));
      req.on('error', reject);
      req.end();
    });
    expect(first.length).toBe(String(body.length));
    expect(first.chunk.length).toBe(1);
    while (server.requests.length < 2 || server.requests[1].bytes === 0) await new Promise((r) => setTimeout(r, 10));
    expect(server.requests.map((r) => [r.path, r.status, r.bytes])).toEqual([
      [`/${pkg}`, 200, rpm.length],
      [`/${file}`, 200, 1],
    ]);
  });

  it('records the listener, the connection and the User-Agent of each request', async () => {
    server.clearRequests();
    await get(url(file), 'GET', { 'User-Agent': 'probe/1' });
    await get(url(file));
    const [a, b] = server.requests;
    expect(a).toMatchObject({ origin: server.url, userAgent: 'probe/1' });
    expect(b.userAgent).toBeUndefined();
    expect(b.connection).not.toBe(a.connection); // agent: false opens a connection per request
  });

  it('presignPackages: package GETs get a 302 to a presigned object-store URL; the store checks the signature', async () => {
    presigning = await serveFixture({ root: dir, presignPackages: true });
    const store = presigning.objectStoreUrl!;
    expect(store).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(store).not.toBe(presigning.url);
    const pkg = `${repo}/Packages/b/bash-5.1-1.x86_64.rpm`;
    const r = await get(`${presigning.url}/${pkg}`);
    expect(r.status).toBe(302);
    const loc = new URL(r.headers.location as string);
    expect(loc.origin).toBe(store);
    expect(loc.pathname).toBe(`/peridot-fixture/${pkg}`);
    expect(loc.searchParams.get('X-Amz-Algorithm')).toBe('AWS4-HMAC-SHA256');
    expect(loc.searchParams.get('X-Amz-Expires')).toBe('86400');
    const obj = await get(loc.href);
    expect(obj.status).toBe(200);
    expect(obj.body.equals(rpm)).toBe(true);
    // Not redirected: metadata, and a HEAD of a package.
    expect((await get(`${presigning.url}/${file}`)).body.equals(body)).toBe(true);
    expect((await get(`${presigning.url}/${pkg}`, 'HEAD')).status).toBe(200);
    // The store serves only what this server signed.
    const forged = new URL(loc.href);
    forged.searchParams.set('X-Amz-Signature', '0'.repeat(64));
    expect((await get(forged.href)).status).toBe(403);
    const other = new URL(loc.href);
    other.pathname = `/peridot-fixture/${file}`;
    expect((await get(other.href)).status).toBe(403);
    expect((await get(`${store}/peridot-fixture/${pkg}`)).status).toBe(403);
    expect(presigning.requests.filter((x) => x.method === 'GET').slice(0, 2).map((x) => [x.origin, x.path, x.status])).toEqual([
      [presigning.url, `/${pkg}`, 302],
      [store, `/peridot-fixture/${pkg}`, 200],
    ]);
  });
});
