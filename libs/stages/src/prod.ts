// The prod stage (replaces sync-to-prod[.delete].sh and sync-to-prod-sig.sh; spec §4.3, §6):
// promotes the staged release dir `<staging>/<category>/<stagingNames.dir>` to
// `<production>/<category>/<productionNames.dir>` (stable drops the RC suffix: 9.7-RC2 -> 9.7;
// beta and lookahead keep theirs; a SIG's `<major>/<sig>` is the same in the SIG category),
// mirror-safe with deletions, then points the production links (`9 -> 9.7`) at it.
//
// Refusals, each before anything changes, each saying what to do:
//   - production already matches staging (links right): nothing to do, and that is a success
//     without approval, so depending on prod is always safe;
//   - a staged tree whose vetting did not pass (or was never vetted), whatever the approval;
//   - otherwise the CURRENT staging digest must be approved (--approve=<digest>, or the approval
//     file, see libs/publish/src/approval.ts): missing or stale approvals are refused;
//   - a beta/lookahead whose production dir or links would land on GA content;
//   - deletions above site.publish.deletionLimit without --confirmDeletions.
// `prod-done {project, runId}` in the site's event log is what the filelist stage waits for.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { productionNames, publishLayout, stagingNames } from '@rocky/config';
import { HashCache, readJson, writeJsonAtomic } from '@rocky/exec';
import {
  approvalFile,
  checkApproval,
  describePlan,
  gaCollision,
  gaMarkerFile,
  linksMatch,
  placeLinks,
  publishTree,
  readApproval,
  treeDigest,
  type GaMarker,
  type PublishResult,
  type VettingReport,
} from '@rocky/publish';
import { publishWorkDir, type StageContext } from './context';
import type { Stage } from './stage';

export interface ProdPlan {
  source: string;
  dest: string;
  /** Production already matches staging: nothing to do, no approval needed. */
  unchanged: boolean;
  publish?: PublishResult;
  linksOk: boolean;
  digest?: string;
  /** Who approved the digest, or (dry runs) why it is not approved. */
  approval: { by?: string; refused?: string };
}

export interface ProdResult {
  release: string;
  stagingDir: string;
  productionDir: string;
  changed: boolean;
  digest?: string;
  approvedBy?: string;
  publish?: PublishResult;
}

function refuse(ctx: StageContext, reason: string, message: string): never {
  if (!ctx.dryRun) ctx.log.event('prod-refused', { reason, message });
  throw new Error(message);
}

export const prodStage: Stage<ProdPlan, ProdResult> = {
  name: 'prod',
  tools: () => ['rsync', 'find'],
  // Staging must not change under us (the digest we check is the tree we copy), and no other
  // prod or file-list run may interleave with this one.
  locks: (ctx) => {
    const p = publishLayout(ctx.site, ctx.release);
    return [
      { file: p.productionLock, what: 'production publishing', waitMs: 30 * 60_000 },
      { file: p.stagingLock, what: `staging of ${ctx.release.name}` },
    ];
  },

  async plan(ctx) {
    const { release: rel, site } = ctx;
    const paths = publishLayout(site, rel);
    const pNames = productionNames(rel);
    const source = join(paths.stagingCategory, stagingNames(rel).dir);
    const dest = join(paths.productionCategory, pNames.dir);
    const collision = gaCollision(rel, pNames, paths.gaMarkers, paths.productionCategory);
    if (collision) refuse(ctx, 'ga-collision', `refusing to publish ${rel.name} to production: ${collision}; nothing was changed. Fix the release's type or publish names.`);
    if (!existsSync(source)) {
      if (ctx.dryRun) return { source, dest, unchanged: false, linksOk: false, approval: { refused: `nothing is staged yet (${source})` } };
      throw new Error(`nothing is staged for ${rel.name} at ${source}: run \`nx run ${ctx.project}:staging\` first`);
    }
    const publish = await publishTree({ source, dest, delete: true, owner: site.publish.owner, dryRun: true, deletionLimit: site.publish.deletionLimit, confirmDeletions: ctx.options.confirmDeletions, workDir: publishWorkDir(ctx) });
    const linksOk = linksMatch(paths.productionCategory, pNames.links);
    if (!publish.changed && linksOk) return { source, dest, unchanged: true, publish, linksOk, approval: {} };

    // The content of what would be promoted (hashed through the cache vetting filled: only files changed since are read).
    const digest = (await treeDigest(source, new HashCache(paths.hashCache))).digest;
    const approval: ProdPlan['approval'] = {};
    try {
      checkVetted(ctx, digest);
      approval.by = checkApproval({ release: rel.name, current: digest, approve: ctx.options.approve, file: approvalFile(site.state, rel.name), report: join(paths.reportDir, 'report.md') }).by;
    } catch (e) {
      if (!ctx.dryRun) {
        const reason = (e as Error).name === 'VettingError' ? 'not-vetted' : ctx.options.approve !== undefined || readApproval(approvalFile(site.state, rel.name)) ? 'stale-approval' : 'no-approval';
        refuse(ctx, reason, (e as Error).message);
      }
      approval.refused = (e as Error).message;
    }
    if (publish.needsConfirmation && !ctx.dryRun) refuse(ctx, 'deletion-limit', `prod of ${rel.name}: refusing to delete ${publish.deletes.length} files (limit ${site.publish.deletionLimit}); nothing was changed. Check the plan; if these deletions are intended, rerun with --confirmDeletions`);
    return { source, dest, unchanged: false, publish, linksOk, digest, approval };
  },

  describe(p, ctx) {
    if (p.unchanged) return { summary: `production ${p.dest} already matches staging ${p.source}: nothing to do` };
    const details = [
      ...(p.publish ? [...p.publish.adds, ...p.publish.updates].map((e) => `+ ${e.path} (${e.bytes} bytes)`) : []),
      ...(p.publish ? p.publish.deletes.map((e) => `- ${e.path} (${e.bytes} bytes)`) : []),
      ...(p.linksOk ? [] : [`links to set: ${JSON.stringify(productionNames(ctx.release).links)}`]),
      ...(p.publish?.needsConfirmation ? [`the deletions exceed the limit of ${ctx.site.publish.deletionLimit}: the real run needs --confirmDeletions`] : []),
    ];
    const approval = p.approval.by ? `approved by ${p.approval.by}` : `NOT approved: ${p.approval.refused}`;
    return { summary: `${p.source} → ${p.dest}${p.publish ? `: ${describePlan(p.publish)}` : ''}; staging digest ${p.digest ?? '(none)'}: ${approval}`, details };
  },

  async execute(ctx, plan) {
    const { release: rel, site } = ctx;
    const base = { release: rel.name, stagingDir: plan.source, productionDir: plan.dest };
    if (plan.unchanged) return { ...base, changed: false };
    const paths = publishLayout(site, rel);
    const pNames = productionNames(rel);
    ctx.log.event('prod-start', { digest: plan.digest, approvedBy: plan.approval.by, source: plan.source, dest: plan.dest });
    mkdirSync(paths.productionTemp, { recursive: true });
    const result = await publishTree({ source: plan.source, dest: plan.dest, delete: true, owner: site.publish.owner, deletionLimit: site.publish.deletionLimit, confirmDeletions: ctx.options.confirmDeletions, tempDir: paths.productionTemp, workDir: publishWorkDir(ctx), log: ctx.log });
    placeLinks(paths.productionCategory, pNames.links, ctx.log);
    const marker: GaMarker = { release: rel.name, type: rel.type, dir: pNames.dir, digest: plan.digest!, time: new Date().toISOString() };
    writeJsonAtomic(gaMarkerFile(paths.gaMarkers, pNames.dir), marker);
    return { ...base, changed: true, digest: plan.digest, approvedBy: plan.approval.by, publish: result };
  },

  // publishTree verified the copy (a last dry run shows no difference); the links must be right.
  async verify(ctx) {
    const paths = publishLayout(ctx.site, ctx.release);
    if (!linksMatch(paths.productionCategory, productionNames(ctx.release).links)) throw new Error(`production links of ${ctx.release.name} are not ${JSON.stringify(productionNames(ctx.release).links)} after the promotion`);
  },

  async record(ctx, _plan, r) {
    ctx.log.event('prod-done', { changed: r.changed, digest: r.digest, approvedBy: r.approvedBy, bytes: r.publish?.bytes });
    return {
      summary: r.changed
        ? `promoted ${r.stagingDir} → ${r.productionDir} (digest ${r.digest}, approved by ${r.approvedBy}): ${describePlan(r.publish!)}. Mirror file lists follow in the filelist stage.`
        : `production ${r.productionDir} already matches staging`,
    };
  },
};

class VettingError extends Error {
  override name = 'VettingError';
}

/** The staged tree passed vetting, and is the tree that was vetted: prod promotes nothing else, whatever the approval. */
function checkVetted(ctx: StageContext, digest: string) {
  const paths = publishLayout(ctx.site, ctx.release);
  const file = join(paths.reportDir, 'report.json');
  const md = join(paths.reportDir, 'report.md');
  if (!existsSync(file)) throw new VettingError(`the staged tree of ${ctx.release.name} was never vetted (${file} is missing): run \`nx run ${ctx.project}:staging\`; nothing was changed`);
  const report = readJson<VettingReport>(file);
  if (!report.ok) throw new VettingError(`the staged tree of ${ctx.release.name} failed vetting (${report.problems.slice(0, 3).join('; ')}; see ${md}): refusing to promote it, whatever the approval; nothing was changed`);
  if (report.digest !== digest) throw new VettingError(`the staged tree of ${ctx.release.name} changed since it was vetted (vetted ${report.digest}, now ${digest}): rerun \`nx run ${ctx.project}:staging\`; nothing was changed`);
}
