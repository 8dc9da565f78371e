// iso-<arch> and iso-extra of a release whose media pungi makes (Rocky 8): they keep their
// names and outputs, and collect what pungi built instead of building it. The compose tasks put
// pungi's ISOs (and a boot ISO's boot tree) into the store and recorded them per arch
// (media-<arch>.json); here each ISO the release names is found by the name names.ts gives it
// (pungi-rocky's image names are the published ones: Rocky-8.10-x86_64-boot.iso, -dvd1.iso,
// -minimal.iso), verified as if it had been built here (volume id, implanted md5 with
// checkisomd5, El Torito of a bootable one, pungi's images.json agreeing) and listed
// (`<iso>.manifest`, as the sync scripts regenerate it with xorriso). finalize then places them
// in the mirror layout, with CHECKSUM files and metadata, as for rocky-9.
import { Readable } from 'node:stream';
import { mediaNames, volumeId, type Arch, type IsoNames } from '@rocky/config';
import { openStore, type Store } from '@rocky/store';
import { bootloadersOf, elTorito, isoManifest, verifyIso } from '@rocky/iso';
import { readComposeRef, readPungiMedia, readPungiRecord, syncPending, type FileEntry, type PungiMedia } from './manifests';
import { composeLayout } from './trees';
import { builderFor, isoArch, type IsoManifest } from './iso';
import type { ExtraIsoEntry, ExtraIsoManifest } from './iso-extra';
import type { StageContext } from './context';
import type { Stage } from './stage';

/** Every ISO of `arch` the release's produce composes recorded, with the compose that made it. */
function mediaOf(ctx: StageContext, arch: Arch): (PungiMedia & { composeId: string })[] {
  return ctx.release.composes.flatMap((c) => {
    const r = readPungiRecord(ctx.root, ctx.project, c, 'produce');
    return r ? readPungiMedia(ctx.root, ctx.project, c, 'produce', arch).map((m) => ({ ...m, composeId: r.composeId })) : [];
  });
}

/** The compose id the media are named under (a declared respin); undefined before sync in a dry run. */
const composeIdOf = (ctx: StageContext) => (syncPending(ctx) ? undefined : readComposeRef(ctx.root, ctx.project).composeId);

const recordsPending = (ctx: StageContext) => ctx.release.composes.some((c) => !readPungiRecord(ctx.root, ctx.project, c, 'produce'));

/** The ISO of `type` pungi made under the name `names` gives. */
function find(ctx: StageContext, arch: Arch, names: IsoNames, type: string): (PungiMedia & { composeId: string }) | undefined {
  return mediaOf(ctx, arch).find((m) => m.path.split('/').pop() === names.file && m.type === type);
}

const described = (ctx: StageContext, arch: Arch) => mediaOf(ctx, arch).map((m) => `${m.path} (${m.type}, ${m.composeId})`).join(', ') || 'none';

interface Checked {
  volumeId: string;
  implantMd5: string;
  bootable: boolean;
  bootloaders: string[];
  listing: FileEntry;
}

/**
 * An ISO pungi made, read back from the store: its volume id is the release's (names.ts) and
 * images.json's, its implanted md5 checks (checkisomd5) and is images.json's, a bootable one has a
 * clean El Torito boot record; its file listing goes into the store.
 */
async function check(ctx: StageContext, store: Store, m: PungiMedia, name: string, logFile: string): Promise<Checked> {
  const iso = await store.localPath(m.sha256);
  const where = `${m.path} (${name})`;
  const { volumeId: written, implantMd5 } = await verifyIso(iso, { bootable: m.bootable, requireMd5: true, logFile });
  const want = volumeId(ctx.release, m.arch);
  if (written !== want) throw new Error(`${where}: volume id ${written}, the release's is ${want} (stage2 finds its media by it)`);
  if (m.volumeId !== null && m.volumeId !== written) throw new Error(`${where}: volume id ${written}, pungi's images.json says ${m.volumeId}`);
  if (m.implantMd5 && m.implantMd5 !== implantMd5) throw new Error(`${where}: implanted md5 ${implantMd5}, pungi's images.json says ${m.implantMd5}`);
  const bootloaders = m.bootable ? bootloadersOf(await elTorito(iso, logFile)) : [];
  const listing = await store.putStream(Readable.from([Buffer.from((await isoManifest(iso, logFile)).join('\n') + '\n')]), { what: `${name}.manifest` });
  return { volumeId: written, implantMd5: implantMd5!, bootable: m.bootable, bootloaders, listing: { path: `${name}.manifest`, ...listing } };
}

async function inStore(ctx: StageContext, files: FileEntry[]) {
  const store = openStore(ctx.site);
  for (const f of files) if ((await store.size(f.sha256)) !== f.size) throw new Error(`${ctx.target}: ${f.path} (${f.sha256}) is not in the artifact store with ${f.size} bytes`);
}

export interface PungiIsoPlan {
  arch: Arch;
  names: IsoNames;
  /** The boot ISO pungi's buildinstall made; undefined while the compose tasks have not run (dry run). */
  boot?: PungiMedia & { composeId: string };
}

export const pungiIsoStage: Stage<PungiIsoPlan, IsoManifest> = {
  name: 'iso',
  tools: () => ['xorriso', 'checkisomd5', 'isoinfo'],

  async plan(ctx) {
    const arch = isoArch(ctx);
    const names = mediaNames(ctx.release, arch, 'boot', composeIdOf(ctx));
    if (ctx.dryRun && recordsPending(ctx)) return { arch, names };
    const boot = find(ctx, arch, names, 'boot');
    if (!boot) throw new Error(`${arch}: pungi made no boot ISO ${names.file} (its ISOs of ${arch}: ${described(ctx, arch)}); the boot ISO of a release pungi makes comes from buildinstall in its produce compose`);
    if (!boot.tree?.some((f) => f.path === '.treeinfo')) throw new Error(`${boot.path}: pungi's boot ISO came without the boot tree of its os tree (no .treeinfo recorded)`);
    if (builderFor(ctx, arch).mustBoot && !boot.bootable) throw new Error(`${boot.path}: pungi says it is not bootable, and the site requires bootable media for ${arch} (builders.${arch}.mustBoot)`);
    return { arch, names, boot };
  },

  describe: (p) => ({ summary: p.boot ? `${p.names.file}: collected from pungi's ${p.boot.composeId} (${p.boot.path}) with its boot tree, verified` : `${p.names.file}: collected from the produce compose pungi is about to make` }),

  async execute(ctx, plan) {
    const m = plan.boot!;
    const store = openStore(ctx.site);
    const { layout } = composeLayout(ctx.root, ctx.project, ctx.site, ctx.release);
    const c = await check(ctx, store, m, plan.names.file, layout.log(plan.arch, 'iso-collect'));
    return {
      arch: plan.arch,
      builder: 'pungi',
      iso: { path: plan.names.file, name: plan.names.file, aliases: plan.names.aliases, sha256: m.sha256, size: m.size, volumeId: c.volumeId, implantMd5: c.implantMd5, bootable: c.bootable, bootloaders: c.bootloaders },
      listing: c.listing,
      tree: m.tree!,
    };
  },

  verify: (ctx, _plan, m) => inStore(ctx, [m.iso, m.listing, ...m.tree]),

  async record(_ctx, plan, m) {
    return { summary: `${m.iso.name} from pungi's ${plan.boot!.composeId} (${m.iso.bootable ? `bootable: ${m.iso.bootloaders.join(', ')}` : 'not bootable'}), volume id ${m.iso.volumeId}, md5 ${m.iso.implantMd5}, ${m.tree.length} tree files`, manifests: { 'manifest.json': m } };
  },
};

interface CollectJob {
  arch: Arch;
  image: string;
  names: IsoNames;
  media?: PungiMedia & { composeId: string };
}

export interface PungiExtraPlan {
  jobs: CollectJob[];
  /** Images the release names but does not require (`build: false`) that pungi did not make. */
  absent: string[];
}

export const pungiIsoExtraStage: Stage<PungiExtraPlan, ExtraIsoManifest> = {
  name: 'iso-extra',
  tools: () => ['xorriso', 'checkisomd5', 'isoinfo'],

  async plan(ctx) {
    const rel = ctx.release;
    const composeId = composeIdOf(ctx);
    const pending = ctx.dryRun && recordsPending(ctx);
    const jobs: CollectJob[] = [];
    const absent: string[] = [];
    for (const arch of rel.arches) {
      for (const [image, def] of Object.entries(rel.iso?.extra ?? {})) {
        if (def.arches && !def.arches.includes(arch)) continue;
        const names = mediaNames(rel, arch, image, composeId);
        if (pending) {
          if (def.build) jobs.push({ arch, image, names });
          continue;
        }
        // pungi records its DVDs as productmd type dvd, whatever the image (minimal too).
        const media = find(ctx, arch, names, 'dvd');
        if (media) jobs.push({ arch, image, names, media });
        else if (def.build) throw new Error(`${image}/${arch}: pungi made no ${names.file} (its ISOs of ${arch}: ${described(ctx, arch)})`);
        else absent.push(names.file);
      }
    }
    return { jobs, absent };
  },

  describe: (p) => ({
    summary: `${p.jobs.length} extra ISOs collected from pungi's composes${p.absent.length ? ` (${p.absent.join(', ')}: not made, not required)` : ''}`,
    details: p.jobs.map((j) => `${j.names.file}: ${j.media ? `${j.media.composeId} ${j.media.path}` : 'from the compose pungi is about to make'}`),
  }),

  async execute(ctx, plan) {
    const store = openStore(ctx.site);
    const { layout } = composeLayout(ctx.root, ctx.project, ctx.site, ctx.release);
    const images: ExtraIsoEntry[] = [];
    for (const j of plan.jobs) {
      const m = j.media!;
      const c = await check(ctx, store, m, j.names.file, layout.log(j.arch, `iso-collect-${j.image}`));
      images.push({ arch: j.arch, image: j.image, path: j.names.file, name: j.names.file, aliases: j.names.aliases, sha256: m.sha256, size: m.size, volumeId: c.volumeId, bootable: c.bootable, implantMd5: c.implantMd5, listing: c.listing });
      ctx.log.info(`${j.names.file} (${m.path} of ${m.composeId}): volume id ${c.volumeId}, md5 ${c.implantMd5} verified${c.bootable ? `, boots with ${c.bootloaders.join(', ')}` : ''}`);
    }
    return { images };
  },

  verify: (ctx, _plan, m) => inStore(ctx, m.images.flatMap((e) => [e, e.listing])),

  async record(_ctx, plan, m) {
    return { summary: `${m.images.length} extra ISOs collected from pungi (${m.images.map((e) => e.name).join(', ')})${plan.absent.length ? `; not made by pungi: ${plan.absent.join(', ')}` : ''}`, manifests: { 'manifest.json': m } };
  },
};
