// The upstream HTTP client against the fixture upstream: yumrepofs' redirects of package
// downloads to presigned object-store URLs (issue 19.4), proxies, User-Agent, Retry-After, and
// the low-speed limit and deadline that end a trickling download (issue 18.9).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { Limiter, SignatureVerifier, applyTree, download, fetchBuffer, fetchInto, memorySink, planTree, withRetries } from '@rocky/rpm-repo';
import { Store } from '@rocky/store';
import { repoUrlPath, serveFixture, type FixtureServer } from '@rocky/upstream-fixture';
import { sharedFixture, testSite } from '../helpers/fixture';
import { version } from '../../package.json';

let fxRoot: string;
let tmp: string;
const servers: { close(): Promise<void> | void }[] = [];
beforeAll(async () => {
  fxRoot = await sharedFixture();
  tmp = mkdtempSync(join(tmpdir(), 'upstream-http-'));
});
afterAll(async () => {
  for (const s of servers) await s.close();
  rmSync(tmp, { recursive: true, force: true });
});

const TREE = repoUrlPath('rocky-9', 'BaseOS', 'x86_64');
const REPOMD = `${TREE}/repodata/repomd.xml`;
const re = (s: string) => new RegExp(s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));

async function fixture(opts: { presignPackages?: boolean } = {}): Promise<FixtureServer> {
  const s = await serveFixture({ root: fxRoot, ...opts });
  servers.push(s);
  return s;
}

/** A plain HTTP server on a free loopback port, stopped after the file. */
async function listen(handler: Parameters<typeof createServer>[1]): Promise<{ url: string; server: Server }> {
  const server = createServer(handler);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  servers.push({ close: () => new Promise<void>((ok) => (server.closeAllConnections(), server.close(() => ok()))) });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('package signatures', () => {
  it('a package not signed by the upstream key fails the tree, whether downloaded now or already in the store', async () => {
    const server = await fixture();
    const verifier = new SignatureVerifier(join(fxRoot, 'RPM-GPG-KEY-fixture'));
    const key = await verifier.keyId();
    const store = new Store(join(tmp, 'store-signer'));
    const opts = (signer: string) => ({ url: `${server.url}/${TREE}`, store, verifier, signer, limiter: new Limiter(4), what: 'rocky-9 BaseOS x86_64' });
    const other = 'a'.repeat(key.length);
    const wrong = new RegExp(`is signed by key ${key.toLowerCase()}, not by the upstream key ${other}`, 'i');
    // Downloaded: the key is read from the bytes as they arrive.
    const fresh = await planTree(opts(other));
    expect(fresh.fetch.length).toBeGreaterThan(0);
    await expect(applyTree(opts(other), fresh, join(tmp, 'tree-signer-1'), false)).rejects.toThrow(wrong);
    // The same packages from the store (stored by the failed run: their bytes were checked): read from the file.
    const right = await planTree(opts(key));
    await applyTree(opts(key), right, join(tmp, 'tree-signer-2'), false);
    const stored = await planTree(opts(other));
    expect(stored.fetch).toEqual([]);
    await expect(applyTree(opts(other), stored, join(tmp, 'tree-signer-3'), false)).rejects.toThrow(wrong);
  });
});

describe('redirects (yumrepofs answers package GETs with a presigned object-store URL)', () => {
  it('a tree syncs through them: 302 from the upstream, 200 from the object store, over reused connections', async () => {
    const server = await fixture({ presignPackages: true });
    const verifier = new SignatureVerifier(join(fxRoot, 'RPM-GPG-KEY-fixture'));
    const opts = {
      url: `${server.url}/${TREE}`,
      store: new Store(join(tmp, 'store-redirect')),
      verifier,
      signer: await verifier.keyId(),
      limiter: new Limiter(4),
      what: 'rocky-9 BaseOS x86_64',
    };
    const plan = await planTree(opts);
    const res = await applyTree(opts, plan, join(tmp, 'tree-redirect'), false);
    expect(res.packages.length).toBe(plan.packages.length);
    expect(res.fetched).toBe(plan.packages.length);

    for (const p of plan.packages) {
      const hits = server.requests.filter((r) => r.path.endsWith(`/${TREE}/${p.href}`)).map((r) => [r.origin, r.path, r.status, r.bytes]);
      expect(hits).toEqual([
        [server.url, `/${TREE}/${p.href}`, 302, 0],
        [server.objectStoreUrl, `/peridot-fixture/${TREE}/${p.href}`, 200, p.size],
      ]);
    }
    // Keep-alive: thousands of package requests must not mean thousands of connections.
    const conns = new Set(server.requests.map((r) => r.connection));
    expect(conns.size).toBeLessThanOrEqual(2 * (4 + 1));
    expect(server.requests.every((r) => r.userAgent === `rocky-releng/${version} (+node)`)).toBe(true);
  });

  it('an error after a redirect names the URL asked for and where it led (without the presigned query)', async () => {
    const server = await fixture({ presignPackages: true });
    const plan = await planTree({ url: `${server.url}/${TREE}`, store: new Store(join(tmp, 'store-403')), limiter: new Limiter(1), what: 't' });
    const href = plan.packages[0].href;
    server.setFaults([{ match: href, kind: 'status404' }]);
    const url = `${server.url}/${TREE}/${href}`;
    const err = await fetchBuffer(url, { attempts: 1 }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(re(`GET ${url} (redirected to ${server.objectStoreUrl}/peridot-fixture/${TREE}/${href}): HTTP 404`));
    expect((err as Error).message).not.toMatch(/X-Amz-Signature/);
  });

  it('follows 301, 303, 307 and 308; refuses file: targets and endless chains, naming the URL', async () => {
    const { url } = await listen((req, res) => {
      const hop: Record<string, [number, string]> = {
        '/a': [301, '/b'],
        '/b': [303, '/c'],
        '/c': [307, '/d'],
        '/d': [308, '/done'],
        '/file': [302, 'file:///etc/passwd'],
      };
      const loop = /^\/loop\/(\d+)$/.exec(req.url!);
      const [status, location] = hop[req.url!] ?? (loop ? [302, `/loop/${Number(loop[1]) + 1}`] : [0, '']);
      if (status) res.writeHead(status, { Location: location }).end();
      else res.writeHead(200, { 'Content-Length': 4 }).end('done');
    });
    expect((await fetchBuffer(`${url}/a`)).toString()).toBe('done');
    await expect(fetchBuffer(`${url}/file`)).rejects.toThrow(re(`GET ${url}/file: redirect to file:///etc/passwd refused`));
    await expect(fetchBuffer(`${url}/loop/0`)).rejects.toThrow(re(`GET ${url}/loop/0 (redirected to ${url}/loop/5): more than 5 redirects`));
  });
});

describe('requests', () => {
  it('go through HTTP_PROXY unless NO_PROXY names the host', async () => {
    const seen: string[] = [];
    const { url: proxy } = await listen((req, res) => {
      seen.push(req.url!);
      const up = httpRequest(req.url!, { method: req.method, headers: req.headers }, (r) => (res.writeHead(r.statusCode!, r.headers), r.pipe(res)));
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    const server = await fixture();
    const saved = { ...process.env };
    try {
      for (const k of ['http_proxy', 'https_proxy', 'no_proxy', 'NO_PROXY']) delete process.env[k];
      process.env.HTTP_PROXY = proxy;
      const viaProxy = await fetchBuffer(`${server.url}/${REPOMD}`);
      expect(seen).toEqual([`${server.url}/${REPOMD}`]);
      process.env.NO_PROXY = 'localhost,127.0.0.1';
      expect((await fetchBuffer(`${server.url}/${REPOMD}`)).equals(viaProxy)).toBe(true);
      expect(seen).toHaveLength(1);
    } finally {
      process.env = saved;
    }
  });

  it('retry a body cut short and read it whole the next time', async () => {
    const server = await fixture();
    server.setFaults([{ match: 'repomd.xml', kind: 'truncate', times: 1 }]);
    const retries: string[] = [];
    const buf = await fetchBuffer(`${server.url}/${REPOMD}`, { backoffMs: 1, onRetry: (e) => retries.push(e.message) });
    expect(buf.toString()).toMatch(/<\/repomd>\s*$/);
    expect(retries).toHaveLength(1);
  });

  it('planning retries a primary.xml cut short (its own read is one attempt inside the retries around it)', async () => {
    const server = await fixture();
    server.setFaults([{ match: /primary\.xml/, kind: 'truncate', times: 1 }]);
    const retries: string[] = [];
    const plan = await planTree({ url: `${server.url}/${TREE}`, store: new Store(join(tmp, 'store-primary-retry')), limiter: new Limiter(2), what: 'rocky-9 BaseOS x86_64', fetch: { backoffMs: 1, onRetry: (e: Error) => retries.push(e.message) } });
    expect(plan.packages.length).toBeGreaterThan(0);
    expect(retries).toHaveLength(1);
    expect(server.requests.filter((r) => /primary\.xml/.test(r.path))).toHaveLength(2);
  });

  it('wait what Retry-After asks on a 503, up to a bound', async () => {
    const server = await fixture();
    const url = `${server.url}/${REPOMD}`;
    const delays: number[] = [];
    const onRetry = (_e: Error, _i: number, ms: number) => delays.push(ms);
    server.setFaults([{ match: 'repomd.xml', kind: 'status503', retryAfter: '1', times: 1 }]);
    server.clearRequests();
    await fetchBuffer(url, { onRetry, backoffMs: 1 });
    expect(delays).toEqual([1000]);
    const [first, second] = server.requests;
    expect([first.status, second.status]).toEqual([503, 200]);
    expect(second.time - first.time).toBeGreaterThanOrEqual(1000);
    server.setFaults([{ match: 'repomd.xml', kind: 'status503', retryAfter: '86400', times: 1 }]);
    await fetchBuffer(url, { onRetry, backoffMs: 1, maxRetryAfterMs: 50 });
    expect(delays).toEqual([1000, 50]);
  });

  it('wait what Retry-After asks when the 503 comes wrapped by retries nested inside (one attempt within the retries around it)', async () => {
    const server = await fixture();
    const url = `${server.url}/${REPOMD}`;
    const delays: number[] = [];
    server.setFaults([{ match: 'repomd.xml', kind: 'status503', retryAfter: '1', times: 1 }]);
    // The inner retries' error names what they were fetching, with the HttpError as its cause.
    const inner = () => withRetries('rocky-9 BaseOS x86_64: repodata/repomd.xml', () => fetchBuffer(url, { attempts: 1 }), { attempts: 1 });
    const buf = await withRetries('the plan', inner, { backoffMs: 1, onRetry: (_e, _i, ms) => delays.push(ms) });
    expect(buf.toString()).toMatch(/<\/repomd>\s*$/);
    expect(delays).toEqual([1000]);
  });
});

describe('planning (the signature is checked while primary is read)', () => {
  it('a signature failure is the error, though reading primary failed as well', async () => {
    const server = await fixture();
    const opts = { url: `${server.url}/${TREE}`, store: new Store(join(tmp, 'store-unsigned')), verifier: new SignatureVerifier(join(fxRoot, 'RPM-GPG-KEY-fixture')), limiter: new Limiter(2), what: 'rocky-9 BaseOS x86_64' };
    try {
      server.setFaults([
        { match: 'repomd.xml.asc', kind: 'status404' },
        { match: /primary\.xml/, kind: 'status404' },
      ]);
      await expect(planTree(opts)).rejects.toThrow(/rocky-9 BaseOS x86_64: upstream repomd\.xml is not signed/);
      // Signed, primary missing: primary's error.
      server.setFaults([{ match: /primary\.xml/, kind: 'status404' }]);
      await expect(planTree(opts)).rejects.toThrow(/primary\.xml.*HTTP 404/);
      server.setFaults([]);
      const plan = await planTree(opts);
      expect([plan.signatureVerified, plan.packages.length > 0, plan.signature !== undefined]).toEqual([true, true, true]);
    } finally {
      await opts.verifier.close();
    }
  });
});

describe('bodies (read over undici dispatch(), no stream per response)', () => {
  const NO_LIMITS = { lowSpeedBytes: 0, deadlineSeconds: 0 };

  it('a big body reaches a slow reader whole (the transfer pauses while it does not read)', async () => {
    const big = Buffer.alloc(8 << 20);
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i);
    const { url } = await listen((_req, res) => res.writeHead(200, { 'Content-Length': big.length }).end(big));
    const got = await download(`${url}/big`, NO_LIMITS, async (body, size) => {
      const hash = createHash('sha256');
      let n = 0;
      let reads = 0;
      // A read returns all that is buffered: the biggest read is what piled up behind the reader.
      let held = 0;
      for await (const c of body as AsyncIterable<Buffer>) {
        hash.update(c);
        n += c.length;
        held = Math.max(held, c.length);
        // Slower than loopback: undici must hold the rest back rather than buffer it all for us.
        if (++reads < 10) await new Promise((r) => setTimeout(r, 20));
      }
      return { size, n, sha: hash.digest('hex'), heldUnder1MiB: held < 1 << 20 };
    });
    expect(got).toEqual({ size: big.length, n: big.length, sha: createHash('sha256').update(big).digest('hex'), heldUnder1MiB: true });
  });

  it('a reader that fails ends the transfer at once, with its error (a body that never ends does not hold it)', async () => {
    let closed!: Promise<void>;
    const { url } = await listen((req, res) => {
      closed = new Promise((ok) => req.socket.once('close', () => ok()));
      res.writeHead(200, { 'Content-Length': 1 << 30 }).write(Buffer.alloc(64 << 10));
    });
    const err = await download(`${url}/endless`, NO_LIMITS, async (body) => {
      for await (const _ of body as AsyncIterable<Buffer>) throw new Error('the reader gave up');
      return 'read';
    }).catch((e: Error) => e);
    expect((err as Error).message).toBe('the reader gave up');
    await closed;
  });

  it('a body gathered in memory ends at its bound, with the sink`s error, and counts what arrived', async () => {
    const { url } = await listen((_req, res) => {
      res.writeHead(200); // chunked: no announced length
      res.write(Buffer.alloc(3000));
      setTimeout(() => res.end(Buffer.alloc(3000)), 50);
    });
    let seen = 0;
    const tooBig = () => new Error('more than 4000 bytes');
    await expect(fetchInto(`${url}/chunked`, NO_LIMITS, () => memorySink((b) => b, { max: 4000, tooBig, onData: (n) => (seen += n) }))).rejects.toThrow('more than 4000 bytes');
    expect(seen).toBe(3000);
    const whole = await fetchInto(`${url}/chunked`, NO_LIMITS, (size) => memorySink((b) => ({ size, length: b.length })));
    expect(whole).toEqual({ size: undefined, length: 6000 });
  });
});

describe('a trickling upstream (one byte every 30 s)', () => {
  it('fails on the low-speed limit, naming the URL and the limit', async () => {
    const server = await fixture();
    const url = `${server.url}/${REPOMD}`;
    server.setFaults([{ match: 'repomd.xml', kind: 'trickle' }]);
    server.clearRequests();
    const err = await fetchBuffer(url, { attempts: 2, backoffMs: 1, download: { lowSpeedBytes: 1000, lowSpeedSeconds: 1 } }).catch((e: Error) => e);
    expect((err as Error).message).toMatch(re(`GET ${url}: slower than 1000 bytes/s for 1 s (upstream.download.lowSpeedBytes/lowSpeedSeconds)`));
    expect(server.requests.map((r) => r.status)).toEqual([200, 200]); // retried once, as a transient failure
  });

  it('fails on the deadline when there is no low-speed limit, naming the URL and the limit', async () => {
    const server = await fixture();
    const url = `${server.url}/${REPOMD}`;
    server.setFaults([{ match: 'repomd.xml', kind: 'trickle' }]);
    await expect(fetchBuffer(url, { attempts: 1, download: { lowSpeedBytes: 0, deadlineSeconds: 1 } })).rejects.toThrow(
      re(`GET ${url}: not complete after 1 s (upstream.download.deadlineSeconds)`),
    );
  });

  it('fails the sync stage with the site`s upstream.download limits, naming the package URL', async () => {
    const t = await testSite(fxRoot);
    servers.push(t);
    // Limits no whole file misses on a loaded machine (under 5 bytes in 5 s), which the trickle (a byte every 30 s) does.
    t.site.upstream.download = { lowSpeedBytes: 1, lowSpeedSeconds: 5, deadlineSeconds: 0 };
    const plan = await planTree({ url: `${t.server.url}/${repoUrlPath('rocky-8', 'BaseOS', 'x86_64')}`, store: new Store(join(tmp, 'store-8')), limiter: new Limiter(1), what: 't' });
    const href = plan.packages[0].href;
    t.server.setFaults([{ match: href, kind: 'trickle' }]);
    await expect(t.run('sync', 'rocky-8')).rejects.toThrow(re(`${t.server.url}/${repoUrlPath('rocky-8', 'BaseOS', 'x86_64')}/${href}: slower than 1 bytes/s for 5 s`));
  });
});
