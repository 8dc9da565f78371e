// The files a release ships beside its packages (empanadas' extra_files, pungi's extra_files
// phase): EULA, LICENSE, COMMUNITY-CHARTER, Contributors, the RPM-GPG-KEY files. empanadas copies
// them from rocky-release.git's SOURCES/; the release's own packages (rocky-release,
// rocky-gpg-keys) install those very files, and they are already in the compose, signed and
// verified by sync. So they are taken from the newest build of those packages in the lorax
// variant's tree (as pungi's extra_files can take them from an RPM), and kept in the store, with
// what was read out of which packages: iso-extra and finalize, and later composes of the same
// packages, take them from there instead of running rpm2cpio again.
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { extraFilesKey, releaseIso, type Arch, type Release } from '@rocky/config';
import { compareEvr, rpmFiles } from '@rocky/rpm-repo';
import type { Store } from '@rocky/store';
import type { ArchManifest, FileEntry, PackageEntry } from './manifests';

export interface ExtraFile extends FileEntry {
  /** The file's name at the tree root, on the DVD and in metadata/ (`EULA`, `RPM-GPG-KEY-Rocky-9`). */
  name: string;
}

/** The packages the extra files come from: the newest build of each, in the lorax variant's `arch` tree. Pure: reads the manifest only. */
export function extraFilePackages(rel: Pick<Release, 'extraFiles' | 'iso'>, sync: ArchManifest, arch: Arch): PackageEntry[] {
  const { packages } = rel.extraFiles;
  if (!packages.length) return [];
  const variant = releaseIso(rel).lorax.variant;
  const tree = sync.trees.find((t) => t.kind === 'os' && t.dir === variant && t.arch === arch);
  if (!tree) throw new Error(`extra files: ${variant} has no ${arch} tree to take ${packages.join(', ')} from`);
  return packages.map((name) => {
    const builds = tree.packages.filter((p) => p.name === name && p.arch === 'noarch');
    if (!builds.length) throw new Error(`extra files: no noarch package ${name} in ${tree.path} (release extraFiles.packages)`);
    return builds.reduce((a, b) => (compareEvr(b, a) > 0 ? b : a));
  });
}

/**
 * Reads the release's extra files out of their packages (rpm2cpio) and puts them into the store.
 * Each name is taken from the first package (in extraFiles.packages order) holding a file of that
 * name; a name found nowhere, or twice in one package with different bytes, is an error.
 */
export async function releaseExtraFiles(rel: Pick<Release, 'extraFiles' | 'iso'>, sync: ArchManifest, arch: Arch, store: Store, logFile?: string): Promise<ExtraFile[]> {
  if (!rel.extraFiles.files.length) return [];
  const pkgs = extraFilePackages(rel, sync, arch);
  // The packages are noarch, the same bytes in every arch's tree: finalize asks once per arch,
  // and each arch after the first gets the first's files instead of two more rpm2cpio runs.
  const key = JSON.stringify([rel.extraFiles, pkgs.map((p) => [p.path, p.sha256])]);
  const known = extracted.get(store) ?? extracted.set(store, new Map()).get(store)!;
  let files = known.get(key);
  if (!files) {
    files = keptOrExtracted(rel, pkgs, store, createHash('sha256').update(key).digest('hex'), logFile);
    known.set(key, files);
    files.catch(() => known.delete(key));
  }
  return files;
}

/** Extractions of this process, by store (the files are put there) and packages. */
const extracted = new WeakMap<Store, Map<string, Promise<ExtraFile[]>>>();

async function keptOrExtracted(rel: Pick<Release, 'extraFiles'>, pkgs: PackageEntry[], store: Store, digest: string, logFile?: string): Promise<ExtraFile[]> {
  const kept = (await store.getKey(extraFilesKey(digest)))?.metadata.files as ExtraFile[] | undefined;
  if (kept && (await Promise.all(kept.map((f) => store.has(f.sha256)))).every(Boolean)) return kept;
  const files = await extractExtraFiles(rel, pkgs, store, logFile);
  await store.setKey(extraFilesKey(digest), files[0], { files });
  return files;
}

async function extractExtraFiles(rel: Pick<Release, 'extraFiles'>, pkgs: PackageEntry[], store: Store, logFile?: string): Promise<ExtraFile[]> {
  const wanted = new Set(rel.extraFiles.files);
  const found = new Map<string, { data: Buffer; from: string }>();
  for (const pkg of pkgs) {
    const files = await rpmFiles(await store.localPath(pkg.sha256), (p) => wanted.has(basename(p)), { logFile });
    const here = new Map<string, { data: Buffer; from: string }>();
    for (const [path, data] of files) {
      const name = basename(path);
      const seen = here.get(name);
      if (seen && !seen.data.equals(data)) throw new Error(`extra files: ${pkg.path} has two different ${name} (${seen.from}, ${path})`);
      here.set(name, { data, from: `${pkg.path}:${path}` });
    }
    for (const [name, f] of here) if (!found.has(name)) found.set(name, f);
  }
  const missing = [...wanted].filter((n) => !found.has(n));
  if (missing.length) throw new Error(`extra files: ${missing.join(', ')} not found in ${rel.extraFiles.packages.join(', ')} (release extraFiles)`);
  const out: ExtraFile[] = [];
  for (const name of rel.extraFiles.files) {
    const obj = await store.putStream(Readable.from([found.get(name)!.data]), { what: `extra file ${name} (${found.get(name)!.from})` });
    out.push({ name, path: name, ...obj });
  }
  return out;
}
