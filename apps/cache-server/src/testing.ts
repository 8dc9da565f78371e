// Helpers shared by the cache server's tests and the load bench: a small HTTP client that
// returns status and body, and temp directories.
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { request as httpRequest, type Agent, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export const tempDir = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface RequestOptions {
  method?: string;
  token?: string;
  body?: Buffer | string;
  headers?: Record<string, string>;
  /** Default: a fresh connection per request. */
  agent?: Agent | false;
}

/** One HTTP request against `base` (e.g. http://127.0.0.1:1234); resolves with the whole reply. */
export function request(base: string, path: string, options: RequestOptions = {}): Promise<Reply> {
  // `path` goes out verbatim (no URL normalisation), so tests can send `..`, `%2e` or `//`.
  const url = new URL(base);
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  const body = options.body === undefined ? undefined : Buffer.isBuffer(options.body) ? options.body : Buffer.from(options.body);
  if (body && !Object.keys(headers).some((h) => h.toLowerCase() === 'transfer-encoding')) headers['content-length'] = String(body.length);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, path, method: options.method ?? 'GET', headers, agent: options.agent ?? false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Waits until `check` returns true (polling); throws after `tries` attempts. */
export async function waitFor(check: () => boolean | Promise<boolean>, what: string, tries = 500, everyMs = 20): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}`);
}
