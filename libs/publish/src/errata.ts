// The errata of the trees staging regenerates, from the site's errata source: one updateinfo.xml
// per repo and arch, as Rocky's Apollo serves them (`/api/v3/updateinfo/{product}/{major}/{repo}/
// updateinfo.xml?arch={arch}`, read like apollo_tree does, for os trees), or from a directory.
// Apollo answers 404 for a repo without advisories: that tree gets none. Read only: the plan
// reads them, so what is published is what the plan saw.
import { existsSync, readFileSync } from 'node:fs';
import { errataLocation, type Release, type RepoTree, type Site } from '@rocky/config';
import { mapLimit } from '@rocky/exec';
import { fetchBuffer, HttpError, parseUpdateinfo, type Advisory } from '@rocky/rpm-repo';

export interface TreeErrata {
  /** Where it was read (URL or file). */
  source: string;
  xml: string;
}

/** An errata document's advisories; throws, naming `source`, for anything else (an error page, JSON, another XML). */
export function readUpdateinfo(xml: string, source: string): Advisory[] {
  const advisories = parseUpdateinfo(xml, source);
  if (!/<updates[\s>/]/.test(xml)) throw new Error(`${source}: not an updateinfo document (no <updates>)`);
  return advisories;
}

/** The trees that get errata: binary os trees (apollo_tree's `$reponame/$arch/os`). */
export const errataTrees = (trees: RepoTree[]) => trees.filter((t) => t.kind === 'os' && t.arch !== 'i686');

/** Each os tree's errata document (tree path → document); trees the source has none for are left out. */
export async function fetchErrata(o: { site: Pick<Site, 'errata' | 'file'>; release: Pick<Release, 'fullname' | 'major'>; trees: RepoTree[]; base?: string; log?: (m: string) => void }): Promise<Map<string, TreeErrata>> {
  const src = o.site.errata;
  const out = new Map<string, TreeErrata>();
  if (!src) return out;
  const field = src.type === 'url' ? 'errata.url' : 'errata.path';
  const found = await mapLimit(errataTrees(o.trees), 4, async (t) => {
    const source = errataLocation(src, o.release, t, o.base);
    let bytes: Buffer | undefined;
    try {
      if (src.type === 'dir') bytes = existsSync(source) ? readFileSync(source) : undefined;
      else bytes = await fetchBuffer(source).catch((e) => (e instanceof HttpError && e.status === 404 ? undefined : Promise.reject(e)));
    } catch (e) {
      throw new Error(`errata of ${t.path} (${field} of ${o.site.file}): ${(e as Error).message}`, { cause: e });
    }
    if (!bytes) {
      o.log?.(`no errata for ${t.path} at ${source}`);
      return undefined;
    }
    const xml = bytes.toString('utf8');
    try {
      readUpdateinfo(xml, source);
    } catch (e) {
      throw new Error(`errata of ${t.path} (${field} of ${o.site.file}): ${(e as Error).message}`, { cause: e });
    }
    return [t.path, { source, xml }] as const;
  });
  for (const f of found) if (f) out.set(f[0], f[1]);
  return out;
}
