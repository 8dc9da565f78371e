// HTTP front of the cache, shaped by what Nx 22's client (http_remote_cache.rs) accepts rather
// than by the published spec: PUT answers 200 (the spec's 202 is an error to the client), 409 or
// 403 mean "not stored, fine", GET answers 200 or 404, and anything else fails the Nx run. So an
// internal failure never surfaces as 5xx: a GET becomes a miss (404), a PUT becomes "not stored"
// (403), and the reason goes to the log.
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import type { CacheServerConfig } from './config';
import { CacheStore, HASH_RE, UploadAbortedError, type StoreStats } from './storage';

export type LogLine = Record<string, unknown>;
export type Logger = (line: LogLine) => void;

export interface StartOptions {
  /** Receives one object per request (and a few lifecycle events). Default: silent. */
  log?: Logger;
  /** How long close() lets in-flight requests finish before cutting connections. */
  shutdownGraceMs?: number;
}

export interface RunningCacheServer {
  /** Base URL for NX_SELF_HOSTED_REMOTE_CACHE_SERVER (no trailing slash). */
  url: string;
  port: number;
  host: string;
  stats(): StoreStats;
  /** The underlying store (tests use it to inspect LRU order and paths). */
  store: CacheStore;
  close(): Promise<void>;
}

type Role = 'rw' | 'ro';

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Token check in constant time: every known token is compared (as sha256 digests, so lengths
 * match) and the loop never exits early, so timing tells nothing about which prefix matched.
 */
function makeAuthenticator(tokens: CacheServerConfig['tokens']): (header: string | undefined) => Role | 'missing' | 'bad' {
  const known = [
    ...tokens.readWrite.map((t) => ({ d: digest(t), role: 'rw' as const })),
    ...tokens.readOnly.map((t) => ({ d: digest(t), role: 'ro' as const })),
  ];
  return (header) => {
    const m = header === undefined ? null : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (!m) return 'missing';
    const d = digest(m[1]);
    let role: Role | undefined;
    for (const k of known) if (timingSafeEqual(k.d, d)) role = k.role;
    return role ?? 'bad';
  };
}

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  if (res.destroyed) return; // the client is gone
  if (res.headersSent) {
    res.destroy();
    return;
  }
  // Exactly `text/plain`: Nx shows a 401's body only for that content type (else "Misconfigured").
  res.writeHead(status, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

export async function startCacheServer(config: CacheServerConfig, options: StartOptions = {}): Promise<RunningCacheServer> {
  const log: Logger = options.log ?? (() => {});
  const stamp = (line: LogLine) => log({ time: new Date().toISOString(), ...line });
  const store = await CacheStore.open(config.storage, { maxSize: config.maxSize, log: stamp });
  const authenticate = makeAuthenticator(config.tokens);

  const server = createServer({
    // Large entries upload slowly; the idle timeout below catches dead peers instead.
    requestTimeout: 0,
    headersTimeout: 60_000,
    // Longer than reqwest's 90 s pool idle time, so the client closes idle connections first
    // and never sends a request on a socket the server is closing.
    keepAliveTimeout: 120_000,
  });
  server.timeout = 300_000;

  let shuttingDown = false;
  /** Responses in progress, so that shutdown can mark them `Connection: close`. */
  const active = new Set<ServerResponse>();
  const drain = (res: ServerResponse) => {
    // Tell keep-alive clients to reconnect (to the restarted server) rather than reuse a socket
    // about to go away; the server then lets go of it as soon as this response is done.
    if (!res.headersSent) res.setHeader('Connection', 'close');
    res.once('finish', () => setImmediate(() => server.closeIdleConnections()));
  };
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const started = process.hrtime.bigint();
    active.add(res);
    if (shuttingDown) drain(res);
    const line: LogLine = { method: req.method };
    const closed = new Promise<void>((resolve) => res.once('close', resolve));
    void closed.then(() => active.delete(res));
    const handled = handle(req, res, line).catch((e) => {
      // Last resort; handlers catch their own errors. Never a 5xx, see the top of the file.
      line.error = `unhandled: ${(e as Error).message}`;
      send(res, req.method === 'PUT' ? 403 : 404, 'internal error (logged)');
    });
    // One line per request, written once both the response and the handler are done, so it
    // carries the handler's error even when the client hung up first.
    void Promise.all([closed, handled]).then(() => {
      line.status = res.headersSent ? res.statusCode : null;
      if (!res.writableFinished) line.incomplete = true;
      line.ms = Number((process.hrtime.bigint() - started) / 1000n) / 1000;
      stamp(line);
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse, line: LogLine): Promise<void> {
    // The client builds `${server}/v1/cache/${hash}`, so a trailing slash in the configured URL
    // gives `//v1/...`; collapsing slashes keeps that working.
    const path = (req.url ?? '/').split('?')[0].replace(/\/{2,}/g, '/');
    line.path = path;

    if (path === '/health' && (req.method === 'GET' || req.method === 'HEAD')) {
      const body = JSON.stringify({ status: 'ok', ...store.stats(), maxEntrySize: config.maxEntrySize });
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
      res.end(body);
      return;
    }

    const auth = authenticate(req.headers.authorization);
    if (auth === 'missing' || auth === 'bad') {
      line.auth = auth;
      send(res, 401, auth === 'missing' ? 'missing bearer token (set NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN)' : 'bad token', {
        'WWW-Authenticate': 'Bearer',
      });
      return;
    }
    line.role = auth;

    const m = /^\/v1\/cache\/([^/]*)$/.exec(path);
    if (!m) return send(res, 404, 'not found');
    const hash = m[1];
    if (!HASH_RE.test(hash)) return send(res, 400, 'invalid hash: expected 1-128 characters of [A-Za-z0-9_-]');
    line.hash = hash;

    if (req.method === 'GET') return handleGet(res, hash, line);
    if (req.method === 'PUT') return handlePut(req, res, hash, auth, line);
    send(res, 405, 'method not allowed', { Allow: 'GET, PUT' });
  }

  async function handleGet(res: ServerResponse, hash: string, line: LogLine): Promise<void> {
    let entry;
    try {
      entry = await store.openRead(hash);
    } catch (e) {
      line.error = `unreadable entry, answered as a miss: ${(e as Error).message}`;
      return send(res, 404, 'not found');
    }
    if (!entry) return send(res, 404, 'not found');
    const { size, stream, release } = entry;
    try {
      // Read the first chunk before committing to a 200, so a read that fails at once (the
      // common case of a damaged entry) still becomes a 404.
      const it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      let first: IteratorResult<Buffer>;
      try {
        first = size > 0 ? await it.next() : { done: true, value: undefined };
      } catch (e) {
        line.error = `read failed, answered as a miss: ${(e as Error).message}`;
        return send(res, 404, 'not found');
      }
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': size });
      line.bytes = size;
      async function* body() {
        if (!first.done) yield first.value;
        for (;;) {
          const n = await it.next();
          if (n.done) return;
          yield n.value;
        }
      }
      try {
        await pipeline(body(), res);
      } catch (e) {
        // Headers are out; all we can do is cut the response short so the client sees a failed
        // download rather than a short body it might trust. Also the path of a client hang-up.
        line.error = `stream failed: ${(e as Error).message}`;
        res.destroy();
      }
    } finally {
      release();
    }
  }

  async function handlePut(req: IncomingMessage, res: ServerResponse, hash: string, role: Role, line: LogLine): Promise<void> {
    // The request body of an early answer is drained by Node, keeping the connection usable: the
    // Nx client sends the whole body before it reads the status.
    if (role !== 'rw') return send(res, 403, 'read-only token: not stored');
    const cl = req.headers['content-length'];
    if (cl === undefined) return send(res, 411, 'Content-Length required');
    const length = Number(cl);
    line.bytes = length;
    if (!Number.isSafeInteger(length) || length < 0) return send(res, 400, 'invalid Content-Length');
    if (length > config.maxEntrySize) {
      // Do not read gigabytes only to discard them; closing is the cheaper answer.
      return send(res, 413, `entry too large: ${length} > maxEntrySize ${config.maxEntrySize}`, { Connection: 'close' });
    }
    if (store.has(hash)) return send(res, 409, 'Cannot override an existing record');
    try {
      const result = await store.put(hash, req, length);
      if (result === 'exists') return send(res, 409, 'Cannot override an existing record');
      send(res, 200, 'stored');
    } catch (e) {
      if (e instanceof UploadAbortedError) {
        line.error = e.message;
        return send(res, 400, 'incomplete upload: not stored', { Connection: 'close' });
      }
      line.error = `store failed, answered as not stored: ${(e as Error).message}`;
      send(res, 403, 'not stored: server error (logged)');
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const hostForUrl = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${hostForUrl === '0.0.0.0' ? '127.0.0.1' : hostForUrl === '[::]' ? '[::1]' : hostForUrl}:${addr.port}`;

  let closing: Promise<void> | undefined;
  return {
    url,
    port: addr.port,
    host: addr.address,
    store,
    stats: () => store.stats(),
    close() {
      closing ??= (async () => {
        shuttingDown = true;
        for (const res of active) drain(res);
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        // In-flight uploads get a grace period; cut ones leave only temp files, removed on start.
        const timer = setTimeout(() => server.closeAllConnections(), options.shutdownGraceMs ?? 10_000);
        await closed;
        clearTimeout(timer);
        await store.close();
      })();
      return closing;
    },
  };
}
