// Where the upstream repos are for a site. A site with `upstream.fixture` gets the embedded
// fixture, built on demand and served on loopback for the duration of a stage; any other site
// names real URLs. Kept light: the Nx fingerprint script imports only this module.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cloudBucketPrefix, loadRelease, loadSite, repoTrees, upstreamArch, upstreamProject, upstreamUrl, type Release, type RepoTree, type Site } from '@rocky/config';

export interface Upstream {
  /** Value of `{base}` in the URL template. */
  base: string;
  close(): Promise<void>;
}

async function fixture() {
  // Loaded lazily: production sites never need the fixture (or rpmbuild).
  return import('@rocky/upstream-fixture');
}

/** Builds (if needed) and serves the fixture for fixture sites; a no-op for real upstreams. */
export async function openUpstream(root: string, site: Site, log?: (m: string) => void): Promise<Upstream> {
  if (!site.upstream.fixture) return { base: '', close: async () => {} };
  const fx = await fixture();
  await fx.ensureFixture({ workspaceRoot: root, root: site.upstream.fixture.root, scale: site.upstream.fixture.scale, log });
  const server = await fx.serveFixture({ root: site.upstream.fixture.root });
  return { base: server.url, close: () => server.close() };
}

/** The distinct upstream repos of a release (kickstart trees read the same repo as os). */
export function upstreamTrees(rel: Release): RepoTree[] {
  return repoTrees(rel).filter((t) => t.kind !== 'kickstart');
}

/**
 * A fingerprint of upstream state: sha256 over every repomd.xml of the release. Fixture sites
 * read the files (building the fixture first if needed); real sites GET them in parallel.
 */
export async function upstreamFingerprint(root: string, release: string): Promise<string> {
  const site = loadSite(root);
  const rel = loadRelease(root, release);
  const h = createHash('sha256');
  const trees = upstreamTrees(rel);
  let read: (t: RepoTree) => Promise<Buffer>;
  if (site.upstream.fixture) {
    const fx = await fixture();
    const fxRoot = site.upstream.fixture.root;
    await fx.ensureFixture({ workspaceRoot: root, root: fxRoot, scale: site.upstream.fixture.scale, log: () => {} });
    read = (t) => readFile(join(fxRoot, fx.repoUrlPath(upstreamProject(site, rel), t.repo, upstreamArch(t)), 'repodata/repomd.xml'));
  } else {
    const { fetchBuffer } = await import('@rocky/rpm-repo');
    read = (t) => fetchBuffer(`${upstreamUrl(site, rel, t)}/repodata/repomd.xml`, { attempts: 2, download: site.upstream.download });
  }
  const sums = await Promise.all(trees.map(async (t) => createHash('sha256').update(await read(t)).digest('hex')));
  trees.forEach((t, i) => h.update(`${t.repo} ${t.kind} ${t.arch} ${sums[i]}\n`));
  return `${site.name} ${h.digest('hex')}`;
}

/**
 * The cloud image source's listing, so new images invalidate `cloud`: names and sizes of a dir
 * source; keys, sizes and ETags of a bucket source (an object rewritten in place changes its ETag).
 */
export async function cloudFingerprint(root: string, release: string): Promise<string> {
  const site = loadSite(root);
  if (site.upstream.fixture && site.cloud?.source.type === 'dir') {
    const fx = await fixture();
    await fx.ensureFixture({ workspaceRoot: root, root: site.upstream.fixture.root, scale: site.upstream.fixture.scale, log: () => {} });
  }
  return cloudSourceFingerprint(site, loadRelease(root, release));
}

export async function cloudSourceFingerprint(site: Pick<Site, 'cloud'>, rel: Release): Promise<string> {
  const src = site.cloud?.source;
  if (!src) return 'no cloud source';
  const h = createHash('sha256');
  if (src.type === 's3') {
    const { Bucket } = await import('@rocky/store'); // only s3 sources pay for loading the SDK
    const bucket = Bucket.open(src);
    try {
      for (const arch of rel.arches) {
        const objects = (await bucket.list(cloudBucketPrefix(rel, arch, src.prefix))).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
        for (const o of objects) h.update(`${o.key} ${o.size} ${o.etag}\n`);
      }
    } finally {
      bucket.destroy();
    }
    return `${bucket.url(src.prefix)} ${h.digest('hex')}`;
  }
  const { readdir, stat } = await import('node:fs/promises');
  for (const arch of rel.arches) {
    const dir = join(src.path, rel.project, arch);
    const names = (await readdir(dir).catch(() => [] as string[])).sort();
    for (const n of names) h.update(`${arch}/${n} ${(await stat(join(dir, n))).size}\n`);
  }
  return h.digest('hex');
}
