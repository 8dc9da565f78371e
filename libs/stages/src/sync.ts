// The sync stage (replaces `sync_from_peridot --hashed --repoclosure [--full-run]`, and for SIG
// releases `sync_sig --full-run`): every repo tree of the release into a new compose directory,
// verified against upstream's signed metadata, closed with real dnf repoclosure, and only then the
// latest-* link is moved.
//   sync          a produce compose (`Rocky-9.7-<date>.<n>`: kickstart trees too), for the minor
//                 release chain: ISOs, DVDs, cloud images and finalize follow. A SIG's compose
//                 (`SIG-cloud-9.7-<date>.<n>`, trees under compose/<major>/<sig>) is packages only:
//                 it is FINISHED here, and staging publishes it.
//   update-sync   an update compose (`Rocky-9-updates-<date>.<n>`), the weekly push: packages only;
//                 it carries the newest finished produce compose's ISOs and images as they are
//                 (hardlinks), writes its own metadata and the record of what changed, and is
//                 FINISHED here (no finalize). The previous composes stay: a rollback is re-pointing
//                 the latest link (the rollback target).
import { existsSync, mkdirSync, readFileSync, readlinkSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { Readable } from 'node:stream';
import {
  repoDir,
  ComposeLayout,
  composeDate,
  composeId,
  composeLabel,
  composeRoot,
  repoclosureKey,
  repomdSignatureKey,
  isFinalized,
  repoTrees,
  treeId,
  upstreamKeyFile,
  upstreamUrl,
  type Arch,
  type ComposeKind,
  type Release,
  type RepoTree,
} from '@rocky/config';
import { bytes, mapLimit, progress, readJson, sha256, startHashWorkers, symlinkAtomic, writeFileAtomic, writeJsonAtomic } from '@rocky/exec';
import { openStore, type Store } from '@rocky/store';
import { DnfForks, Limiter, SignatureVerifier, applyTree, type SignatureCheck, hashLinked, sweepVerifierDirs, fetchRepomd, planTree, repoclosure, writeRepodata, type SyncTreeOptions, type TreePlan, type TreeResult } from '@rocky/rpm-repo';
import { openUpstream, type Upstream } from './upstream';
import { restoreTree, treeFilesOnDisk, writeTreeFiles } from './trees';
import { releaseSlice, type ArchManifest, type ComposeRef, type SyncRecord, type TreeManifest } from './manifests';
import { carryMedia, composesOf, isFinished, nextRespin } from './composes';
import { writeUpdateMetadata } from './update-metadata';
import type { StageContext } from './context';
import type { Stage } from './stage';

export interface SyncPlan {
  kind: ComposeKind;
  digest: string;
  trees: RepoTree[];
  /** The latest compose already holds exactly this upstream: nothing to fetch (files it lost are relinked from the store). */
  upToDate?: { dir: string; record: SyncRecord; missing: number };
  /** Otherwise, per upstream repo: what to fetch and what to link. */
  plans: Map<string, TreePlan>;
  /** The unfinished compose a killed run left (resumed), or undefined for a new one. */
  resume?: string;
  /** Update composes: the finished produce compose whose ISOs and images they carry. */
  media?: string;
  /** The compose the latest link points at now: what a new compose's changes are counted against. */
  previous?: string;
  fetch: { packages: number; bytes: number; linked: number };
  /** Open for the stage's duration (the fixture server on the local site). */
  upstream: Upstream;
  verifier?: SignatureVerifier;
  signer?: string;
  /** The store key recording gpgv's pass of a repomd.xml and its signature with the site's key file (unset: no signatures checked). */
  signatureKey?: (repomd: Buffer, signature: Buffer) => string;
  /** Each package's signer by its sha256, as the newest sync record has it (recordedFacts). */
  knownSigners?: ReadonlyMap<string, string>;
  /**
   * dnf's fork server for the closure checks, started (importing dnf) as soon as planning finds
   * upstream changed, so that it is ready when the checks' metadata is; closed by dispose.
   */
  forks?: DnfForks;
}

export interface SyncResult {
  layout: ComposeLayout;
  record: SyncRecord;
  fetched: number;
  fetchedBytes: number;
  repaired: number;
}

/** The upstream repo a tree reads (kickstart trees read their os repo). */
const upstreamKey = (t: RepoTree) => `${t.dir}/${t.kind === 'kickstart' ? 'os' : t.kind}/${t.arch}`;

export const syncStage: Stage<SyncPlan, SyncResult> = {
  name: 'sync',
  tools: (ctx) => ['dnf', 'gpgv', ...(ctx.site.upstream.verifySignature ? ['gpg', 'rpmkeys', 'xargs'] : [])],
  // One writer per release's composes: a second sync refuses clearly instead of interleaving.
  locks: (ctx) => [{ file: composeRoot(ctx.site, ctx.release).syncLock, what: `sync of ${ctx.project}` }],

  async plan(ctx) {
    const { release: rel, site } = ctx;
    const store = openStore(site);
    const kind = ctx.kind;
    const trees = repoTrees(rel, kind);
    // An update compose carries the GA media: without a finished produce compose there are none to carry.
    const media = kind === 'update' ? composesOf(site, rel, 'produce').filter(isFinished).pop()?.id : undefined;
    if (kind === 'update' && !media) throw new Error(`${ctx.project} has no finished produce compose under ${composeRoot(site, rel).base}: an update compose carries the published ISOs and images, so run the minor release chain (\`nx run ${ctx.project}:finalize\`) first`);
    const upstream = await openUpstream(ctx.root, site, ctx.log.info);
    // What killed syncs' verifiers left in the temp dir goes, in a real run only.
    if (site.upstream.verifySignature && !ctx.dryRun) sweepVerifierDirs();
    const verifier = site.upstream.verifySignature ? new SignatureVerifier(upstreamKeyFile(site, rel)) : undefined;
    const signatureKey = verifier && signatureKeyOf(upstreamKeyFile(site, rel));
    const partial: Omit<SyncPlan, 'digest'> = { kind, trees, upstream, verifier, signatureKey, media, previous: latestCompose(ctx), plans: new Map<string, TreePlan>(), fetch: { packages: 0, bytes: 0, linked: 0 } };
    try {
      // What upstream looks like now: every repomd.xml. The first tree of a key (the os tree,
      // before its kickstart) stands for it, so errors name the repo upstream serves.
      const distinct = [...new Map([...trees].reverse().map((t) => [upstreamKey(t), t])).entries()];
      const repomdOpts = treeOptions(ctx, { upstream, verifier, store });
      const repomds = new Map(await mapLimit(distinct, 16, async ([k, t]) => [k, await fetchRepomd(repomdOpts(t))] as const));
      const digest = syncDigest(rel, kind, repomds);
      const newest = newestRecord(ctx);
      const upToDate = await newestIfUpToDate(ctx, store, digest, newest);
      // Up to date: nothing is fetched, so the key's id (a gpg run) is not asked for.
      if (upToDate) return { ...partial, digest, upToDate };
      if (!ctx.dryRun) partial.forks = DnfForks.start();
      // As empanadas' `reposync --gpgcheck`: every package must be signed by the upstream key (a SIG's:
      // its own), and its signatures verify against that key (rpmkeys).
      // Its id (a gpg run) is read while the trees are planned, which do not need it.
      const known = recordedFacts(newest?.record);
      const opts = treeOptions(ctx, { upstream, verifier, signatureKey, store, knownSigners: known.signers });
      // Read every upstream primary (signature checked; not one whose repomd.xml the last sync
      // recorded) and compare with the store. Both settle before either's failure is reported:
      // no gpg is left running.
      const planOne = async ([k, t]: [string, RepoTree]) => {
        const repomd = repomds.get(k)!;
        const p = await planTree({ ...opts(t), repomd, listed: known.listed.get(sha256(repomd)) });
        // The trees hash the store objects they link on workers: started as soon as a tree has
        // some, while the others are planned. A cold sync links none (what it downloads is hashed
        // as it arrives) and starts none: two workers cost ~0.1 CPU-s.
        if (p.stored.size && !ctx.dryRun) startHashWorkers();
        return [k, p] as const;
      };
      const [planned, keyId] = await Promise.allSettled([mapLimit(distinct, 8, planOne), verifier?.keyId()]);
      if (planned.status === 'rejected') throw planned.reason;
      if (keyId.status === 'rejected') throw keyId.reason;
      const plans = new Map<string, TreePlan>(planned.value);
      const signer = keyId.value;
      const seen = new Set<string>();
      const fetch = { packages: 0, bytes: 0, linked: 0 };
      for (const t of trees) {
        const p = plans.get(upstreamKey(t))!;
        const newOnes = p.fetch.filter((x) => !seen.has(x.sha256) && seen.add(x.sha256));
        fetch.packages += newOnes.length;
        fetch.bytes += newOnes.reduce((n, x) => n + (Number.isFinite(x.size) ? x.size : 0), 0);
        fetch.linked += p.packages.length - newOnes.length;
      }
      return { ...partial, digest, signer, knownSigners: known.signers, plans, fetch, resume: unfinishedCompose(ctx) };
    } catch (e) {
      await syncStage.dispose!(partial as SyncPlan);
      throw e;
    }
  },

  describe(plan, ctx) {
    if (plan.upToDate) {
      const r = plan.upToDate.record;
      return { summary: `compose ${r.composeId} is up to date with upstream: nothing to fetch${plan.upToDate.missing ? `; ${plan.upToDate.missing} files it lost are relinked from the store` : ''}` };
    }
    const target = plan.resume ? `unfinished compose ${plan.resume} (resumed)` : `a new ${plan.kind} compose ${composeLabel(ctx.release, plan.kind)}-<date>.<n>${plan.media ? `, carrying the media of ${plan.media}` : ''}`;
    const details = plan.trees.map((t) => {
      const p = plan.plans.get(upstreamKey(t))!;
      return `${t.path.padEnd(36)} ${String(p.packages.length).padStart(6)} packages, ${String(p.fetch.length).padStart(6)} not in the store`;
    });
    const f = plan.fetch;
    return { summary: `${plan.trees.length} trees into ${target}: ${f.packages} packages to fetch (${bytes(f.bytes)}), ${f.linked} to link from the store`, details };
  },

  async execute(ctx, plan) {
    const { release: rel, site } = ctx;
    const store = openStore(site);
    const { base } = composeRoot(site, rel);
    if (plan.upToDate) {
      const layout = new ComposeLayout(join(base, plan.upToDate.dir), rel);
      let repaired = 0;
      if (plan.upToDate.missing) for (const t of plan.upToDate.record.trees) repaired += await restoreTree(store, layout, t);
      return { layout, record: plan.upToDate.record, fetched: 0, fetchedBytes: 0, repaired };
    }
    const { layout, id, date } = openCompose(ctx, plan.kind, plan.resume);
    ctx.log.event('compose', { composeId: id, trees: plan.trees.length, resumed: !!plan.resume });
    mkdirSync(layout.work, { recursive: true });
    if (!existsSync(layout.status)) writeFileAtomic(layout.status, 'STARTED\n');

    // Trees in parallel, downloads bounded by the site's concurrency; meanwhile repoclosure per
    // repo x arch with the release's closure map, on the metadata.
    const shown = progress(ctx.log.info, 'downloads', { bytes: plan.fetch.bytes, items: plan.fetch.packages });
    const opts = treeOptions(ctx, { ...plan, store, onBytes: (n) => shown.add(n) });
    const sigKey = rel.kind === 'sig' && site.upstream.sigKeys ? upstreamKeyFile(site, rel) : undefined;
    const results = new Map<RepoTree, TreeResult>();
    const planOf = (t: RepoTree) => plan.plans.get(upstreamKey(t))!;
    // The closure checks not passed before on identical metadata, on dnf's fork server (started
    // while planning). Their metadata first (a few small links): written behind the downloads'
    // file operations it waited seconds, holding dnf back until the packages were in.
    const closure = await closureChecks(plan.trees, ctx, store, planOf);
    const forks = closure.todo.length ? plan.forks : undefined;
    if (!forks) await plan.forks?.close();
    let applied: PromiseSettledResult<unknown>, closed: PromiseSettledResult<unknown>;
    try {
      const meta = await closureMetadata(closure.todo, layout, (t) => ({ opts: opts(t), plan: planOf(t) }));
      const applying = async () => {
        await recordSignatures(store, plan);
        // The store objects every tree links, hashed at once, in the order the trees are applied
        // (each tree checks its own as it links them).
        if (plan.trees.length) await hashLinked(opts(plan.trees[0]), [...new Set(plan.trees.map(planOf))]);
        await mapLimit(plan.trees, 4, async (t) => {
          const res = await applyTree(opts(t), planOf(t), layout.tree(t), false);
          results.set(t, res);
          shown.add(0, res.fetched);
          await writeTreeFiles(store, rel, layout, t, date, sigKey);
          if (process.env.RELENG_VERBOSE) ctx.log.info(`${t.path}: ${res.packages.length} packages (${res.fetched} fetched, ${bytes(res.fetchedBytes)}; ${res.linked} linked)${res.removed.length ? `, ${res.removed.length} removed` : ''}`);
          ctx.log.event('tree', { tree: treeId(t), packages: res.packages.length, fetched: res.fetched, fetchedBytes: res.fetchedBytes, linked: res.linked, removed: res.removed.length });
        });
      };
      // The checks start first: with the metadata written, they wait for nothing else.
      [closed, applied] = await Promise.allSettled([closeRepos(ctx, layout, closure, meta, store, forks), applying()]);
    } finally {
      shown.stop();
      await forks?.close();
    }
    for (const r of [applied, closed]) if (r.status === 'rejected') throw r.reason;
    if (plan.media) await carryMedia(new ComposeLayout(join(base, plan.media), rel), layout);
    const record: SyncRecord = { digest: plan.digest, composeId: id, trees: plan.trees.map((t) => treeManifest(t, results.get(t)!)), ...(plan.media ? { media: plan.media } : {}) };
    const sum = (k: 'fetched' | 'fetchedBytes') => [...results.values()].reduce((n, r) => n + r[k], 0);
    return { layout, record, fetched: sum('fetched'), fetchedBytes: sum('fetchedBytes'), repaired: 0 };
  },

  // Every file the record names is in the compose, whole (sizes; the bytes were checked against
  // upstream's checksums when they entered the store).
  async verify(_ctx, plan, { layout, record, repaired }) {
    // Up to date and nothing relinked: planning found every file whole moments ago.
    if (plan.upToDate && !repaired) return;
    const bad = (await treeFilesOnDisk(layout, record.trees)).filter((f) => f.st?.size !== f.file.size).map((f) => `${f.tree.path}/${f.file.path}`);
    if (bad.length) throw new Error(`compose ${record.composeId} is missing ${bad.length} files it should hold (latest link not moved), e.g. ${bad.slice(0, 5).join(', ')}`);
  },

  async record(ctx, plan, { layout, record, fetched, fetchedBytes, repaired }) {
    const { base, latest } = composeRoot(ctx.site, ctx.release);
    if (!plan.upToDate) {
      writeJsonAtomic(layout.syncRecord, record);
      // An update compose is finished here: its metadata and the record of what changed, then STATUS.
      if (plan.kind === 'update') writeUpdateMetadata(ctx, layout, record, plan.previous);
      // Nothing follows sync in a SIG compose (packages only, no metadata of its own): it is finished here.
      else if (!isFinalized(ctx.release, plan.kind)) writeFileAtomic(layout.status, 'FINISHED\n');
    }
    // The latest link last, relative, so the compose root may be mounted anywhere.
    if (!existsSync(latest) || resolve(base, readlinkSync(latest)) !== layout.dir) symlinkAtomic(basename(layout.dir), latest);
    const what = plan.upToDate ? `up to date${repaired ? `, ${repaired} lost files relinked from the store` : ''}` : `${fetched} packages fetched (${bytes(fetchedBytes)})`;
    return {
      summary: `compose ${record.composeId}: ${record.trees.length} trees, ${what}; ${relative(base, latest)} → ${basename(layout.dir)}`,
      manifests: manifests(ctx, record, relative(ctx.site.roots.compose, layout.dir)),
    };
  },

  async dispose(plan) {
    await plan.verifier?.close();
    await plan.forks?.close();
    await plan.upstream?.close();
  },
};

function treeOptions(
  ctx: StageContext,
  a: { upstream: Upstream; verifier?: SignatureVerifier; signer?: string; signatureKey?: SyncPlan['signatureKey']; knownSigners?: ReadonlyMap<string, string>; store: Store; onBytes?: (n: number) => void },
): (t: RepoTree) => SyncTreeOptions {
  const { signatureKey } = a;
  const limiter = new Limiter(ctx.site.concurrency.downloads);
  // Shared by all trees: a package in several trees is fetched once, hashed once, its signatures verified once.
  const inflight = new Map();
  const checked = new Map();
  const signatureChecks = new Map<string, SignatureCheck>();
  return (t) => ({
    url: upstreamUrl(ctx.site, ctx.release, t, a.upstream.base),
    store: a.store,
    verifier: a.verifier,
    signer: a.signer,
    knownSigners: a.knownSigners,
    signaturePassed: signatureKey && (async (repomd, signature) => !!(await a.store.getKey(signatureKey(repomd, signature)))),
    inflight,
    checked,
    signatureChecks,
    limiter,
    what: `${ctx.release.project} ${treeId(t)}`,
    onBytes: a.onBytes,
    fetch: { download: ctx.site.upstream.download, onRetry: (e: Error, i: number) => ctx.log.info(`retry ${i} ${treeId(t)}: ${e.message.split('\n')[0]}`) },
  });
}

/**
 * gpgv's verdict on a repomd.xml and its signature depends on those bytes and the key only: a
 * pass is kept in the store under their digests and the key file's, so a sync after one tree
 * changed upstream runs gpgv on that tree's signature alone. A changed key file checks all anew.
 * Unset when the key file is unreadable: every signature is checked (the verifier names the file).
 */
function signatureKeyOf(keyFile: string): SyncPlan['signatureKey'] {
  if (!existsSync(keyFile)) return undefined;
  const key = sha256(readFileSync(keyFile));
  return (repomd, signature) => repomdSignatureKey(key, sha256(`${sha256(repomd)} ${sha256(signature)}`));
}

/** The passes gpgv gave while planning, recorded (a plan writes nothing, so they are kept here). */
async function recordSignatures(store: Store, plan: SyncPlan): Promise<void> {
  const { signatureKey } = plan;
  if (!signatureKey) return;
  const passed = [...new Set(plan.plans.values())].filter((p) => p.signatureVerified && p.signature);
  await mapLimit(passed, 8, (p) => keepPass(store, signatureKey(p.repomd, p.signature!), { url: p.url }));
}

/** A check's pass, kept in the store under `key` (a repoclosure, a gpgv verdict): identical input later is not checked again. */
async function keepPass(store: Store, key: string, metadata: Record<string, string>): Promise<void> {
  await store.setKey(key, await store.putStream(Readable.from([Buffer.from('passed\n')]), { what: key }), metadata);
}

function syncDigest(rel: Release, kind: ComposeKind, repomds: Map<string, Buffer>): string {
  const config = { project: rel.project, shortname: rel.shortname, major: rel.major, minor: rel.minor, kind, arches: rel.arches, repos: rel.repos, sig: rel.sig };
  const trees = [...repomds].map(([k, b]) => `${k} ${sha256(b)}`).sort();
  return sha256(JSON.stringify({ config, trees }));
}

/** The newest compose of this kind that has a sync record, and the record. */
function newestRecord(ctx: StageContext): { layout: ComposeLayout; record: SyncRecord } | undefined {
  const newest = composesOf(ctx.site, ctx.release, ctx.kind)
    .filter((c) => existsSync(c.layout.syncRecord))
    .pop();
  return newest && { layout: newest.layout, record: readJson<SyncRecord>(newest.layout.syncRecord) };
}

/**
 * What a sync record tells the next sync, all keyed by content: the packages of each tree by the
 * sha256 of the repomd.xml they were read from (same bytes, same primary, same packages), and
 * the signer of each package's bytes, from trees whose packages' signatures were all verified
 * against a key (not those of records made before signatures were verified: those trees'
 * packages are verified once more).
 */
function recordedFacts(record: SyncRecord | undefined): { listed: Map<string, NonNullable<SyncTreeOptions['listed']>>; signers: Map<string, string> } {
  const listed = new Map<string, NonNullable<SyncTreeOptions['listed']>>();
  const signers = new Map<string, string>();
  for (const t of record?.trees ?? []) {
    const repomd = t.repodata.find((f) => f.path === 'repodata/repomd.xml');
    // Records of older versions name no record types: those trees are read anew.
    const records = t.repodata.filter((f) => f.type).map((f) => ({ type: f.type!, href: f.path, sha256: f.sha256, size: f.size }));
    if (repomd && records.some((r) => r.type === 'primary') && !listed.has(repomd.sha256)) {
      listed.set(repomd.sha256, { records, packages: t.packages.map(({ path, sigkey: _k, ...p }) => ({ ...p, href: path })) });
    }
    if (t.signer && t.signaturesChecked) for (const p of t.packages) signers.set(p.sha256, t.signer);
  }
  return { listed, signers };
}

/** The newest compose of this kind, when it was synced from exactly this upstream and config (and how many of its files are gone). */
export async function newestIfUpToDate(ctx: StageContext, store: Store, digest: string, newest = newestRecord(ctx)): Promise<SyncPlan['upToDate']> {
  const { base } = composeRoot(ctx.site, ctx.release);
  if (!newest) return undefined;
  const { record } = newest;
  if (record.digest !== digest) return undefined;
  // A compose that lost files (pruned by hand, a damaged disk) is repaired from the store, or,
  // when the store lost them too, synced anew.
  let missing = 0;
  for (const { file, st } of await treeFilesOnDisk(newest.layout, record.trees)) {
    if (st?.size === file.size) continue;
    if (!(await store.has(file.sha256))) return undefined;
    missing++;
  }
  return { dir: relative(base, newest.layout.dir), record, missing };
}

/** The compose the latest link points at, if any. */
function latestCompose(ctx: StageContext): string | undefined {
  const { latest } = composeRoot(ctx.site, ctx.release);
  return existsSync(latest) ? basename(resolve(dirname(latest), readlinkSync(latest))) : undefined;
}

/** The newest compose of this kind a killed run left behind (STATUS STARTED, no sync record): a rerun resumes it. */
function unfinishedCompose(ctx: StageContext): string | undefined {
  const current = latestCompose(ctx);
  return composesOf(ctx.site, ctx.release, ctx.kind)
    .filter((c) => c.id !== current && c.status === 'STARTED' && !existsSync(c.layout.syncRecord))
    .pop()?.id;
}

/** The compose to write into: the one a killed run left behind (planned), or a new `<label>-<today>.<n>`. */
export function openCompose(ctx: StageContext, kind: ComposeKind, resume: string | undefined): { layout: ComposeLayout; id: string; date: Date } {
  const rel = ctx.release;
  const { base } = composeRoot(ctx.site, rel);
  if (resume) {
    ctx.log.info(`resuming unfinished compose ${resume}`);
    return { layout: new ComposeLayout(join(base, resume), rel), id: resume, date: composeDate(resume)! };
  }
  mkdirSync(base, { recursive: true });
  const date = new Date();
  for (let n = nextRespin(ctx.site, ctx.release, kind, date); ; n++) {
    const id = composeId(ctx.release, kind, date, n);
    const dir = join(base, id);
    try {
      mkdirSync(dir); // not recursive: fails if a concurrent compose took the same respin
      mkdirSync(join(dir, 'compose'));
      return { layout: new ComposeLayout(dir, rel), id, date: composeDate(id)! };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
}

interface ClosureCheck {
  tree: RepoTree;
  deps: RepoTree[];
  /** Store key of a passed check of these very repomd.xml files. */
  key: string;
}

/** The repo x arch closure checks of the release: those to run (`todo`), and how many passed before on identical metadata. */
async function closureChecks(trees: RepoTree[], ctx: StageContext, store: Store, planOf: (t: RepoTree) => TreePlan): Promise<{ todo: ClosureCheck[]; all: number }> {
  const byDir = new Map(ctx.release.repos.map((r) => [repoDir(r), r]));
  const checks = trees
    .filter((t) => t.kind === 'os' && t.arch === t.group && byDir.get(t.dir)?.mustClose)
    .map((t) => {
      const deps = byDir
        .get(t.dir)!
        .closure.map((d) => trees.find((x) => x.kind === 'os' && x.dir === d && x.arch === t.arch))
        .filter((x): x is RepoTree => !!x);
      // Closure depends only on the metadata: a passed check of identical repomd.xml files is not redone.
      return { tree: t, deps, key: repoclosureKey(t.arch, sha256([t, ...deps].map((x) => sha256(planOf(x).repomd)).join(' '))) };
    });
  const passed = await Promise.all(checks.map(async (c) => !!(await store.getKey(c.key))));
  return { todo: checks.filter((_, i) => !passed[i]), all: checks.length };
}

/** A metadata-only copy of each repo the checks read, written now (all trees at once: one after the other, their round trips held dnf back). */
async function closureMetadata(checks: ClosureCheck[], layout: ComposeLayout, planOf: (t: RepoTree) => { opts: SyncTreeOptions; plan: TreePlan }): Promise<Map<RepoTree, string>> {
  const used = [...new Set(checks.flatMap((c) => [c.tree, ...c.deps]))];
  const dirs = await Promise.all(
    used.map(async (t) => {
      const dir = join(layout.repoclosureWork, 'meta', treeId(t));
      const { opts, plan } = planOf(t);
      await writeRepodata(opts, plan, dir);
      return dir;
    }),
  );
  return new Map(used.map((t, i) => [t, dirs[i]]));
}

async function closeRepos(ctx: StageContext, layout: ComposeLayout, closure: { todo: ClosureCheck[]; all: number }, meta: Map<RepoTree, string>, store: Store, forks: DnfForks | undefined) {
  const rel = ctx.release;
  const failures: string[] = [];
  await mapLimit(closure.todo, 2, async ({ tree: t, deps, key }) => {
    const logFile = layout.log(t.arch, `repoclosure-${t.dir}`);
    const res = await repoclosure({
      check: { id: t.dir, path: meta.get(t)! },
      deps: deps.map((x) => ({ id: x.dir, path: meta.get(x)! })),
      arch: t.arch,
      releasever: rel.major,
      workDir: join(layout.repoclosureWork, `${t.dir}-${t.arch}`),
      logFile,
      forks,
    });
    if (!res.ok) failures.push(...res.broken.map((b) => `${t.dir}/${t.arch}: ${b.package} needs ${b.unresolved.join(', ')} (dnf's log: ${logFile})`));
    else await keepPass(store, key, { tree: treeId(t) });
  });
  if (failures.length) {
    writeFileAtomic(layout.status, 'DOOMED\n');
    throw new Error(`repoclosure failed (latest link not moved; logs in ${layout.logs}):\n  ${failures.sort().join('\n  ')}`);
  }
  const cached = closure.all - closure.todo.length;
  ctx.log.info(`repoclosure: ${closure.all} repo x arch checks passed${cached ? ` (${cached} unchanged since a passed check)` : ''}`);
}

function treeManifest(t: RepoTree, r: TreeResult): TreeManifest & { group: Arch | 'source' } {
  return { id: treeId(t), repo: t.repo, dir: t.dir, kind: t.kind, arch: t.arch, group: t.group, path: t.path, repodata: r.repodata, packages: r.packages, ...(r.signer ? { signer: r.signer } : {}), ...(r.signaturesChecked ? { signaturesChecked: true as const } : {}) };
}

/** One manifest per arch (and source), free of compose ids and times, plus compose.json. */
export function manifests(ctx: StageContext, record: SyncRecord, dirRel: string, ref: Partial<ComposeRef> = {}): Record<string, unknown> {
  const groups = new Map<Arch | 'source', TreeManifest[]>();
  for (const { group, ...t } of record.trees) groups.set(group, [...(groups.get(group) ?? []), t]);
  const out: Record<string, unknown> = {};
  for (const [group, list] of groups) out[`${group}.json.gz`] = { release: releaseSlice(ctx.release, group), trees: list } satisfies ArchManifest;
  out['compose.json'] = { ...ref, composeId: record.composeId, dir: dirRel } satisfies ComposeRef;
  return out;
}
