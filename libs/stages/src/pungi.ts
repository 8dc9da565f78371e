// Releases whose composes pungi makes (Rocky 8: the site's `producers.<release>` is pungi).
//   compose-<name>  runs pungi-koji for one compose (Rocky, Extras, Plus, Rocky-devel, NFV) through
//                   libs/pungi, produce or (update-compose-<name>) update; verifies what pungi
//                   wrote (STATUS, productmd metadata, every package of every repodata with its
//                   checksum); DOOMED and TERMINATED composes fail here and are never staged; puts
//                   every tree file into the store and records the compose (its own Nx output).
//   sync            assembles the pipeline's compose from the records of every compose-<name>
//                   (hardlinks from the store, kickstart trees as copies of the os trees, as
//                   Rocky 8's staging makes them) and writes the per-arch manifests the rest of
//                   the graph reads, so iso, iso-extra, finalize and staging work as for rocky-9.
// pungi owns its compose directories and `latest-*` links; the pipeline's compose lives beside
// them (composeRoot) and never touches them.
import { copyFileSync, existsSync, mkdirSync, readlinkSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import {
  ComposeLayout,
  PungiComposeLayout,
  composeOfTarget,
  composeRoot,
  composeTarget,
  pungiProducerOf,
  repoDir,
  stateLog,
  treeId,
  treePath,
  type Arch,
  type PungiProducer,
  type RepoTree,
} from '@rocky/config';
import { formatArgv, mapLimit, sha256, sha256File, symlinkAtomic, writeFileAtomic, writeJsonAtomic } from '@rocky/exec';
import { openStore } from '@rocky/store';
import { checkProducer, describeDeliverable, producerArgv, PungiRunError, runPungiKoji, toRepoTrees, verifyPungiCompose, type VerifiedTree } from '@rocky/pungi';
import { openUpstream } from './upstream';
import { restoreTree, writeTreeFiles } from './trees';
import { readPungiRecord, releaseSlice, type FileEntry, type PackageEntry, type PungiComposeRecord, type PungiPart, type SyncRecord, type TreeManifest } from './manifests';
import { manifests, newestIfUpToDate, openCompose } from './sync';
import type { StageContext } from './context';
import type { Stage } from './stage';

/** The release's pungi producer on this site; an error naming the site file when it has none. */
export function requirePungi(ctx: Pick<StageContext, 'site' | 'release' | 'project'>): PungiProducer {
  const p = pungiProducerOf(ctx.site, ctx.release);
  if (!p) throw new Error(`${ctx.site.file}: site ${ctx.site.name} has no pungi producer for ${ctx.project} (producers.${ctx.release.name}): its composes are not made by pungi here`);
  return p;
}

/** The compose a `compose-<name>` target makes, checked against the release's and the producer's lists. */
function composeOf(ctx: StageContext, p: PungiProducer): string {
  const c = composeOfTarget(ctx.target);
  if (!c || !ctx.release.composes.includes(c)) throw new Error(`${ctx.target}: ${ctx.project} has no compose ${c ?? '?'} (release composes: ${ctx.release.composes.join(', ') || 'none'})`);
  if (!p.composes[c]) throw new Error(`${ctx.site.file}: producers.${ctx.release.name}.composes has no ${c} (it has ${Object.keys(p.composes).join(', ')}), and ${ctx.project} lists it`);
  return c;
}

export interface PungiComposePlan {
  compose: string;
  producer: PungiProducer;
  argv: string[];
  /** Pre-flight problems a dry run reports instead of failing (a real run fails on them before pungi starts). */
  problems?: string;
}

interface PungiComposeResult {
  record: PungiComposeRecord;
  /** The trees pungi made that the release does not publish (another arch, an ISO-only variant). */
  unmapped: string[];
  stored: number;
}

export const pungiComposeStage: Stage<PungiComposePlan, PungiComposeResult> = {
  name: 'compose',
  tools: () => [],

  async plan(ctx) {
    const producer = requirePungi(ctx);
    const compose = composeOf(ctx, producer);
    const argv = producerArgv(producer, ctx.release, { compose, kind: ctx.kind });
    // The command, checkouts, config files and target dir, where the producer runs (reads only).
    let problems: string | undefined;
    try {
      await checkProducer({ ...producer, targetDir: existingTarget(ctx, producer) }, ctx.release.name);
    } catch (e) {
      if (!ctx.dryRun) throw e;
      problems = (e as Error).message;
    }
    return { compose, producer, argv, problems };
  },

  describe(plan, ctx) {
    return {
      summary: `pungi-koji: a new ${ctx.kind} compose of ${plan.compose} in ${plan.producer.targetDir}${plan.producer.runner.type === 'ssh' ? ` on ${plan.producer.runner.host}` : ''}, verified, into the store`,
      details: [`$ ${formatArgv(plan.argv)}`, ...(plan.problems ? [`the real run would fail: ${plan.problems}`] : [])],
    };
  },

  async execute(ctx, plan) {
    const { producer, compose } = plan;
    // On the local site the fixture plays koji: built here if it is not yet.
    if (ctx.site.upstream.fixture) await (await openUpstream(ctx.root, ctx.site, ctx.log.info)).close();
    if (producer.runner.type === 'local') mkdirSync(producer.targetDir, { recursive: true });
    const logFile = stateLog(ctx.site, ctx.project, composeTarget(compose, ctx.kind));
    // The command line is in the plan's lines above; the event log keeps it too.
    ctx.log.event('pungi-koji', { compose, kind: ctx.kind, argv: plan.argv });
    let dir: string;
    try {
      dir = (await runPungiKoji(plan.argv, { runner: producer.runner, env: producer.env, logFile })).composeDir;
    } catch (e) {
      if (e instanceof PungiRunError && e.composeDir) keepLog(logFile, e.composeDir);
      throw e;
    }
    const kept = keepLog(logFile, dir);
    ctx.log.info(`pungi-koji made ${dir} (its output: ${kept})`);

    // Nothing of it is used on pungi's word: STATUS, metadata, every file against its checksum.
    const verified = await verifyPungiCompose(dir, {});
    if (verified.failed.length) ctx.log.info(`${verified.id} is FINISHED_INCOMPLETE: failed ${verified.failed.map(describeDeliverable).join(', ')}`);
    ctx.log.event('pungi-verified', { compose, composeId: verified.id, status: verified.status, failed: verified.failed.map(describeDeliverable), files: verified.checked });

    const { trees, unmapped } = toRepoTrees(ctx.release, verified.trees);
    const byPath = new Map(verified.trees.map((t) => [t.path, t]));
    const sigkeys = new Map(verified.rpms.map((r) => [r.path, r.sigkey]));
    const store = openStore(ctx.site);
    const layout = new PungiComposeLayout(dir);
    let stored = 0;
    const manifestsOf = await mapLimit(trees, 2, async (t) => {
      const v = byPath.get(t.path)!;
      const m = await treeOf(t, v, layout.compose, sigkeys);
      await mapLimit([...m.packages, ...m.repodata], 8, async (f) => {
        await store.putFile(join(layout.compose, m.path, f.path), { sha256: f.sha256, size: f.size });
        stored++;
      });
      return m;
    });
    const record: PungiComposeRecord = {
      compose,
      kind: ctx.kind,
      composeId: verified.id,
      dir,
      status: verified.status,
      failed: verified.failed.map(describeDeliverable),
      trees: manifestsOf,
    };
    return { record, unmapped: unmapped.map((t) => `${t.variant}/${t.kind === 'source' ? 'source' : t.arch}/${t.kind}`), stored };
  },

  // The record names only files the compose holds, whole.
  async verify(_ctx, _plan, { record }) {
    const bad = record.trees.flatMap((t) => [...t.packages, ...t.repodata].filter((f) => statSync(join(record.dir, 'compose', t.path, f.path), { throwIfNoEntry: false })?.size !== f.size).map((f) => `${t.path}/${f.path}`));
    if (bad.length) throw new Error(`compose ${record.composeId} lost ${bad.length} files since it was verified, e.g. ${bad.slice(0, 5).join(', ')}`);
  },

  async record(ctx, _plan, { record, unmapped, stored }) {
    if (unmapped.length) ctx.log.info(`not published by ${ctx.project} (not its repos or arches): ${unmapped.join(', ')}`);
    const incomplete = record.failed.length ? `, FINISHED_INCOMPLETE (failed: ${record.failed.join(', ')})` : '';
    return {
      summary: `pungi compose ${record.composeId}${incomplete}: ${record.trees.length} trees verified, ${stored} files in the store; ${record.dir}`,
      manifests: { 'compose.json': record },
    };
  },
};

/** pungi-koji's whole output, kept in the compose's `logs/global/` (pungi keeps its own pungi.global.log there). */
function keepLog(logFile: string, composeDir: string): string {
  const dest = new PungiComposeLayout(composeDir).log(undefined, 'releng-pungi-koji');
  if (!existsSync(logFile) || !existsSync(composeDir)) return logFile;
  mkdirSync(dirname(dest), { recursive: true });
  copyFileSync(logFile, dest);
  return dest;
}

/** The producer's target dir for the pre-flight: one under this site's compose root is made on the first run, so its nearest existing parent stands for it. */
function existingTarget(ctx: StageContext, p: PungiProducer): string {
  if (p.runner.type !== 'local' || existsSync(p.targetDir) || relative(ctx.site.roots.compose, p.targetDir).startsWith('..')) return p.targetDir;
  let d = p.targetDir;
  while (!existsSync(d) && dirname(d) !== d) d = dirname(d);
  return d;
}

/** A verified pungi tree as the pipeline's tree manifest: packages (with the sigkey rpms.json gives) and repodata, repomd.xml included. */
async function treeOf(t: RepoTree, v: VerifiedTree, compose: string, sigkeys: Map<string, string | null>): Promise<TreeManifest & { group: Arch | 'source' }> {
  const dir = join(compose, v.path);
  const packages: PackageEntry[] = v.packages.map((p) => ({
    path: p.href,
    sha256: p.sha256,
    size: p.size,
    name: p.name,
    arch: p.arch,
    epoch: p.epoch,
    version: p.version,
    release: p.release,
    ...(p.sourcerpm ? { sourcerpm: p.sourcerpm } : {}),
    sigkey: sigkeys.get(`${v.path}/${p.href}`) ?? null,
  }));
  const repomd = join(dir, 'repodata', 'repomd.xml');
  const repodata: FileEntry[] = [
    ...v.repodata.map((r) => ({ path: r.href, sha256: r.sha256, size: r.size ?? statSync(join(dir, r.href)).size })),
    { path: 'repodata/repomd.xml', sha256: await sha256File(repomd), size: statSync(repomd).size },
  ];
  return { id: treeId(t), repo: t.repo, dir: t.dir, kind: t.kind, arch: t.arch, group: t.group, path: t.path, repodata, packages };
}

// --- sync of a pungi-produced release: the pipeline's compose, assembled ----------------------

export interface AssemblePlan {
  digest: string;
  /** The records of every compose, in the release's (staging) order; empty in a dry run before any compose ran. */
  records: PungiComposeRecord[];
  trees: (TreeManifest & { group: Arch | 'source' })[];
  upToDate?: { dir: string; record: SyncRecord; missing: number };
}

interface AssembleResult {
  layout: ComposeLayout;
  record: SyncRecord;
  placed: number;
}

export const pungiSyncStage: Stage<AssemblePlan, AssembleResult> = {
  name: 'sync',
  tools: () => [],
  locks: (ctx) => [{ file: composeRoot(ctx.site, ctx.release).syncLock, what: `sync of ${ctx.project}` }],

  async plan(ctx) {
    const rel = ctx.release;
    requirePungi(ctx);
    if (ctx.kind === 'update') throw new Error(`${ctx.project}: pungi makes its update composes (\`nx run ${ctx.project}:update-compose-<name>\`, staged with \`update-staging-<name>\`); there is no update-sync`);
    if (!rel.composes.length) throw new Error(`releases/${rel.name}/release.yaml: composes is empty, and the site's producer of ${rel.name} is pungi: list the composes pungi makes`);
    const records: PungiComposeRecord[] = [];
    const missing: string[] = [];
    for (const c of rel.composes) {
      const r = readPungiRecord(ctx.root, ctx.project, c, 'produce');
      if (r) records.push(r);
      else missing.push(composeTarget(c, 'produce'));
    }
    if (missing.length && ctx.dryRun) return { digest: '', records: [], trees: [] };
    if (missing.length) throw new Error(`no record of ${missing.join(', ')} in ${join(ctx.root, 'dist', ctx.project)}: run \`nx run ${ctx.project}:sync\` (it runs them first)`);
    const trees = assembledTrees(ctx, records);
    const config = { release: releaseSlice(rel, 'source'), arches: rel.arches, repos: rel.repos };
    const digest = sha256(JSON.stringify({ config, composes: records.map((r) => [r.compose, r.composeId, r.trees.map((t) => [t.path, t.repodata.find((f) => f.path === 'repodata/repomd.xml')?.sha256])]) }));
    const upToDate = await newestIfUpToDate(ctx, openStore(ctx.site), digest);
    return { digest, records, trees, upToDate };
  },

  describe(plan, ctx) {
    if (!plan.records.length) return { summary: `assemble the composes ${ctx.release.composes.map((c) => composeTarget(c, 'produce')).join(', ')} are about to make into a new compose` };
    const from = plan.records.map((r) => `${r.composeId}${r.failed.length ? ' (FINISHED_INCOMPLETE)' : ''}`).join(', ');
    if (plan.upToDate) return { summary: `compose ${plan.upToDate.record.composeId} already holds ${from}${plan.upToDate.missing ? `; ${plan.upToDate.missing} files it lost are relinked from the store` : ''}` };
    return { summary: `${plan.trees.length} trees of ${from} into a new compose`, details: plan.trees.map((t) => `${t.path.padEnd(36)} ${String(t.packages.length).padStart(6)} packages`) };
  },

  async execute(ctx, plan) {
    const store = openStore(ctx.site);
    const { base } = composeRoot(ctx.site, ctx.release);
    if (plan.upToDate) {
      const layout = new ComposeLayout(join(base, plan.upToDate.dir), ctx.release);
      let placed = 0;
      if (plan.upToDate.missing) for (const t of plan.upToDate.record.trees) placed += await restoreTree(store, layout, t);
      return { layout, record: plan.upToDate.record, placed };
    }
    const { layout, id, date } = openCompose(ctx, 'produce', undefined);
    ctx.log.event('compose', { composeId: id, trees: plan.trees.length, from: plan.records.map((r) => r.composeId) });
    mkdirSync(layout.work, { recursive: true });
    writeFileAtomic(layout.status, 'STARTED\n');
    let placed = 0;
    await mapLimit(plan.trees, 4, async (t) => {
      placed += await restoreTree(store, layout, t);
      writeTreeFiles(ctx.release, layout, t, date);
    });
    const pungi: PungiPart[] = plan.records.map((r) => ({ compose: r.compose, composeId: r.composeId, dir: r.dir, variants: [...new Set(r.trees.map((t) => t.dir))] }));
    return { layout, record: { digest: plan.digest, composeId: id, trees: plan.trees, pungi }, placed };
  },

  async verify(_ctx, _plan, { layout, record }) {
    const bad = record.trees.flatMap((t) => [...t.packages, ...t.repodata].filter((f) => statSync(join(layout.compose, t.path, f.path), { throwIfNoEntry: false })?.size !== f.size).map((f) => `${t.path}/${f.path}`));
    if (bad.length) throw new Error(`compose ${record.composeId} is missing ${bad.length} files it should hold, e.g. ${bad.slice(0, 5).join(', ')}`);
  },

  async record(ctx, plan, { layout, record, placed }) {
    const { base, latest } = composeRoot(ctx.site, ctx.release);
    if (!plan.upToDate) writeJsonAtomic(layout.syncRecord, record);
    if (!existsSync(latest) || resolve(base, readlinkSync(latest)) !== layout.dir) symlinkAtomic(basename(layout.dir), latest);
    const from = (record.pungi ?? []).map((p) => p.composeId).join(', ');
    return {
      summary: `compose ${record.composeId}: ${record.trees.length} trees of ${from}${plan.upToDate ? ', up to date' : ''} (${placed} files linked from the store); ${relative(base, latest)} → ${basename(layout.dir)}`,
      manifests: manifests(ctx, record, relative(ctx.site.roots.compose, layout.dir), { pungi: record.pungi }),
    };
  },
};

/**
 * The trees of every compose as the release's trees: each compose dir comes from exactly one
 * compose, and the kickstart trees the release has are copies of the os trees (pungi makes none).
 */
function assembledTrees(ctx: StageContext, records: PungiComposeRecord[]): (TreeManifest & { group: Arch | 'source' })[] {
  const owner = new Map<string, string>();
  const out: (TreeManifest & { group: Arch | 'source' })[] = [];
  const kickstart = new Set(ctx.release.repos.filter((r) => r.kickstart).map(repoDir));
  for (const r of records) {
    for (const t of r.trees) {
      const other = owner.get(t.dir);
      if (other && other !== r.compose) throw new Error(`compose dir ${t.dir} is made by both ${other} and ${r.compose} (${r.composeId}): each compose dir must come from one compose`);
      owner.set(t.dir, r.compose);
      out.push(t);
      if (t.kind === 'os' && kickstart.has(t.dir)) {
        const k = { ...t, kind: 'kickstart' as const };
        out.push({ ...k, id: treeId(k), path: treePath(k, ctx.release.kind) });
      }
    }
  }
  const wanted = new Set(ctx.release.repos.map(repoDir));
  const none = [...wanted].filter((d) => !owner.has(d));
  if (none.length) ctx.log.info(`no compose made ${none.join(', ')} (repos of ${ctx.project}): not in this compose`);
  return out;
}

/** A pungi-produced release's compose of `compose`, as the per-compose staging target publishes it. */
export function pungiRecordToPublish(ctx: StageContext): PungiComposeRecord {
  const c = composeOfTarget(ctx.target)!;
  const r = readPungiRecord(ctx.root, ctx.project, c, ctx.kind);
  if (!r) throw new Error(`no record of ${composeTarget(c, ctx.kind)} in ${join(ctx.root, 'dist', ctx.project)}: run \`nx run ${ctx.project}:${composeTarget(c, ctx.kind)}\` first`);
  return r;
}

