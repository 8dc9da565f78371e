// HTTP(S) and file:// reads of upstream repos, over undici: keep-alive connection pools, proxies
// from HTTP_PROXY/HTTPS_PROXY/NO_PROXY, redirects (yumrepofs answers package GETs with a 302 to
// a presigned object-store URL), a low-speed limit and a deadline per download, retries with
// exponential backoff on transient failures (5xx, 429, resets, timeouts, truncated bodies, a
// body that fails its checksum) honouring Retry-After, and a clear error naming the URL on a
// persistent one (404).
import { createReadStream, promises as fsp } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { downloadSchema, type DownloadLimits } from '@rocky/config';
import { IntegrityError } from '@rocky/store';
import { version } from '../../../package.json';

/** undici, loaded on the first request (~0.2 CPU-s): processes that load this module and read no URL (the upstream fingerprint of a fixture site) skip it. */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const undici = (): typeof import('undici') => require('undici');

const USER_AGENT = `rocky-releng/${version} (+node)`;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;
const DEFAULT_LIMITS = downloadSchema.parse({});

export class HttpError extends Error {
  /** Where redirects led, when they did (without its query: presigned URLs carry credentials). */
  readonly redirectedTo?: string;
  /** What a Retry-After header asked for, in ms. */
  readonly retryAfterMs?: number;
  constructor(
    readonly url: string,
    readonly status: number,
    more: { redirectedTo?: string; retryAfterMs?: number; detail?: string } = {},
  ) {
    super(`GET ${url}${more.redirectedTo ? ` (redirected to ${more.redirectedTo})` : ''}: ${more.detail ?? `HTTP ${status}`}`);
    this.name = 'HttpError';
    this.redirectedTo = more.redirectedTo;
    this.retryAfterMs = more.retryAfterMs;
  }
}

/** A download attempt hit the site's low-speed limit or deadline. */
export class DownloadLimitError extends Error {
  constructor(url: string, why: string) {
    super(`GET ${url}: ${why}`);
    this.name = 'DownloadLimitError';
  }
}

export interface FetchOptions {
  /** Attempts in all, for transient failures (default 4). */
  attempts?: number;
  /** First backoff in ms; doubles each retry (default 250). */
  backoffMs?: number;
  /** The longest wait a Retry-After header may impose before a retry (default 60 s). */
  maxRetryAfterMs?: number;
  /** Low-speed limit and deadline of each attempt: the site's `upstream.download` (unset fields: its defaults). */
  download?: Partial<DownloadLimits>;
  /** Called before each retry, with the wait before it, to report it. */
  onRetry?: (err: Error, attempt: number, delayMs: number) => void;
}

// A failure another withRetries wrapped (one attempt inside the retries around it) is judged by its cause.
const transient = (e: unknown): boolean =>
  (e instanceof Error && e.cause !== undefined && transient(e.cause)) ||
  e instanceof IntegrityError ||
  e instanceof DownloadLimitError ||
  (e instanceof HttpError && (e.status >= 500 || e.status === 429 || e.status === 408)) ||
  [
    'ECONNRESET',
    'ECONNREFUSED',
    'ETIMEDOUT',
    'EPIPE',
    'EAI_AGAIN',
    'ERR_STREAM_PREMATURE_CLOSE',
    'UND_ERR_SOCKET',
    'UND_ERR_CONNECT_TIMEOUT',
    'UND_ERR_HEADERS_TIMEOUT',
    'UND_ERR_BODY_TIMEOUT',
    'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  ].includes((e as NodeJS.ErrnoException).code ?? '');

/** The Retry-After a server sent, looked for through the causes of wrapping retries as transient() looks. */
const retryAfterOf = (e: unknown): number | undefined => (e instanceof HttpError ? e.retryAfterMs : e instanceof Error && e.cause !== undefined ? retryAfterOf(e.cause) : undefined);

// One pool per origin for the whole process (a sync makes thousands of requests to one host),
// rebuilt only if the proxy variables change. Plain-HTTP targets go to an HTTP proxy as
// absolute-URL requests, as curl and dnf do (proxies commonly refuse CONNECT to port 80).
let pool: { proxies: string; agent: Dispatcher } | undefined;
function dispatcher(): Dispatcher {
  const env = process.env;
  const proxies = `${env.http_proxy ?? env.HTTP_PROXY ?? ''} ${env.https_proxy ?? env.HTTPS_PROXY ?? ''}`;
  if (pool?.proxies !== proxies) {
    void pool?.agent.close();
    pool = { proxies, agent: new (undici().EnvHttpProxyAgent)({ connections: 64, proxyTunnel: false }) };
  }
  return pool.agent;
}

/** Retry-After (seconds or an HTTP date) in ms, for the statuses it applies to. */
function retryAfter(status: number, header: string | string[] | undefined): number | undefined {
  if ((status !== 429 && status !== 503) || typeof header !== 'string') return undefined;
  const ms = /^\d+$/.test(header.trim()) ? Number(header) * 1000 : Date.parse(header) - Date.now();
  return Number.isNaN(ms) ? undefined : Math.max(0, ms);
}

const withoutQuery = (u: URL) => `${u.protocol}//${u.host}${u.pathname}`;

/** GETs `url`, following redirects to http(s) URLs only; resolves on a 200. */
async function get(url: string, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
  let at = new URL(url);
  for (let hops = 0; ; hops++) {
    const res = await undici().request(at, { dispatcher: dispatcher(), headers: { 'user-agent': USER_AGENT }, signal });
    if (res.statusCode === 200) return res;
    await res.body.dump();
    const redirectedTo = hops ? withoutQuery(at) : undefined;
    if (!REDIRECTS.has(res.statusCode)) throw new HttpError(url, res.statusCode, { redirectedTo, retryAfterMs: retryAfter(res.statusCode, res.headers['retry-after']) });
    const fail = (detail: string) => new HttpError(url, res.statusCode, { redirectedTo, detail });
    const location = res.headers.location;
    if (typeof location !== 'string') throw fail(`HTTP ${res.statusCode} without a Location`);
    if (hops === MAX_REDIRECTS) throw fail(`more than ${MAX_REDIRECTS} redirects`);
    const next = new URL(location, at);
    if (next.protocol !== 'http:' && next.protocol !== 'https:') throw fail(`redirect to ${withoutQuery(next)} refused (only http and https are followed)`);
    at = next;
  }
}

/**
 * GETs `url` (or reads a file:// URL) and hands the body and its announced length to `consume`,
 * which must read it to the end and pass each chunk's length to `got`. The low-speed limit and
 * the deadline cover the whole attempt, from the request to the last byte `consume` took.
 * (`got` rather than a counting Transform: a stream pipeline per file cost more main-thread CPU
 * than the bytes of a small package.)
 */
export async function download<T>(
  url: string,
  limits: Partial<DownloadLimits> | undefined,
  consume: (body: Readable, size: number | undefined, got: (n: number) => void) => Promise<T>,
): Promise<T> {
  if (url.startsWith('file://')) {
    const file = fileURLToPath(url);
    const st = await fsp.stat(file).catch((e: NodeJS.ErrnoException) => Promise.reject(e.code === 'ENOENT' ? new HttpError(url, 404) : e));
    return consume(createReadStream(file), st.size, () => {});
  }
  const { lowSpeedBytes, lowSpeedSeconds, deadlineSeconds } = { ...DEFAULT_LIMITS, ...limits };
  const abort = new AbortController();
  let hit: DownloadLimitError | undefined;
  const stop = (why: string) => {
    hit ??= new DownloadLimitError(url, why);
    abort.abort(hit);
  };
  let bytes = 0;
  let checked = 0;
  const deadline = deadlineSeconds > 0 ? setTimeout(() => stop(`not complete after ${deadlineSeconds} s (upstream.download.deadlineSeconds)`), deadlineSeconds * 1000) : undefined;
  // As curl's --speed-limit/--speed-time: too few bytes over a whole window ends the attempt.
  const speed =
    lowSpeedBytes > 0
      ? setInterval(() => {
          if (bytes - checked < lowSpeedBytes * lowSpeedSeconds) stop(`slower than ${lowSpeedBytes} bytes/s for ${lowSpeedSeconds} s (upstream.download.lowSpeedBytes/lowSpeedSeconds)`);
          checked = bytes;
        }, lowSpeedSeconds * 1000)
      : undefined;
  try {
    const res = await get(url, abort.signal);
    const len = res.headers['content-length'];
    try {
      return await consume(res.body, typeof len === 'string' ? Number(len) : undefined, (n) => void (bytes += n));
    } catch (e) {
      // `consume` failed (a checksum mismatch, a limit, a dropped connection): drop the rest of the body and its connection.
      abort.abort(e);
      res.body.destroy();
      throw e;
    }
  } catch (e) {
    throw hit ?? e;
  } finally {
    clearTimeout(deadline);
    clearInterval(speed);
  }
}

/** Runs `fn` with retries on transient errors; a Retry-After the server sent replaces the backoff. */
export async function withRetries<T>(what: string, fn: () => Promise<T>, opts: FetchOptions = {}): Promise<T> {
  const attempts = opts.attempts ?? 4;
  let last: Error | undefined;
  for (let i = 1; i <= attempts; i++) {
    try {
      return await fn();
    } catch (e) {
      last = e as Error;
      if (!transient(e) || i === attempts) break;
      const asked = retryAfterOf(e);
      const delay = asked !== undefined ? Math.min(asked, opts.maxRetryAfterMs ?? 60_000) : (opts.backoffMs ?? 250) * 2 ** (i - 1);
      opts.onRetry?.(last, i, delay);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
  if (last && last.message.includes(what)) throw last;
  throw new Error(`${what}: ${last?.message}`, { cause: last });
}

/** Reads a whole (small) URL into memory, with retries. */
export function fetchBuffer(url: string, opts: FetchOptions = {}): Promise<Buffer> {
  return withRetries(
    url,
    () =>
      download(url, opts.download, async (body, size, got) => {
        const chunks: Buffer[] = [];
        for await (const c of body as AsyncIterable<Buffer>) {
          got(c.length);
          chunks.push(c);
        }
        const buf = Buffer.concat(chunks);
        if (size !== undefined && buf.length !== size) throw Object.assign(new Error(`GET ${url}: ${buf.length} of ${size} bytes`), { code: 'ECONNRESET' });
        return buf;
      }),
    opts,
  );
}
