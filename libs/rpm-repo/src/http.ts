// HTTP(S) and file:// reads of upstream repos: keep-alive, an idle timeout, retries with
// exponential backoff on transient failures (5xx, resets, timeouts, truncated bodies, a body
// that fails its checksum), and a clear error naming the URL on a persistent one (404).
import http from 'node:http';
import https from 'node:https';
import { createReadStream, promises as fsp } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import { IntegrityError } from '@rocky/store';

const agents = { http: new http.Agent({ keepAlive: true, maxSockets: 64 }), https: new https.Agent({ keepAlive: true, maxSockets: 64 }) };

export class HttpError extends Error {
  constructor(
    readonly url: string,
    readonly status: number,
  ) {
    super(`GET ${url}: HTTP ${status}`);
    this.name = 'HttpError';
  }
}

export interface FetchOptions {
  /** Attempts in all, for transient failures (default 4). */
  attempts?: number;
  /** First backoff in ms; doubles each retry (default 250). */
  backoffMs?: number;
  /** Idle socket timeout in ms (default 60 s). */
  timeoutMs?: number;
  /** Called before each retry, to report it. */
  onRetry?: (err: Error, attempt: number) => void;
}

const transient = (e: unknown) =>
  e instanceof IntegrityError ||
  (e instanceof HttpError && (e.status >= 500 || e.status === 429 || e.status === 408)) ||
  ['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE', 'EAI_AGAIN'].includes((e as NodeJS.ErrnoException).code ?? '') ||
  (e as Error).message === 'aborted' ||
  (e as Error).message === 'timeout';

/** Opens a response body stream (or a file stream for file:// URLs). */
export function openUrl(url: string, timeoutMs = 60_000): Promise<{ body: Readable; size?: number }> {
  if (url.startsWith('file://')) {
    const file = fileURLToPath(url);
    return fsp.stat(file).then(
      (st) => ({ body: createReadStream(file), size: st.size }),
      (e: NodeJS.ErrnoException) => Promise.reject(e.code === 'ENOENT' ? new HttpError(url, 404) : e),
    );
  }
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.get(url, { agent: url.startsWith('https:') ? agents.https : agents.http }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new HttpError(url, res.statusCode ?? 0));
        return;
      }
      const len = res.headers['content-length'];
      res.setTimeout(timeoutMs, () => res.destroy(new Error('timeout')));
      resolve({ body: res, size: len !== undefined ? Number(len) : undefined });
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Runs `attempt` with retries on transient errors. */
export async function withRetries<T>(what: string, fn: () => Promise<T>, opts: FetchOptions = {}): Promise<T> {
  const attempts = opts.attempts ?? 4;
  let last: Error | undefined;
  for (let i = 1; i <= attempts; i++) {
    try {
      return await fn();
    } catch (e) {
      last = e as Error;
      if (!transient(e) || i === attempts) break;
      opts.onRetry?.(last, i);
      await new Promise((r) => setTimeout(r, (opts.backoffMs ?? 250) * 2 ** (i - 1)));
    }
  }
  if (last && last.message.includes(what)) throw last;
  throw new Error(`${what}: ${last?.message}`);
}

/** Reads a whole (small) URL into memory, with retries. */
export function fetchBuffer(url: string, opts: FetchOptions = {}): Promise<Buffer> {
  return withRetries(
    url,
    async () => {
      const { body, size } = await openUrl(url, opts.timeoutMs);
      const chunks: Buffer[] = [];
      for await (const c of body) chunks.push(c as Buffer);
      const buf = Buffer.concat(chunks);
      if (size !== undefined && buf.length !== size) throw Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
      return buf;
    },
    opts,
  );
}
