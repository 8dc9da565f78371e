// The iso-extra stage (replaces `build-iso-extra`): the DVD (and any other extra ISO the release
// lists) for every arch, the empanadas way: the boot ISO's boot setup replayed by xorriso plus
// every package and the repodata of the configured repos; implantisomd5; verified. An arch whose
// inputs did not change is not rebuilt: its DVD is found in the store by a digest of its inputs.
import { createHash } from 'node:crypto';
import { rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { extraIsoKey, mediaNames, releaseIso, type Arch } from '@rocky/config';
import { mapLimit } from '@rocky/exec';
import { openStore } from '@rocky/store';
import { buildExtraIso } from '@rocky/iso';
import { composeTimestamp, readComposeRef, readIsoManifest, readSyncManifest, syncPending, type FileEntry } from './manifests';
import { extraFilePackages, releaseExtraFiles } from './extra-files';
import { composeLayout, ensureFiles, ensureTree } from './trees';
import { scratchDir, type StageContext } from './context';
import { targetDistDir, type Stage } from './stage';
import { ISO_CODE, codeDigest } from './code-digest';

export interface ExtraIsoEntry extends FileEntry {
  arch: Arch;
  image: string;
  name: string;
  aliases: string[];
  volumeId: string;
  bootable: boolean;
  implantMd5: string;
  /** The ISO's file list (`<iso>.manifest`), kept in the store. */
  listing: FileEntry;
}
export interface ExtraIsoManifest {
  images: ExtraIsoEntry[];
}

interface Job {
  arch: Arch;
  image: string;
  name: string;
  /** Digest of the inputs; undefined while the boot ISO or sync is still to come (dry run). */
  inputs?: string;
  /** Found in the store under its inputs. */
  reuse?: ExtraIsoEntry;
}

export interface ExtraPlan {
  jobs: Job[];
}

const bootManifestOf = (ctx: StageContext, arch: Arch) => (existsSync(join(targetDistDir({ ...ctx, target: `iso-${arch}` }), 'manifest.json')) ? readIsoManifest(ctx.root, ctx.project, arch) : undefined);

function trees(ctx: StageContext, arch: Arch, image: string) {
  const def = releaseIso(ctx.release).extra[image];
  const sync = readSyncManifest(ctx.root, ctx.project, arch);
  return def.repos.map((dir) => {
    const t = sync.trees.find((x) => x.kind === 'os' && x.dir === dir && x.arch === arch);
    if (!t) throw new Error(`${image}/${arch}: repo ${dir} has no ${arch} tree`);
    return t;
  });
}

export const isoExtraStage: Stage<ExtraPlan, ExtraIsoManifest> = {
  name: 'iso-extra',
  tools: (ctx) => ['xorriso', 'implantisomd5', 'checkisomd5', 'isoinfo', ...(ctx.release.extraFiles.files.length ? ['rpm2cpio'] : [])],

  async plan(ctx) {
    const rel = ctx.release;
    const store = openStore(ctx.site);
    const code = codeDigest(ctx.root, ISO_CODE);
    const jobs: Job[] = [];
    for (const arch of rel.arches) {
      for (const [image, def] of Object.entries(releaseIso(rel).extra)) {
        if (!def.build || (def.arches && !def.arches.includes(arch))) continue;
        const names = mediaNames(rel, arch, image, syncPending(ctx) ? undefined : readComposeRef(ctx.root, ctx.project).composeId);
        const boot = bootManifestOf(ctx, arch);
        if (!boot || syncPending(ctx)) {
          if (!ctx.dryRun) readIsoManifest(ctx.root, ctx.project, arch); // names what to run first
          jobs.push({ arch, image, name: names.file });
          continue;
        }
        const t = trees(ctx, arch, image);
        const extra = { files: rel.extraFiles.files, from: extraFilePackages(rel, readSyncManifest(ctx.root, ctx.project, arch), arch).map((p) => p.sha256) };
        const inputs = createHash('sha256')
          .update(JSON.stringify({ image, def, arch, names, boot: boot.iso.sha256, tree: boot.tree, repos: t.map((x) => [x.dir, x.repodata]), extra, code }))
          .digest('hex');
        const previous = await store.getKey(extraIsoKey(ctx.project, arch, image, inputs));
        // The Nx output names what was built, not the key it is kept under: a change to the ISO
        // code that builds the same bytes leaves it, and so finalize's hash, unchanged. (Entries
        // stored before carry their key as `inputs`: dropped.)
        const stored = previous?.metadata.entry as (ExtraIsoEntry & { inputs?: string }) | undefined;
        const e = stored && { ...stored, inputs: undefined };
        const reuse = e && (await store.has(e.sha256)) && (await store.has(e.listing.sha256)) ? e : undefined;
        jobs.push({ arch, image, name: names.file, inputs, reuse });
      }
    }
    return { jobs };
  },

  describe: (p) => ({
    summary: p.jobs.length ? `${p.jobs.filter((j) => !j.reuse).length} extra ISOs to build, ${p.jobs.filter((j) => j.reuse).length} unchanged (from the store)` : 'no extra ISOs in this release',
    details: p.jobs.map((j) => `${j.name}: ${j.reuse ? 'unchanged, reused from the artifact store' : j.inputs ? 'build' : 'build after its boot ISO'}`),
  }),

  async execute(ctx, plan) {
    const { release: rel, site } = ctx;
    const store = openStore(site);
    const { layout, composeId } = composeLayout(ctx.root, ctx.project, site, ctx.release);
    const images = await mapLimit(plan.jobs, site.concurrency.builds, async ({ arch, image, inputs, reuse }): Promise<ExtraIsoEntry> => {
      if (reuse) return reuse;
      const def = releaseIso(rel).extra[image];
      const boot = readIsoManifest(ctx.root, ctx.project, arch);
      const names = mediaNames(rel, arch, image, composeId);
      const work = scratchDir(ctx, `extra-${ctx.project}-${arch}-${image}`);
      try {
        const bootIso = join(work, 'boot.iso');
        await store.materialize(boot.iso.sha256, bootIso);
        const bootTree = join(work, 'lorax');
        await ensureFiles(store, bootTree, boot.tree);
        const repos = [];
        for (const t of trees(ctx, arch, image)) repos.push({ name: t.dir, path: await ensureTree(store, layout, t, ctx.log.info) });
        // EULA, LICENSE, the GPG keys…: at the disc's root, as empanadas puts its extra files.
        const extraFiles = [];
        for (const f of await releaseExtraFiles(rel, readSyncManifest(ctx.root, ctx.project, arch), arch, store, layout.log(arch, 'extra-files'))) {
          extraFiles.push(join(work, 'extra-files', f.name));
          await store.materialize(f.sha256, extraFiles.at(-1)!);
        }
        const res = await buildExtraIso({
          release: rel,
          arch,
          image,
          bootIso,
          bootTree,
          repos,
          extraFiles,
          mainVariant: def.variant,
          outFile: join(work, names.file),
          workDir: join(work, 'scratch'),
          buildTimestamp: composeTimestamp(composeId),
          log: (m) => ctx.log.info(`${image}/${arch}: ${m}`),
          logFile: layout.log(arch, `iso-${image}`),
        });
        const obj = await store.putFile(res.iso.path, res.iso);
        const listing = await store.putStream(Readable.from([Buffer.from(res.manifest.join('\n') + '\n')]), { what: `${names.file}.manifest` });
        const entry: ExtraIsoEntry = {
          arch,
          image,
          path: names.file,
          name: names.file,
          aliases: names.aliases,
          sha256: obj.sha256,
          size: obj.size,
          volumeId: res.volumeId,
          bootable: res.bootable,
          implantMd5: res.implantMd5,
          listing: { path: `${names.file}.manifest`, ...listing },
        };
        await store.setKey(extraIsoKey(ctx.project, arch, image, inputs!), obj, { entry });
        ctx.log.info(`${names.file} built (${res.bootable ? 'bootable' : 'data only'}), implanted md5 ${res.implantMd5} verified`);
        return entry;
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    });
    return { images };
  },

  async verify(ctx, _plan, m) {
    const store = openStore(ctx.site);
    for (const e of m.images) {
      for (const f of [e, e.listing]) if ((await store.size(f.sha256)) !== f.size) throw new Error(`iso-extra: ${f.path} (${f.sha256}) is not in the artifact store with ${f.size} bytes`);
    }
  },

  async record(_ctx, plan, m) {
    const built = plan.jobs.filter((j) => !j.reuse).length;
    return { summary: `${m.images.length} extra ISOs (${built} built, ${m.images.length - built} unchanged)`, manifests: { 'manifest.json': m } };
  },
};

