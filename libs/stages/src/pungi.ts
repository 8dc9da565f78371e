// The sync of a release whose composes pungi makes (Rocky 8: the site's `producers.<release>` is
// pungi; each compose is made by its own compose-<name> task, pungi-compose.ts): assembles the
// pipeline's compose from the records of every compose-<name> (hardlinks from the store,
// kickstart trees as copies of the os trees, as Rocky 8's staging makes them) and writes the
// per-arch manifests the rest of the graph reads, so iso, iso-extra, finalize and staging work as
// for rocky-9. pungi owns its compose directories and `latest-*` links; the pipeline's compose
// lives beside them (composeRoot) and never touches them.
import { existsSync, mkdirSync, readlinkSync, statSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { ComposeLayout, composeOfTarget, composeRoot, composeTarget, repoDir, treeId, treePath, type Arch } from '@rocky/config';
import { mapLimit, sha256, symlinkAtomic, writeFileAtomic, writeJsonAtomic } from '@rocky/exec';
import { openStore } from '@rocky/store';
import { restoreTree, writeTreeFiles } from './trees';
import { readPungiRecord, releaseSlice, type PungiComposeRecord, type PungiPart, type SyncRecord, type TreeManifest } from './manifests';
import { manifests, newestIfUpToDate, openCompose } from './sync';
import { requirePungi } from './pungi-compose';
import type { StageContext } from './context';
import type { Stage } from './stage';

export interface AssemblePlan {
  digest: string;
  /** The records of every compose, in the release's (staging) order; empty in a dry run before any compose ran. */
  records: PungiComposeRecord[];
  trees: (TreeManifest & { group: Arch | 'source' })[];
  upToDate?: { dir: string; record: SyncRecord; missing: number };
}

interface AssembleResult {
  layout: ComposeLayout;
  record: SyncRecord;
  placed: number;
}

export const pungiSyncStage: Stage<AssemblePlan, AssembleResult> = {
  name: 'sync',
  tools: () => [],
  locks: (ctx) => [{ file: composeRoot(ctx.site, ctx.release).syncLock, what: `sync of ${ctx.project}` }],

  async plan(ctx) {
    const rel = ctx.release;
    requirePungi(ctx);
    if (ctx.kind === 'update') throw new Error(`${ctx.project}: pungi makes its update composes (\`nx run ${ctx.project}:update-compose-<name>\`, staged with \`update-staging-<name>\`); there is no update-sync`);
    if (!rel.composes.length) throw new Error(`releases/${rel.name}/release.yaml: composes is empty, and the site's producer of ${rel.name} is pungi: list the composes pungi makes`);
    const records: PungiComposeRecord[] = [];
    const missing: string[] = [];
    for (const c of rel.composes) {
      const r = readPungiRecord(ctx.root, ctx.project, c, 'produce');
      if (r) records.push(r);
      else missing.push(composeTarget(c, 'produce'));
    }
    if (missing.length && ctx.dryRun) return { digest: '', records: [], trees: [] };
    if (missing.length) throw new Error(`no record of ${missing.join(', ')} in ${join(ctx.root, 'dist', ctx.project)}: run \`nx run ${ctx.project}:sync\` (it runs them first)`);
    const trees = assembledTrees(ctx, records);
    const config = { release: releaseSlice(rel, 'source'), arches: rel.arches, repos: rel.repos };
    const digest = sha256(JSON.stringify({ config, composes: records.map((r) => [r.compose, r.composeId, r.trees.map((t) => [t.path, t.repodata.find((f) => f.path === 'repodata/repomd.xml')?.sha256])]) }));
    const upToDate = await newestIfUpToDate(ctx, openStore(ctx.site), digest);
    return { digest, records, trees, upToDate };
  },

  describe(plan, ctx) {
    if (!plan.records.length) return { summary: `assemble the composes ${ctx.release.composes.map((c) => composeTarget(c, 'produce')).join(', ')} are about to make into a new compose` };
    const from = plan.records.map((r) => `${r.composeId}${r.failed.length ? ' (FINISHED_INCOMPLETE)' : ''}`).join(', ');
    if (plan.upToDate) return { summary: `compose ${plan.upToDate.record.composeId} already holds ${from}${plan.upToDate.missing ? `; ${plan.upToDate.missing} files it lost are relinked from the store` : ''}` };
    return { summary: `${plan.trees.length} trees of ${from} into a new compose`, details: plan.trees.map((t) => `${t.path.padEnd(36)} ${String(t.packages.length).padStart(6)} packages`) };
  },

  async execute(ctx, plan) {
    const store = openStore(ctx.site);
    const { base } = composeRoot(ctx.site, ctx.release);
    if (plan.upToDate) {
      const layout = new ComposeLayout(join(base, plan.upToDate.dir), ctx.release);
      let placed = 0;
      if (plan.upToDate.missing) for (const t of plan.upToDate.record.trees) placed += await restoreTree(store, layout, t);
      return { layout, record: plan.upToDate.record, placed };
    }
    const { layout, id, date } = openCompose(ctx, 'produce', undefined);
    ctx.log.event('compose', { composeId: id, trees: plan.trees.length, from: plan.records.map((r) => r.composeId) });
    mkdirSync(layout.work, { recursive: true });
    writeFileAtomic(layout.status, 'STARTED\n');
    let placed = 0;
    await mapLimit(plan.trees, 4, async (t) => {
      placed += await restoreTree(store, layout, t);
      await writeTreeFiles(store, ctx.release, layout, t, date);
    });
    const pungi: PungiPart[] = plan.records.map((r) => ({ compose: r.compose, composeId: r.composeId, dir: r.dir, variants: [...new Set(r.trees.map((t) => t.dir))] }));
    return { layout, record: { digest: plan.digest, composeId: id, trees: plan.trees, pungi }, placed };
  },

  async verify(_ctx, _plan, { layout, record }) {
    const bad = record.trees.flatMap((t) => [...t.packages, ...t.repodata].filter((f) => statSync(join(layout.compose, t.path, f.path), { throwIfNoEntry: false })?.size !== f.size).map((f) => `${t.path}/${f.path}`));
    if (bad.length) throw new Error(`compose ${record.composeId} is missing ${bad.length} files it should hold, e.g. ${bad.slice(0, 5).join(', ')}`);
  },

  async record(ctx, plan, { layout, record, placed }) {
    const { base, latest } = composeRoot(ctx.site, ctx.release);
    if (!plan.upToDate) writeJsonAtomic(layout.syncRecord, record);
    if (!existsSync(latest) || resolve(base, readlinkSync(latest)) !== layout.dir) symlinkAtomic(basename(layout.dir), latest);
    const from = (record.pungi ?? []).map((p) => p.composeId).join(', ');
    return {
      summary: `compose ${record.composeId}: ${record.trees.length} trees of ${from}${plan.upToDate ? ', up to date' : ''} (${placed} files linked from the store); ${relative(base, latest)} → ${basename(layout.dir)}`,
      manifests: manifests(ctx, record, relative(ctx.site.roots.compose, layout.dir), { pungi: record.pungi }),
    };
  },
};

/**
 * The trees of every compose as the release's trees: each compose dir comes from exactly one
 * compose, and the kickstart trees the release has are copies of the os trees (pungi makes none).
 */
function assembledTrees(ctx: StageContext, records: PungiComposeRecord[]): (TreeManifest & { group: Arch | 'source' })[] {
  const owner = new Map<string, string>();
  const out: (TreeManifest & { group: Arch | 'source' })[] = [];
  const kickstart = new Set(ctx.release.repos.filter((r) => r.kickstart).map(repoDir));
  for (const r of records) {
    for (const t of r.trees) {
      const other = owner.get(t.dir);
      if (other && other !== r.compose) throw new Error(`compose dir ${t.dir} is made by both ${other} and ${r.compose} (${r.composeId}): each compose dir must come from one compose`);
      owner.set(t.dir, r.compose);
      out.push(t);
      if (t.kind === 'os' && kickstart.has(t.dir)) {
        const k = { ...t, kind: 'kickstart' as const };
        out.push({ ...k, id: treeId(k), path: treePath(k, ctx.release.kind) });
      }
    }
  }
  const wanted = new Set(ctx.release.repos.map(repoDir));
  const none = [...wanted].filter((d) => !owner.has(d));
  if (none.length) ctx.log.info(`no compose made ${none.join(', ')} (repos of ${ctx.project}): not in this compose`);
  return out;
}

/** A pungi-produced release's compose of `compose`, as the per-compose staging target publishes it. */
export function pungiRecordToPublish(ctx: StageContext): PungiComposeRecord {
  const c = composeOfTarget(ctx.target)!;
  const r = readPungiRecord(ctx.root, ctx.project, c, ctx.kind);
  if (!r) throw new Error(`no record of ${composeTarget(c, ctx.kind)} in ${join(ctx.root, 'dist', ctx.project)}: run \`nx run ${ctx.project}:${composeTarget(c, ctx.kind)}\` first`);
  return r;
}

