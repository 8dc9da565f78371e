// The iso-<arch> stage (replaces `build-iso` + `pull-unpack-tree`): the boot tree and boot ISO
// of one arch, built by the site's builder for that arch from the compose's own repos. The ISO
// and the tree go into the artifact store; the Nx output is a small manifest naming them.
import { existsSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildViaKubernetes, buildViaSsh } from '@rocky/builders';
import { distDir, isoNames, type Arch, type Builder } from '@rocky/config';
import { composeTimestamp } from './manifests';
import { readJson, writeJsonAtomic } from '@rocky/exec';
import { openStore, type Store } from '@rocky/store';
import { buildBootTree, isoManifest, type BootTreeResult } from '@rocky/iso';
import { Readable } from 'node:stream';
import { readSyncManifest, type FileEntry } from './manifests';
import { composeLayout, ensureTree } from './trees';
import { scratchDir, type StageContext } from './context';

export interface IsoManifest {
  arch: Arch;
  builder: Builder['type'];
  iso: FileEntry & { name: string; aliases: string[]; volumeId: string; bootable: boolean; bootloaders: string[] };
  /** The ISO's file list (`<iso>.manifest`, as empanadas writes it), kept in the store. */
  listing: FileEntry;
  /** The lorax-shaped boot tree, relative to its root. */
  tree: FileEntry[];
}

export const isoManifestFile = (root: string, project: string, arch: Arch) => join(distDir(root, project, `iso/${arch}`), 'manifest.json');

export function builderFor(s: StageContext, arch: Arch): Builder {
  return s.site.builders[arch] ?? { type: 'boot-tree', mustBoot: false };
}

/** The arch's boot tree and ISO; undefined on a dry run (it only prints the plan). */
export async function isoStage(s: StageContext, arch: Arch): Promise<IsoManifest | undefined> {
  const { release: rel, site } = s;
  if (!rel.arches.includes(arch)) throw new Error(`${arch} is not an arch of ${s.project}`);
  const sync = readSyncManifest(s.root, s.project, arch);
  const builder = builderFor(s, arch);
  const names = isoNames(rel, arch, 'boot');
  const store = openStore(site);
  const out = isoManifestFile(s.root, s.project, arch);
  const key = s.taskHash ? `iso:${s.project}:${arch}:${s.taskHash}` : undefined;

  const repos = rel.iso.lorax.repos.map((dir) => {
    const tree = sync.trees.find((t) => t.kind === 'os' && t.dir === dir && t.arch === arch);
    if (!tree) throw new Error(`${arch}: lorax repo ${dir} has no ${arch} tree in the sync manifest`);
    return tree;
  });
  console.log(`iso-${arch}: ${builder.type} builder, ${names.file} from ${repos.map((r) => r.path).join(' + ')}`);
  if (s.dryRun) return undefined;

  // A build with identical inputs (same Nx task hash) already in the store is not redone.
  const previous = key && (await store.getKey(key));
  if (previous && previous.metadata.manifest) {
    const m = previous.metadata.manifest as IsoManifest;
    if (await allInStore(store, [m.iso, m.listing, ...m.tree])) {
      console.log(`iso-${arch}: reusing ${m.iso.name} from the artifact store`);
      writeJsonAtomic(out, m);
      return m;
    }
  }

  const { layout, composeId } = composeLayout(s.root, s.project, site);
  const repoDirs = [];
  for (const t of repos) repoDirs.push({ name: t.dir, path: await ensureTree(store, layout, t) });
  const outDir = join(layout.work, 'lorax', arch);
  const workDir = scratchDir(site, `iso-${s.project}-${arch}`);
  if (existsSync(outDir)) rmSync(outDir, { recursive: true, force: true }); // a killed run's leftovers
  let res: BootTreeResult;
  const log = (m: string) => console.log(`iso-${arch}: ${m}`);
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
      res = await buildBootTree({ release: rel, arch, repos: repoDirs, builder, outDir, workDir, buildTimestamp: composeTimestamp(composeId), log });
    }
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }

  await store.putFile(res.iso.path, res.iso);
  for (const f of res.treeFiles) await store.putFile(join(res.tree, f.path), f);
  const listing = await store.putStream(Readable.from([Buffer.from((await isoManifest(res.iso.path)).join('\n') + '\n')]), { what: `${names.file}.manifest` });
  const manifest: IsoManifest = {
    arch,
    builder: builder.type,
    iso: { path: names.file, name: names.file, aliases: names.aliases, sha256: res.iso.sha256, size: res.iso.size, volumeId: res.volumeId, bootable: res.bootable, bootloaders: res.bootloaders },
    listing: { path: `${names.file}.manifest`, ...listing },
    tree: res.treeFiles,
  };
  writeJsonAtomic(out, manifest);
  if (key) await store.setKey(key, res.iso, { manifest });
  console.log(`iso-${arch}: ${names.file} (${res.bootable ? `bootable: ${res.bootloaders.join(', ')}` : 'not bootable on this host'}), volume id ${res.volumeId}`);
  return manifest;
}

async function allInStore(store: Store, files: FileEntry[]): Promise<boolean> {
  return (await Promise.all(files.map((f) => store.has(f.sha256)))).every(Boolean);
}

export function readIsoManifest(root: string, project: string, arch: Arch): IsoManifest {
  const file = isoManifestFile(root, project, arch);
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`nx run ${project}:iso-${arch}\` first`);
  return readJson<IsoManifest>(file);
}
