// What staging publishes beside the compose: the release's repo links (rocky-8: `NFV -> nfv`) and
// a torrent per ISO (`torrents/<arch>/`, as gen-torrents.sh makes them). Kept in staging's work
// dir and published together with the compose as a second rsync source.
import { existsSync, lstatSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { releaseNotesUrl, type Release, type Site } from '@rocky/config';
import type { EventLog } from '@rocky/exec';
import { placeLinks } from './links';
import { createIsoTorrents } from './torrent';

export interface OverlayResult {
  created: string[];
  skipped: string[];
}

/** Names the overlay may hold: `torrents` and the release's repo links. */
export const overlayNames = (rel: Pick<Release, 'publish'>) => ['torrents', ...Object.keys(rel.publish.repoLinks)];

/** Brings `overlay` up to date for the tree `base` (the compose, or staging's private tree). */
export async function buildOverlay(o: { release: Release; torrent: Site['publish']['torrent']; overlay: string; base: string; log: EventLog }): Promise<OverlayResult> {
  const { release: rel, overlay, base } = o;
  const torrents: OverlayResult = { created: [], skipped: [] };
  mkdirSync(overlay, { recursive: true });
  const links = rel.publish.repoLinks;
  for (const name of readdirSync(overlay)) {
    if (name !== 'torrents' && !(name in links)) rmSync(join(overlay, name), { recursive: true, force: true });
  }
  for (const name of Object.keys(links)) {
    if (lstatSync(join(base, name), { throwIfNoEntry: false })) throw new Error(`repoLinks: ${name} is also a path in the compose of ${rel.name}; choose another link name`);
  }
  placeLinks(overlay, links);

  const t = o.torrent;
  const isoRoot = join(base, 'isos');
  const arches = t && existsSync(isoRoot) ? readdirSync(isoRoot).filter((a) => lstatSync(join(isoRoot, a)).isDirectory()) : [];
  const keep = new Set<string>();
  for (const arch of arches) {
    const outDir = join(overlay, 'torrents', arch);
    const r = await createIsoTorrents({ isoDir: join(isoRoot, arch), outDir, trackers: t!.trackers, comment: t!.comment ?? releaseNotesUrl(rel) });
    torrents.created.push(...r.created.map((f) => relative(overlay, f)));
    torrents.skipped.push(...r.skipped.map((f) => relative(overlay, f)));
    for (const f of [...r.created, ...r.skipped]) keep.add(f);
  }
  // Torrents of ISOs that are gone go too (and an arch dir left empty).
  const tdir = join(overlay, 'torrents');
  if (existsSync(tdir)) {
    for (const arch of readdirSync(tdir)) {
      for (const f of readdirSync(join(tdir, arch))) if (!keep.has(join(tdir, arch, f))) rmSync(join(tdir, arch, f), { force: true });
      if (!readdirSync(join(tdir, arch)).length) rmSync(join(tdir, arch), { recursive: true });
    }
    if (!readdirSync(tdir).length) rmSync(tdir, { recursive: true });
  }
  if (torrents.created.length) o.log.event('torrents', { created: torrents.created });
  return torrents;
}
