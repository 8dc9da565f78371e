// A static HTTP server over a fixture root (loopback by default), yumrepofs-like URLs, with
// fault injection: whole-request statuses, delays, trickled, truncated and corrupted bodies.
// With `presignPackages`, package GETs are redirected to a second listener playing the object
// store, as yumrepofs does (it answers with a presigned S3 URL). It also plays Apollo's errata
// API (`/api/v3/updateinfo/<product>/<major>/<repo>/updateinfo.xml?arch=<arch>`, from the root's
// `apollo/` tree). Every request, faulted or not, is recorded.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createReadStream, promises as fsp } from 'node:fs';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { join, resolve, sep } from 'node:path';
import type { AddressInfo, Socket } from 'node:net';
import { apolloFilePath } from './paths';

export interface RequestRecord {
  method: string;
  /** The request's URL path (decoded, without the query). */
  path: string;
  status: number;
  /** Body bytes actually sent. */
  bytes: number;
  /** When the request arrived (ms since the epoch). */
  time: number;
  /** The listener that answered: the upstream's URL, or the object store's. */
  origin: string;
  /** The TCP connection it came on (numbered per server): keep-alive reuse shows as repeats. */
  connection: number;
  userAgent?: string;
}

export type FaultKind = 'status404' | 'status500' | 'status503' | 'slow' | 'trickle' | 'truncate' | 'corrupt';

export interface FaultRule {
  /** A substring of the URL path, or a RegExp tested against it. */
  match: string | RegExp;
  kind: FaultKind;
  /** Apply to the first N matching requests, then serve normally (default: always). */
  times?: number;
  /** For `slow`: delay before answering (default 1000 ms); for `trickle`: the pause between single body bytes (default 30 s). */
  delayMs?: number;
  /** For `status503`: the Retry-After header to send (seconds or an HTTP date). */
  retryAfter?: string;
}

export interface ServeOptions {
  root: string;
  port?: number;
  host?: string;
  /**
   * Answer every package GET (`.rpm`) with a 302 to a presigned URL of a second listener on the
   * same host, the object store, as yumrepofs does. Package faults then apply at the object
   * store, which serves the bytes.
   */
  presignPackages?: boolean;
}

export interface FixtureServer {
  url: string;
  port: number;
  /** The object store's URL, with `presignPackages`. */
  objectStoreUrl?: string;
  /** Requests to both listeners, in arrival order. */
  requests: RequestRecord[];
  setFaults(rules: FaultRule[]): void;
  clearRequests(): void;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.xml': 'application/xml',
  '.gz': 'application/gzip',
  '.xz': 'application/x-xz',
  '.rpm': 'application/x-rpm',
  '.asc': 'text/plain',
  '.CHECKSUM': 'text/plain',
};
const contentType = (p: string) => Object.entries(TYPES).find(([ext]) => p.endsWith(ext))?.[1] ?? 'application/octet-stream';

/** Positions a `corrupt` fault flips: one early byte and one per KiB after it (any non-empty body changes). */
const flipped = (pos: number, size: number) => pos === Math.min(17, size - 1) || (pos > 17 && (pos - 17) % 1024 === 0);

/** The bucket presigned package URLs name (the object key is the package's upstream path). */
const BUCKET = 'peridot-fixture';
/** What yumrepofs presigns for: 24 hours. */
const PRESIGN_SECONDS = 86_400;

/** The arches Apollo's updateinfo API requires one of (its v2 route's documentation); anything else is a 400. */
const APOLLO_ARCHES = ['x86_64', 'aarch64', 'ppc64le', 's390x'];

/** Waits `ms`, or less when the client hangs up. */
const pause = (res: ServerResponse, ms: number) =>
  new Promise<void>((ok) => {
    const done = () => (clearTimeout(t), res.off('close', done), ok());
    const t = setTimeout(done, ms);
    res.once('close', done);
  });

export async function serveFixture(opts: ServeOptions): Promise<FixtureServer> {
  const root = resolve(opts.root);
  const host = opts.host ?? '127.0.0.1';
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const requests: RequestRecord[] = [];
  let rules: { rule: FaultRule; left: number }[] = [];
  const secret = randomBytes(32);
  let connections = 0;

  const takeFault = (path: string): FaultRule | undefined => {
    for (const r of rules) {
      if (r.left <= 0) continue;
      const hit = typeof r.rule.match === 'string' ? path.includes(r.rule.match) : r.rule.match.test(path);
      if (hit) {
        r.left--;
        return r.rule;
      }
    }
    return undefined;
  };

  // A presigned-looking URL (the query of an S3 SigV4 presign); the signature is an HMAC of the
  // key and the validity the object store checks, so only URLs this server issued work.
  const sign = (key: string, date: string, expires: number) => createHmac('sha256', secret).update(`${key}\n${date}\n${expires}`).digest('hex');
  const presign = (base: string, key: string) => {
    const date = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '');
    const q = new URLSearchParams({
      'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
      'X-Amz-Credential': `FIXTUREKEY/${date.slice(0, 8)}/us-east-2/s3/aws4_request`,
      'X-Amz-Date': date,
      'X-Amz-Expires': String(PRESIGN_SECONDS),
      'X-Amz-SignedHeaders': 'host',
      'X-Amz-Signature': sign(key, date, PRESIGN_SECONDS),
    });
    return `${base}/${BUCKET}/${key.split('/').map(encodeURIComponent).join('/')}?${q}`;
  };
  /** Why the object store refuses a request, or undefined for a valid presigned one. */
  const refusal = (key: string, q: URLSearchParams): string | undefined => {
    const date = q.get('X-Amz-Date') ?? '';
    const expires = Number(q.get('X-Amz-Expires'));
    const given = Buffer.from(q.get('X-Amz-Signature') ?? '', 'hex');
    const want = Buffer.from(sign(key, date, expires), 'hex');
    if (given.length !== want.length || !timingSafeEqual(given, want)) return 'SignatureDoesNotMatch';
    const m = /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/.exec(date);
    if (!m || Date.now() > Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) + expires * 1000) return 'AccessDenied: Request has expired';
    return undefined;
  };

  /** `objectStore`: the URL of the object store, for the upstream listener in presign mode. */
  const handle = async (req: IncomingMessage, res: ServerResponse, rec: RequestRecord, query: URLSearchParams, role: { objectStore?: string; isStore?: boolean }) => {
    const head = (status: number, headers: Record<string, string | number> = {}) => {
      rec.status = status;
      res.writeHead(status, headers);
    };
    const fail = (status: number, msg: string, headers: Record<string, string> = {}) => {
      const body = Buffer.from(`${msg}\n`);
      head(status, { 'Content-Type': 'text/plain', 'Content-Length': body.length, ...headers });
      if (req.method !== 'HEAD') {
        rec.bytes = body.length;
        res.end(body);
      } else res.end();
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return fail(405, 'method not allowed');
    let segments = rec.path.split('/').filter((s) => s && s !== '.');
    if (segments.some((s) => s === '..' || s.includes('\0') || s.includes('\\'))) return fail(400, 'bad path');
    if (role.isStore) {
      // The object store: /<bucket>/<key>, only with a valid presigned query.
      if (segments[0] !== BUCKET) return fail(404, 'NoSuchBucket');
      segments = segments.slice(1);
      const why = refusal(segments.join('/'), query);
      if (why) return fail(403, why);
    } else if (role.objectStore && req.method === 'GET' && rec.path.endsWith('.rpm')) {
      const location = presign(role.objectStore, segments.join('/'));
      head(302, { Location: location, 'Content-Type': 'text/plain', 'Content-Length': 0 });
      return void res.end();
    }
    // Apollo: the updateinfo.xml of a product's major, repo and arch (404 when it has no advisories there).
    const apollo = !role.isStore && segments.length === 7 && segments.slice(0, 3).join('/') === 'api/v3/updateinfo' && segments[6] === 'updateinfo.xml';
    if (apollo) {
      const arch = query.get('arch');
      if (!arch || !APOLLO_ARCHES.includes(arch)) return fail(400, `Invalid architecture: ${arch ?? '(none)'}. Must be one of ${APOLLO_ARCHES.join(', ')}`);
      segments = apolloFilePath(segments[3], segments[4], segments[5], arch).split('/');
    }
    const file = join(root, ...segments);
    if (file !== root && !file.startsWith(root + sep)) return fail(400, 'bad path');

    const fault = takeFault(rec.path);
    if (fault?.kind === 'slow') await new Promise((r) => setTimeout(r, fault.delayMs ?? 1000));
    if (fault?.kind === 'status404') return fail(404, 'not found (injected)');
    if (fault?.kind === 'status500') return fail(500, 'internal server error (injected)');
    if (fault?.kind === 'status503') return fail(503, 'service unavailable (injected)', fault.retryAfter !== undefined ? { 'Retry-After': fault.retryAfter } : {});

    // The build cache, temp dirs and the secret key are not part of the upstream.
    if (segments.some((s) => s.startsWith('.')) || segments[0] === 'gnupg') return fail(404, 'not found');
    const st = await fsp.stat(file).catch(() => undefined);
    if (!st?.isFile()) return fail(404, apollo ? 'No advisories found' : 'not found');

    head(200, { 'Content-Type': contentType(file), 'Content-Length': st.size, 'Last-Modified': st.mtime.toUTCString() });
    if (req.method === 'HEAD') return void res.end();
    if (fault?.kind === 'trickle') {
      // A stalled upstream that never quite stops: one byte, then a long pause, until the client leaves.
      const body = await fsp.readFile(file);
      for (let i = 0; i < body.length && !res.destroyed; i++) {
        res.write(body.subarray(i, i + 1));
        rec.bytes++;
        if (i + 1 < body.length) await pause(res, fault.delayMs ?? 30_000);
      }
      return void res.end();
    }
    const truncate = fault?.kind === 'truncate';
    const corrupt = fault?.kind === 'corrupt';
    const limit = truncate ? Math.floor(st.size / 2) : st.size;
    let pos = 0;
    if (limit > 0) {
      for await (const chunk of createReadStream(file, { start: 0, end: limit - 1, highWaterMark: 1 << 16 }) as AsyncIterable<Buffer>) {
        const out = corrupt ? Buffer.from(chunk) : chunk;
        if (corrupt) for (let i = 0; i < out.length; i++) if (flipped(pos + i, st.size)) out[i] ^= 0xff;
        pos += out.length;
        rec.bytes += out.length;
        if (!res.write(out)) await new Promise((r) => res.once('drain', r));
        if (res.destroyed) return;
      }
    }
    if (truncate) {
      // Headers promised the whole file: hang up after half of it, as a dropped connection does.
      await new Promise<void>((r) => res.write('', () => r()));
      res.socket?.destroy();
      return;
    }
    res.end();
  };

  const listen = async (role: { objectStore?: string; isStore?: boolean }, port: number) => {
    let origin = '';
    const server = createServer((req, res) => {
      const [raw, search = ''] = (req.url ?? '/').split('?', 2);
      let path: string;
      try {
        path = decodeURIComponent(raw);
      } catch {
        path = raw;
      }
      const socket = req.socket as Socket & { fixtureId?: number };
      socket.fixtureId ??= ++connections;
      const rec: RequestRecord = { method: req.method ?? '', path, status: 0, bytes: 0, time: Date.now(), origin, connection: socket.fixtureId, userAgent: req.headers['user-agent'] };
      requests.push(rec);
      handle(req, res, rec, new URLSearchParams(search), role).catch((e: Error) => {
        if (!res.headersSent) {
          rec.status = 500;
          res.writeHead(500, { 'Content-Type': 'text/plain' });
          res.end(`${e.message}\n`);
        } else res.destroy();
      });
    });
    const sockets = new Set<Socket>();
    server.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(port, host, () => ok());
    });
    const bound = (server.address() as AddressInfo).port;
    origin = `http://${urlHost}:${bound}`;
    const close = () =>
      new Promise<void>((ok) => {
        server.close(() => ok());
        for (const s of sockets) s.destroy();
      });
    return { origin, port: bound, close };
  };

  const store = opts.presignPackages ? await listen({ isStore: true }, 0) : undefined;
  const upstream = await listen({ objectStore: store?.origin }, opts.port ?? 0).catch(async (e: Error) => {
    await store?.close();
    throw e;
  });
  return {
    url: upstream.origin,
    port: upstream.port,
    objectStoreUrl: store?.origin,
    requests,
    setFaults(list) {
      rules = list.map((rule) => ({ rule, left: rule.times ?? Infinity }));
    },
    clearRequests() {
      requests.length = 0;
    },
    async close() {
      await Promise.all([upstream.close(), store?.close()]);
    },
  };
}
