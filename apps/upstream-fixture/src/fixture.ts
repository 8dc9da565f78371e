// ensureFixture: brings a fixture root up to date with the release files. Each release has a
// stamp (a hash of everything that shapes its trees); an up-to-date root costs a file read.
// A stale release is built into a temp dir and renamed into place under an exclusive lock.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { acquireLockWaiting, mapLimit, readJson, sha256, writeFileAtomic, writeJsonAtomic } from '@rocky/exec';
import { listReleases, loadRelease, type Site } from '@rocky/config';
import { releasePlan, type FixtureShape, type ModulePlan, type ReleasePlan, type SpecDef } from './model';
import { FixtureLayout } from './paths';
import { cachedBuild, specHash, type BuiltRpm, type SpecBuild } from './rpmbuild';
import { assembleTree } from './repo';
import { buildImage } from './images';
import { ensureKey, killAgent, type SigningKey } from './gpg';

export interface FixtureOptions {
  workspaceRoot: string;
  root: string;
  releases?: string[];
  scale?: number;
  shape?: FixtureShape;
  log?: (msg: string) => void;
}

export interface FixtureInfo {
  root: string;
  /** Armored public key: `<root>/RPM-GPG-KEY-fixture`. */
  keyFile: string;
  /** GNUPGHOME holding the secret key (no passphrase). */
  gnupgHome: string;
  /** Fingerprint of the key (40 hex digits); `gpg -u`, rpmkeys and dnf all accept it. */
  keyId: string;
  /** The key of the SIG projects (when a SIG release exists), also under each SIG release's key file name in `sigKeys`. */
  sig?: { keyFile: string; gnupgHome: string; keyId: string; sigKeys: string };
}

/** Key of the release spec in a state entry's `specs` (repo names cannot contain `@`). */
export const RELEASE_SPEC = '@release';
/** Key of a module stream's spec in a state entry's `specs`: `<repo>@<module>:<stream>`. */
export const moduleSpecKey = (m: Pick<ModulePlan, 'repo' | 'name' | 'stream'>) => `${m.repo}@${m.name}:${m.stream}`;

export interface ReleaseState {
  stamp: string;
  scale: number;
  baseRepo?: string;
  /** Which fixture key signs the project. */
  key: 'main' | 'sig';
  /** Spec hash per repo name (and RELEASE_SPEC). */
  specs: Record<string, string>;
  repodata: string[];
}
export interface FixtureState {
  keyId: string;
  sigKeyId?: string;
  releases: Record<string, ReleaseState>;
}

/** The fingerprints of the fixture's keys. */
interface KeyIds {
  main: string;
  sig?: string;
}

/** The sources that shape what is built: a change to any of them rebuilds (server and CLI do not). */
const BUILD_SOURCES = ['model.ts', 'spec.ts', 'rpmbuild.ts', 'repo.ts', 'images.ts', 'gpg.ts', 'fixture.ts'];
const codeHashes = new Map<string, string>();
/**
 * The hash of the build sources, read from the workspace (not from beside this module: the
 * upstream fingerprint runs a compiled copy of it, and both must agree, or each would rebuild
 * the fixture the other built, undoing what a test changed upstream).
 */
function codeHash(workspaceRoot: string): string {
  let h = codeHashes.get(workspaceRoot);
  if (!h) {
    try {
      h = sha256(BUILD_SOURCES.map((f) => readFileSync(join(workspaceRoot, 'apps/upstream-fixture/src', f), 'utf8')).join('\0'));
    } catch {
      h = 'fixture-v1'; // a workspace without the fixture's sources: a fixed version
    }
    codeHashes.set(workspaceRoot, h);
  }
  return h;
}

interface PlannedRelease {
  plan: ReleasePlan;
  specs: Record<string, { spec: SpecDef; hash: string }>;
  stamp: string;
}

function planRelease(plan: ReleasePlan, keys: KeyIds, scale: number, code: string): PlannedRelease {
  const keyId = plan.sigKey ? keys.sig! : keys.main;
  const specs: PlannedRelease['specs'] = {};
  for (const [repo, spec] of Object.entries(plan.specs)) specs[repo] = { spec, hash: specHash(spec, keyId) };
  if (plan.releaseSpec) specs[RELEASE_SPEC] = { spec: plan.releaseSpec, hash: specHash(plan.releaseSpec, keyId) };
  for (const m of plan.modules) specs[moduleSpecKey(m)] = { spec: m.spec, hash: specHash(m.spec, keyId) };
  const stamp = sha256(
    JSON.stringify({
      code,
      scale,
      keyId,
      specs: Object.entries(specs).map(([k, v]) => [k, v.hash]),
      trees: plan.trees,
      images: plan.images,
      errata: plan.errata,
    }),
  );
  return { plan, specs, stamp };
}

function readState(layout: FixtureLayout): FixtureState | undefined {
  try {
    return readJson<FixtureState>(layout.state);
  } catch {
    return undefined;
  }
}

function info(layout: FixtureLayout, keys: KeyIds): FixtureInfo {
  const sig = layout.key('sig');
  return {
    root: layout.root,
    keyFile: layout.keyFile,
    gnupgHome: layout.gnupgHome,
    keyId: keys.main,
    ...(keys.sig ? { sig: { keyFile: sig.keyFile, gnupgHome: sig.home, keyId: keys.sig, sigKeys: layout.sigKeys } } : {}),
  };
}

function upToDate(layout: FixtureLayout, state: FixtureState | undefined, p: PlannedRelease): boolean {
  return (
    !!state &&
    state.releases[p.plan.project]?.stamp === p.stamp &&
    existsSync(layout.project(p.plan.project)) &&
    existsSync(layout.images(p.plan.project)) &&
    (!p.plan.sigKey || existsSync(join(layout.sigKeys, p.plan.sigKey))) &&
    (!p.plan.errata.length || existsSync(layout.apollo(p.plan.product, p.plan.major)))
  );
}

// Calls within one process queue here (in order, without polling the lock file).
const inProcess = new Map<string, Promise<unknown>>();
function serialize<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const prev = inProcess.get(key) ?? Promise.resolve();
  const next = prev.catch(() => undefined).then(fn);
  inProcess.set(key, next);
  void next.finally(() => {
    if (inProcess.get(key) === next) inProcess.delete(key);
  }).catch(() => undefined);
  return next;
}

/** Runs `fn` holding the root's lock: queued within this process, waiting for other processes. */
export function withRootLock<T>(layout: FixtureLayout, log: (m: string) => void, fn: () => Promise<T>): Promise<T> {
  return serialize(layout.root, async () => {
    mkdirSync(layout.internal, { recursive: true });
    // The Nx fingerprint and a sync may race to build the same root.
    const release = await acquireLockWaiting(layout.lock, `fixture ${layout.root}`, { timeoutMs: 30 * 60_000, maxPollMs: 200, onWait: (why) => log(`waiting: ${why.split(';')[0]}`) });
    try {
      return await fn();
    } finally {
      release();
    }
  });
}

/** Replaces directory `dest` with `src` (both on one file system); `dest` is absent only for an instant. */
export function swapDir(src: string, dest: string): void {
  mkdirSync(join(dest, '..'), { recursive: true });
  const trash = `${dest}.old-${process.pid}`;
  rmSync(trash, { recursive: true, force: true });
  if (existsSync(dest)) renameSync(dest, trash);
  renameSync(src, dest);
  rmSync(trash, { recursive: true, force: true });
}

function treeRpms(b: SpecBuild, kind: string, arch: string): string[] {
  const pick = (r: BuiltRpm) =>
    kind === 'source' ? r.kind === 'src' : kind === 'debug' ? r.kind === 'debug' && r.arch === arch : r.kind === 'bin' && (r.arch === arch || r.arch === 'noarch');
  return b.rpms.filter(pick).map((r) => join(b.dir, r.rel));
}

async function buildRelease(layout: FixtureLayout, p: PlannedRelease, builds: Map<string, SpecBuild>, key: SigningKey, log: (m: string) => void): Promise<string[]> {
  const t0 = Date.now();
  const { plan } = p;
  const work = join(layout.tmp, `release-${plan.project}`);
  rmSync(work, { recursive: true, force: true });
  const projectDir = join(work, 'project');
  const repodata = await mapLimit(plan.trees, 2, async (t) => {
    const own = builds.get(p.specs[t.repo].hash)!;
    const pkgs = treeRpms(own, t.kind, t.arch);
    if (t.repo === plan.baseRepo && t.kind !== 'debug') pkgs.push(...treeRpms(builds.get(p.specs[RELEASE_SPEC].hash)!, t.kind, t.arch));
    for (const m of plan.modules.filter((x) => x.repo === t.repo)) pkgs.push(...treeRpms(builds.get(p.specs[moduleSpecKey(m)].hash)!, t.kind, t.arch));
    const dest = join(projectDir, 'repo', `hashed-${t.repo}`, t.upstreamArch);
    return assembleTree(layout, dest, pkgs, t.comps, key, t.modules);
  });
  // Apollo's errata of the product's major, one updateinfo.xml per repo and arch.
  const apolloDir = join(work, 'apollo');
  for (const e of plan.errata) {
    mkdirSync(join(apolloDir, e.repo, e.arch), { recursive: true });
    writeFileSync(join(apolloDir, e.repo, e.arch, 'updateinfo.xml'), e.xml);
  }
  const imagesDir = join(work, 'images');
  mkdirSync(imagesDir, { recursive: true });
  await mapLimit(plan.images, 2, (img, i) => buildImage(img, imagesDir, join(work, `img-${i}`), plan.project));
  swapDir(projectDir, layout.project(plan.project));
  swapDir(imagesDir, layout.images(plan.project));
  // A SIG's public key under the name its release gives it, as a host has it in /etc/pki/rpm-gpg.
  if (plan.sigKey) writeFileAtomic(join(layout.sigKeys, plan.sigKey), readFileSync(layout.key('sig').keyFile));
  if (plan.errata.length) swapDir(apolloDir, layout.apollo(plan.product, plan.major));
  rmSync(work, { recursive: true, force: true });
  log(`${plan.project}: ${plan.trees.length} repo trees, ${plan.images.length} cloud images in ${Date.now() - t0} ms`);
  return repodata;
}

/** Removes cached builds and repodata that no release of the state refers to. */
function prune(layout: FixtureLayout, state: FixtureState): void {
  const specs = new Set(Object.values(state.releases).flatMap((r) => Object.values(r.specs)));
  const repodata = new Set(Object.values(state.releases).flatMap((r) => r.repodata));
  for (const [dir, keep] of [
    [join(layout.internal, 'rpms'), specs],
    [join(layout.internal, 'repodata'), repodata],
  ] as const) {
    if (!existsSync(dir)) continue;
    for (const e of readdirSync(dir)) if (!keep.has(e)) rmSync(join(dir, e), { recursive: true, force: true });
  }
}

async function build(layout: FixtureLayout, plans: ReleasePlan[], planned: (keys: KeyIds) => PlannedRelease[], scale: number, log: (m: string) => void): Promise<FixtureInfo> {
  mkdirSync(layout.internal, { recursive: true });
  // Leftovers of a killed build are garbage: nothing under tmp/ is ever referenced.
  rmSync(layout.tmp, { recursive: true, force: true });
  mkdirSync(layout.tmp, { recursive: true });
  const t0 = Date.now();
  try {
    const keys: KeyIds = { main: await ensureKey(layout, layout.key('main')) };
    if (plans.some((p) => p.sigKey)) keys.sig = await ensureKey(layout, layout.key('sig'));
    const all = planned(keys);
    let state = readState(layout);
    if (state?.keyId !== keys.main) state = { keyId: keys.main, releases: {} };
    state.sigKeyId = keys.sig ?? state.sigKeyId;
    const stale = all.filter((p) => !upToDate(layout, state, p));
    if (!stale.length) return info(layout, keys);

    const specs = new Map<string, { spec: SpecDef; key: SigningKey }>();
    for (const p of stale) for (const s of Object.values(p.specs)) specs.set(s.hash, { spec: s.spec, key: layout.key(p.plan.sigKey ? 'sig' : 'main') });
    const builds = new Map<string, SpecBuild>();
    await mapLimit([...specs], 2, async ([hash, { spec, key }]) => {
      builds.set(hash, await cachedBuild(layout, spec, hash, key, log));
    });
    for (const p of stale) {
      const key = p.plan.sigKey ? 'sig' : 'main';
      const repodata = await buildRelease(layout, p, builds, layout.key(key), log);
      state.releases[p.plan.project] = {
        stamp: p.stamp,
        scale,
        baseRepo: p.plan.baseRepo,
        key,
        specs: Object.fromEntries(Object.entries(p.specs).map(([k, v]) => [k, v.hash])),
        repodata,
      };
      // Recorded per release, so a build killed halfway keeps what it finished.
      writeJsonAtomic(layout.state, state);
    }
    prune(layout, state);
    log(`fixture: built ${stale.map((p) => p.plan.project).join(', ')} in ${Date.now() - t0} ms`);
    return info(layout, keys);
  } finally {
    await killAgent(layout.gnupgHome);
    await killAgent(layout.key('sig').home);
    rmSync(layout.tmp, { recursive: true, force: true });
  }
}

/** A site's `upstream.fixture`: where the fixture is, its scale and shape. */
export type SiteFixture = NonNullable<Site['upstream']['fixture']>;

/**
 * ensureFixture's options for a site's `upstream.fixture`: the one place its settings become
 * the fixture's (stages, the Nx hook's fingerprints and the fixture CLI all build through it).
 * `root` puts the fixture elsewhere (a koji root of its own); the log is silent by default.
 */
export function siteFixtureOptions(workspaceRoot: string, f: SiteFixture, more: Partial<Pick<FixtureOptions, 'root' | 'releases' | 'log'>> = {}): FixtureOptions {
  return { workspaceRoot, root: more.root ?? f.root, scale: f.scale, shape: f.shape, releases: more.releases, log: more.log ?? (() => {}) };
}

/**
 * Builds (or reuses) signed yum repos for every release (or `releases`) and cloud images
 * under `root`. Idempotent; when everything is up to date it only reads the state file.
 */
export async function ensureFixture(opts: FixtureOptions): Promise<FixtureInfo> {
  const layout = new FixtureLayout(resolve(opts.root));
  const log = opts.log ?? (() => undefined);
  const scale = opts.scale ?? 1;
  const names = opts.releases ?? listReleases(opts.workspaceRoot);
  // The shape needs no place in the stamp: it changes the specs, whose hashes are in it.
  const plans = names.map((n) => releasePlan(loadRelease(opts.workspaceRoot, n), scale, opts.shape));
  const code = codeHash(opts.workspaceRoot);
  const plan = (keys: KeyIds) => plans.map((p) => planRelease(p, keys, scale, code));
  const fast = () => {
    const state = readState(layout);
    if (!state || !existsSync(layout.keyFile) || !existsSync(layout.gnupgHome)) return undefined;
    const sig = layout.key('sig');
    if (plans.some((p) => p.sigKey) && (!state.sigKeyId || !existsSync(sig.keyFile) || !existsSync(sig.home))) return undefined;
    const keys: KeyIds = { main: state.keyId, sig: state.sigKeyId };
    return plan(keys).every((p) => upToDate(layout, state, p)) ? info(layout, keys) : undefined;
  };
  const hit = fast();
  if (hit) return hit;
  return withRootLock(layout, log, async () => fast() ?? (await build(layout, plans, plan, scale, log)));
}
