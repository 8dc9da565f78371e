// Reaching the files a manifest names. On the host that ran sync they are already in the
// compose; on another runner (which got sync as a remote cache hit) they are materialized from
// the shared artifact store by sha256, so the same graph runs on one laptop or on a fleet.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ComposeLayout, type Site } from '@rocky/config';
import { mapLimit } from '@rocky/exec';
import type { Store } from '@rocky/store';
import { readComposeRef, type FileEntry, type TreeManifest } from './manifests';

/** The compose the sync manifests describe, on this host. */
export function composeLayout(root: string, project: string, site: Pick<Site, 'roots'>): { layout: ComposeLayout; composeId: string } {
  const ref = readComposeRef(root, project);
  return { layout: new ComposeLayout(join(site.roots.compose, ref.dir)), composeId: ref.composeId };
}

/** Makes every file of `files` present under `dir` (hardlinks from the store where missing). */
export async function ensureFiles(store: Store, dir: string, files: FileEntry[]): Promise<number> {
  let made = 0;
  await mapLimit(files, 16, async (f) => {
    const dest = join(dir, f.path);
    if (existsSync(dest) && statSync(dest).size === f.size) return;
    await store.materialize(f.sha256, dest);
    made++;
  });
  return made;
}

/** A repo tree from its sync manifest: packages first, repodata (repomd.xml last) after. */
export async function ensureTree(store: Store, layout: ComposeLayout, tree: TreeManifest): Promise<string> {
  const dir = layout.tree(tree);
  const made = (await ensureFiles(store, dir, tree.packages)) + (await ensureFiles(store, dir, tree.repodata.filter((f) => !f.path.endsWith('repomd.xml'))));
  const repomd = tree.repodata.filter((f) => f.path.endsWith('repomd.xml'));
  const total = made + (await ensureFiles(store, dir, repomd));
  if (total) console.log(`materialized ${total} files of ${tree.path} from the artifact store`);
  return dir;
}
