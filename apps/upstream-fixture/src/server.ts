// A static HTTP server over a fixture root (loopback by default), yumrepofs-like URLs, with
// fault injection: whole-request statuses, delays, truncated and corrupted bodies. Every
// request, faulted or not, is recorded.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createReadStream, promises as fsp } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import type { AddressInfo, Socket } from 'node:net';

export interface RequestRecord {
  method: string;
  /** The request's URL path (decoded, without the query). */
  path: string;
  status: number;
  /** Body bytes actually sent. */
  bytes: number;
  /** When the request arrived (ms since the epoch). */
  time: number;
}

export type FaultKind = 'status404' | 'status500' | 'slow' | 'truncate' | 'corrupt';

export interface FaultRule {
  /** A substring of the URL path, or a RegExp tested against it. */
  match: string | RegExp;
  kind: FaultKind;
  /** Apply to the first N matching requests, then serve normally (default: always). */
  times?: number;
  /** For `slow`: delay before answering (default 1000 ms). */
  delayMs?: number;
}

export interface FixtureServer {
  url: string;
  port: number;
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

export async function serveFixture(opts: { root: string; port?: number; host?: string }): Promise<FixtureServer> {
  const root = resolve(opts.root);
  const host = opts.host ?? '127.0.0.1';
  const requests: RequestRecord[] = [];
  let rules: { rule: FaultRule; left: number }[] = [];

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

  const handle = async (req: IncomingMessage, res: ServerResponse, rec: RequestRecord) => {
    const head = (status: number, headers: Record<string, string | number> = {}) => {
      rec.status = status;
      res.writeHead(status, headers);
    };
    const fail = (status: number, msg: string) => {
      const body = Buffer.from(`${msg}\n`);
      head(status, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
      if (req.method !== 'HEAD') {
        rec.bytes = body.length;
        res.end(body);
      } else res.end();
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return fail(405, 'method not allowed');
    const segments = rec.path.split('/').filter((s) => s && s !== '.');
    if (segments.some((s) => s === '..' || s.includes('\0') || s.includes('\\'))) return fail(400, 'bad path');
    const file = join(root, ...segments);
    if (file !== root && !file.startsWith(root + sep)) return fail(400, 'bad path');

    const fault = takeFault(rec.path);
    if (fault?.kind === 'slow') await new Promise((r) => setTimeout(r, fault.delayMs ?? 1000));
    if (fault?.kind === 'status404') return fail(404, 'not found (injected)');
    if (fault?.kind === 'status500') return fail(500, 'internal server error (injected)');

    // The build cache, temp dirs and the secret key are not part of the upstream.
    if (segments.some((s) => s.startsWith('.')) || segments[0] === 'gnupg') return fail(404, 'not found');
    const st = await fsp.stat(file).catch(() => undefined);
    if (!st?.isFile()) return fail(404, 'not found');

    head(200, { 'Content-Type': contentType(file), 'Content-Length': st.size, 'Last-Modified': st.mtime.toUTCString() });
    if (req.method === 'HEAD') return void res.end();
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

  const server = createServer((req, res) => {
    const raw = (req.url ?? '/').split('?')[0];
    let path: string;
    try {
      path = decodeURIComponent(raw);
    } catch {
      path = raw;
    }
    const rec: RequestRecord = { method: req.method ?? '', path, status: 0, bytes: 0, time: Date.now() };
    requests.push(rec);
    handle(req, res, rec).catch((e: Error) => {
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
    server.listen(opts.port ?? 0, host, () => ok());
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    requests,
    setFaults(list) {
      rules = list.map((rule) => ({ rule, left: rule.times ?? Infinity }));
    },
    clearRequests() {
      requests.length = 0;
    },
    close() {
      return new Promise((ok) => {
        server.close(() => ok());
        for (const s of sockets) s.destroy();
      });
    },
  };
}
