// Where the upstream repos are for a site. A site with `upstream.fixture` gets the embedded
// fixture, built on demand and served on loopback for the duration of a stage; any other site
// names real URLs. Kept light: the Nx hook imports this module for the upstream fingerprints.
import { join } from 'node:path';
import { cloudBucketPrefix, loadRelease, loadSite, repoTrees, upstreamArch, upstreamProject, upstreamUrl, type Release, type RepoTree, type Site } from '@rocky/config';
import { readFingerprint, type FingerprintPlan } from './upstream-read';

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
  await fx.ensureFixture(fx.siteFixtureOptions(root, site.upstream.fixture, { log }));
  const server = await fx.serveFixture({ root: site.upstream.fixture.root });
  return { base: server.url, close: () => server.close() };
}

/** The distinct upstream repos of a release (kickstart trees read the same repo as os). */
export function upstreamTrees(rel: Release): RepoTree[] {
  return repoTrees(rel).filter((t) => t.kind !== 'kickstart');
}

/** What the fingerprint of a release's upstream repos reads: every repomd.xml (the fixture built first, if needed). */
export async function upstreamFingerprintPlan(root: string, release: string): Promise<FingerprintPlan> {
  const site = loadSite(root);
  const rel = loadRelease(root, release);
  const trees = upstreamTrees(rel).map((t) => ({ t, label: `${t.repo} ${t.kind} ${t.arch}` }));
  if (site.upstream.fixture) {
    const fx = await fixture();
    const fxRoot = site.upstream.fixture.root;
    await fx.ensureFixture(fx.siteFixtureOptions(root, site.upstream.fixture));
    return { kind: 'repos', site: site.name, trees: trees.map(({ t, label }) => ({ label, file: join(fxRoot, fx.repoUrlPath(upstreamProject(site, rel), t.repo, upstreamArch(t)), 'repodata/repomd.xml') })) };
  }
  return { kind: 'repos', site: site.name, download: site.upstream.download, trees: trees.map(({ t, label }) => ({ label, url: `${upstreamUrl(site, rel, t)}/repodata/repomd.xml` })) };
}

/** What the fingerprint of a release's cloud image source reads (the fixture built first, if it is the source). */
export async function cloudFingerprintPlan(root: string, release: string): Promise<FingerprintPlan> {
  const site = loadSite(root);
  if (site.upstream.fixture && site.cloud?.source.type === 'dir') {
    const fx = await fixture();
    await fx.ensureFixture(fx.siteFixtureOptions(root, site.upstream.fixture));
  }
  return cloudSourcePlan(site, loadRelease(root, release));
}

export function cloudSourcePlan(site: Pick<Site, 'cloud'>, rel: Release): FingerprintPlan {
  const src = site.cloud?.source;
  if (!src) return { kind: 'cloud-none' };
  if (src.type === 's3') return { kind: 'cloud-bucket', source: src, prefixes: rel.arches.map((arch) => cloudBucketPrefix(rel, arch, src.prefix)) };
  return { kind: 'cloud-dir', dirs: rel.arches.map((arch) => ({ arch, dir: join(src.path, rel.project, arch) })) };
}

/** The fingerprint of a cloud image source's listing (see upstream-read.ts). */
export const cloudSourceFingerprint = (site: Pick<Site, 'cloud'>, rel: Release): Promise<string> => readFingerprint(cloudSourcePlan(site, rel));
