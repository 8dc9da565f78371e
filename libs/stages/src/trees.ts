// Reaching the files a manifest names. On the host that ran sync they are already in the
// compose; on another runner (which got sync as a remote cache hit) they are materialized from
// the shared artifact store by sha256, so the same graph runs on one laptop or on a fleet.
import { existsSync, readFileSync, type Stats } from 'node:fs';
import { basename, join } from 'node:path';
import { ComposeLayout, composeDate, fullName, revision, type Release, type Site } from '@rocky/config';
import { mapLimit, statMany, writeFileAtomic } from '@rocky/exec';
import { renderDiscinfo, renderMediaRepo, renderTreeinfo, repoTreeinfo } from '@rocky/compose';
import type { Store } from '@rocky/store';
import { readComposeRef, type FileEntry, type TreeManifest } from './manifests';

/** The compose the sync manifests describe, on this host. */
export function composeLayout(root: string, project: string, site: Pick<Site, 'roots'>, rel: Release): { layout: ComposeLayout; composeId: string } {
  const ref = readComposeRef(root, project);
  return { layout: new ComposeLayout(join(site.roots.compose, ref.dir), rel), composeId: ref.composeId };
}

/** Every file the trees' manifests name: where it is under `layout`, and what is there now (undefined: nothing), stat'd through statMany. */
export async function treeFilesOnDisk(layout: ComposeLayout, trees: readonly TreeManifest[]): Promise<{ tree: TreeManifest; file: FileEntry; path: string; st: Stats | undefined }[]> {
  const files = trees.flatMap((tree) => [...tree.packages, ...tree.repodata].map((file) => ({ tree, file, path: join(layout.tree(tree), file.path) })));
  const stats = await statMany(files.map((f) => f.path));
  return files.map((f, i) => ({ ...f, st: stats[i] }));
}

/** Makes every file of `files` present under `dir` (hardlinks from the store where missing). */
export async function ensureFiles(store: Store, dir: string, files: FileEntry[]): Promise<number> {
  const stats = await statMany(files.map((f) => join(dir, f.path)));
  const missing = files.filter((f, i) => stats[i]?.size !== f.size);
  await mapLimit(missing, 16, (f) => store.materialize(f.sha256, join(dir, f.path)));
  return missing.length;
}

/**
 * .treeinfo, .discinfo and media.repo of a tree (productmd formats), stamped with the compose's
 * time; kept if already there. A SIG tree has none of them but the SIG's public key `sigKey`
 * (empanadas' SIG reposync drops it into each tree: pub/sig/9/cloud/x86_64/cloud-kernel/RPM-GPG-KEY-Rocky-SIG-Cloud).
 * They are placed from the store, as the packages are: the same tree's files in every compose of
 * a day (stamped with that day) are one object, linked, not written and fsync'd per compose.
 */
export async function writeTreeFiles(store: Store, rel: Release, layout: ComposeLayout, t: Pick<TreeManifest, 'dir' | 'kind' | 'arch' | 'path'>, date: Date, sigKey?: string): Promise<void> {
  const dir = layout.tree(t);
  if (rel.kind === 'sig') {
    if (sigKey && !existsSync(join(dir, basename(sigKey)))) writeFileAtomic(join(dir, basename(sigKey)), readFileSync(sigKey));
    return;
  }
  const ts = Math.floor(date.getTime() / 1000);
  const arch = t.kind === 'source' ? 'src' : t.arch;
  const files: [string, string][] = [
    ['.treeinfo', renderTreeinfo(repoTreeinfo({ fullname: rel.fullname, short: rel.shortname, version: revision(rel), arch, variant: t.dir, timestamp: ts }))],
    ['.discinfo', renderDiscinfo({ timestamp: ts, fullname: fullName(rel), arch })],
    ['media.repo', renderMediaRepo({ name: fullName(rel), mediaid: ts.toFixed(6) })],
  ];
  // Dated by the compose, so a tree rebuilt from the store publishes the same files.
  await Promise.all(files.filter(([name]) => !existsSync(join(dir, name))).map(([name, text]) => store.placeBytes(Buffer.from(text), join(dir, name), ts)));
}

/** Every tree of the compose, as `ensureTree` makes them (finalize on a host that did not sync). */
export async function ensureCompose(store: Store, layout: ComposeLayout, rel: Release, trees: TreeManifest[], log?: (m: string) => void): Promise<void> {
  const date = composeDate(layout.dir.split('/').pop()!) ?? new Date(0);
  await mapLimit(trees, 4, async (t) => {
    await ensureTree(store, layout, t, log);
    await writeTreeFiles(store, rel, layout, t, date);
  });
}

/** Makes a repo tree whole from its sync manifest: packages first, repodata (repomd.xml last) after. Returns how many files were placed. */
export async function restoreTree(store: Store, layout: ComposeLayout, tree: TreeManifest): Promise<number> {
  const dir = layout.tree(tree);
  const made = (await ensureFiles(store, dir, tree.packages)) + (await ensureFiles(store, dir, tree.repodata.filter((f) => !f.path.endsWith('repomd.xml'))));
  return made + (await ensureFiles(store, dir, tree.repodata.filter((f) => f.path.endsWith('repomd.xml'))));
}

/** A repo tree's directory, made whole from the store first where needed (a runner that did not sync). */
export async function ensureTree(store: Store, layout: ComposeLayout, tree: TreeManifest, log?: (m: string) => void): Promise<string> {
  const made = await restoreTree(store, layout, tree);
  if (made) log?.(`materialized ${made} files of ${tree.path} from the artifact store`);
  return layout.tree(tree);
}
