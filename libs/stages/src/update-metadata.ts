// What an update compose holds beside its trees (it has no finalize): COMPOSE_ID, productmd's
// composeinfo.json (release type `updates`) and rpms.json, the upstream it was synced from, and
// `metadata/changes.json`, the record of what changed against the compose before it (packages
// added, removed and updated per tree), then STATUS FINISHED.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ComposeLayout, composeDate, composeRoot, revision, type Arch } from '@rocky/config';
import { readJson, writeFileIfChanged } from '@rocky/exec';
import { composeInfo, composeInfoVariants, diffPackages, renderStatus, rpmsJson, stableJson, type PackageDiff } from '@rocky/compose';
import { productmdCompose, rpmEntries, upstreamRecord } from './compose-records';
import type { ArchManifest, SyncRecord } from './manifests';
import type { StageContext } from './context';

export interface ChangesRecord {
  composeId: string;
  /** The compose the changes are counted against (the latest before this one). */
  previous?: string;
  trees: ({ tree: string } & PackageDiff)[];
}

export function writeUpdateMetadata(ctx: StageContext, layout: ComposeLayout, record: SyncRecord, previous: string | undefined): ChangesRecord {
  const rel = ctx.release;
  const groups = new Map<Arch | 'source', ArchManifest>();
  for (const { group, ...t } of record.trees) {
    const m = groups.get(group) ?? { release: {} as ArchManifest['release'], trees: [] };
    m.trees.push(t);
    groups.set(group, m);
  }
  const pmd = productmdCompose(record.composeId);
  // Dated by the compose, as finalize's metadata is.
  const ts = Math.floor(composeDate(record.composeId)!.getTime() / 1000);
  writeFileIfChanged(layout.composeIdFile, record.composeId, ts);
  writeFileIfChanged(join(layout.metadata, 'composeinfo.json'), stableJson(composeInfo({ compose: pmd, release: { name: rel.fullname, short: rel.shortname, version: revision(rel), type: 'updates' }, variants: composeInfoVariants(rel, 'update') })), ts);
  writeFileIfChanged(join(layout.metadata, 'rpms.json'), stableJson(rpmsJson({ compose: pmd, rpms: rpmEntries(ctx, groups) })), ts);
  writeFileIfChanged(join(layout.metadata, 'upstream.json'), stableJson(upstreamRecord(ctx, groups)), ts);
  const changes = changesAgainst(ctx, record, previous);
  writeFileIfChanged(join(layout.metadata, 'changes.json'), stableJson(changes), ts);
  writeFileIfChanged(layout.status, renderStatus('FINISHED'));
  return changes;
}

/** Packages added, removed and updated per tree against the compose `previous` (its sync record). */
function changesAgainst(ctx: StageContext, record: SyncRecord, previous: string | undefined): ChangesRecord {
  const { base } = composeRoot(ctx.site, ctx.release);
  const file = previous && new ComposeLayout(join(base, previous), ctx.release).syncRecord;
  const before = file && existsSync(file) ? readJson<SyncRecord>(file) : undefined;
  const trees = record.trees
    .map((t) => ({ tree: t.path, ...diffPackages(before?.trees.find((b) => b.path === t.path)?.packages ?? [], t.packages) }))
    .filter((d) => d.added.length || d.removed.length || d.updated.length);
  return { composeId: record.composeId, ...(before ? { previous } : {}), trees };
}
