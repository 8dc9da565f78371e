// The compose-<name> stage of a release whose composes pungi makes (Rocky 8: the site's
// `producers.<release>` is pungi): runs pungi-koji for one compose (Rocky, Extras, Plus,
// Rocky-devel, NFV) through libs/pungi, produce or (update-compose-<name>) update; verifies what
// pungi wrote (STATUS, productmd metadata, every package of every repodata and every image with
// its checksum); DOOMED and TERMINATED composes fail here and are never staged; puts every tree
// file and every ISO of the release's arches (a boot ISO with the boot tree buildinstall put into
// its os tree) into the store, and records the compose: `compose.json` and, for a compose with
// media, `media-<arch>.json` per arch (its own Nx outputs, which iso-<arch> and iso-extra collect
// from). The task is cached: its hash takes what pungi would make the compose from (pungi-inputs.ts).
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { PungiComposeLayout, composeOfTarget, composeTarget, pungiProducerOf, stateLog, treeId, type Arch, type PungiProducer, type RepoTree } from '@rocky/config';
import { formatArgv, mapLimit, sha256File } from '@rocky/exec';
import { openStore, type Store } from '@rocky/store';
import { parseTreeinfo } from '@rocky/compose';
import { checkProducer, describeDeliverable, producerArgv, PungiRunError, runPungiKoji, toRepoTrees, verifyPungiCompose, type VerifiedCompose, type VerifiedTree } from '@rocky/pungi';
import { openUpstream } from './upstream';
import { pungiComposeLosses } from './pungi-inputs';
import type { FileEntry, PackageEntry, PungiComposeRecord, PungiMedia, TreeManifest } from './manifests';
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

export interface PungiComposeResult {
  record: PungiComposeRecord;
  /** The ISOs of the release's arches, each in the store. */
  media: PungiMedia[];
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
    const media = await storeMedia(ctx, store, layout, verified);
    const record: PungiComposeRecord = {
      compose,
      kind: ctx.kind,
      composeId: verified.id,
      dir,
      status: verified.status,
      failed: verified.failed.map(describeDeliverable),
      trees: manifestsOf,
    };
    return { record, media, unmapped: unmapped.map((t) => `${t.variant}/${t.kind === 'source' ? 'source' : t.arch}/${t.kind}`), stored: stored + media.length };
  },

  // The record names only files the compose holds, whole.
  async verify(_ctx, _plan, { record, media }) {
    const bad = pungiComposeLosses(record, media);
    if (bad.length) throw new Error(`compose ${record.composeId} lost ${bad.length} files since it was verified, e.g. ${bad.slice(0, 5).join(', ')}`);
  },

  async record(ctx, _plan, { record, media, unmapped, stored }) {
    if (unmapped.length) ctx.log.info(`not published by ${ctx.project} (not its repos or arches): ${unmapped.join(', ')}`);
    const incomplete = record.failed.length ? `, FINISHED_INCOMPLETE (failed: ${record.failed.join(', ')})` : '';
    const perArch = Object.fromEntries(ctx.release.arches.filter((a) => media.some((m) => m.arch === a)).map((a) => [`media-${a}.json`, { arch: a, images: media.filter((m) => m.arch === a) }]));
    const isos = media.length ? `, ${media.length} ISOs (${media.map((m) => m.path.split('/').pop()).join(', ')})` : '';
    return {
      summary: `pungi compose ${record.composeId}${incomplete}: ${record.trees.length} trees verified${isos}, ${stored} files in the store; ${record.dir}`,
      manifests: { 'compose.json': record, ...perArch },
    };
  },
};

/** Boot tree files an os tree does not take from lorax: the tree's own repo and packages. */
const REPO_PARTS = new Set(['Packages', 'repodata']);

/**
 * The ISOs pungi made for the release's arches (images.json, verified) into the store. A boot
 * ISO takes with it the boot tree buildinstall put into its variant's os tree (every file there
 * but Packages/ and repodata/), each file that the tree's .treeinfo lists with a checksum checked
 * against it: iso-<arch> collects both.
 */
async function storeMedia(ctx: StageContext, store: Store, layout: PungiComposeLayout, v: VerifiedCompose): Promise<PungiMedia[]> {
  const out: PungiMedia[] = [];
  for (const img of v.images) {
    if (img.format !== 'iso' || !(ctx.release.arches as string[]).includes(img.arch)) continue;
    await store.putFile(join(layout.compose, img.path), { sha256: img.sha256, size: img.size });
    const m: PungiMedia = { path: img.path, sha256: img.sha256, size: img.size, variant: img.variant, arch: img.arch as Arch, type: img.type, bootable: img.bootable, volumeId: img.volumeId ?? null, implantMd5: img.implantMd5 ?? null };
    if (img.type === 'boot') m.tree = await storeBootTree(store, layout.tree({ variant: img.variant, kind: 'os', arch: img.arch }));
    out.push(m);
  }
  return out;
}

async function storeBootTree(store: Store, os: string): Promise<FileEntry[]> {
  const files = readdirSync(os, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(os, join(e.parentPath, e.name)))
    .filter((p) => !REPO_PARTS.has(p.split('/')[0]))
    .sort();
  if (!files.includes('.treeinfo')) throw new Error(`${os}: a boot ISO's os tree has no .treeinfo`);
  const listed = parseTreeinfo(readFileSync(join(os, '.treeinfo'), 'utf8')).checksums ?? {};
  const tree: FileEntry[] = [];
  await mapLimit(files, 8, async (path) => {
    const sha256 = await sha256File(join(os, path));
    const want = listed[path];
    if (want && want !== `sha256:${sha256}`) throw new Error(`${os}/${path}: sha256 ${sha256}, its .treeinfo says ${want}`);
    tree.push({ path, sha256, size: (await store.putFile(join(os, path), { sha256, size: statSync(join(os, path)).size })).size });
  });
  return tree.sort((a, b) => (a.path < b.path ? -1 : 1));
}

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

