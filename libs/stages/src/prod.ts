// The prod stage (replaces sync-to-prod[.delete].sh; spec §4.3, §6): promotes the staged release
// dir `<staging>/<category>/<stagingNames.dir>` to `<production>/<category>/<productionNames.dir>`
// (stable drops the RC suffix: 9.7-RC2 -> 9.7; beta and lookahead keep theirs), mirror-safe with
// deletions, then points the production links (`9 -> 9.7`) at it.
//
// Refusals, each before anything changes, each saying what to do:
//   - production already matches staging (dry run shows nothing, links right): nothing to do, and
//     that is a success without approval, so depending on prod is always safe;
//   - otherwise the CURRENT staging digest must be approved (--approve=<digest>, or the approval
//     file <site.state>/approvals/<release>.json, see libs/publish/src/approval.ts): missing or
//     stale (staging changed after approval) approvals are refused;
//   - a beta/lookahead whose production dir or links would land on GA content: a name of the form
//     stable releases get (`9.7`, `9`), or a dir recorded as GA (markers below);
//   - deletions above site.publish.deletionLimit without --confirmDeletions.
//
// Files (outside every mirrored tree, so the file lists never carry them):
//   <site.state>/publish/events.jsonl     JSON-lines events of every prod and filelist run, shared by
//                                          all releases: `prod-done {release, project, runId}` is what
//                                          the filelist stage waits for
//   <site.state>/publish/production-dirs/<category>/<dir>.json
//                                          marker per production dir: {release, type, digest, time};
//                                          type stable marks GA content
//   <site.state>/publish/locks/production.lock   held by prod and by file-list generation
import { existsSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { productionNames, stagingNames, type Release } from '@rocky/config';
import { acquireLock, acquireLockWaiting, eventLog, preflight, readJson, writeJsonAtomic } from '@rocky/exec';
import { approvalFile, checkApproval, describePlan, publishTree, readApproval, treeDigest, type PublishResult } from '@rocky/publish';
import { linksMatch, placeLinks, publishPaths } from './staging';
import type { StageContext } from './context';

export interface ProdOptions {
  /** `--approve=<digest>`: the staging digest a reviewer approved. */
  approve?: string;
  confirmDeletions?: boolean;
  /** Identifies the Nx invocation (recorded in prod-done for the filelist stage). */
  runId?: string;
}

export interface ProdResult {
  release: string;
  dryRun: boolean;
  stagingDir: string;
  productionDir: string;
  changed: boolean;
  digest?: string;
  approvedBy?: string;
  publish: Pick<PublishResult, 'adds' | 'updates' | 'deletes' | 'bytes' | 'phases'>;
}

export interface GaMarker {
  release: string;
  type: Release['type'];
  dir: string;
  digest: string;
  time: string;
}

/** Names stable releases get in production: `9.7` (dir) and `9` (link). */
export const isGaName = (name: string) => /^\d+(\.\d+)?$/.test(name);

export const gaMarkerFile = (markersDir: string, dir: string) => join(markersDir, `${dir}.json`);

/**
 * Why a pre-release's production names would overwrite GA content, or undefined. Checks every
 * name it would write (the dir and its links): GA-shaped names, dirs marked GA, and links that
 * would replace a real directory.
 */
export function gaCollision(rel: Pick<Release, 'name' | 'type'>, names: { dir: string; links: Record<string, string> }, markersDir: string, productionCategory: string): string | undefined {
  if (rel.type === 'stable') return undefined;
  for (const n of [names.dir, ...Object.keys(names.links)]) {
    if (isGaName(n)) return `${rel.name} is a ${rel.type} release but would write ${n}, a name stable releases own`;
    const marker = gaMarkerFile(markersDir, n);
    if (existsSync(marker)) {
      const m = readJson<GaMarker>(marker);
      if (m.type === 'stable') return `${join(productionCategory, n)} holds GA content of ${m.release} (published ${m.time}); ${rel.name} (${rel.type}) must not overwrite it`;
    }
  }
  for (const n of Object.keys(names.links)) {
    const st = lstatSync(join(productionCategory, n), { throwIfNoEntry: false });
    if (st && !st.isSymbolicLink()) return `${join(productionCategory, n)} is a real directory; ${rel.name} would replace it with a link`;
  }
  return undefined;
}

export async function prodStage(s: StageContext, o: ProdOptions = {}): Promise<ProdResult> {
  const { release: rel, site } = s;
  preflight(['rsync']);
  const paths = publishPaths(site, rel);
  const sNames = stagingNames(rel);
  const pNames = productionNames(rel);
  const source = join(paths.stagingCategory, sNames.dir);
  const dest = join(paths.productionCategory, pNames.dir);
  const log = eventLog(s.dryRun ? undefined : paths.publishEvents, `[prod ${rel.name}]`);
  const refuse = (reason: string, message: string): never => {
    log.event('prod-refused', { release: rel.name, project: s.project, runId: o.runId, reason, message });
    throw new Error(message);
  };

  const collision = gaCollision(rel, pNames, paths.gaMarkers, paths.productionCategory);
  if (collision) refuse('ga-collision', `refusing to publish ${rel.name} to production: ${collision}; nothing was changed. Fix the release's type or publish names.`);
  if (!existsSync(source)) throw new Error(`nothing is staged for ${rel.name} at ${source}: run \`nx run ${s.project}:staging\` first`);

  const unlocks: (() => void)[] = [];
  try {
    if (!s.dryRun) {
      // Staging must not change under us (the digest we check is the tree we copy), and no other
      // prod or file-list run may interleave with this one.
      unlocks.push(await acquireLockWaiting(paths.productionLock, 'production publishing', { timeoutMs: 30 * 60_000 }));
      unlocks.push(acquireLock(paths.stagingLock, `staging of ${rel.name}`));
    }
    const common = { source, dest, delete: true, owner: site.publish.owner, excludes: [] as string[] };
    const plan = await publishTree({ ...common, dryRun: true, deletionLimit: site.publish.deletionLimit, confirmDeletions: o.confirmDeletions });
    const linksOk = linksMatch(paths.productionCategory, pNames.links);
    const base = { release: rel.name, dryRun: s.dryRun, stagingDir: source, productionDir: dest };
    const planOut = { adds: plan.adds, updates: plan.updates, deletes: plan.deletes, bytes: plan.bytes, phases: [] };

    if (!plan.changed && linksOk) {
      log.info(`production ${dest} already matches staging ${source}: nothing to do`);
      if (!s.dryRun) {
        log.event('prod-unchanged', { release: rel.name, project: s.project, runId: o.runId });
        log.event('prod-done', { release: rel.name, project: s.project, runId: o.runId, changed: false });
      }
      return { ...base, changed: false, publish: planOut };
    }

    const digest = treeDigest(source).digest;
    const check = {
      release: rel.name,
      current: digest,
      approve: o.approve,
      file: approvalFile(site.state, rel.name),
      report: join(paths.reportDir, 'report.md'),
    };
    if (s.dryRun) {
      let approval: string;
      try {
        approval = `approved by ${checkApproval(check).by}`;
      } catch (e) {
        approval = `NOT approved: ${(e as Error).message}`;
      }
      console.log(`[prod ${rel.name}] dry run: ${source} -> ${dest}: ${describePlan(plan)}${linksOk ? '' : `; links to set: ${JSON.stringify(pNames.links)}`}`);
      console.log(`[prod ${rel.name}] staging digest ${digest}: ${approval}`);
      if (plan.needsConfirmation) console.log(`[prod ${rel.name}] the deletions exceed the limit of ${site.publish.deletionLimit}: the real run needs --confirmDeletions`);
      return { ...base, changed: true, digest, publish: planOut };
    }

    let approvedBy: string;
    try {
      approvedBy = checkApproval(check).by;
    } catch (e) {
      return refuse(o.approve !== undefined || readApproval(check.file) ? 'stale-approval' : 'no-approval', (e as Error).message);
    }
    log.event('prod-start', { release: rel.name, project: s.project, runId: o.runId, digest, approvedBy, source, dest });
    let result: PublishResult;
    try {
      result = await publishTree({ ...common, deletionLimit: site.publish.deletionLimit, confirmDeletions: o.confirmDeletions, log });
    } catch (e) {
      if ((e as Error).name === 'DeletionLimitError') refuse('deletion-limit', `prod of ${rel.name}: ${(e as Error).message}`);
      throw e;
    }
    placeLinks(paths.productionCategory, pNames.links, log);
    const marker: GaMarker = { release: rel.name, type: rel.type, dir: pNames.dir, digest, time: new Date().toISOString() };
    writeJsonAtomic(gaMarkerFile(paths.gaMarkers, pNames.dir), marker);
    log.event('prod-done', { release: rel.name, project: s.project, runId: o.runId, changed: true, digest, approvedBy, bytes: result.bytes });
    log.info(`promoted ${source} -> ${dest} (digest ${digest}, approved by ${approvedBy}): ${describePlan(result)}. Mirror file lists follow in the filelist stage.`);
    return { ...base, changed: true, digest, approvedBy, publish: { adds: result.adds, updates: result.updates, deletes: result.deletes, bytes: result.bytes, phases: result.phases } };
  } finally {
    for (const u of unlocks.reverse()) u();
  }
}

