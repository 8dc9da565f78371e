// The sync stage (replaces `sync_from_peridot --hashed --repoclosure --full-run`): every repo
// tree of the release into a new compose directory (or, for an updates compose, into the latest
// one), verified against upstream's signed metadata, closed with real dnf repoclosure, and only
// then the latest-* link is moved. Plan → execute → verify → record, like every stage.
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { Readable } from 'node:stream';
import {
  repoDir,
  ComposeLayout,
  composeDate,
  composeId,
  composeRoot,
  distDir,
  repoTrees,
  revision,
  treeId,
  treePath,
  upstreamUrl,
  type Arch,
  type Release,
  type RepoTree,
} from '@rocky/config';
import { acquireLock, bytes, eventLog, mapLimit, preflight, readJson, sha256, symlinkAtomic, writeFileAtomic, writeJsonAtomic } from '@rocky/exec';
import { openStore, type Store } from '@rocky/store';
import { Limiter, SignatureVerifier, applyTree, fetchRepomd, planTree, repoclosure, writeRepodata, type TreePlan, type TreeResult } from '@rocky/rpm-repo';
import { openUpstream } from './upstream';
import { writeTreeFiles } from './trees';
import { releaseSlice, type ArchManifest, type ComposeRef, type TreeManifest } from './manifests';
import type { StageContext } from './context';

export async function syncStage(s: StageContext): Promise<void> {
  const { release: rel, site } = s;
  preflight(['dnf', 'gpg', 'gpgv']);
  const store = openStore(site);
  const { base, latest } = composeRoot(site, rel);
  const log = eventLog(undefined, `[${s.project}:sync]`);
  // Updates composes have no kickstart trees: repoTrees leaves them out (empanadas syncs them on full runs only).
  const trees = repoTrees(rel);

  // One writer per release's composes: a second sync refuses clearly instead of interleaving.
  const unlock = s.dryRun ? () => {} : acquireLock(join(base, `.sync-${rel.profile}.lock`), `sync of ${s.project}`);
  let upstream: Awaited<ReturnType<typeof openUpstream>> | undefined;
  let verifier: SignatureVerifier | undefined;
  try {
    const { base: upstreamBase } = (upstream = await openUpstream(s.root, site, log.info));
    verifier = site.upstream.verifySignature ? new SignatureVerifier(requireKey(site.upstream.gpgKey)) : undefined;
    const limiter = new Limiter(site.concurrency.downloads);
    // As empanadas' `reposync --gpgcheck`: every package must be signed by the upstream key.
    const signer = verifier && (await verifier.keyId());
    const inflight = new Map();
    let arrived = 0;
    const opts = (t: RepoTree) => ({
      url: upstreamUrl(site, rel, t, upstreamBase),
      store,
      verifier,
      signer,
      inflight,
      limiter,
      what: `${rel.project} ${treeId(t)}`,
      onBytes: (n: number) => (arrived += n),
      fetch: { download: site.upstream.download, onRetry: (e: Error, i: number) => log.info(`retry ${i} ${treeId(t)}: ${e.message.split('\n')[0]}`) },
    });

    // 0. What upstream looks like now: every repomd.xml (kickstart trees read their os repo).
    const upstreamKey = (t: RepoTree) => `${t.dir}/${t.kind === 'kickstart' ? 'os' : t.kind}/${t.arch}`;
    // The first tree of a key (the os tree, before its kickstart) stands for it: errors about
    // upstream metadata then name the repo upstream actually serves.
    const distinct = [...new Map([...trees].reverse().map((t) => [upstreamKey(t), t])).entries()];
    const repomds = new Map(await mapLimit(distinct, 16, async ([k, t]) => [k, await fetchRepomd(opts(t))] as const));
    const digest = syncDigest(rel, repomds);
    if (!s.dryRun && reuseIfUpToDate(s, latest, digest)) return;

    // 1. plan: read every upstream primary (signature checked) and compare with the store.
    const plans = new Map<string, TreePlan>(await mapLimit(distinct, 8, async ([k, t]) => [k, await planTree({ ...opts(t), repomd: repomds.get(k) })] as const));
    const target = s.dryRun ? undefined : openCompose(s, base, latest);
    printPlan(s, trees, (t) => plans.get(upstreamKey(t))!, target, log.info);
    if (s.dryRun || !target) return;

    const { layout, id, date } = target;
    const events = eventLog(join(layout.logs, 'events.jsonl'));
    events.event('sync-start', { composeId: id, trees: trees.length });
    mkdirSync(layout.work, { recursive: true });
    if (!existsSync(layout.status)) writeFileAtomic(layout.status, 'STARTED\n');

    // 2. execute: trees in parallel, downloads bounded by the site's concurrency; meanwhile
    // 3. verify: repoclosure per repo x arch with the release's closure map, on the metadata.
    const started = Date.now();
    const progress = setInterval(() => log.info(`… ${bytes(arrived)} downloaded`), 5000);
    const results = new Map<RepoTree, TreeResult>();
    const planOf = (t: RepoTree) => plans.get(upstreamKey(t))!;
    const [applied, closed] = await Promise.allSettled([
      mapLimit(trees, 4, async (t) => {
        const res = await applyTree(opts(t), planOf(t), layout.tree(t), rel.composeType === 'updates' && rel.publish.delete);
        results.set(t, res);
        writeTreeFiles(rel, layout, t, date);
        log.info(`${treePath(t)}: ${res.packages.length} packages (${res.fetched} fetched, ${bytes(res.fetchedBytes)}; ${res.linked} linked)${res.removed.length ? `, ${res.removed.length} removed` : ''}`);
        events.event('tree', { tree: treeId(t), packages: res.packages.length, fetched: res.fetched, fetchedBytes: res.fetchedBytes, linked: res.linked, removed: res.removed.length });
      }),
      closeRepos(s, layout, trees, planOf, store),
    ]).finally(() => clearInterval(progress));
    for (const r of [applied, closed]) if (r.status === 'rejected') throw r.reason;

    // 4. record: per-arch manifests (the Nx outputs), then the latest link, last.
    const fetched = [...results.values()].reduce((n, r) => n + r.fetched, 0);
    const fetchedBytes = [...results.values()].reduce((n, r) => n + r.fetchedBytes, 0);
    const record: SyncRecord = { digest, composeId: id, trees: trees.map((t) => treeManifest(t, results.get(t)!)) };
    writeManifests(s, record, relative(site.roots.compose, layout.dir));
    writeJsonAtomic(syncRecordFile(layout), record);
    if (rel.composeType === 'updates') writeFileAtomic(layout.status, 'FINISHED\n');
    symlinkAtomic(layout.dir, latest);
    events.event('sync-done', { composeId: id, fetched, fetchedBytes, seconds: (Date.now() - started) / 1000 });
    log.info(`compose ${id}: ${trees.length} trees, ${fetched} packages fetched (${bytes(fetchedBytes)}), latest link → ${relative(base, layout.dir)}`);
  } finally {
    verifier?.close();
    await upstream?.close();
    unlock();
  }
}

/**
 * Written when a compose's sync completed: what it was synced from (digest of the sync config and
 * every upstream repomd.xml) and every tree it holds. A STARTED compose without it is a killed
 * run's, to resume; a latest compose whose digest equals upstream's now is up to date.
 */
interface SyncRecord {
  digest: string;
  composeId: string;
  trees: (TreeManifest & { group: Arch | 'source' })[];
}
const syncRecordFile = (layout: ComposeLayout) => join(layout.work, 'sync-record.json');

function syncDigest(rel: Release, repomds: Map<string, Buffer>): string {
  const config = { project: rel.project, shortname: rel.shortname, major: rel.major, minor: rel.minor, composeType: rel.composeType, arches: rel.arches, repos: rel.repos };
  const trees = [...repomds].map(([k, b]) => `${k} ${sha256(b)}`).sort();
  return sha256(JSON.stringify({ config, trees }));
}

/** Nothing changed upstream or in the sync config since the latest compose: keep it, rewrite the manifests. */
function reuseIfUpToDate(s: StageContext, latest: string, digest: string): boolean {
  if (!existsSync(latest)) return false;
  const layout = new ComposeLayout(resolve(dirname(latest), readlinkSync(latest)));
  const file = syncRecordFile(layout);
  if (!existsSync(file)) return false;
  const record = readJson<SyncRecord>(file);
  if (record.digest !== digest) return false;
  writeManifests(s, record, relative(s.site.roots.compose, layout.dir));
  console.log(`[${s.project}:sync] compose ${record.composeId} is up to date with upstream: nothing to fetch`);
  return true;
}

function requireKey(key: string | undefined): string {
  if (!key) throw new Error('site upstream.verifySignature is set but upstream.gpgKey is not');
  return key;
}

/**
 * The compose to write into. Full: a new `<short>-<rev>-<stamp>` directory, or the newest
 * one a killed run left behind (STATUS STARTED, no manifests yet), so a rerun resumes it.
 * Updates: the existing latest compose.
 */
function openCompose(s: StageContext, base: string, latest: string): { layout: ComposeLayout; id: string; date: Date } {
  const rel = s.release;
  if (rel.composeType === 'updates') {
    if (!existsSync(latest)) throw new Error(`an updates compose needs an existing compose: ${latest} is missing (run a full compose first)`);
    const dir = resolve(base, readlinkSync(latest));
    const id = dir.split('/').pop()!;
    return { layout: new ComposeLayout(dir), id, date: composeDate(id) ?? new Date() };
  }
  mkdirSync(base, { recursive: true });
  const prefix = `${rel.shortname}-${revision(rel)}-`;
  const current = existsSync(latest) ? resolve(base, readlinkSync(latest)) : undefined;
  const unfinished = readdirSync(base)
    .filter((n) => n.startsWith(prefix) && composeDate(n))
    .sort()
    .reverse()
    .find((n) => {
      const dir = join(base, n);
      const status = join(dir, 'STATUS');
      return dir !== current && existsSync(status) && readFileSync(status, 'utf8').trim() === 'STARTED' && !existsSync(syncRecordFile(new ComposeLayout(dir)));
    });
  if (unfinished) {
    console.log(`resuming unfinished compose ${unfinished}`);
    return { layout: new ComposeLayout(join(base, unfinished)), id: unfinished, date: composeDate(unfinished)! };
  }
  let date = new Date();
  for (;;) {
    const id = composeId(rel, date);
    const dir = join(base, id);
    try {
      mkdirSync(dir); // not recursive: fails if a concurrent compose took the same second
      mkdirSync(join(dir, 'compose'));
      return { layout: new ComposeLayout(dir), id, date };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      date = new Date(date.getTime() + 1000);
    }
  }
}

function printPlan(s: StageContext, trees: RepoTree[], plan: (t: RepoTree) => TreePlan, target: { id: string } | undefined, info: (m: string) => void) {
  let fetch = 0;
  let fetchBytes = 0;
  let link = 0;
  const lines: string[] = [];
  const seenFetch = new Set<string>();
  for (const t of trees) {
    const p = plan(t);
    const newOnes = p.fetch.filter((x) => !seenFetch.has(x.sha256));
    newOnes.forEach((x) => seenFetch.add(x.sha256));
    fetch += newOnes.length;
    fetchBytes += newOnes.reduce((n, x) => n + (Number.isFinite(x.size) ? x.size : 0), 0);
    link += p.packages.length - newOnes.length;
    lines.push(`  ${treePath(t).padEnd(36)} ${String(p.packages.length).padStart(6)} packages: ${newOnes.length} to fetch, ${p.packages.length - newOnes.length} to link`);
  }
  info(`plan for ${s.project} (${target ? `compose ${target.id}` : 'dry run'}): ${trees.length} trees, ${fetch} packages to fetch (${bytes(fetchBytes)}), ${link} to link from the store`);
  if (s.dryRun || process.env.RELENG_VERBOSE) lines.forEach((l) => info(l));
}

async function closeRepos(s: StageContext, layout: ComposeLayout, trees: RepoTree[], planOf: (t: RepoTree) => TreePlan, store: Store) {
  const rel = s.release;
  const byDir = new Map(rel.repos.map((r) => [repoDir(r), r]));
  const checks = trees.filter((t) => t.kind === 'os' && t.arch === t.group && byDir.get(t.dir)?.mustClose);
  const workRoot = join(layout.work, 'repoclosure');
  // Metadata-only copies of the repos, written once each.
  const meta = new Map<RepoTree, Promise<string>>();
  const metaDir = (t: RepoTree) => {
    let p = meta.get(t);
    if (!p) meta.set(t, (p = writeRepodata({ store }, planOf(t), join(workRoot, 'meta', treeId(t))).then(() => join(workRoot, 'meta', treeId(t)))));
    return p;
  };
  const failures: string[] = [];
  let cached = 0;
  await mapLimit(checks, 2, async (t) => {
    const repo = byDir.get(t.dir)!;
    const deps = repo.closure
      .map((d) => trees.find((x) => x.kind === 'os' && x.dir === d && x.arch === t.arch))
      .filter((x): x is RepoTree => !!x);
    // Closure depends only on the metadata: a passed check of identical repomd.xml files is not redone.
    const key = `repoclosure:${t.arch}:${sha256([t, ...deps].map((x) => sha256(planOf(x).repomd)).join(' '))}`;
    if (await store.getKey(key)) return void cached++;
    const res = await repoclosure({
      check: { id: t.dir, path: await metaDir(t) },
      deps: await Promise.all(deps.map(async (x) => ({ id: x.dir, path: await metaDir(x) }))),
      arch: t.arch,
      releasever: rel.major,
      workDir: join(workRoot, `${t.dir}-${t.arch}`),
      logFile: join(layout.logs, `${t.dir}-repoclosure-${t.arch}.log`),
    });
    if (!res.ok) failures.push(...res.broken.map((b) => `${t.dir}/${t.arch}: ${b.package} needs ${b.unresolved.join(', ')}`));
    else await store.setKey(key, await store.putStream(Readable.from([Buffer.from('passed\n')]), { what: key }), { tree: treeId(t) });
  });
  if (failures.length) {
    writeFileAtomic(layout.status, 'DOOMED\n');
    throw new Error(`repoclosure failed (latest link not moved):\n  ${failures.sort().join('\n  ')}`);
  }
  console.log(`repoclosure: ${checks.length} repo x arch checks passed${cached ? ` (${cached} unchanged since a passed check)` : ''}`);
}

function treeManifest(t: RepoTree, r: TreeResult): TreeManifest & { group: Arch | 'source' } {
  return { id: treeId(t), repo: t.repo, dir: t.dir, kind: t.kind, arch: t.arch, group: t.group, path: treePath(t), repodata: r.repodata, packages: r.packages };
}

/** One manifest per arch (and source), free of compose ids and times, plus compose.json. */
function writeManifests(s: StageContext, record: SyncRecord, dirRel: string) {
  const dir = distDir(s.root, s.project, 'sync');
  const groups = new Map<Arch | 'source', TreeManifest[]>();
  for (const { group, ...t } of record.trees) groups.set(group, [...(groups.get(group) ?? []), t]);
  for (const [group, list] of groups) {
    const m: ArchManifest = { release: releaseSlice(s.release, group), trees: list };
    writeJsonAtomic(join(dir, `${group}.json`), m);
  }
  const ref: ComposeRef = { composeId: record.composeId, dir: dirRel };
  writeJsonAtomic(join(dir, 'compose.json'), ref);
}
