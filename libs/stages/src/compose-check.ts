// Which compose a publishing stage publishes, and is it on this host what its records say it is?
// The compose lives outside the Nx cache: a cache hit of sync or finalize replays their
// manifests, not the compose, so a compose that was pruned, damaged or never made on this host
// must be found before anything is published. The check is cheap (sizes, link targets, the
// CHECKSUM texts finalize recorded); the bytes of every file were verified against their
// checksums when they entered the store.
//   produce chain: the compose the sync manifests name, finalized (dist/<project>/finalize);
//                  a SIG compose is not finalized (packages only, finished by sync).
//   update chain:  the compose the latest link points at (as the SOP's sync-to-staging does, so
//                  re-pointing the link is a rollback), with the record its own sync wrote.
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync, type Stats } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { ComposeLayout, PungiComposeLayout, composeRoot, isFinalized, parseComposeId, type Arch } from '@rocky/config';
import { readJson } from '@rocky/exec';
import { parseChecksum } from '@rocky/compose';
import { readComposeRef, readSyncManifest, type FileEntry, type SyncRecord, type TreeManifest } from './manifests';
import { targetDistDir } from './stage';
import { treeFilesOnDisk } from './trees';
import type { StageContext } from './context';
import type { FinalizeManifest } from './finalize';

export interface ComposeView {
  layout: ComposeLayout;
  composeId: string;
  /** Every repo tree the compose holds. */
  trees: (TreeManifest & { group?: Arch | 'source' })[];
  /** Directory (relative to `compose/`) → the CHECKSUM text that must be there; undefined: read from the compose (update composes carry the produce compose's media). */
  checksums?: Record<string, string>;
  /** Update composes: the produce compose whose media they carry. */
  media?: string;
  /** Whether the compose has productmd metadata (finalize's, or an update compose's own); a SIG compose is its trees only. */
  metadata: boolean;
  /** A compose pungi made (its COMPOSE_ID at the top, as pungi has it). */
  producer?: 'pungi';
}

const FINISHED = new Set(['FINISHED', 'FINISHED_INCOMPLETE']);

/** The compose `ctx`'s chain publishes (see the header). */
export function composeToPublish(ctx: StageContext): ComposeView {
  const rel = ctx.release;
  if (ctx.kind === 'update') {
    const { latest } = composeRoot(ctx.site, rel);
    if (!lstatSync(latest, { throwIfNoEntry: false })) throw new Error(`${latest} does not exist: run \`nx run ${ctx.project}:update-sync\` first`);
    const layout = new ComposeLayout(resolve(dirname(latest), readlinkSync(latest)), rel);
    const composeId = basename(layout.dir);
    if (!parseComposeId(composeId)) throw new Error(`${latest} points at ${layout.dir}, which is not a compose of ${ctx.project}`);
    if (!existsSync(layout.syncRecord)) throw new Error(`compose ${composeId} (${latest}) has no sync record (${layout.syncRecord}): it is not a finished sync; run \`nx run ${ctx.project}:update-sync\``);
    const record = readJson<SyncRecord>(layout.syncRecord);
    return { layout, composeId, trees: record.trees, media: record.media, metadata: true };
  }
  const ref = readComposeRef(ctx.root, ctx.project);
  const layout = new ComposeLayout(join(ctx.site.roots.compose, ref.dir), rel);
  const groups = [...rel.arches, ...(rel.repos.some((r) => r.source) ? (['source'] as const) : [])];
  const trees = groups.flatMap((g) => readSyncManifest(ctx.root, ctx.project, g).trees);
  if (!isFinalized(rel, ctx.kind)) return { layout, composeId: ref.composeId, trees, checksums: {}, metadata: false };
  const file = join(targetDistDir({ ...ctx, target: 'finalize' }), 'manifest.json');
  if (!existsSync(file)) throw new Error(`${file} is missing: the compose was never finalized here; run \`nx run ${ctx.project}:finalize\``);
  return { layout, composeId: ref.composeId, trees, checksums: readJson<FinalizeManifest>(file).checksums, metadata: true };
}

/** What is wrong with the compose (empty: whole). Capped at `limit` findings. */
export async function composeDamage(view: ComposeView, limit = 20): Promise<string[]> {
  const { layout, composeId } = view;
  const problems: string[] = [];
  const add = (p: string) => problems.length < limit && problems.push(p);
  if (!existsSync(layout.dir)) return [`compose ${composeId} is not on this host (${layout.dir})`];
  const status = existsSync(layout.status) ? readFileSync(layout.status, 'utf8').trim() : 'missing';
  if (!FINISHED.has(status)) add(`STATUS is ${status}`);
  const sized = (path: string, f: Pick<FileEntry, 'size'>, st: Stats | undefined) => {
    if (!st) add(`${path} is missing`);
    else if (st.size !== f.size) add(`${path} has ${st.size} bytes, not ${f.size}`);
  };
  for (const { path, file, st } of await treeFilesOnDisk(layout, view.trees)) sized(path, file, st);
  for (const [dir, text] of Object.entries(mediaChecksums(view))) {
    const checksum = join(layout.compose, dir, 'CHECKSUM');
    if (!existsSync(checksum) || readFileSync(checksum, 'utf8') !== text) add(`${checksum} is missing or not the one finalize wrote`);
    // CHECKSUM names every placed file and its aliases: each must be there, whole.
    for (const e of parseChecksum(text)) {
      const p = join(layout.compose, dir, e.name);
      const st = lstatSync(p, { throwIfNoEntry: false });
      if (st?.isSymbolicLink() && !existsSync(p)) add(`${p} points at nothing (${readlinkSync(p)})`);
      else sized(p, e, statSync(p, { throwIfNoEntry: false }));
    }
  }
  if (view.metadata) {
    const metadata = ['composeinfo.json', 'rpms.json', 'COMPOSE_ID'].map((f) => (f === 'COMPOSE_ID' && view.producer === 'pungi' ? new PungiComposeLayout(layout.dir).composeIdFile : join(layout.metadata, f)));
    for (const f of metadata) if (!existsSync(f)) add(`${f} is missing`);
  }
  return problems;
}

/** The media CHECKSUMs the compose must hold: finalize's record, or (update composes) what the compose carries. */
export function mediaChecksums(view: ComposeView): Record<string, string> {
  if (view.checksums) return view.checksums;
  const out: Record<string, string> = {};
  for (const top of ['isos', 'images']) {
    const dir = join(view.layout.compose, top);
    if (!existsSync(dir)) continue;
    for (const arch of readdirSync(dir)) {
      const f = join(dir, arch, 'CHECKSUM');
      if (existsSync(f)) out[`${top}/${arch}`] = readFileSync(f, 'utf8');
    }
  }
  return out;
}
