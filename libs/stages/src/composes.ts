// The composes of a release on this host: `<compose root>/<major>/<label>-<YYYYMMDD>.<respin>`,
// pungi's names (libs/config/src/names.ts composeId), read from the directory listing.
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { linkCopy } from '@rocky/exec';
import { ComposeLayout, composeLabel, composeRoot, parseComposeId, type ComposeKind, type ParsedComposeId, type Release, type Site } from '@rocky/config';

export interface ComposeDir extends ParsedComposeId {
  id: string;
  layout: ComposeLayout;
  /** STATUS, or undefined when there is none. */
  status?: string;
}

const FINISHED = new Set(['FINISHED', 'FINISHED_INCOMPLETE']);
export const isFinished = (c: ComposeDir) => FINISHED.has(c.status ?? '');

/** The release's composes of `kind`, oldest first (by day, then respin). */
export function composesOf(site: Pick<Site, 'roots'>, rel: Release, kind: ComposeKind): ComposeDir[] {
  const { base } = composeRoot(site, rel);
  if (!existsSync(base)) return [];
  const label = composeLabel(rel, kind);
  const out: ComposeDir[] = [];
  for (const id of readdirSync(base)) {
    const p = parseComposeId(id);
    if (!p || p.label !== label) continue;
    const layout = new ComposeLayout(join(base, id), rel);
    out.push({ ...p, id, layout, status: existsSync(layout.status) ? readFileSync(layout.status, 'utf8').trim() : undefined });
  }
  return out.sort((a, b) => a.date.getTime() - b.date.getTime() || a.respin - b.respin);
}

/** The respin number a new compose of `kind` made on `day` gets: one more than that day's last (pungi's `<date>.<respin>`). */
export function nextRespin(site: Pick<Site, 'roots'>, rel: Release, kind: ComposeKind, day: Date): number {
  const same = composesOf(site, rel, kind).filter((c) => c.date.getTime() === Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate()));
  return same.length ? Math.max(...same.map((c) => c.respin)) + 1 : 0;
}

/**
 * The produce compose's ISOs and images into an update compose, as they are: hardlinks (same
 * inodes, so publishing them changes nothing), with their CHECKSUM files, signatures and aliases;
 * and its installable trees, which only a produce compose makes: the kickstart trees whole, and
 * in each os tree what is not the repo (images/, EFI/, isolinux/, the extra files, the boot
 * .treeinfo), so staging an update compose keeps every tree a mirror has installable.
 * `replace` first removes what the update compose holds (a repair).
 */
export async function carryMedia(from: ComposeLayout, to: ComposeLayout, o: { replace?: boolean } = {}) {
  for (const d of ['isos', 'images']) {
    const src = join(from.compose, d);
    const dst = join(to.compose, d);
    if (o.replace) rmSync(dst, { recursive: true, force: true });
    if (!existsSync(src) || existsSync(dst)) continue;
    mkdirSync(dst, { recursive: true });
    await linkCopy(src, dst);
  }
  for (const tree of installableTrees(from.compose)) {
    const src = join(from.compose, tree);
    const dst = join(to.compose, tree);
    if (tree.endsWith('/kickstart')) {
      if (o.replace) rmSync(dst, { recursive: true, force: true });
      if (existsSync(dst)) continue;
      mkdirSync(dst, { recursive: true });
      await linkCopy(src, dst);
      continue;
    }
    if (!existsSync(dst)) continue;
    for (const e of readdirSync(src, { withFileTypes: true })) {
      if (REPO_ENTRIES.has(e.name)) continue;
      const target = join(dst, e.name);
      // The boot .treeinfo replaces the one sync wrote for the repo alone; the rest is only added.
      if (e.name === '.treeinfo' || o.replace) rmSync(target, { recursive: true, force: true });
      if (existsSync(target)) continue;
      if (e.isDirectory()) {
        mkdirSync(target, { recursive: true });
        await linkCopy(join(src, e.name), target);
      } else linkSync(join(src, e.name), target);
    }
  }
  const images = join(from.metadata, 'images.json');
  if (existsSync(images) && !existsSync(join(to.metadata, 'images.json'))) {
    mkdirSync(to.metadata, { recursive: true });
    linkSync(images, join(to.metadata, 'images.json'));
  }
}

/** What sync makes in every repo tree; the rest of an os tree is the produce compose's. */
const REPO_ENTRIES = new Set(['Packages', 'repodata', '.discinfo', 'media.repo']);

/** `<Repo>/<arch>/kickstart`, and `<Repo>/<arch>/os` where it holds a boot tree (an images/ directory). */
function installableTrees(compose: string): string[] {
  const out: string[] = [];
  const dirs = (p: string) => (existsSync(p) ? readdirSync(p, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name) : []);
  for (const repo of dirs(compose)) {
    for (const arch of dirs(join(compose, repo))) {
      const kinds = dirs(join(compose, repo, arch));
      if (kinds.includes('kickstart')) out.push(`${repo}/${arch}/kickstart`);
      if (kinds.includes('os') && existsSync(join(compose, repo, arch, 'os', 'images'))) out.push(`${repo}/${arch}/os`);
    }
  }
  return out;
}
