// Is the compose on this host what its manifests say it is? The compose lives outside the Nx
// cache: a cache hit of sync or finalize replays their manifests, not the compose, so a compose
// that was pruned, damaged or never made on this host must be found before anything is published.
// The check is cheap (sizes, link targets, the CHECKSUM texts the finalize manifest recorded);
// the bytes of every file were verified against their checksums when they entered the store.
import { existsSync, lstatSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isFinalized } from '@rocky/config';
import { readJson } from '@rocky/exec';
import { parseChecksum } from '@rocky/compose';
import { readSyncManifest, type FileEntry } from './manifests';
import { composeLayout } from './trees';
import { targetDistDir } from './stage';
import type { StageContext } from './context';
import type { FinalizeManifest } from './finalize';

const FINISHED = new Set(['FINISHED', 'FINISHED_INCOMPLETE']);

/** What is wrong with the compose the manifests describe (empty: whole). Capped at `limit` findings. */
export function composeDamage(ctx: StageContext, limit = 20): string[] {
  const rel = ctx.release;
  const { layout, composeId } = composeLayout(ctx.root, ctx.project, ctx.site, rel);
  const problems: string[] = [];
  const add = (p: string) => problems.length < limit && problems.push(p);
  if (!existsSync(layout.dir)) return [`compose ${composeId} is not on this host (${layout.dir})`];
  const status = existsSync(layout.status) ? readFileSync(layout.status, 'utf8').trim() : 'missing';
  if (!FINISHED.has(status)) add(`STATUS is ${status}`);
  const groups = [...rel.arches, ...(rel.repos.some((r) => r.source) ? (['source'] as const) : [])];
  const sized = (path: string, f: Pick<FileEntry, 'size'>) => {
    const st = statSync(path, { throwIfNoEntry: false });
    if (!st) add(`${path} is missing`);
    else if (st.size !== f.size) add(`${path} has ${st.size} bytes, not ${f.size}`);
  };
  for (const g of groups) {
    for (const t of readSyncManifest(ctx.root, ctx.project, g).trees) for (const f of [...t.packages, ...t.repodata]) sized(join(layout.tree(t), f.path), f);
  }
  if (isFinalized(rel)) {
    const file = join(targetDistDir({ ...ctx, target: 'finalize' }), 'manifest.json');
    if (!existsSync(file)) return [...problems, `${file} is missing: the compose was never finalized here`];
    const fin = readJson<FinalizeManifest>(file);
    for (const [dir, text] of Object.entries(fin.checksums)) {
      const checksum = join(layout.compose, dir, 'CHECKSUM');
      if (!existsSync(checksum) || readFileSync(checksum, 'utf8') !== text) add(`${checksum} is missing or not the one finalize wrote`);
      // CHECKSUM names every placed file and its aliases: each must be there, whole.
      for (const e of parseChecksum(text)) {
        const p = join(layout.compose, dir, e.name);
        const st = lstatSync(p, { throwIfNoEntry: false });
        if (st?.isSymbolicLink() && !existsSync(p)) add(`${p} points at nothing (${readlinkSync(p)})`);
        else sized(p, e);
      }
    }
    for (const f of ['composeinfo.json', 'images.json', 'rpms.json', 'COMPOSE_ID']) if (!existsSync(join(layout.metadata, f))) add(`${join(layout.metadata, f)} is missing`);
  }
  return problems;
}
