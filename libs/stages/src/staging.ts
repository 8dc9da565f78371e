// The staging stage (replaces sync-to-staging[.delete].sh, minor-release-sync-to-staging.sh and
// sign-repos-only.sh, sync-to-staging-sig.sh; spec §4.3): the finalized compose's `compose/` (for
// update composes: the latest compose; for SIGs its `<major>/<sig>`) is published mirror-safe to
// `<staging>/<category>/<stagingNames.dir>` (SIGs: `<staging>/<sigCategory>/<major>/<sig>`), then the
// release links beside it, and a vetting report is written for review; the digest a reviewer
// approves is written only for a tree that passed. Where its files live: publishLayout in
// libs/config. Releases with regenerateRepodata/signRepodata (rocky-8) publish a private tree
// whose repodata is already rebuilt and signed (libs/publish/src/repodata-tree.ts).
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ComposeLayout, composeOfTarget, composeRoot, composeTarget, isFinalized, parseComposeId, publishLayout, repoTrees, stagingNames, type RepoTree } from '@rocky/config';
import { HashCache, readJson } from '@rocky/exec';
import {
  buildOverlay,
  commitRepodata,
  describePlan,
  fetchErrata,
  overlayNames,
  placeLinks,
  prepareRepodataTree,
  publishTree,
  stagedPackages,
  staleRepodata,
  treeDigest,
  vetStagedTree,
  writeVettingReport,
  type OverlayResult,
  type PublishResult,
  type RepodataTreeOptions,
  type RepodataWork,
  type TreeErrata,
  type VettingReport,
} from '@rocky/publish';
import type { RpmPackage } from '@rocky/rpm-repo';
import { parseChecksum } from '@rocky/compose';
import { composeDamage, composeToPublish, mediaChecksums, type ComposeView } from './compose-check';
import { finalizeStage } from './finalize';
import { readComposeRef, syncPending, type FileEntry, type PungiComposeRecord } from './manifests';
import { pungiRecordToPublish } from './pungi';
import { restoreTree } from './trees';
import { carryMedia } from './composes';
import { runStage, type Stage } from './stage';
import { publishWorkDir, type StageContext } from './context';
import { openStore } from '@rocky/store';
import { openUpstream } from './upstream';

export interface StagingPlan {
  composeId?: string;
  releaseDir: string;
  /** What is wrong with the compose on this host; it is repaired (finalize rerun, trees relinked from the store) before anything is published. */
  damage: string[];
  trees: RepoTree[];
  /** Trees whose repodata will be regenerated / signed (rocky-8). */
  staleRepodata: string[];
  /** Dry runs: the publish as rsync plans it now (real runs plan inside the publish). */
  preview?: PublishResult;
  /** `staging-<compose>` of a pungi-produced release: only that compose's dirs are published, from its own compose. */
  single?: { compose: string; variants: string[] };
  /** The errata of the trees whose repodata is regenerated, read from the site's errata source (what execute publishes). */
  errata: Map<string, TreeErrata>;
}

export interface StagingResult {
  release: string;
  composeId: string;
  stagingDir: string;
  reportDir: string;
  /** Whether the staged tree (or its links) changed. */
  changed: boolean;
  publish: Pick<PublishResult, 'adds' | 'updates' | 'deletes' | 'bytes' | 'phases'>;
  regenerated: string[];
  signed: string[];
  /** Trees whose repodata a killed run had prepared: taken over, not rebuilt. */
  resumed: string[];
  /** Filled by verify: the vetting report (or the earlier one, for an unchanged tree), its digest and verdict. */
  report?: VettingReport;
  digest?: string;
  ok?: boolean;
  before: Map<string, RpmPackage[]>;
  torrents: OverlayResult;
  result: PublishResult;
  /** The trees vetted, when not the plan's: a compose staged alone is vetted with the whole staged release (its repos close against the others). */
  vetTrees?: RepoTree[];
}

const privateTree = (ctx: StageContext) => ctx.release.publish.regenerateRepodata || ctx.release.publish.signRepodata;

function repodataOptions(ctx: StageContext, layout: ComposeLayout, releaseDir: string, trees: RepoTree[], errata: Map<string, TreeErrata>): RepodataTreeOptions {
  const paths = publishLayout(ctx.site, ctx.release);
  return {
    release: ctx.release,
    signing: ctx.site.signing,
    workers: ctx.site.concurrency.builds,
    compose: layout.trees,
    releaseDir,
    tree: join(paths.stagingWork, 'tree'),
    work: paths.stagingWork,
    overlayNames: overlayNames(ctx.release),
    trees,
    errata,
    moduleMetadata: paths.moduleMetadata,
    log: ctx.log,
    logFile: layout.log('global', 'staging-repodata'),
  };
}

/**
 * The errata of the trees staging regenerates, read from the site's source (Apollo); on the
 * local site its `{base}` is the fixture, served for the read.
 */
async function readErrata(ctx: StageContext, trees: RepoTree[]): Promise<Map<string, TreeErrata>> {
  const { site, release: rel } = ctx;
  if (!rel.publish.regenerateRepodata || !site.errata) return new Map();
  const served = site.errata.type === 'url' && site.errata.url.includes('{base}') ? await openUpstream(ctx.root, site, ctx.log.info) : undefined;
  try {
    return await fetchErrata({ site, release: rel, trees, base: served?.base, log: ctx.log.info });
  } finally {
    await served?.close();
  }
}

/** The release's trees the compose holds, in the release's order. */
const composeTrees = (ctx: StageContext, view: ComposeView): RepoTree[] => {
  const held = new Set(view.trees.map((t) => t.path));
  return repoTrees(ctx.release, ctx.kind).filter((t) => held.has(t.path));
};

/** The files of the compose that the store must hold for a repair: every tree file, and the media CHECKSUM names. */
function storedFiles(view: ComposeView): FileEntry[] {
  const out = view.trees.flatMap((t) => [...t.packages, ...t.repodata].map((f) => ({ path: `${t.path}/${f.path}`, sha256: f.sha256, size: f.size })));
  for (const [dir, text] of Object.entries(mediaChecksums(view))) for (const e of parseChecksum(text)) out.push({ path: `${dir}/${e.name}`, sha256: e.sha256, size: e.size });
  return out;
}

export const stagingStage: Stage<StagingPlan, StagingResult> = {
  name: 'staging',
  tools: (ctx) => ['rsync', 'find', 'dnf', ...(ctx.release.publish.regenerateRepodata ? ['createrepo_c', 'modifyrepo_c'] : []), ...(ctx.release.publish.signRepodata ? ['gpg'] : [])],
  locks: (ctx) => [{ file: publishLayout(ctx.site, ctx.release).stagingLock, what: `staging of ${ctx.release.name}` }],

  async plan(ctx) {
    const { release: rel, site } = ctx;
    const paths = publishLayout(site, rel);
    const releaseDir = join(paths.stagingCategory, stagingNames(rel).dir);
    if (rel.publish.signRepodata && !site.signing) throw new Error(`${rel.name} signs its repodata (publish.signRepodata) but site ${site.name} has no signing key: add signing {gnupgHome, keyId} to the site`);
    const single = composeOfTarget(ctx.target);
    if (single) return planSingle(ctx, releaseDir, single);
    if (ctx.kind === 'produce' && syncPending(ctx)) return { releaseDir, damage: [], trees: [], staleRepodata: [], errata: new Map() };
    const view = composeToPublish(ctx);
    const { layout, composeId } = view;
    if (ctx.kind === 'produce') refuseRollbackOfUpdates(ctx, composeId);
    const trees = composeTrees(ctx, view);
    const damage = await composeDamage(view);
    const plan: StagingPlan = { composeId, releaseDir, damage, trees, staleRepodata: [], errata: await readErrata(ctx, trees) };
    if (damage.length && ctx.dryRun) return plan;
    if (damage.length) {
      // Repaired in execute from the store; a compose the store cannot restore fails here, before anything changed.
      const store = openStore(site);
      for (const f of storedFiles(view)) {
        if (!(await store.has(f.sha256))) throw new Error(`compose ${composeId} is damaged (${damage[0]}) and the artifact store lost ${f.path} too: rerun \`nx run ${ctx.project}:${ctx.kind === 'update' ? 'update-sync' : 'sync'} --skip-nx-cache\`; nothing was published`);
      }
      return plan;
    }
    if (privateTree(ctx)) plan.staleRepodata = await staleRepodata(repodataOptions(ctx, layout, releaseDir, trees, plan.errata));
    if (ctx.dryRun) {
      const overlay = join(paths.stagingWork, 'overlay');
      // Regenerated repodata is not built in a dry run: plan the rest, and name the trees to rebuild.
      plan.preview = await publishTree({
        source: [layout.trees, ...(existsSync(overlay) ? [overlay] : [])],
        dest: releaseDir,
        delete: rel.publish.delete,
        dryRun: true,
        excludes: privateTree(ctx) ? ['repodata/'] : [],
        deletionLimit: site.publish.deletionLimit,
        workDir: publishWorkDir(ctx),
      });
    }
    return plan;
  },

  describe(p, ctx) {
    const rel = ctx.release;
    if (!p.composeId) return { summary: `publish the compose ${isFinalized(rel, ctx.kind) ? 'finalize' : 'sync'} is about to make to ${p.releaseDir}, vet it` };
    const lines: string[] = [];
    if (p.damage.length) lines.push(`the compose on this host is damaged; finalize is rerun and lost files are relinked from the artifact store first:`, ...p.damage.map((d) => `  ${d}`));
    if (p.staleRepodata.length) lines.push(`repodata to ${rel.publish.regenerateRepodata ? 'regenerate' : 'sign'}: ${p.staleRepodata.join(', ')}`);
    for (const [tree, e] of p.errata) lines.push(`errata of ${tree}: ${e.source}`);
    if (p.preview) {
      for (const e of [...p.preview.adds, ...p.preview.updates]) lines.push(`+ ${e.path} (${e.bytes} bytes)`);
      for (const e of p.preview.deletes) lines.push(`- ${e.path} (${e.bytes} bytes)`);
      if (p.preview.needsConfirmation) lines.push(`the deletions exceed the site's limit of ${ctx.site.publish.deletionLimit}: the real run needs --confirmDeletions`);
    }
    if (p.single) return { summary: `${p.single.compose} alone: ${p.composeId} (${p.single.variants.join(', ')}) → ${p.releaseDir}, then vetting`, details: lines };
    return { summary: `${p.composeId} → ${p.releaseDir}${p.preview ? `: ${describePlan(p.preview)}` : ''}, then vetting`, details: lines };
  },

  async execute(ctx, plan) {
    const { release: rel, site } = ctx;
    if (plan.single) return stageSingle(ctx, plan, plan.single);
    if (plan.damage.length) await repairCompose(ctx);
    const { layout, composeId } = composeToPublish(ctx);
    const paths = publishLayout(site, rel);
    const releaseDir = plan.releaseDir;
    const overlay = join(paths.stagingWork, 'overlay');
    ctx.log.event('staging-start', { composeId, compose: layout.trees, dest: releaseDir });
    mkdirSync(paths.stagingWork, { recursive: true });
    mkdirSync(paths.stagingTemp, { recursive: true });

    // 1. Repodata in a private copy (rocky-8), signed before anyone can see it.
    const ro = repodataOptions(ctx, layout, releaseDir, plan.trees, plan.errata);
    let repodata: RepodataWork = { regenerated: [], signed: [], resumed: [], record: {} };
    if (privateTree(ctx)) repodata = await prepareRepodataTree(ro);
    const base = privateTree(ctx) ? ro.tree : layout.trees;
    // 2. The overlay: repo links and torrents, published together with the compose.
    const torrents = await buildOverlay({ release: rel, torrent: site.publish.torrent, overlay, base, log: ctx.log });
    // 3. Publish. With a private copy built from the staged tree, the copy holds everything
    //    staging keeps, so deleting is safe even for releases that keep old packages: only
    //    superseded repodata and vanished trees go.
    const before = new Map(plan.trees.map((t) => [t.path, stagedPackages(join(releaseDir, t.path))]));
    // A compose assembled from pungi's composes is staged one compose at a time, in the release's
    // order (the SOP: Plus, Extras, Rocky-devel, Rocky), then the rest (media, metadata, links).
    const passes: PublishResult[] = [];
    for (const part of (ctx.kind === 'produce' && readComposeRef(ctx.root, ctx.project).pungi) || []) {
      passes.push(await publishOnly(ctx, base, releaseDir, part.variants));
      ctx.log.event('staging-compose', { compose: part.compose, composeId: part.composeId, variants: part.variants, changed: passes.at(-1)!.changed });
    }
    const last = await publishTree({
      source: [base, overlay],
      dest: releaseDir,
      delete: privateTree(ctx) ? true : rel.publish.delete,
      deletionLimit: site.publish.deletionLimit,
      confirmDeletions: ctx.options.confirmDeletions,
      owner: site.publish.owner,
      tempDir: paths.stagingTemp,
      workDir: publishWorkDir(ctx),
      log: ctx.log,
    });
    const result = mergeResults([...passes, last]);
    // Published: the record now stands for it (a failed run's copy is worth keeping, a killed run's prepared repodata too).
    if (privateTree(ctx)) await commitRepodata(ro, repodata);
    const linkChanges = placeLinks(paths.stagingCategory, stagingNames(rel).links, ctx.log);
    return {
      release: rel.name,
      composeId,
      stagingDir: releaseDir,
      reportDir: paths.reportDir,
      changed: result.changed || linkChanges.length > 0,
      publish: { adds: result.adds, updates: result.updates, deletes: result.deletes, bytes: result.bytes, phases: result.phases },
      regenerated: repodata.regenerated,
      signed: repodata.signed,
      resumed: repodata.resumed,
      before,
      torrents,
      result,
    };
  },

  // Vetting: digest, packages, repoclosure, checksums; an unchanged tree keeps its report. The
  // digest a reviewer approves is written only when the tree passed.
  async verify(ctx, plan, r) {
    const paths = publishLayout(ctx.site, ctx.release);
    const cache = new HashCache(paths.hashCache);
    const digest = await treeDigest(r.stagingDir, cache);
    const reportJson = join(paths.reportDir, 'report.json');
    const old = existsSync(reportJson) ? readJson<VettingReport>(reportJson) : undefined;
    const md = join(paths.reportDir, 'report.md');
    if (!r.result.changed && old?.digest === digest.digest && old.composeId === r.composeId) {
      ctx.log.event('staging-unchanged', { digest: digest.digest });
      r.report = old;
    } else {
      r.report = await vetStagedTree({ release: ctx.release, composeId: r.composeId, releaseDir: r.stagingDir, trees: r.vetTrees ?? plan.trees, before: r.before, result: r.result, cache, regenerated: r.regenerated, signed: r.signed, torrents: r.torrents, work: paths.stagingWork });
      writeVettingReport(paths.reportDir, r.report);
      ctx.log.event('staging-vetted', { digest: r.report.digest, ok: r.report.ok, problems: r.report.problems.length, hashed: cache.hashed, reused: cache.reused });
    }
    cache.save();
    r.digest = r.report.digest;
    r.ok = r.report.ok;
    if (!r.report.ok) throw new Error(`the staged tree of ${ctx.release.name} failed vetting (${r.report.problems.length} problems: ${r.report.problems.slice(0, 5).join('; ')}); see ${md}`);
  },

  async record(_ctx, _plan, r) {
    const md = join(r.reportDir, 'report.md');
    const what = r.changed ? `staged: ${describePlan(r.result)}` : 'staging already matched the compose';
    return { summary: `${r.composeId} at ${r.stagingDir}: ${what}; digest ${r.report!.digest} (approve with --approve=${r.report!.digest}); report ${md}` };
  },
};

/**
 * The compose made whole again: trees and media relinked from the store; a produce compose's
 * finalize is rerun (its metadata, CHECKSUM and signatures: the same bytes as before).
 */
async function repairCompose(ctx: StageContext) {
  const store = openStore(ctx.site);
  const view = composeToPublish(ctx);
  let restored = 0;
  for (const t of view.trees) restored += await restoreTree(store, view.layout, t);
  if (ctx.kind === 'update' && view.media) await carryMedia(new ComposeLayout(join(dirname(view.layout.dir), view.media), ctx.release), view.layout, { replace: true });
  ctx.log.info(`repair: ${restored} files of the compose relinked from the artifact store`);
  if (isFinalized(ctx.release, ctx.kind)) await runStage(finalizeStage, { ...ctx, target: 'finalize', log: ctx.log });
  const left = await composeDamage(composeToPublish(ctx));
  if (left.length) throw new Error(`the compose could not be repaired: ${left.join('; ')}; nothing was published`);
}

/**
 * The minor release chain must not publish its produce compose over the updates pushed since:
 * that would take them back. The update chain publishes (and rolls back) update composes.
 */
function refuseRollbackOfUpdates(ctx: StageContext, composeId: string) {
  const report = join(publishLayout(ctx.site, ctx.release).reportDir, 'report.json');
  if (!existsSync(report)) return;
  const staged = readJson<VettingReport>(report).composeId;
  if (parseComposeId(staged)?.kind !== 'update') return;
  // Which compose was synced last: a produce compose made after the update (a respin) holds the
  // updates too; one made before it does not.
  const { base } = composeRoot(ctx.site, ctx.release);
  const synced = (id: string) => statSync(new ComposeLayout(join(base, id), ctx.release).syncRecord, { throwIfNoEntry: false })?.mtimeMs ?? 0;
  if (synced(composeId) > synced(staged)) return;
  throw new Error(`staging of ${ctx.release.name} holds update compose ${staged}, newer than the produce compose ${composeId}: publishing it would take back the updates. Weekly pushes go through \`nx run ${ctx.project}:update-staging\` (a rollback: \`nx run ${ctx.project}:rollback --to=<compose>\`); nothing was changed`);
}

/** `staging-<compose>`: the newest record of that compose task, whole on this host, and the trees it brings. */
async function planSingle(ctx: StageContext, releaseDir: string, compose: string): Promise<StagingPlan> {
  const r = pungiRecordToPublish(ctx);
  const view = pungiView(ctx, r);
  const damage = await composeDamage(view);
  if (damage.length) throw new Error(`pungi compose ${r.composeId} is not whole on this host (${damage.slice(0, 3).join('; ')}): rerun \`nx run ${ctx.project}:${composeTarget(compose, ctx.kind)}\`; nothing was published`);
  const trees = composeTrees(ctx, view);
  const variants = [...new Set(r.trees.map((t) => t.dir))];
  const plan: StagingPlan = { composeId: r.composeId, releaseDir, damage: [], trees, staleRepodata: [], single: { compose, variants }, errata: await readErrata(ctx, trees) };
  if (privateTree(ctx)) plan.staleRepodata = await staleRepodata(repodataOptions(ctx, view.layout, releaseDir, trees, plan.errata));
  return plan;
}

/** A pungi compose as a publishing stage sees one: its own trees, no media of the pipeline's. */
const pungiView = (ctx: StageContext, r: PungiComposeRecord): ComposeView => ({ layout: new ComposeLayout(r.dir, ctx.release), composeId: r.composeId, trees: r.trees, checksums: {}, metadata: true, producer: 'pungi' });

/** Publishes one pungi compose's dirs from its own compose (repodata regenerated and signed first, as for the whole release). */
async function stageSingle(ctx: StageContext, plan: StagingPlan, single: NonNullable<StagingPlan['single']>): Promise<StagingResult> {
  const paths = publishLayout(ctx.site, ctx.release);
  const r = pungiRecordToPublish(ctx);
  const layout = new ComposeLayout(r.dir, ctx.release);
  ctx.log.event('staging-start', { composeId: r.composeId, compose: layout.trees, dest: plan.releaseDir, only: single.compose });
  mkdirSync(paths.stagingWork, { recursive: true });
  mkdirSync(paths.stagingTemp, { recursive: true });
  const ro = repodataOptions(ctx, layout, plan.releaseDir, plan.trees, plan.errata);
  const repodata: RepodataWork = privateTree(ctx) ? await prepareRepodataTree(ro) : { regenerated: [], signed: [], resumed: [], record: {} };
  const base = privateTree(ctx) ? ro.tree : layout.trees;
  // Vetted with every tree of the release staging holds: this compose's repos close against the others.
  const mine = new Set(plan.trees.map((t) => t.path));
  const vetTrees = repoTrees(ctx.release, ctx.kind).filter((t) => mine.has(t.path) || existsSync(join(plan.releaseDir, t.path, 'repodata', 'repomd.xml')));
  const before = new Map(vetTrees.map((t) => [t.path, stagedPackages(join(plan.releaseDir, t.path))]));
  const result = await publishOnly(ctx, base, plan.releaseDir, single.variants);
  ctx.log.event('staging-compose', { compose: single.compose, composeId: r.composeId, variants: single.variants, changed: result.changed });
  if (privateTree(ctx)) await commitRepodata(ro, repodata, { partial: true });
  return {
    release: ctx.release.name,
    composeId: r.composeId,
    stagingDir: plan.releaseDir,
    reportDir: paths.reportDir,
    changed: result.changed,
    publish: { adds: result.adds, updates: result.updates, deletes: result.deletes, bytes: result.bytes, phases: result.phases },
    regenerated: repodata.regenerated,
    signed: repodata.signed,
    resumed: repodata.resumed,
    before,
    torrents: { created: [], skipped: [] },
    result,
    vetTrees,
  };
}

/**
 * Publishes only the compose dirs `variants` of `base` into the release dir: everything else at
 * the top (other composes' dirs, media, metadata, links) is excluded, so neither updated nor
 * deleted, and so are pungi's ISO dirs inside a variant (the release's media come from finalize).
 */
async function publishOnly(ctx: StageContext, base: string, releaseDir: string, variants: string[]): Promise<PublishResult> {
  const paths = publishLayout(ctx.site, ctx.release);
  const top = new Set([...(existsSync(base) ? readdirSync(base) : []), ...(existsSync(releaseDir) ? readdirSync(releaseDir) : []), ...overlayNames(ctx.release)]);
  const others = [...top].filter((n) => !variants.includes(n));
  return publishTree({
    source: base,
    dest: releaseDir,
    // The source is the private copy of the staged tree: it holds everything staging keeps.
    delete: privateTree(ctx) ? true : ctx.release.publish.delete,
    excludes: [...others.map((n) => `/${n}`), ...variants.map((v) => `/${v}/*/iso/`)],
    deletionLimit: ctx.site.publish.deletionLimit,
    confirmDeletions: ctx.options.confirmDeletions,
    owner: ctx.site.publish.owner,
    tempDir: paths.stagingTemp,
    workDir: publishWorkDir(ctx),
    log: ctx.log,
  });
}

/** Several publishes into one release dir, as one result (the vetting hashes every path any of them changed). */
function mergeResults(list: PublishResult[]): PublishResult {
  const last = list.at(-1)!;
  return {
    ...last,
    adds: list.flatMap((r) => r.adds),
    updates: list.flatMap((r) => r.updates),
    deletes: list.flatMap((r) => r.deletes),
    attrs: list.flatMap((r) => r.attrs),
    bytes: { add: sum(list, (r) => r.bytes.add), update: sum(list, (r) => r.bytes.update), delete: sum(list, (r) => r.bytes.delete) },
    phases: list.flatMap((r) => r.phases),
    changed: list.some((r) => r.changed),
    needsConfirmation: list.some((r) => r.needsConfirmation),
    ms: sum(list, (r) => r.ms),
  };
}

const sum = <T>(list: T[], f: (x: T) => number) => list.reduce((n, x) => n + f(x), 0);
