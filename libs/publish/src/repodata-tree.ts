// The private tree in which staging prepares repodata before anyone can see it (rocky-8's
// `prep-staging-8.sh` and `sign-repos-only.sh`, done right): a hardlinked copy of the staged tree
// (old packages kept) plus the compose, whose repodata is regenerated with createrepo_c --update
// and the compose's comps, the module metadata accumulated over the composes staged (a stream a
// newer compose dropped keeps its document while its packages stay) and the errata of the site's
// errata source (cut to the tree's packages) put back with modifyrepo_c, and repomd.xml signed.
// Metadata there is always written as new files: packages are hardlinks of store objects and of
// the staged tree, which must never change under a reader. A tree's prepared repodata is
// kept (`prepared/<tree>.<key>/`) until published, so a rerun after a kill takes it over.
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { copySync, removeSync } from 'fs-extra';
import { distroCpe, moduleMetadataFile, revision, type Release, type RepoTree, type Site } from '@rocky/config';
import { detachSign, linkCopy, readJson, sha256, sha256File, tempName, writeFileIfChanged, writeJsonAtomic, type EventLog } from '@rocky/exec';
import { linkDestSync } from './rsync';
import type { TreeErrata } from './errata';
import { createrepo, filterUpdateinfo, mergeModules, modifyrepo, nevraOf, parseModules, parseRepomd, readRepodata, readRepoPackages, renderModules, type ModuleDoc } from '@rocky/rpm-repo';

export interface RepodataTreeOptions {
  release: Release;
  signing?: NonNullable<Site['signing']>;
  /** createrepo_c --workers. */
  workers: number;
  /** The compose's `compose/` directory. */
  compose: string;
  /** The staged release dir as it is now. */
  releaseDir: string;
  /** The private tree to build. */
  tree: string;
  /** Staging's work dir of the release (prepared repodata and the record live here). */
  work: string;
  /** Overlay entries (torrents, repo links) left out of the private tree. */
  overlayNames: string[];
  trees: RepoTree[];
  /** The errata of the os trees (tree path → document), as fetchErrata read them. */
  errata: Map<string, TreeErrata>;
  /** Where each tree's accumulated module metadata is kept (publishLayout's moduleMetadata). */
  moduleMetadata: string;
  log: EventLog;
  /** Where createrepo_c's and modifyrepo_c's full output goes. */
  logFile?: string;
}

export interface RepodataWork {
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
 * and modules), the tree's errata document, the signing key, and the release's options. The
 * accumulated module metadata is not in it: it changes only with what was published.
 */
async function repodataKey(o: Pick<RepodataTreeOptions, 'release' | 'signing' | 'compose' | 'errata'>, t: RepoTree): Promise<string> {
  const { release: rel, compose } = o;
  const regen = rel.publish.regenerateRepodata && t.kind !== 'kickstart';
  const errata = regen ? o.errata.get(t.path) : undefined;
  return sha256(
    JSON.stringify({
      v: 2,
      repomd: await sha256File(join(compose, t.path, 'repodata', 'repomd.xml')),
      regen,
      errata: errata ? sha256(errata.xml) : null,
      sign: rel.publish.signRepodata ? (o.signing?.keyId ?? null) : null,
      distro: revision(rel),
    }),
  );
}

/** Builds the private tree: the staged tree plus the compose, every tree's repodata as the release wants it. */
export async function prepareRepodataTree(a: RepodataTreeOptions): Promise<RepodataWork> {
  const rel = a.release;
  const P = a.tree;
  rmSync(P, { recursive: true, force: true });
  mkdirSync(P, { recursive: true });
  // The staged tree as it is (hardlinks: same filesystem, nothing copied)...
  if (existsSync(a.releaseDir)) await linkCopy(a.releaseDir, P);
  for (const n of a.overlayNames) rmSync(join(P, n), { recursive: true, force: true });
  // ...plus the compose, without its repodata: the staged repodata of unchanged trees stays.
  // --link-dest hardlinks new files from the compose when it shares the filesystem.
  await linkDestSync({ from: a.compose, to: P, excludes: ['repodata/'], delete: rel.publish.delete });
  removeOrphanRepodata(P, a.compose);

  const record = readRecord(a.work);
  const out: RepodataWork = { regenerated: [], signed: [], resumed: [], record: {} };
  for (const t of a.trees) {
    const tp = t.path;
    const key = await repodataKey(a, t);
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
      await buildRepodata(a, t, { dir, regen, out });
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
async function buildRepodata(o: RepodataTreeOptions, t: RepoTree, a: { dir: string; regen: boolean; out: RepodataWork }) {
  const rel = o.release;
  const tp = t.path;
  const { dir, out } = a;
  copyRepodata(join(o.compose, tp, 'repodata'), join(dir, 'repodata'));
  if (a.regen) {
    await regenerate(o, t, dir);
    out.regenerated.push(tp);
  }
  if (rel.publish.signRepodata) {
    // gpg --output may write in place: sign to a temp name, rename over.
    const asc = join(dir, 'repodata', 'repomd.xml.asc');
    const tmp = tempName(asc);
    try {
      await detachSign(o.signing!, join(dir, 'repodata', 'repomd.xml'), tmp);
      renameSync(tmp, asc);
    } finally {
      rmSync(tmp, { force: true });
    }
    out.signed.push(tp);
  }
}

/** Fresh files (new inodes) for a repodata dir: the tools below rewrite repomd.xml in place. */
function copyRepodata(from: string, to: string) {
  removeSync(to);
  copySync(from, to);
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

/** A repodata dir's metadata of `types` (the first there), decompressed; undefined when it has none. */
async function readMetadata(repodata: string, types: string[]): Promise<Buffer | undefined> {
  const file = join(repodata, 'repomd.xml');
  if (!existsSync(file)) return undefined;
  const repomd = parseRepomd(readFileSync(file, 'utf8'), file);
  const r = types.map((ty) => repomd.records.find((x) => x.type === ty)).find(Boolean);
  return r ? readRepodata(join(dirname(repodata), r.href), r.href) : undefined;
}

/**
 * The module metadata an os tree has accumulated: its store file, or (no store yet) what staging
 * published for it, which is the same thing.
 */
async function accumulatedModules(o: RepodataTreeOptions, t: RepoTree): Promise<ModuleDoc[]> {
  const file = moduleMetadataFile(o.moduleMetadata, t);
  if (existsSync(file)) return parseModules(readFileSync(file, 'utf8'), file);
  const staged = join(o.releaseDir, t.path, 'repodata');
  const yaml = await readMetadata(staged, ['modules']);
  return yaml ? parseModules(yaml.toString('utf8'), `${staged} modules`) : [];
}

/** createrepo_c --update with the compose's comps, then the accumulated module metadata and the tree's errata in. */
async function regenerate(o: RepodataTreeOptions, t: RepoTree, dir: string) {
  const { release: rel, work } = o;
  const tp = t.path;
  const rev = revision(rel);
  const repodata = join(dir, 'repodata');
  const tmp = join(work, 'tmp', t.path.replaceAll('/', '-'));
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const log = { logFile: o.logFile };
  const write = (name: string, data: string | Buffer) => {
    const file = join(tmp, name);
    writeFileSync(file, data);
    return file;
  };
  try {
    const comps = await readMetadata(repodata, ['group', 'group_gz', 'group_xz']);
    const composeModules = await readMetadata(repodata, ['modules']);
    await createrepo(
      { dir, update: true, checksum: 'sha256', uniqueMdFilenames: true, revision: rev, distro: `${distroCpe(rel)},${rel.fullname} ${rev}`, workers: Math.max(1, o.workers), groupfile: comps && write('comps.xml', comps) },
      { ...log, timeoutMs: 60 * 60_000 },
    );
    const held = new Set((readRepoPackages(dir) ?? []).map(nevraOf));
    const has = (nevra: string) => held.has(nevra);
    // Module streams are accumulated in os trees (the toolkit's `<Repo>-modules.yaml` per arch); others keep the compose's.
    const before = t.kind === 'os' ? await accumulatedModules(o, t) : [];
    const current = composeModules ? parseModules(composeModules.toString('utf8'), `${join(o.compose, tp)} modules`) : [];
    if (before.length || current.length) {
      const m = mergeModules(before, current, has);
      if (m.docs.length) await modifyrepo({ mdtype: 'modules', file: write('modules.yaml', renderModules(m.docs)), repodata }, log);
      if (m.carried.length || m.dropped.length) o.log.event('repodata-modules', { tree: tp, carried: m.carried, dropped: m.dropped });
    }
    const errata = t.kind === 'os' ? o.errata.get(tp) : undefined;
    if (errata) {
      const f = filterUpdateinfo(errata.xml, has, errata.source);
      if (f.kept.length) await modifyrepo({ mdtype: 'updateinfo', file: write('updateinfo.xml', f.xml), repodata }, log);
      o.log.event('repodata-errata', { tree: tp, source: errata.source, kept: f.kept, dropped: f.dropped });
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}


/** Trees whose published repodata would be rebuilt (their inputs changed since the last publish). */
export async function staleRepodata(o: Pick<RepodataTreeOptions, 'release' | 'signing' | 'compose' | 'errata' | 'trees' | 'work'>): Promise<string[]> {
  const record = readRecord(o.work);
  const out: string[] = [];
  for (const t of o.trees) if ((await repodataKey(o, t)) !== record[t.path]) out.push(t.path);
  return out;
}

/**
 * After the publish: the record stands for the published repodata, the module metadata each
 * regenerated os tree published is what it has accumulated; the private tree and prepared
 * repodata go. `partial`: only `work`'s trees were published (one compose of several), the record of the
 * others stays.
 */
export async function commitRepodata(o: Pick<RepodataTreeOptions, 'work' | 'tree' | 'trees' | 'moduleMetadata'>, work: RepodataWork, { partial = false } = {}): Promise<void> {
  for (const t of o.trees.filter((x) => x.kind === 'os' && work.regenerated.includes(x.path))) {
    const yaml = await readMetadata(join(o.tree, t.path, 'repodata'), ['modules']);
    const file = moduleMetadataFile(o.moduleMetadata, t);
    if (yaml) {
      mkdirSync(dirname(file), { recursive: true });
      writeFileIfChanged(file, yaml);
    } else rmSync(file, { force: true });
  }
  writeJsonAtomic(join(o.work, 'repodata.json'), partial ? { ...readRecord(o.work), ...work.record } : work.record);
  rmSync(o.tree, { recursive: true, force: true });
  rmSync(preparedRoot(o.work), { recursive: true, force: true });
}
