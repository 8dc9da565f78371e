// The iso-<arch> stage (replaces `build-iso` + `pull-unpack-tree`): the boot tree and boot ISO
// of one arch, built by the site's builder for that arch from the compose's own repos. The ISO
// and the tree go into the artifact store; the Nx output is a small manifest naming them.
import { createHash } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Readable } from 'node:stream';
import { buildViaKubernetes, buildViaSsh } from '@rocky/builders';
import { bootTreeKey, isoReuseKey, mediaNames, releaseIso, type Arch, type Builder, type IsoNames } from '@rocky/config';
import { keepLogs } from '@rocky/exec';
import { openStore, type Store } from '@rocky/store';
import { buildBootTree, isoManifest, type BootTreeResult } from '@rocky/iso';
import { composeTimestamp, readComposeRef, readSyncManifest, syncPending, type FileEntry, type TreeManifest } from './manifests';
import { composeLayout, ensureTree } from './trees';
import { scratchDir, type StageContext } from './context';
import type { Stage } from './stage';
import { ISO_CODE, codeDigest } from './code-digest';

export interface IsoManifest {
  arch: Arch;
  /** `pungi`: collected from the boot ISO pungi's buildinstall made (pungi-media.ts). */
  builder: Builder['type'] | 'pungi';
  iso: FileEntry & { name: string; aliases: string[]; volumeId: string; implantMd5: string | null; bootable: boolean; bootloaders: string[] };
  /** The ISO's file list (`<iso>.manifest`, as empanadas writes it), kept in the store. */
  listing: FileEntry;
  /** The lorax-shaped boot tree, relative to its root. */
  tree: FileEntry[];
}

export interface IsoPlan {
  arch: Arch;
  builder: Builder;
  names: IsoNames;
  /** The compose trees lorax installs from; undefined while sync has not run (a dry run of a fresh workspace). */
  repos?: TreeManifest[];
  /** isoInputs of these repos: the store key of the build (computed once). */
  inputs?: string;
  /** A build of identical inputs found in the store: reused, not rebuilt. */
  reuse?: IsoManifest;
}

/** The arch of an `iso-<arch>` target. */
export function isoArch(ctx: Pick<StageContext, 'target' | 'release' | 'project'>): Arch {
  const arch = ctx.target.replace(/^iso-/, '') as Arch;
  if (!ctx.release.arches.includes(arch)) throw new Error(`${ctx.target}: ${arch} is not an arch of ${ctx.project}`);
  return arch;
}

export function builderFor(ctx: Pick<StageContext, 'site'>, arch: Arch): Builder {
  return ctx.site.builders[arch] ?? { type: 'boot-tree', mustBoot: false };
}

export const isoStage: Stage<IsoPlan, IsoManifest> = {
  name: 'iso',
  tools: (ctx) => {
    const b = builderFor(ctx, isoArch(ctx));
    if (b.type === 'ssh') return ['ssh', 'tar'];
    if (b.type === 'kubernetes') return ['tar', 'xorriso'];
    return ['dnf', 'xorriso', 'implantisomd5', 'mksquashfs', ...(b.type === 'lorax' ? [b.wrapper[0] ?? 'lorax'] : ['rpm', 'checkisomd5', 'isoinfo', 'mkfs.fat', 'mmd', 'mcopy'])];
  },

  async plan(ctx) {
    const arch = isoArch(ctx);
    const builder = builderFor(ctx, arch);
    if (syncPending(ctx)) return { arch, builder, names: mediaNames(ctx.release, arch, 'boot', undefined) };
    const names = mediaNames(ctx.release, arch, 'boot', readComposeRef(ctx.root, ctx.project).composeId);
    const sync = readSyncManifest(ctx.root, ctx.project, arch);
    const repos = releaseIso(ctx.release).lorax.repos.map((dir) => {
      const tree = sync.trees.find((t) => t.kind === 'os' && t.dir === dir && t.arch === arch);
      if (!tree) throw new Error(`${arch}: lorax repo ${dir} has no ${arch} tree in the sync manifest`);
      return tree;
    });
    // A build of identical inputs already in the store is not redone.
    const store = openStore(ctx.site);
    const inputs = isoInputs(ctx, arch, builder, names, repos);
    const previous = await store.getKey(isoReuseKey(ctx.project, arch, inputs));
    const m = previous?.metadata.manifest as IsoManifest | undefined;
    const reuse = m && (await allInStore(store, [m.iso, m.listing, ...m.tree])) ? m : undefined;
    return { arch, builder, names, repos, inputs, reuse };
  },

  describe: (p) => ({
    summary: !p.repos
      ? `${p.names.file} with the ${p.builder.type} builder, from the compose sync is about to make`
      : p.reuse
        ? `${p.names.file}: inputs unchanged, reused from the artifact store`
        : `${p.names.file} with the ${p.builder.type} builder from ${p.repos.map((r) => r.path).join(' + ')}`,
  }),

  async execute(ctx, plan) {
    if (plan.reuse) return plan.reuse;
    const { release: rel, site } = ctx;
    const { arch, builder, names } = plan;
    const store = openStore(site);
    const { layout, composeId } = composeLayout(ctx.root, ctx.project, site, ctx.release);
    const repoDirs = [];
    for (const t of plan.repos!) repoDirs.push({ name: t.dir, path: await ensureTree(store, layout, t, ctx.log.info) });
    const outDir = layout.lorax(arch);
    const workDir = scratchDir(ctx, `iso-${ctx.project}-${arch}`);
    if (existsSync(outDir)) rmSync(outDir, { recursive: true, force: true }); // a killed run's leftovers
    let res: BootTreeResult;
    let built: { key: string; manifest?: IsoManifest } | undefined;
    const log = ctx.log.info;
    const logs = join(layout.logs, arch);
    try {
      if (builder.type === 'ssh' || builder.type === 'kubernetes') {
        // Arches Nx cannot run on (ppc64le, s390x) build on a native host: lorax there reads the
        // compose through the URL it sees it under (NFS: the same path).
        const base = (builder.type === 'ssh' && builder.composeUrl) || pathToFileURL(site.roots.compose).href;
        const sources = repoDirs.map((r) => `${base.replace(/\/$/, '')}/${relative(site.roots.compose, r.path)}`);
        const input = { release: rel, arch, sources, outDir, workDir, log };
        res =
          builder.type === 'ssh'
            ? await buildViaSsh(builder, input, { knownHosts: builder.knownHosts, loraxCommand: builder.loraxCommand })
            : // No client: the builder's token and CA files, or the in-cluster service account's.
              await buildViaKubernetes(builder, input, undefined, {
                result: { type: 'volume', source: builder.result.source, localPath: builder.result.localPath },
                volumes: builder.composeVolume ? [{ name: 'compose', mountPath: site.roots.compose, source: builder.composeVolume, readOnly: true }] : [],
                loraxCommand: builder.loraxCommand,
              });
      } else {
        // A runtime root of the very packages of a stored build (the one changed upstream is in
        // neither) makes the very same boot tree and ISO: that build is taken, not made again.
        const settings = isoInputs(ctx, arch, builder, names);
        const haveBuilt = async (digest: string) => {
          const key = bootTreeKey(ctx.project, arch, createHash('sha256').update(`${settings} ${digest}`).digest('hex'));
          const m = (await store.getKey(key))?.metadata.manifest as IsoManifest | undefined;
          built = { key, manifest: m && (await allInStore(store, [m.iso, m.listing, ...m.tree])) ? m : undefined };
          return !!built.manifest;
        };
        const r = await buildBootTree({ release: rel, arch, repos: repoDirs, builder, outDir, workDir, composeRoot: site.roots.compose, buildTimestamp: composeTimestamp(composeId), log, logFile: layout.log(arch, 'iso-boot'), haveBuilt });
        if (!r) {
          // Found under these repos too from now on: the next plan needs no runtime root.
          const m = built!.manifest!;
          await store.setKey(isoReuseKey(ctx.project, arch, plan.inputs!), m.iso, { manifest: m });
          return m;
        }
        res = r;
      }
    } catch (e) {
      // Remote builders leave their session logs in the work dir: kept with the rest below.
      throw Object.assign(e as Error, { message: `${(e as Error).message}\nlogs: ${logs}` });
    } finally {
      keepLogs(workDir, logs);
      rmSync(workDir, { recursive: true, force: true });
    }

    await store.putFile(res.iso.path, res.iso);
    for (const f of res.treeFiles) await store.putFile(join(res.tree, f.path), f);
    const listing = await store.putStream(Readable.from([Buffer.from((await isoManifest(res.iso.path)).join('\n') + '\n')]), { what: `${names.file}.manifest` });
    const manifest: IsoManifest = {
      arch,
      builder: builder.type,
      iso: { path: names.file, name: names.file, aliases: names.aliases, sha256: res.iso.sha256, size: res.iso.size, volumeId: res.volumeId, implantMd5: res.implantMd5 ?? null, bootable: res.bootable, bootloaders: res.bootloaders },
      listing: { path: `${names.file}.manifest`, ...listing },
      tree: res.treeFiles,
    };
    await store.setKey(isoReuseKey(ctx.project, arch, plan.inputs!), res.iso, { manifest });
    if (built) await store.setKey(built.key, res.iso, { manifest });
    return manifest;
  },

  // Everything the manifest names is in the store, whole (the builders checked El Torito and the implanted md5).
  async verify(ctx, _plan, m) {
    const store = openStore(ctx.site);
    for (const f of [m.iso, m.listing, ...m.tree]) {
      if ((await store.size(f.sha256)) !== f.size) throw new Error(`${ctx.target}: ${f.path} (${f.sha256}) is not in the artifact store with ${f.size} bytes`);
    }
  },

  async record(_ctx, plan, m) {
    const how = plan.reuse ? 'reused from the artifact store' : m.iso.bootable ? `bootable: ${m.iso.bootloaders.join(', ')}` : 'not bootable on this host';
    return { summary: `${m.iso.name} (${how}), volume id ${m.iso.volumeId}, ${m.tree.length} tree files`, manifests: { 'manifest.json': m } };
  },
};

/**
 * Digest of everything a boot ISO is built from: the repos lorax installs from (their repodata;
 * without `repos`, the settings alone, which the boot-tree builder completes with its runtime
 * root's packages), the release's lorax settings and names, the builder, and the builders' code.
 */
function isoInputs(ctx: StageContext, arch: Arch, builder: Builder, names: IsoNames, repos?: TreeManifest[]): string {
  const rel = ctx.release;
  const slice = { arch, names, builder, lorax: releaseIso(rel).lorax, name: [rel.shortname, rel.fullname, rel.major, rel.minor, rel.type, rel.rc] };
  return createHash('sha256')
    .update(JSON.stringify({ slice, ...(repos ? { repos: repos.map((r) => [r.dir, r.repodata]) } : {}), code: codeDigest(ctx.root, ISO_CODE) }))
    .digest('hex');
}

async function allInStore(store: Store, files: FileEntry[]): Promise<boolean> {
  return (await Promise.all(files.map((f) => store.has(f.sha256)))).every(Boolean);
}

