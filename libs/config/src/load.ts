import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, existsSync, readlinkSync, realpathSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join, relative, resolve, isAbsolute, sep } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { z } from 'zod';
import { composeBase, latestLink, productionNames, stagingNames } from './names';
import { schemas, type Producer, type Release, type Site } from './schema';

/** The YAML parser, loaded with the first file parsed: a config taken from the cache (validated below) needs none. */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const yaml = (): typeof import('yaml') => require('yaml');

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
    case 'too_big': {
      const small = issue.code === 'too_small';
      const bound = Number(small ? issue.minimum : issue.maximum);
      if (issue.origin === 'array' || issue.origin === 'set' || issue.origin === 'string') {
        const n = issue.inclusive ? bound : small ? bound + 1 : bound - 1;
        return `expected ${small ? 'at least' : 'at most'} ${n} ${issue.origin === 'string' ? 'character' : 'item'}${n === 1 ? '' : 's'}`;
      }
      const op = (small ? '>' : '<') + (issue.inclusive ? '=' : '');
      return `expected ${issue.origin === 'number' ? 'a number' : 'a value'} ${op} ${bound}`;
    }
    default:
      return issue.message;
  }
}

/** zod's issues as `field path: what was expected`, the form every config error uses. */
export function zodIssues(error: z.ZodError): ConfigError['issues'] {
  return error.issues.map((i) => ({ path: formatPath(i.path), message: describeIssue(i) }));
}

/** Nodes that aliases (`*name`) may expand to: a few levels of nested aliases would otherwise take the host's memory. */
const MAX_ALIAS_COUNT = 100;

/** Decodes UTF-8 strictly: a stray Latin-1 byte would otherwise become U+FFFD in a name or a path. */
function decodeUtf8(bytes: Buffer, display: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    // The lenient decoding re-encodes to the same bytes up to the first bad sequence; the first
    // byte that differs lies in its replacement character, whose start is where that sequence starts.
    const lenient = Buffer.from(bytes.toString('utf8'));
    let at = 0;
    while (lenient[at] === bytes[at]) at++;
    while (at > 0 && (lenient[at] & 0xc0) === 0x80) at--;
    const line = bytes.subarray(0, at).filter((b) => b === 0x0a).length + 1;
    throw new ConfigError(display, [{ path: `line ${line}`, message: `not UTF-8: byte 0x${bytes[at].toString(16).padStart(2, '0')} at offset ${at} (save the file as UTF-8)` }]);
  }
}

/** Reads a YAML file (duplicate keys are errors); a read, encoding or syntax error names the file and line. */
export function readYamlDocument(file: string, display = file): unknown {
  return parseYaml(readConfigFile(file, display), display);
}

function readConfigFile(file: string, display: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new ConfigError(display, [{ path: '', message: `cannot read: ${(e as Error).message}` }]);
  }
}

function parseYaml(bytes: Buffer, display: string): unknown {
  const doc = yaml().parseDocument(decodeUtf8(bytes, display), { uniqueKeys: true });
  if (doc.errors.length) {
    throw new ConfigError(
      display,
      doc.errors.map((e) => ({ path: `line ${e.linePos?.[0].line ?? '?'}`, message: e.message.split('\n')[0] })),
    );
  }
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    throw new ConfigError(display, [{ path: '', message: `${(e as Error).message}: its aliases (*name) expand to more than ${MAX_ALIAS_COUNT} nodes` }]);
  }
}

/**
 * Validated files are kept as JSON under Nx's workspace data (cleared by `nx reset`), named by a
 * digest of every byte the validation depends on: the file's, and the code's (this module, the
 * schemas, the versions of zod and yaml). A file already validated is then read back without
 * parsing or validating, and without loading zod or yaml: ~0.1 s of each task's start. Only what
 * validated is kept, so a bad file fails every time, naming file and field; a changed byte
 * anywhere validates anew. What a loader checks beyond the file (loadSite's paths on disk, the
 * releases a site names) is checked every time.
 */
const VALIDATED = '.nx/workspace-data/releng-config';

let codeDigest: string | undefined;
/** The validating code: load and schema as they run (compiled .js, or .ts under vitest), and the parsers' versions. */
function validatingCode(): string {
  if (codeDigest) return codeDigest;
  const h = createHash('sha256');
  for (const f of [__filename, join(__dirname, `schema${extname(__filename)}`), require.resolve('zod/package.json'), require.resolve('yaml/package.json')]) h.update(`${f}\0`).update(readFileSync(f)).update('\0');
  return (codeDigest = h.digest('hex'));
}

function parseYamlFile(root: string, file: string, kind: 'releaseSchema' | 'siteSchema', display: string): unknown {
  const bytes = readConfigFile(file, display);
  const kept = join(root, VALIDATED, `${createHash('sha256').update(`${validatingCode()}\0${kind}\0`).update(bytes).digest('hex').slice(0, 32)}.json`);
  try {
    return JSON.parse(readFileSync(kept, 'utf8'));
  } catch {
    // not validated yet (or a damaged entry: validated anew and replaced)
  }
  const result = schemas()[kind].safeParse(parseYaml(bytes, display));
  if (!result.success) throw new ConfigError(display, zodIssues(result.error));
  keep(kept, result.data);
  return result.data;
}

/** Keeps a validated file (written whole: renamed into place), unless JSON would not give it back as it is. */
function keep(kept: string, data: unknown): void {
  const json = JSON.stringify(data);
  if (!isDeepStrictEqual(JSON.parse(json), data)) return;
  try {
    mkdirSync(dirname(kept), { recursive: true });
    writeFileSync(`${kept}.tmp-${process.pid}`, json);
    renameSync(`${kept}.tmp-${process.pid}`, kept);
    // Entries an hour old go (those of files edited since, and any other: a file still as it was is kept again at its next load).
    for (const old of readdirSync(dirname(kept))) {
      const p = join(dirname(kept), old);
      if (p !== kept && Date.now() - statSync(p).mtimeMs > 3600_000) rmSync(p, { force: true });
    }
  } catch {
    // A workspace this process cannot write to: the file is validated again next time.
  }
}

/** Loads `releases/<name>/release.yaml`; the project name is the directory name. */
export function loadRelease(workspaceRoot: string, nameOrFile: string): Release {
  const file = nameOrFile.endsWith('.yaml') ? resolve(workspaceRoot, nameOrFile) : join(workspaceRoot, 'releases', nameOrFile, 'release.yaml');
  const release = parseYamlFile(workspaceRoot, file, 'releaseSchema', relative(workspaceRoot, file) || file) as Omit<Release, 'name'>;
  return { ...release, name: basename(dirname(file)) };
}

/** The release directories as the plugin's glob sees them: Nx does not follow a symlinked directory. */
export function listReleases(workspaceRoot: string): string[] {
  const dir = join(workspaceRoot, 'releases');
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dir, d.name, 'release.yaml')))
    .map((d) => d.name)
    .sort();
}

/**
 * Loads every release and checks what no single file shows: two releases that would move one
 * compose link or publish into one directory, and release directories Nx would not see. The
 * plugin calls it, so every nx command fails with the message before a stage runs.
 */
export function checkReleases(workspaceRoot: string): void {
  const dir = join(workspaceRoot, 'releases');
  for (const d of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (d.isSymbolicLink() && existsSync(join(dir, d.name, 'release.yaml')))
      throw new ConfigError(`releases/${d.name}`, [
        { path: '', message: `a symlink (to ${readlinkSync(join(dir, d.name))}): Nx's glob releases/*/release.yaml does not follow it, so this release would silently not be a project; make it a directory` },
      ]);
  }
  // Every name a release writes beside other releases' names, and whose it is.
  const owners = new Map<string, string>();
  for (const name of listReleases(workspaceRoot)) {
    const rel = loadRelease(workspaceRoot, name);
    const file = `releases/${name}/release.yaml`;
    const issues: ConfigError['issues'] = [];
    const claim = (written: string, path: string, from: string, clash: string) => {
      const other = owners.get(written);
      if (other) issues.push({ path, message: `${written} (from ${from}) is also written by ${other}: ${clash}` });
      else owners.set(written, file);
    };
    const sig = rel.kind === 'sig';
    claim(`<compose>/${composeBase(rel)}/${latestLink(rel)}`, sig ? 'sig.name' : 'profile', sig ? 'major and sig.name' : 'shortname, major and profile', 'both would move one latest link');
    for (const [tree, names] of [['staging', stagingNames(rel)], ['production', productionNames(rel)]] as const) {
      for (const entry of [names.dir, ...Object.keys(names.links)]) {
        if (sig) claim(`<${tree}>/<sigCategory>/${entry}`, 'sig.name', 'major and sig.name', 'both would publish it');
        else claim(`<${tree}>/<category>/${entry}`, entry === names.dir ? 'minor' : 'major', 'major, minor, type and rc', 'both would publish it');
      }
    }
    if (issues.length) throw new ConfigError(file, issues);
  }
}

/** What makes a host a compose host: Rocky's compose mount (sites/rocky-prod.yaml's roots.compose). */
export const COMPOSE_HOST_PROBE = '/mnt/compose';

/**
 * The site named by RELENG_SITE (default `local`), from `sites/<name>.yaml`. On a compose host
 * (`composeHostProbe` exists) the embedded demo site must be asked for by name: a forgotten
 * RELENG_SITE would otherwise run a whole release against the fixture, quietly.
 */
export function siteName(env: NodeJS.ProcessEnv = process.env, composeHostProbe = COMPOSE_HOST_PROBE): string {
  if (env.RELENG_SITE) return env.RELENG_SITE;
  if (existsSync(composeHostProbe)) {
    throw new Error(
      `RELENG_SITE is not set, and this host has ${composeHostProbe}: it looks like a compose host, so the local demo site is not chosen by default. ` +
        `Say which site to use: RELENG_SITE=rocky-prod (sites/rocky-prod.yaml), or RELENG_SITE=local for the embedded demo.`,
    );
  }
  return 'local';
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
  const s = parseYamlFile(workspaceRoot, file, 'siteSchema', display) as Omit<Site, 'name' | 'file'>;
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(workspaceRoot, p));
  const store = s.store.type === 's3' ? { ...s.store, cache: abs(s.store.cache) } : { ...s.store, path: abs(s.store.path) };
  const cloud = s.cloud && s.cloud.source.type === 'dir' ? { source: { ...s.cloud.source, path: abs(s.cloud.source.path) } } : s.cloud;
  const site: Site = {
    ...s,
    name: basename(file, '.yaml'),
    file,
    roots: { compose: abs(s.roots.compose), staging: abs(s.roots.staging), production: abs(s.roots.production) },
    upstream: {
      ...s.upstream,
      gpgKey: s.upstream.gpgKey && abs(s.upstream.gpgKey),
      sigKeys: s.upstream.sigKeys && abs(s.upstream.sigKeys),
      releases: s.upstream.releases && Object.fromEntries(Object.entries(s.upstream.releases).map(([r, u]) => [r, { ...u, gpgKey: u.gpgKey && abs(u.gpgKey) }])),
      fixture: s.upstream.fixture && { ...s.upstream.fixture, root: abs(s.upstream.fixture.root) },
    },
    store,
    state: abs(s.state),
    signing: s.signing && { ...s.signing, gnupgHome: abs(s.signing.gnupgHome) },
    cloud,
    errata: s.errata?.type === 'dir' ? { ...s.errata, path: abs(s.errata.path) } : s.errata,
    producers: Object.fromEntries(Object.entries(s.producers).map(([rel, p]) => [rel, producerPaths(p, abs)])),
  };
  const issues = [...overlappingPaths(site), ...unknownReleases(workspaceRoot, site)];
  if (issues.length) throw new ConfigError(display, issues);
  return site;
}

/** Per-release upstream settings must name a release of the workspace: a misspelt name would silently get the defaults (another key, another project). */
function unknownReleases(workspaceRoot: string, s: Site): ConfigError['issues'] {
  if (!s.upstream.releases || !existsSync(join(workspaceRoot, 'releases'))) return [];
  const known = listReleases(workspaceRoot);
  return Object.keys(s.upstream.releases)
    .filter((r) => !known.includes(r))
    .map((r) => ({ path: `upstream.releases.${r}`, message: `no release ${r} in releases/ (there are ${known.join(', ')})` }));
}

/**
 * A producer's paths resolved like the site's when it runs here; an ssh runner's are the compose
 * host's (absolute, checked by the schema). A command given as a relative path (the fixture's
 * launcher) is resolved too; a bare name is looked up in PATH.
 */
function producerPaths(p: Producer, abs: (p: string) => string): Producer {
  if (p.runner.type !== 'local') return p;
  const [cmd, ...args] = p.command;
  return {
    ...p,
    command: [cmd.includes('/') ? abs(cmd) : cmd, ...args],
    config: { ...p.config, path: abs(p.config.path) },
    comps: p.comps && { ...p.comps, path: abs(p.comps.path) },
    targetDir: abs(p.targetDir),
    oldComposes: p.oldComposes.map(abs),
    notificationScript: p.notificationScript && abs(p.notificationScript),
  };
}

/** `p` with the symlinks of its existing part resolved, so that a link cannot hide an overlap. */
function physical(p: string): string {
  let head = p;
  const tail: string[] = [];
  while (!existsSync(head) && dirname(head) !== head) {
    tail.unshift(basename(head));
    head = dirname(head);
  }
  try {
    return join(realpathSync(head), ...tail);
  } catch {
    return p; // unreadable: compare it as written
  }
}

const within = (outer: string, inner: string) => {
  const r = relative(outer, inner);
  return r !== '' && r.split(sep)[0] !== '..' && !isAbsolute(r);
};

/**
 * Site directories that overlap where one stage would write into another's tree (a compose root
 * inside production put unapproved files on the mirrors). Staging and production hold only what
 * is published: they neither contain nor lie inside another site directory. The store, the cloud
 * images directory (a dir source) and the GnuPG home (private keys) contain no other.
 * The rest may nest: Rocky keeps its store under the compose root (/mnt/compose/.store).
 */
function overlappingPaths(s: Site): ConfigError['issues'] {
  const dir = (field: string, path: string, kind: 'published' | 'closed' | 'open') => ({ field, path, kind });
  const dirs = [
    dir('roots.compose', s.roots.compose, 'open'),
    dir('roots.staging', s.roots.staging, 'published'),
    dir('roots.production', s.roots.production, 'published'),
    s.store.type === 's3' ? dir('store.cache', s.store.cache, 'closed') : dir('store.path', s.store.path, 'closed'),
    dir('state', s.state, 'open'),
    ...(s.upstream.fixture ? [dir('upstream.fixture.root', s.upstream.fixture.root, 'open')] : []),
    ...(s.cloud?.source.type === 'dir' ? [dir('cloud.source.path', s.cloud.source.path, 'closed')] : []),
    ...(s.signing ? [dir('signing.gnupgHome', s.signing.gnupgHome, 'closed')] : []),
  ];
  const real = dirs.map((d) => physical(d.path));
  const shown = (i: number) => `${dirs[i].field} (${dirs[i].path}${real[i] === dirs[i].path ? '' : `, really ${real[i]}`})`;
  const issues: ConfigError['issues'] = [];
  for (let j = 0; j < dirs.length; j++) {
    for (let i = 0; i < j; i++) {
      if (real[i] === real[j]) {
        issues.push({ path: dirs[j].field, message: `the same directory as ${shown(i)}` });
        continue;
      }
      const [outer, inner] = within(real[i], real[j]) ? [i, j] : within(real[j], real[i]) ? [j, i] : [];
      if (outer === undefined || inner === undefined) continue;
      const why =
        dirs[outer].kind === 'published'
          ? 'staging and production hold only what is published'
          : dirs[inner].kind === 'published'
            ? 'staging and production may not lie inside another site directory'
            : dirs[outer].kind === 'closed'
              ? `${dirs[outer].field} holds nothing but its own files`
              : undefined;
      if (why) issues.push({ path: dirs[inner].field, message: `inside ${shown(outer)}: ${why}` });
    }
  }
  return issues;
}
