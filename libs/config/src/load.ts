import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, isAbsolute } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { releaseSchema, siteSchema, type Release, type Site } from './schema';

/** A config file that does not validate: names the file, the field and what was expected. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly issues: { path: string; message: string }[],
  ) {
    super(`${file}: invalid configuration\n` + issues.map((i) => `  ${i.path || '(top level)'}: ${i.message}`).join('\n'));
    this.name = 'ConfigError';
  }
}

function formatPath(path: PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('');
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'unrecognized_keys':
      return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    case 'invalid_type':
      return `expected ${issue.expected}${/received undefined/.test(issue.message) ? ' (missing)' : ''}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'too_small':
    case 'too_big':
      return `expected a value ${issue.code === 'too_small' ? '>=' : '<='} ${String(issue.code === 'too_small' ? issue.minimum : issue.maximum)}`;
    default:
      return issue.message;
  }
}

/** zod's issues as `field path: what was expected`, the form every config error uses. */
export function zodIssues(error: z.ZodError): ConfigError['issues'] {
  return error.issues.map((i) => ({ path: formatPath(i.path), message: describeIssue(i) }));
}

/** Reads a YAML file (duplicate keys are errors); a read or syntax error names the file and line. */
export function readYamlDocument(file: string, display = file): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(display, [{ path: '', message: `cannot read: ${(e as Error).message}` }]);
  }
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length) {
    throw new ConfigError(
      display,
      doc.errors.map((e) => ({ path: `line ${e.linePos?.[0].line ?? '?'}`, message: e.message.split('\n')[0] })),
    );
  }
  return doc.toJS();
}

function parseYamlFile<S extends z.ZodType>(file: string, schema: S, display: string): z.infer<S> {
  const result = schema.safeParse(readYamlDocument(file, display));
  if (!result.success) throw new ConfigError(display, zodIssues(result.error));
  return result.data;
}

/** Loads `releases/<name>/release.yaml`; the project name is the directory name. */
export function loadRelease(workspaceRoot: string, nameOrFile: string): Release {
  const file = nameOrFile.endsWith('.yaml') ? resolve(workspaceRoot, nameOrFile) : join(workspaceRoot, 'releases', nameOrFile, 'release.yaml');
  const release = parseYamlFile(file, releaseSchema, relative(workspaceRoot, file) || file);
  return { ...release, name: basename(dirname(file)) };
}

export function listReleases(workspaceRoot: string): string[] {
  const dir = join(workspaceRoot, 'releases');
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dir, d.name, 'release.yaml')))
    .map((d) => d.name)
    .sort();
}

/** The site named by RELENG_SITE (default `local`), from `sites/<name>.yaml`. */
export function siteName(env: NodeJS.ProcessEnv = process.env): string {
  return env.RELENG_SITE || 'local';
}

/**
 * Loads a site. Relative paths in it are resolved against the workspace root, so the local
 * site keeps everything inside the (git-ignored) workspace.
 */
export function loadSite(workspaceRoot: string, name = siteName()): Site {
  const file = name.endsWith('.yaml') ? resolve(workspaceRoot, name) : join(workspaceRoot, 'sites', `${name}.yaml`);
  const display = relative(workspaceRoot, file) || file;
  if (!existsSync(file)) {
    throw new ConfigError(display, [{ path: '', message: `no such site file (RELENG_SITE=${name})` }]);
  }
  const s = parseYamlFile(file, siteSchema, display);
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(workspaceRoot, p));
  const store = s.store.type === 's3' ? { ...s.store, cache: abs(s.store.cache) } : { ...s.store, path: abs(s.store.path) };
  const cloud = s.cloud && s.cloud.source.type === 'dir' ? { source: { ...s.cloud.source, path: abs(s.cloud.source.path) } } : s.cloud;
  return {
    ...s,
    name: basename(file, '.yaml'),
    file,
    roots: { compose: abs(s.roots.compose), staging: abs(s.roots.staging), production: abs(s.roots.production) },
    upstream: {
      ...s.upstream,
      gpgKey: s.upstream.gpgKey && abs(s.upstream.gpgKey),
      fixture: s.upstream.fixture && { ...s.upstream.fixture, root: abs(s.upstream.fixture.root) },
    },
    store,
    state: abs(s.state),
    signing: s.signing && { ...s.signing, gnupgHome: abs(s.signing.gnupgHome) },
    cloud,
  };
}
