// Config for the Nx remote cache server: a YAML file validated with zod, with tokens optionally
// taken from the environment so secrets stay out of files. Objects are strict, as in
// @rocky/config: a misspelt key that were silently ignored could leave a server with no limit.
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError, readYamlDocument, zodIssues } from '@rocky/config';

/** The workspace's config error (file, field path, expectation), under the name the server's API uses. */
export { ConfigError as CacheServerConfigError };

const UNITS: Record<string, number> = {
  b: 1,
  // Same 1024-based reading of KB/MB/GB as Nx's own `maxCacheSize`, so one workspace has one meaning.
  kb: 1024,
  mb: 1024 ** 2,
  gb: 1024 ** 3,
  tb: 1024 ** 4,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/** Bytes from a number of bytes or a string like `500MB`, `2GiB`, `1.5 GB`; undefined if invalid. */
export function parseSize(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(value);
  if (!m) return undefined;
  const unit = UNITS[(m[2] || 'b').toLowerCase()];
  if (unit === undefined) return undefined;
  const bytes = Math.floor(Number(m[1]) * unit);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

const SIZE_HINT = 'a size: bytes as an integer, or a string like 500MB or 2GiB (KB/MB/GB are 1024-based, as in nx.json)';
const size = z.unknown().transform((v, ctx) => {
  const n = parseSize(v);
  if (n === undefined) {
    ctx.addIssue({ code: 'custom', message: `expected ${SIZE_HINT}, got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return n;
});
const DEFAULT_MAX_ENTRY_SIZE = 2 * 1024 ** 3;

// Tokens travel in an HTTP header: printable ASCII without spaces. The length floor keeps out
// placeholder values like "changeme" that would be guessable.
const token = z.string().regex(/^[\x21-\x7e]{16,512}$/, 'a token of 16-512 printable ASCII characters without spaces');

export const cacheServerConfigSchema = z
  .strictObject({
    port: z.number().int().min(0).max(65535).default(3900),
    host: z.string().min(1).default('127.0.0.1'),
    /** Directory for entries; relative paths resolve against the working directory. */
    storage: z.string().min(1).default('./.releng/cache-server'),
    /** Total size of stored entries; beyond it the least recently used are evicted. */
    // prefault: the default goes through the same parsing as a value from the file.
    maxSize: size.prefault('50GB'),
    /** Largest single entry accepted (413 above it); default 2GB, or maxSize if that is smaller. */
    maxEntrySize: size.optional(),
    tokens: z
      .strictObject({
        readWrite: z.array(token).default([]),
        readOnly: z.array(token).default([]),
      })
      .default({ readWrite: [], readOnly: [] }),
  })
  .superRefine((c, ctx) => {
    if (c.maxEntrySize !== undefined && c.maxEntrySize > c.maxSize)
      ctx.addIssue({ code: 'custom', path: ['maxEntrySize'], message: `larger than maxSize (${c.maxSize} bytes)` });
    if (c.maxSize === 0) ctx.addIssue({ code: 'custom', path: ['maxSize'], message: 'must be greater than 0' });
  });

export type CacheServerConfigInput = z.input<typeof cacheServerConfigSchema>;

/** A validated config: sizes in bytes, storage absolute, tokens merged from file and env. */
export interface CacheServerConfig {
  port: number;
  host: string;
  storage: string;
  maxSize: number;
  maxEntrySize: number;
  tokens: { readWrite: string[]; readOnly: string[] };
}

export const ENV_RW_TOKENS = 'RELENG_CACHE_RW_TOKENS';
export const ENV_RO_TOKENS = 'RELENG_CACHE_RO_TOKENS';

export interface ConfigOptions {
  /** Source of RELENG_CACHE_RW_TOKENS / RELENG_CACHE_RO_TOKENS (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Base for a relative `storage` (default process.cwd()). */
  cwd?: string;
}


const splitTokens = (v: string | undefined) =>
  (v ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);

/**
 * Validates a parsed config object (from YAML or from code) and merges env tokens.
 * `source` names the file (or `env`) in error messages.
 */
export function parseCacheServerConfig(raw: unknown, source: string, options: ConfigOptions = {}): CacheServerConfig {
  const env = options.env ?? process.env;
  const result = cacheServerConfigSchema.safeParse(raw ?? {});
  if (!result.success) {
    throw new ConfigError(
      source,
      zodIssues(result.error),
    );
  }
  const c = result.data;
  const issues: { path: string; message: string }[] = [];
  const fromEnv = (name: string, list: string[]) =>
    splitTokens(env[name]).forEach((t, i) => {
      const ok = token.safeParse(t);
      // The token itself is never echoed: error output ends up in CI logs.
      if (!ok.success) issues.push({ path: `$${name}[${i}]`, message: 'expected a token of 16-512 printable ASCII characters without spaces' });
      else list.push(t);
    });
  const readWrite = [...c.tokens.readWrite];
  const readOnly = [...c.tokens.readOnly];
  fromEnv(ENV_RW_TOKENS, readWrite);
  fromEnv(ENV_RO_TOKENS, readOnly);
  const rw = new Set(readWrite);
  // A token in both lists is a mistake either way; refuse rather than guess which was meant.
  if (readOnly.some((t) => rw.has(t))) issues.push({ path: 'tokens', message: 'a token is listed as both readWrite and readOnly' });
  if (rw.size === 0 && readOnly.length === 0)
    issues.push({ path: 'tokens', message: `no tokens: set tokens.readWrite / tokens.readOnly or $${ENV_RW_TOKENS} / $${ENV_RO_TOKENS}` });
  if (issues.length) throw new ConfigError(source, issues);
  const storage = isAbsolute(c.storage) ? c.storage : resolve(options.cwd ?? process.cwd(), c.storage);
  return {
    port: c.port,
    host: c.host,
    storage,
    maxSize: c.maxSize,
    maxEntrySize: c.maxEntrySize ?? Math.min(DEFAULT_MAX_ENTRY_SIZE, c.maxSize),
    tokens: { readWrite: [...rw], readOnly: [...new Set(readOnly)] },
  };
}

/** Reads and validates a YAML config file. */
export function loadCacheServerConfig(file: string, options: ConfigOptions = {}): CacheServerConfig {
  return parseCacheServerConfig(readYamlDocument(file), file, options);
}
