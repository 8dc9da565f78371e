// HTTP(S) and file:// reads of upstream repos, over undici: keep-alive connection pools, proxies
// from HTTP_PROXY/HTTPS_PROXY/NO_PROXY, redirects (yumrepofs answers package GETs with a 302 to
// a presigned object-store URL), a low-speed limit and a deadline per download, retries with
// exponential backoff on transient failures (5xx, 429, resets, timeouts, truncated bodies, a
// body that fails its checksum) honouring Retry-After, and a clear error naming the URL on a
// persistent one (404).
import { createReadStream, promises as fsp } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { DOWNLOAD_DEFAULTS, type DownloadLimits } from '@rocky/config';
import { IntegrityError } from '@rocky/store';
import { version } from '../../../package.json';

/**
 * undici's EnvHttpProxyAgent, loaded on the first request: processes that load this module and
 * read no URL (the upstream fingerprint of a fixture site) skip it. Only the agent's own module
 * (pinned undici 7): its index loads fetch, cookies, websockets and caches too, ~90 ms more in the
 * sync task, none of which a dispatch() needs.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const EnvHttpProxyAgent = (): typeof import('undici').EnvHttpProxyAgent => require('undici/lib/dispatcher/env-http-proxy-agent');

const USER_AGENT = `rocky-releng/${version} (+node)`;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

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
    pool = { proxies, agent: new (EnvHttpProxyAgent())({ connections: 64, proxyTunnel: false }) };
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

/** Where one response body goes, chunk by chunk, as it arrives. */
export interface BodySink<T> {
  /** A chunk; throwing ends the attempt with that error; false asks for a pause until `ctl.resume`. */
  data(chunk: Buffer): boolean | void;
  /** The whole body arrived. */
  end(): Promise<T> | T;
  /** The attempt failed after the sink was opened (a dropped connection, a limit). */
  fail?(err: Error): void;
}

/** What a sink may ask of the transfer feeding it. */
export interface BodyControl {
  resume(): void;
  abort(err: Error): void;
}

type Opener<T> = (size: number | undefined, ctl: BodyControl) => BodySink<T>;

/** A response other than 200: what a redirect or an error needs of it. */
interface NotOk {
  status: number;
  location?: string;
  retryAfter?: string;
}

/** One response's headers that matter here, read from undici's raw name/value pairs. */
function headersOf(raw: Buffer[]): { length?: number; location?: string; retryAfter?: string } {
  const out: { length?: number; location?: string; retryAfter?: string } = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toString('latin1').toLowerCase();
    if (name === 'content-length') out.length = Number(raw[i + 1].toString('latin1'));
    else if (name === 'location') out.location = raw[i + 1].toString('utf8');
    else if (name === 'retry-after') out.retryAfter = raw[i + 1].toString('latin1');
  }
  return out;
}

/** An attempt's bytes so far, and how to end the exchange in progress with an error. */
interface Watch {
  bytes: number;
  stop: (e: Error) => void;
}

/**
 * One GET of `at`, over undici's dispatch() with a small handler: request() builds a body stream,
 * an abort-signal listener and promises per response, most of a small download's main-thread
 * CPU. Resolves with the sink's result on a 200; otherwise with the status (that body dropped).
 */
function exchange<T>(at: URL, watch: Watch, open: Opener<T>): Promise<{ value: T } | NotOk> {
  return new Promise((resolve, reject) => {
    let sink: BodySink<T> | undefined;
    let notOk: NotOk | undefined;
    let abort: ((e: Error) => void) | undefined;
    let stopped: Error | undefined;
    const failed = (e: Error) => {
      sink?.fail?.(e);
      reject(e);
    };
    // Before a connection is assigned there is nothing to abort yet: fail now, abort on connect.
    watch.stop = (e) => (abort ? abort(e) : ((stopped ??= e), failed(e)));
    const ctl: BodyControl = { resume: () => {}, abort: (e) => watch.stop(e) };
    const handler: Dispatcher.DispatchHandler = {
      onConnect: (a) => (stopped ? a(stopped) : (abort = a)),
      onHeaders: (status, raw, resume) => {
        const h = headersOf(raw as Buffer[]);
        if (status !== 200) {
          notOk = { status, location: h.location, retryAfter: h.retryAfter };
          return true;
        }
        ctl.resume = resume;
        sink = open(Number.isFinite(h.length) ? h.length : undefined, ctl);
        return true;
      },
      onData: (chunk) => {
        watch.bytes += chunk.length;
        return !sink || sink.data(chunk) !== false;
      },
      onComplete: () => {
        if (!sink) return resolve(notOk!);
        Promise.resolve()
          .then(() => sink!.end())
          .then((value) => resolve({ value }), reject);
      },
      onError: failed,
    };
    dispatcher().dispatch({ origin: at.origin, path: at.pathname + at.search, method: 'GET', headers: { 'user-agent': USER_AGENT } }, handler);
  });
}

/** A file:// URL into a sink, pausing while it asks to. */
async function fromFile<T>(url: string, open: Opener<T>): Promise<T> {
  const file = fileURLToPath(url);
  const st = await fsp.stat(file).catch((e: NodeJS.ErrnoException) => Promise.reject(e.code === 'ENOENT' ? new HttpError(url, 404) : e));
  const stream = createReadStream(file);
  let waiting: (() => void) | undefined;
  const sink = open(st.size, { resume: () => waiting?.(), abort: (e) => stream.destroy(e) });
  try {
    for await (const c of stream as AsyncIterable<Buffer>) if (sink.data(c) === false) await new Promise<void>((r) => (waiting = r));
  } catch (e) {
    sink.fail?.(e as Error);
    throw e;
  }
  return sink.end();
}

/**
 * GETs `url` (or reads a file:// URL), following redirects to http(s) URLs only, into the sink
 * `open` makes from the announced length. The low-speed limit and the deadline cover the whole
 * attempt, from the request to the last byte. A body shorter than its Content-Length fails
 * (undici's UND_ERR_RES_CONTENT_LENGTH_MISMATCH: transient).
 */
export async function fetchInto<T>(url: string, limits: Partial<DownloadLimits> | undefined, open: Opener<T>): Promise<T> {
  if (url.startsWith('file://')) return fromFile(url, open);
  const { lowSpeedBytes, lowSpeedSeconds, deadlineSeconds } = { ...DOWNLOAD_DEFAULTS, ...limits };
  const watch: Watch = { bytes: 0, stop: () => {} };
  let hit: DownloadLimitError | undefined;
  const stop = (why: string) => {
    hit ??= new DownloadLimitError(url, why);
    watch.stop(hit);
  };
  let checked = 0;
  const deadline = deadlineSeconds > 0 ? setTimeout(() => stop(`not complete after ${deadlineSeconds} s (upstream.download.deadlineSeconds)`), deadlineSeconds * 1000) : undefined;
  // As curl's --speed-limit/--speed-time: too few bytes over a whole window ends the attempt.
  const speed =
    lowSpeedBytes > 0
      ? setInterval(() => {
          if (watch.bytes - checked < lowSpeedBytes * lowSpeedSeconds) stop(`slower than ${lowSpeedBytes} bytes/s for ${lowSpeedSeconds} s (upstream.download.lowSpeedBytes/lowSpeedSeconds)`);
          checked = watch.bytes;
        }, lowSpeedSeconds * 1000)
      : undefined;
  try {
    let at = new URL(url);
    for (let hops = 0; ; hops++) {
      if (hit) throw hit; // a limit reached between two hops
      const res = await exchange(at, watch, open);
      if ('value' in res) return res.value;
      const redirectedTo = hops ? withoutQuery(at) : undefined;
      if (!REDIRECTS.has(res.status)) throw new HttpError(url, res.status, { redirectedTo, retryAfterMs: retryAfter(res.status, res.retryAfter) });
      const fail = (detail: string) => new HttpError(url, res.status, { redirectedTo, detail });
      if (res.location === undefined) throw fail(`HTTP ${res.status} without a Location`);
      if (hops === MAX_REDIRECTS) throw fail(`more than ${MAX_REDIRECTS} redirects`);
      const next = new URL(res.location, at);
      if (next.protocol !== 'http:' && next.protocol !== 'https:') throw fail(`redirect to ${withoutQuery(next)} refused (only http and https are followed)`);
      at = next;
    }
  } catch (e) {
    throw hit ?? e;
  } finally {
    clearTimeout(deadline);
    clearInterval(speed);
  }
}

/**
 * fetchInto for a consumer that reads a stream (a big package streamed to disk): `consume` gets
 * the body as a Readable (the transfer pauses while it does not read) and its announced length;
 * its failure ends the transfer.
 */
export function download<T>(url: string, limits: Partial<DownloadLimits> | undefined, consume: (body: Readable, size: number | undefined) => Promise<T>): Promise<T> {
  return fetchInto(url, limits, (size, ctl) => {
    const body = new Readable({ read: () => ctl.resume() });
    const result = consume(body, size);
    result.catch((e: Error) => ctl.abort(e));
    return { data: (c) => body.push(c), end: () => (body.push(null), result), fail: (e) => body.destroy(e) };
  });
}

/** A sink that gathers the body in memory; `max` bytes at most (more: `tooBig`'s error ends the transfer). */
export function memorySink<T>(finish: (buf: Buffer) => Promise<T> | T, opts: { max?: number; tooBig?: () => Error; onData?: (n: number) => void } = {}): BodySink<T> {
  const chunks: Buffer[] = [];
  let got = 0;
  return {
    data(c) {
      got += c.length;
      if (opts.max !== undefined && got > opts.max) throw opts.tooBig?.() ?? new Error(`more than ${opts.max} bytes`);
      opts.onData?.(c.length);
      chunks.push(c);
    },
    end: () => finish(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, got)),
  };
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
      fetchInto(url, opts.download, (size) =>
        memorySink((buf) => {
          if (size !== undefined && buf.length !== size) throw Object.assign(new Error(`GET ${url}: ${buf.length} of ${size} bytes`), { code: 'ECONNRESET' });
          return buf;
        }),
      ),
    opts,
  );
}
