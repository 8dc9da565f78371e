// The staging stage (replaces sync-to-staging[.delete].sh, minor-release-sync-to-staging.sh and
// sign-repos-only.sh, sync-to-staging-sig.sh; spec §4.3): the finalized compose's `compose/` (for
// update composes: the latest compose; for SIGs its `<major>/<sig>`) is published mirror-safe to
// `<staging>/<category>/<stagingNames.dir>` (SIGs: `<staging>/<sigCategory>/<major>/<sig>`), then the
// release links beside it, and a vetting report is written for review; the digest a reviewer
// approves is written only for a tree that passed. Where its files live: publishLayout in
// libs/config. Releases with regenerateRepodata/signRepodata (rocky-8) publish a private tree
// whose repodata is already rebuilt and signed (libs/publish/src/repodata-tree.ts).
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ComposeLayout, composeRoot, isFinalized, parseComposeId, publishLayout, repoTrees, stagingNames, type RepoTree } from '@rocky/config';
import { HashCache, readJson } from '@rocky/exec';
import {
  buildOverlay,
  commitRepodata,
  describePlan,
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
  type VettingReport,
} from '@rocky/publish';
import type { RpmPackage } from '@rocky/rpm-repo';
import { parseChecksum } from '@rocky/compose';
import { composeDamage, composeToPublish, mediaChecksums, type ComposeView } from './compose-check';
import { finalizeStage } from './finalize';
import { syncPending, type FileEntry } from './manifests';
import { restoreTree } from './trees';
import { carryMedia } from './composes';
import { runStage, type Stage } from './stage';
import type { StageContext } from './context';
import { openStore } from '@rocky/store';

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
}

const privateTree = (ctx: StageContext) => ctx.release.publish.regenerateRepodata || ctx.release.publish.signRepodata;

function repodataOptions(ctx: StageContext, layout: ComposeLayout, releaseDir: string, trees: RepoTree[]): RepodataTreeOptions {
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
    updateinfo: join(ctx.root, 'releases', ctx.release.name, 'updateinfo.xml'),
    log: ctx.log,
    logFile: layout.log('global', 'staging-repodata'),
  };
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
  tools: (ctx) => ['rsync', 'dnf', ...(ctx.release.publish.regenerateRepodata ? ['createrepo_c', 'modifyrepo_c'] : []), ...(ctx.release.publish.signRepodata ? ['gpg'] : [])],
  locks: (ctx) => [{ file: publishLayout(ctx.site, ctx.release).stagingLock, what: `staging of ${ctx.release.name}` }],

  async plan(ctx) {
    const { release: rel, site } = ctx;
    const paths = publishLayout(site, rel);
    const releaseDir = join(paths.stagingCategory, stagingNames(rel).dir);
    if (rel.publish.signRepodata && !site.signing) throw new Error(`${rel.name} signs its repodata (publish.signRepodata) but site ${site.name} has no signing key: add signing {gnupgHome, keyId} to the site`);
    if (ctx.kind === 'produce' && syncPending(ctx)) return { releaseDir, damage: [], trees: [], staleRepodata: [] };
    const view = composeToPublish(ctx);
    const { layout, composeId } = view;
    if (ctx.kind === 'produce') refuseRollbackOfUpdates(ctx, composeId);
    const trees = composeTrees(ctx, view);
    const damage = composeDamage(view);
    const plan: StagingPlan = { composeId, releaseDir, damage, trees, staleRepodata: [] };
    if (damage.length && ctx.dryRun) return plan;
    if (damage.length) {
      // Repaired in execute from the store; a compose the store cannot restore fails here, before anything changed.
      const store = openStore(site);
      for (const f of storedFiles(view)) {
        if (!(await store.has(f.sha256))) throw new Error(`compose ${composeId} is damaged (${damage[0]}) and the artifact store lost ${f.path} too: rerun \`nx run ${ctx.project}:${ctx.kind === 'update' ? 'update-sync' : 'sync'} --skip-nx-cache\`; nothing was published`);
      }
      return plan;
    }
    if (privateTree(ctx)) plan.staleRepodata = await staleRepodata(repodataOptions(ctx, layout, releaseDir, trees));
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
    if (p.preview) {
      for (const e of [...p.preview.adds, ...p.preview.updates]) lines.push(`+ ${e.path} (${e.bytes} bytes)`);
      for (const e of p.preview.deletes) lines.push(`- ${e.path} (${e.bytes} bytes)`);
      if (p.preview.needsConfirmation) lines.push(`the deletions exceed the site's limit of ${ctx.site.publish.deletionLimit}: the real run needs --confirmDeletions`);
    }
    return { summary: `${p.composeId} → ${p.releaseDir}${p.preview ? `: ${describePlan(p.preview)}` : ''}, then vetting`, details: lines };
  },

  async execute(ctx, plan) {
    const { release: rel, site } = ctx;
    if (plan.damage.length) await repairCompose(ctx);
    const { layout, composeId } = composeToPublish(ctx);
    const paths = publishLayout(site, rel);
    const releaseDir = plan.releaseDir;
    const overlay = join(paths.stagingWork, 'overlay');
    ctx.log.event('staging-start', { composeId, compose: layout.trees, dest: releaseDir });
    mkdirSync(paths.stagingWork, { recursive: true });
    mkdirSync(paths.stagingTemp, { recursive: true });

    // 1. Repodata in a private copy (rocky-8), signed before anyone can see it.
    const ro = repodataOptions(ctx, layout, releaseDir, plan.trees);
    let repodata: RepodataWork = { regenerated: [], signed: [], resumed: [], record: {} };
    if (privateTree(ctx)) repodata = await prepareRepodataTree(ro);
    const base = privateTree(ctx) ? ro.tree : layout.trees;
    // 2. The overlay: repo links and torrents, published together with the compose.
    const torrents = await buildOverlay({ release: rel, torrent: site.publish.torrent, overlay, base, log: ctx.log });
    // 3. Publish. With a private copy built from the staged tree, the copy holds everything
    //    staging keeps, so deleting is safe even for releases that keep old packages: only
    //    superseded repodata and vanished trees go.
    const before = new Map(plan.trees.map((t) => [t.path, stagedPackages(join(releaseDir, t.path))]));
    const result = await publishTree({
      source: [base, overlay],
      dest: releaseDir,
      delete: privateTree(ctx) ? true : rel.publish.delete,
      deletionLimit: site.publish.deletionLimit,
      confirmDeletions: ctx.options.confirmDeletions,
      owner: site.publish.owner,
      tempDir: paths.stagingTemp,
      log: ctx.log,
    });
    // Published: the record now stands for it (a failed run's copy is worth keeping, a killed run's prepared repodata too).
    if (privateTree(ctx)) commitRepodata(ro, repodata);
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
      r.report = await vetStagedTree({ release: ctx.release, composeId: r.composeId, releaseDir: r.stagingDir, trees: plan.trees, before: r.before, result: r.result, cache, regenerated: r.regenerated, signed: r.signed, torrents: r.torrents, work: paths.stagingWork });
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
  const left = composeDamage(composeToPublish(ctx));
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
