// The staging stage (replaces sync-to-staging[.delete].sh, minor-release-sync-to-staging.sh and
// sign-repos-only.sh; spec §4.3): the finalized compose's `compose/` (for updates composes: the
// latest compose) is published mirror-safe to `<staging>/<category>/<stagingNames.dir>`, then the
// release links beside it, and a vetting report with the tree's digest is written for review.
//
// Where things live (all inside the staging root, outside the mirrored category):
//   <staging>/.releng/vetting/<release>/report.md, report.json   the vetting report
//   <staging>/.releng/vetting/<release>/digest                   digest of the staged release dir
//   <staging>/.releng/vetting/<release>/events.jsonl             JSON-lines event log
//   <staging>/.releng/work/<release>/overlay/                    torrents/<arch>/*.torrent and the
//                                                                 release's repoLinks, published with the compose
//   <staging>/.releng/work/<release>/tree/                       private copy for regenerated/signed repodata
//                                                                 (removed once published)
//   <staging>/.releng/work/<release>/repodata.json               what each tree's repodata was built from
//   <staging>/.releng/work/<release>/prepared/<tree>.<key>/      repodata prepared but not yet published:
//                                                                 a killed run's rerun takes it over
//
// Releases with regenerateRepodata/signRepodata (rocky-8) get their repodata rebuilt in a private
// hardlinked copy of the staged tree (old packages kept, new ones added) BEFORE publishing:
// createrepo_c --update with the compose's comps, module metadata kept, errata (updateinfo.xml)
// injected, repomd.xml signed. Metadata there is always written as new files: packages are
// hardlinks of store objects and of the staged tree, which must never change under a reader.
// So the repomd.xml that appears in staging is already final and signed.
import { copyFileSync, existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { repoDir, repoTrees, revision, stagingNames, treePath, type Arch, type Release, type RepoTree, type Site } from '@rocky/config';
import { acquireLock, eventLog, mapLimit, preflight, readJson, run, sha256, sha256File, symlinkAtomic, tempName, writeJsonAtomic, type EventLog } from '@rocky/exec';
import {
  createIsoTorrents,
  describePlan,
  detachSign,
  diffPackages,
  isImagePath,
  publishTree,
  readRepoPackages,
  treeDigest,
  verifyChecksumFiles,
  verifyRepoPackages,
  writeVettingReport,
  type ClosureReport,
  type PublishResult,
  type RepoReport,
  type VettingReport,
} from '@rocky/publish';
import { decompress, parseRepomd, repoclosure, type RpmPackage } from '@rocky/rpm-repo';
import { composeLayout } from './trees';
import type { StageContext } from './context';

export interface StagingResult {
  release: string;
  composeId: string;
  dryRun: boolean;
  /** The staged release directory. */
  stagingDir: string;
  reportDir: string;
  /** Whether the staged tree (or its links) changed. */
  changed: boolean;
  publish: Pick<PublishResult, 'adds' | 'updates' | 'deletes' | 'bytes' | 'phases'>;
  /** Trees whose repodata was (or, dry run, would be) regenerated / signed. */
  regenerated: string[];
  signed: string[];
  /** Of those, the trees whose repodata a killed run had prepared: taken over, not rebuilt. */
  resumed: string[];
  digest?: string;
  ok?: boolean;
}

/** Paths of the publishing stages' own files; see the header comments of staging.ts and prod.ts. */
export function publishPaths(site: Pick<Site, 'roots' | 'category' | 'state'>, rel: Pick<Release, 'name'>) {
  const releng = join(site.roots.staging, '.releng');
  return {
    stagingCategory: join(site.roots.staging, site.category),
    productionCategory: join(site.roots.production, site.category),
    reportDir: join(releng, 'vetting', rel.name),
    stagingWork: join(releng, 'work', rel.name),
    stagingEvents: join(releng, 'vetting', rel.name, 'events.jsonl'),
    /** prod and filelist events, shared by every release of the site. */
    publishEvents: join(site.state, 'publish', 'events.jsonl'),
    stagingLock: join(site.state, 'publish', 'locks', `staging-${rel.name}.lock`),
    /** Held by every prod and by file-list generation: lists never see a prod half done. */
    productionLock: join(site.state, 'publish', 'locks', 'production.lock'),
    gaMarkers: join(site.state, 'publish', 'production-dirs', ...site.category.split('/')),
  };
}

/** Points each `name -> target` link in `dir` (relative targets), replacing only what differs. */
export function placeLinks(dir: string, links: Record<string, string>, log?: EventLog): string[] {
  const changed: string[] = [];
  for (const [name, target] of Object.entries(links)) {
    const p = join(dir, name);
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (st && !st.isSymbolicLink()) throw new Error(`${p} exists and is not a symlink: refusing to replace it with a link to ${target}; move it away first`);
    if (st && readlinkSync(p) === target) continue;
    symlinkAtomic(target, p);
    changed.push(name);
    log?.event('link', { link: p, target });
  }
  return changed;
}

export const linksMatch = (dir: string, links: Record<string, string>) =>
  Object.entries(links).every(([name, target]) => {
    const st = lstatSync(join(dir, name), { throwIfNoEntry: false });
    return !!st?.isSymbolicLink() && readlinkSync(join(dir, name)) === target;
  });

const FINISHED = new Set(['FINISHED', 'FINISHED_INCOMPLETE']);

export async function stagingStage(s: StageContext, opts: { confirmDeletions?: boolean; dryRun?: boolean } = {}): Promise<StagingResult> {
  const { release: rel, site } = s;
  const { layout, composeId } = composeLayout(s.root, s.project, site);
  const compose = layout.compose;
  if (!existsSync(compose)) throw new Error(`compose ${layout.dir} is not on this host: run \`nx run ${s.project}:${rel.composeType === 'full' ? 'finalize' : 'sync'}\` here first`);
  const status = existsSync(layout.status) ? readFileSync(layout.status, 'utf8').trim() : 'missing';
  if (!FINISHED.has(status)) throw new Error(`compose ${composeId} is not finished (STATUS ${status}): refusing to stage it; run \`nx run ${s.project}:${rel.composeType === 'full' ? 'finalize' : 'sync'}\``);
  const regen = rel.publish.regenerateRepodata;
  const sign = rel.publish.signRepodata;
  if (sign && !site.signing) throw new Error(`${rel.name} signs its repodata (publish.signRepodata) but site ${site.name} has no signing key: add signing {gnupgHome, keyId} to the site`);
  preflight(['rsync', 'dnf', ...(regen ? ['createrepo_c', 'modifyrepo_c'] : []), ...(sign ? ['gpg'] : [])]);

  const names = stagingNames(rel);
  const paths = publishPaths(site, rel);
  const releaseDir = join(paths.stagingCategory, names.dir);
  const overlay = join(paths.stagingWork, 'overlay');
  const log = eventLog(s.dryRun ? undefined : paths.stagingEvents, `[staging ${rel.name}]`);
  const trees = repoTrees(rel).filter((t) => existsSync(join(layout.compose, treePath(t), 'repodata', 'repomd.xml')));
  const updateinfo = join(s.root, 'releases', rel.name, 'updateinfo.xml');

  if (s.dryRun) return dryRunPlan(s, { composeId, compose, releaseDir, overlay, trees, paths, updateinfo });

  const unlock = acquireLock(paths.stagingLock, `staging of ${rel.name}`);
  try {
    log.event('staging-start', { release: rel.name, composeId, compose, dest: releaseDir });
    mkdirSync(paths.stagingWork, { recursive: true });

    const privateTree = regen || sign;
    const base = privateTree ? join(paths.stagingWork, 'tree') : compose;
    const torrents = { created: [] as string[], skipped: [] as string[] };

    // 1. Repodata in a private copy (rocky-8), signed before anyone can see it.
    let repodata: RepodataWork = { regenerated: [], signed: [], resumed: [], record: {} };
    if (privateTree) {
      repodata = await prepareTree(s, { compose, releaseDir, tree: base, overlayNames: ['torrents', ...Object.keys(rel.publish.repoLinks)], trees, updateinfo, log, work: paths.stagingWork });
    }
    // 2. The overlay: repo links and torrents, published together with the compose.
    await buildOverlay(s, overlay, base, torrents, log);

    // 3. Publish. With a private copy built from the staged tree, the copy holds everything
    //    staging keeps, so deleting is safe even for releases that keep old packages: only
    //    superseded repodata and vanished trees go.
    const before = new Map(trees.map((t) => [treePath(t), safePackages(join(releaseDir, treePath(t)))]));
    const result = await publishTree({
      source: [base, overlay],
      dest: releaseDir,
      delete: privateTree ? true : rel.publish.delete,
      deletionLimit: site.publish.deletionLimit,
      confirmDeletions: opts.confirmDeletions,
      owner: site.publish.owner,
      log,
    });
    if (privateTree) {
      writeJsonAtomic(join(paths.stagingWork, 'repodata.json'), repodata.record);
      // Published: the record now stands for it (a failed run's copy is worth keeping, a killed run's prepared repodata too).
      rmSync(base, { recursive: true, force: true });
      rmSync(preparedRoot(paths.stagingWork), { recursive: true, force: true });
    }
    const linkChanges = placeLinks(paths.stagingCategory, names.links, log);
    const changed = result.changed || linkChanges.length > 0;

    // 4. Vet: digest, packages, repoclosure, checksums. An unchanged tree keeps its report.
    const digest = treeDigest(releaseDir);
    const reportJson = join(paths.reportDir, 'report.json');
    const old = existsSync(reportJson) ? readJson<VettingReport>(reportJson) : undefined;
    const base0: Omit<StagingResult, 'digest' | 'ok'> = {
      release: rel.name,
      composeId,
      dryRun: false,
      stagingDir: releaseDir,
      reportDir: paths.reportDir,
      changed,
      publish: { adds: result.adds, updates: result.updates, deletes: result.deletes, bytes: result.bytes, phases: result.phases },
      regenerated: repodata.regenerated,
      signed: repodata.signed,
      resumed: repodata.resumed,
    };
    if (!result.changed && old?.digest === digest.digest && old.composeId === composeId) {
      log.event('staging-unchanged', { release: rel.name, digest: digest.digest });
      log.info(`staging already matches ${composeId} (digest ${digest.digest}); report ${join(paths.reportDir, 'report.md')}`);
      if (!old.ok) throw new Error(`the staged tree of ${rel.name} failed vetting earlier: ${old.problems.slice(0, 5).join('; ')} (see ${join(paths.reportDir, 'report.md')})`);
      return { ...base0, digest: digest.digest, ok: old.ok };
    }
    const report = await vet(s, { composeId, releaseDir, trees, before, result, digest, repodata, torrents, work: paths.stagingWork });
    writeVettingReport(paths.reportDir, report);
    log.event('staging-vetted', { release: rel.name, digest: report.digest, ok: report.ok, problems: report.problems.length });
    log.info(`staged ${composeId} at ${releaseDir}: ${describePlan(result)}; digest ${report.digest}; report ${join(paths.reportDir, 'report.md')}`);
    if (!report.ok) {
      log.event('staging-failed', { release: rel.name, problems: report.problems });
      throw new Error(`the staged tree of ${rel.name} failed vetting (${report.problems.length} problems: ${report.problems.slice(0, 5).join('; ')}); see ${join(paths.reportDir, 'report.md')}`);
    }
    log.event('staging-done', { release: rel.name, digest: report.digest, changed });
    return { ...base0, digest: report.digest, ok: true };
  } catch (e) {
    log.event('staging-error', { release: rel.name, error: (e as Error).message.split('\n')[0] });
    throw e;
  } finally {
    unlock();
  }
}

// --- dry run --------------------------------------------------------------------------------

async function dryRunPlan(
  s: StageContext,
  a: { composeId: string; compose: string; releaseDir: string; overlay: string; trees: RepoTree[]; paths: ReturnType<typeof publishPaths>; updateinfo: string },
): Promise<StagingResult> {
  const rel = s.release;
  const privateTree = rel.publish.regenerateRepodata || rel.publish.signRepodata;
  const sources = [a.compose, ...(existsSync(a.overlay) ? [a.overlay] : [])];
  // Regenerated repodata is not built in a dry run: plan the rest, and name the trees to rebuild.
  const result = await publishTree({ source: sources, dest: a.releaseDir, delete: rel.publish.delete, dryRun: true, excludes: privateTree ? ['repodata/'] : [], deletionLimit: s.site.publish.deletionLimit });
  if (result.needsConfirmation) console.log(`[staging ${rel.name}] the deletions exceed the site's limit of ${s.site.publish.deletionLimit}: the real run needs --confirmDeletions`);
  const record = readRecord(a.paths.stagingWork);
  const stale = privateTree ? (await mapLimit(a.trees, 4, async (t) => ((await repodataKey(s, a.compose, t, a.updateinfo)) !== record[treePath(t)] ? treePath(t) : ''))).filter(Boolean) : [];
  console.log(`[staging ${rel.name}] dry run: ${a.composeId} -> ${a.releaseDir}: ${describePlan(result)}${stale.length ? `; repodata to regenerate/sign: ${stale.join(', ')}` : ''}`);
  for (const e of [...result.adds, ...result.updates].slice(0, 50)) console.log(`  + ${e.path} (${e.bytes} bytes)`);
  for (const e of result.deletes.slice(0, 50)) console.log(`  - ${e.path} (${e.bytes} bytes)`);
  return {
    release: rel.name,
    composeId: a.composeId,
    dryRun: true,
    stagingDir: a.releaseDir,
    reportDir: a.paths.reportDir,
    changed: result.changed || stale.length > 0,
    publish: { adds: result.adds, updates: result.updates, deletes: result.deletes, bytes: result.bytes, phases: [] },
    regenerated: rel.publish.regenerateRepodata ? stale : [],
    signed: rel.publish.signRepodata ? stale : [],
    resumed: [],
  };
}

// --- overlay: repo links and torrents --------------------------------------------------------

async function buildOverlay(s: StageContext, overlay: string, base: string, torrents: { created: string[]; skipped: string[] }, log: EventLog) {
  const rel = s.release;
  mkdirSync(overlay, { recursive: true });
  const links = rel.publish.repoLinks;
  for (const name of readdirSync(overlay)) {
    if (name !== 'torrents' && !(name in links)) rmSync(join(overlay, name), { recursive: true, force: true });
  }
  for (const name of Object.keys(links)) {
    if (lstatSync(join(base, name), { throwIfNoEntry: false })) throw new Error(`repoLinks: ${name} is also a path in the compose of ${rel.name}; choose another link name`);
  }
  placeLinks(overlay, links);

  const t = s.site.publish.torrent;
  const isoRoot = join(base, 'isos');
  const arches = t && existsSync(isoRoot) ? readdirSync(isoRoot).filter((a) => lstatSync(join(isoRoot, a)).isDirectory()) : [];
  const keep = new Set<string>();
  for (const arch of arches) {
    const outDir = join(overlay, 'torrents', arch);
    const r = await createIsoTorrents({
      isoDir: join(isoRoot, arch),
      outDir,
      trackers: t!.trackers,
      comment: t!.comment ?? `https://docs.rockylinux.org/release_notes/${rel.major}_${rel.minor}/`,
    });
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
  if (torrents.created.length) log.event('torrents', { created: torrents.created });
}

// --- private tree with regenerated, signed repodata ------------------------------------------

interface RepodataWork {
  regenerated: string[];
  signed: string[];
  resumed: string[];
  /** tree path -> key of what its repodata was built from. */
  record: Record<string, string>;
}

const preparedRoot = (work: string) => join(work, 'prepared');
/** Where a tree's repodata, once prepared, waits for the publish (kept when the run is killed). */
const preparedDir = (work: string, tp: string, key: string) => join(preparedRoot(work), `${encodeURIComponent(tp)}.${key}`);

/** Hardlinks every file of `from` into a fresh `to` (prepared repodata is never written again). */
function linkFiles(from: string, to: string) {
  rmSync(to, { recursive: true, force: true });
  mkdirSync(to, { recursive: true });
  for (const n of readdirSync(from)) linkSync(join(from, n), join(to, n));
}

const readRecord = (work: string): Record<string, string> => {
  const f = join(work, 'repodata.json');
  return existsSync(f) ? readJson<Record<string, string>>(f) : {};
};

/**
 * What a tree's published repodata depends on: the compose's repodata (its package set, comps
 * and modules), the errata file for os trees, the signing key, and the release's options.
 */
async function repodataKey(s: StageContext, compose: string, t: RepoTree, updateinfo: string): Promise<string> {
  const rel = s.release;
  const regen = rel.publish.regenerateRepodata && t.kind !== 'kickstart';
  return sha256(
    JSON.stringify({
      v: 1,
      repomd: await sha256File(join(compose, treePath(t), 'repodata', 'repomd.xml')),
      regen,
      updateinfo: regen && t.kind === 'os' && existsSync(updateinfo) ? await sha256File(updateinfo) : null,
      sign: rel.publish.signRepodata ? (s.site.signing?.keyId ?? null) : null,
      distro: revision(rel),
    }),
  );
}

async function prepareTree(
  s: StageContext,
  a: { compose: string; releaseDir: string; tree: string; overlayNames: string[]; trees: RepoTree[]; updateinfo: string; log: EventLog; work: string },
): Promise<RepodataWork> {
  const rel = s.release;
  const P = a.tree;
  rmSync(P, { recursive: true, force: true });
  mkdirSync(P, { recursive: true });
  // The staged tree as it is (hardlinks: same filesystem, nothing copied)...
  if (existsSync(a.releaseDir)) await run(['cp', '-al', `${a.releaseDir}/.`, `${P}/`]);
  for (const n of a.overlayNames) rmSync(join(P, n), { recursive: true, force: true });
  // ...plus the compose, without its repodata: the staged repodata of unchanged trees stays.
  // --link-dest hardlinks new files from the compose when it shares the filesystem.
  await run(['rsync', '-rlptgoD', '-H', '--numeric-ids', '--exclude=repodata/', ...(rel.publish.delete ? ['--delete'] : []), `--link-dest=${a.compose}`, `${a.compose}/`, `${P}/`]);
  removeOrphanRepodata(P, a.compose);

  const record = readRecord(a.work);
  const out: RepodataWork = { regenerated: [], signed: [], resumed: [], record: {} };
  for (const t of a.trees) {
    const tp = treePath(t);
    const key = await repodataKey(s, a.compose, t, a.updateinfo);
    out.record[tp] = key;
    const dir = join(P, tp);
    const have = existsSync(join(dir, 'repodata', 'repomd.xml')) && (!rel.publish.signRepodata || existsSync(join(dir, 'repodata', 'repomd.xml.asc')));
    if (have && record[tp] === key) continue;
    const regen = rel.publish.regenerateRepodata && t.kind !== 'kickstart';
    const prepared = preparedDir(a.work, tp, key);
    if (existsSync(prepared)) {
      // A killed run prepared this tree's repodata from the same inputs and did not publish it.
      linkFiles(prepared, join(dir, 'repodata'));
      out.resumed.push(tp);
      if (regen) out.regenerated.push(tp);
      if (rel.publish.signRepodata) out.signed.push(tp);
      a.log.info(`repodata of ${tp} prepared by an earlier run, taken over`);
    } else {
      await buildRepodata(s, t, { compose: a.compose, dir, updateinfo: a.updateinfo, work: a.work, regen, out });
      const tmp = tempName(prepared);
      linkFiles(join(dir, 'repodata'), tmp);
      renameSync(tmp, prepared);
    }
    // The tools touched the tree dir (repodata replaced): give it the compose's time back, or
    // the next run would see a directory time to publish.
    const st = statSync(join(a.compose, tp));
    utimesSync(dir, st.atime, st.mtime);
  }
  a.log.event('repodata-prepared', { regenerated: out.regenerated, signed: out.signed, resumed: out.resumed });
  return out;
}

/** The compose's repodata of one tree, regenerated and signed as the release asks, in the private copy. */
async function buildRepodata(s: StageContext, t: RepoTree, a: { compose: string; dir: string; updateinfo: string; work: string; regen: boolean; out: RepodataWork }) {
  const rel = s.release;
  const tp = treePath(t);
  const { dir, out } = a;
  const sig = s.site.signing;
  copyRepodata(join(a.compose, tp, 'repodata'), join(dir, 'repodata'));
  if (a.regen) {
    await regenerate(s, t, dir, a.updateinfo, a.work);
    out.regenerated.push(tp);
  }
  if (rel.publish.signRepodata) {
    // gpg --output may write in place: sign to a temp name, rename over.
    const asc = join(dir, 'repodata', 'repomd.xml.asc');
    const tmp = tempName(asc);
    try {
      await detachSign(sig!, join(dir, 'repodata', 'repomd.xml'), tmp);
      renameSync(tmp, asc);
    } finally {
      rmSync(tmp, { force: true });
    }
    out.signed.push(tp);
  }
}

/** Fresh files (new inodes) for a repodata dir: the tools below rewrite repomd.xml in place. */
function copyRepodata(from: string, to: string) {
  rmSync(to, { recursive: true, force: true });
  mkdirSync(to, { recursive: true });
  for (const n of readdirSync(from)) copyFileSync(join(from, n), join(to, n));
}

/** Repodata dirs (kept by --exclude) of trees the compose no longer has. */
function removeOrphanRepodata(P: string, compose: string) {
  const walk = (rel: string, depth: number) => {
    if (depth > 5) return;
    for (const e of readdirSync(join(P, rel), { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.name === 'repodata') {
        if (!existsSync(join(compose, p))) {
          rmSync(join(P, p), { recursive: true, force: true });
          // A dir left holding nothing goes too (rsync --delete skipped it for the excluded repodata).
          for (let d = rel; d && readdirSync(join(P, d)).length === 0; d = d.includes('/') ? d.slice(0, d.lastIndexOf('/')) : '') rmSync(join(P, d), { recursive: true });
        }
      } else if (e.name !== 'Packages') walk(p, depth + 1);
    }
  };
  walk('', 0);
}

/** createrepo_c --update with the compose's comps, then its module metadata and the errata back in. */
async function regenerate(s: StageContext, t: RepoTree, dir: string, updateinfo: string, work: string) {
  const rel = s.release;
  const rev = revision(rel);
  const repodata = join(dir, 'repodata');
  const repomd = parseRepomd(readFileSync(join(repodata, 'repomd.xml'), 'utf8'), join(repodata, 'repomd.xml'));
  const tmp = join(work, 'tmp', treePath(t).replaceAll('/', '-'));
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    const extract = (types: string[], name: string): string | undefined => {
      const r = types.map((ty) => repomd.records.find((x) => x.type === ty)).find(Boolean);
      if (!r) return undefined;
      const file = join(tmp, name);
      writeFileSync(file, decompress(readFileSync(join(dir, r.href)), r.href));
      return file;
    };
    const comps = extract(['group', 'group_gz', 'group_xz'], 'comps.xml');
    const modules = extract(['modules'], 'modules.yaml');
    const argv = [
      'createrepo_c',
      '--update',
      '--checksum=sha256',
      '--unique-md-filenames',
      `--revision=${rev}`,
      `--distro=cpe:/o:rocky:rocky:${rev},${rel.fullname} ${rev}`,
      `--workers=${Math.max(1, s.site.concurrency.builds)}`,
      ...(comps ? [`--groupfile=${comps}`] : []),
      dir,
    ];
    await run(argv, { timeoutMs: 60 * 60_000 });
    if (modules) await run(['modifyrepo_c', '--mdtype=modules', modules, repodata]);
    if (t.kind === 'os' && existsSync(updateinfo)) {
      const ui = join(tmp, 'updateinfo.xml');
      copyFileSync(updateinfo, ui);
      await run(['modifyrepo_c', '--mdtype=updateinfo', ui, repodata]);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

// --- vetting ---------------------------------------------------------------------------------

function safePackages(treeDir: string): RpmPackage[] {
  try {
    return readRepoPackages(treeDir) ?? [];
  } catch {
    return []; // unreadable old metadata: everything counts as new
  }
}

async function vet(
  s: StageContext,
  a: {
    composeId: string;
    releaseDir: string;
    trees: RepoTree[];
    before: Map<string, RpmPackage[]>;
    result: PublishResult;
    digest: ReturnType<typeof treeDigest>;
    repodata: RepodataWork;
    torrents: { created: string[]; skipped: string[] };
    work: string;
  },
): Promise<VettingReport> {
  const rel = s.release;
  const problems: string[] = [];
  const changedPaths = new Set([...a.result.adds, ...a.result.updates].map((e) => e.path));
  const repos: RepoReport[] = [];
  for (const t of a.trees) {
    const tp = treePath(t);
    const dir = join(a.releaseDir, tp);
    let after: RpmPackage[];
    try {
      after = readRepoPackages(dir) ?? [];
    } catch (e) {
      problems.push(`${tp}: staged repodata unreadable: ${(e as Error).message}`);
      continue;
    }
    const hash = new Set(after.filter((p) => changedPaths.has(`${tp}/${p.href}`)).map((p) => p.href));
    const verification = await verifyRepoPackages(dir, after, hash);
    problems.push(...verification.failures.map((f) => `${tp}: ${f}`));
    const before = a.before.get(tp) ?? [];
    repos.push({ tree: tp, repo: t.dir, arch: t.arch, kind: t.kind, before: before.length, after: after.length, ...diffPackages(before, after), verification });
  }

  const repoclosureResults = await closeStaged(s, a.releaseDir, a.trees, join(a.work, 'repoclosure'));
  for (const c of repoclosureResults.filter((x) => x.required && !x.ok)) problems.push(`repoclosure ${c.repo}/${c.arch}: ${c.broken.map((b) => `${b.package} needs ${b.unresolved.join(', ')}`).join('; ')}`);

  const checksums = await verifyChecksumFiles(a.releaseDir);
  problems.push(...checksums.failures.map((f) => `checksum: ${f}`));

  const r = a.result;
  return {
    release: rel.name,
    composeId: a.composeId,
    time: new Date().toISOString(),
    stagingDir: a.releaseDir,
    digest: a.digest.digest,
    entries: a.digest.entries,
    files: a.digest.files,
    bytes: a.digest.bytes,
    ok: problems.length === 0,
    problems,
    publish: { changed: r.changed, adds: r.adds.length, updates: r.updates.length, deletes: r.deletes.length, bytes: r.bytes, phases: r.phases.map((p) => p.name) },
    repos,
    images: {
      added: r.adds.filter((e) => isImagePath(e.path) && e.type === 'file').map((e) => e.path),
      updated: r.updates.filter((e) => isImagePath(e.path) && e.type === 'file').map((e) => e.path),
      removed: r.deletes.filter((e) => isImagePath(e.path) && e.type === 'file').map((e) => e.path),
    },
    repoclosure: repoclosureResults,
    checksums,
    regenerated: a.repodata.regenerated,
    signed: a.repodata.signed,
    torrents: a.torrents,
  };
}

/** dnf repoclosure of every staged os tree with the release's closure map (required ones must pass). */
async function closeStaged(s: StageContext, releaseDir: string, trees: RepoTree[], work: string): Promise<ClosureReport[]> {
  const rel = s.release;
  const byDir = new Map(rel.repos.map((r) => [repoDir(r), r]));
  const checks = trees.filter((t) => t.kind === 'os' && t.arch === t.group);
  return mapLimit(checks, 2, async (t) => {
    const repo = byDir.get(t.dir)!;
    const deps = repo.closure
      .map((d) => trees.find((x) => x.kind === 'os' && x.dir === d && x.arch === t.arch))
      .filter((x): x is RepoTree => !!x)
      .map((x) => ({ id: x.dir, path: join(releaseDir, treePath(x)) }));
    const res = await repoclosure({
      check: { id: t.dir, path: join(releaseDir, treePath(t)) },
      deps,
      arch: t.arch,
      releasever: rel.major,
      workDir: join(work, `${t.dir}-${t.arch}`),
    });
    return { repo: t.dir, arch: t.arch as Arch, required: repo.mustClose, ok: res.ok, broken: res.broken.map((b) => ({ package: b.package, unresolved: b.unresolved })) };
  });
}

