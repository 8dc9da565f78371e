// The iso-extra stage (replaces `build-iso-extra`): the DVD (and any other extra ISO the release
// lists) for every arch, the empanadas way: the boot ISO's boot setup replayed by xorriso plus
// every package and the repodata of the configured repos; implantisomd5; verified. An arch whose
// inputs did not change is not rebuilt: its DVD is found in the store by a digest of its inputs.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { distDir, isoNames, type Arch } from '@rocky/config';
import { mapLimit, readJson, writeJsonAtomic } from '@rocky/exec';
import { openStore } from '@rocky/store';
import { buildExtraIso } from '@rocky/iso';
import { composeTimestamp, readSyncManifest, type FileEntry } from './manifests';
import { readIsoManifest } from './iso';
import { composeLayout, ensureFiles, ensureTree } from './trees';
import { scratchDir, type StageContext } from './context';

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
  /** Digest of everything the ISO is built from. */
  inputs: string;
}
export interface ExtraIsoManifest {
  images: ExtraIsoEntry[];
}

export const extraManifestFile = (root: string, project: string) => join(distDir(root, project, 'iso-extra'), 'manifest.json');

/** Digest of the ISO builder's own code, so a change to how DVDs are made rebuilds them. */
function builderCodeDigest(root: string): string {
  const h = createHash('sha256');
  for (const dir of ['libs/iso/src', 'libs/stages/src']) {
    const abs = join(root, dir);
    if (!existsSync(abs)) continue;
    for (const f of readdirSync(abs).filter((n) => n.endsWith('.ts') && !n.endsWith('.test.ts')).sort()) h.update(f).update(readFileSync(join(abs, f)));
  }
  return h.digest('hex');
}

export async function isoExtraStage(s: StageContext): Promise<ExtraIsoManifest> {
  const { release: rel, site } = s;
  const store = openStore(site);
  const jobs = rel.arches.flatMap((arch) =>
    Object.entries(rel.iso.extra)
      .filter(([, d]) => d.build && (!d.arches || d.arches.includes(arch)))
      .map(([image, def]) => ({ arch, image, def })),
  );
  const code = builderCodeDigest(s.root);
  console.log(`iso-extra: ${jobs.map((j) => `${j.image}/${j.arch}`).join(', ') || 'nothing to build'}`);
  if (s.dryRun) return { images: [] };
  const { layout, composeId } = composeLayout(s.root, s.project, site);

  const images = await mapLimit(jobs, site.concurrency.builds, async ({ arch, image, def }): Promise<ExtraIsoEntry> => {
    const boot = readIsoManifest(s.root, s.project, arch);
    const sync = readSyncManifest(s.root, s.project, arch);
    const trees = def.repos.map((dir) => {
      const t = sync.trees.find((x) => x.kind === 'os' && x.dir === dir && x.arch === arch);
      if (!t) throw new Error(`${image}/${arch}: repo ${dir} has no ${arch} tree`);
      return t;
    });
    const names = isoNames(rel, arch, image);
    const inputs = createHash('sha256')
      .update(JSON.stringify({ image, def, arch, names, boot: boot.iso.sha256, tree: boot.tree, repos: trees.map((t) => [t.dir, t.repodata]), code }))
      .digest('hex');
    const key = `extra-iso:${s.project}:${arch}:${image}:${inputs}`;
    const previous = await store.getKey(key);
    if (previous?.metadata.entry) {
      const e = previous.metadata.entry as ExtraIsoEntry;
      if ((await store.has(e.sha256)) && (await store.has(e.listing.sha256))) {
        console.log(`iso-extra: ${names.file} unchanged, reused from the artifact store`);
        return e;
      }
    }
    const work = scratchDir(site, `extra-${s.project}-${arch}-${image}`);
    try {
      const bootIso = join(work, 'boot.iso');
      await store.materialize(boot.iso.sha256, bootIso);
      const bootTree = join(work, 'lorax');
      await ensureFiles(store, bootTree, boot.tree);
      const repos = [];
      for (const t of trees) repos.push({ name: t.dir, path: await ensureTree(store, layout, t) });
      const res = await buildExtraIso({
        release: rel,
        arch,
        image,
        bootIso,
        bootTree,
        repos,
        mainVariant: def.variant,
        outFile: join(work, names.file),
        workDir: join(work, 'scratch'),
        buildTimestamp: composeTimestamp(composeId),
        log: (m) => console.log(`iso-extra ${image}/${arch}: ${m}`),
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
        inputs,
      };
      await store.setKey(key, obj, { entry });
      console.log(`iso-extra: ${names.file} built (${res.bootable ? 'bootable' : 'data only'}), implanted md5 ${res.implantMd5} verified`);
      return entry;
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
  const manifest = { images };
  writeJsonAtomic(extraManifestFile(s.root, s.project), manifest);
  return manifest;
}

export function readExtraManifest(root: string, project: string): ExtraIsoManifest {
  const file = extraManifestFile(root, project);
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`nx run ${project}:iso-extra\` first`);
  return readJson<ExtraIsoManifest>(file);
}
