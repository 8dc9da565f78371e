// The cloud stage (replaces `pull-cloud-image`): find the newest build of every cloud image the
// release lists in the site's image source, verify it against its published CHECKSUM, name it
// the Rocky way with its latest links, and keep it in the artifact store. A missing required
// image fails the stage with the full list; a missing optional one is reported.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cloudImageNames, distDir, revision, type Arch } from '@rocky/config';
import { readJson, sha256File, writeJsonAtomic } from '@rocky/exec';
import { openStore } from '@rocky/store';
import { parseChecksum } from '@rocky/compose';
import type { FileEntry } from './manifests';
import type { StageContext } from './context';

export interface CloudImageEntry extends FileEntry {
  type: string;
  variant?: string;
  arch: Arch;
  format: string;
  name: string;
  aliases: string[];
  /** Build date and number of the image (from the producer's name). */
  build: string;
}
export interface CloudManifest {
  images: CloudImageEntry[];
  missingOptional: string[];
}

export const cloudManifestFile = (root: string, project: string) => join(distDir(root, project, 'cloud'), 'manifest.json');

export async function cloudStage(s: StageContext): Promise<CloudManifest> {
  const { release: rel, site } = s;
  const src = site.cloud?.source;
  const wanted = Object.entries(rel.cloud.images).flatMap(([type, def]) =>
    rel.arches
      .filter((a) => !def.arches || def.arches.includes(a))
      .flatMap((arch) =>
        (def.variants.length ? def.variants : [undefined]).map((variant) => ({ type, variant, arch, def, primary: variant !== undefined && variant === def.primaryVariant })),
      ),
  );
  if (!wanted.length) {
    const none = { images: [], missingOptional: [] };
    if (!s.dryRun) writeJsonAtomic(cloudManifestFile(s.root, s.project), none);
    return none;
  }
  if (!src) throw new Error(`${s.project} lists cloud images but site ${site.name} has no cloud.source`);
  const store = openStore(site);
  const images: CloudImageEntry[] = [];
  const missing: string[] = [];
  const missingOptional: string[] = [];
  for (const w of wanted) {
    const kind = w.variant ? `${w.type}-${w.variant}` : w.type;
    const dir = join(src.path, rel.project, w.arch);
    // Producer name: Rocky-<major>-<Kind>-<revision>-<YYYYMMDD>.<n>.<arch>.<ext>; newest build wins.
    const probe = cloudImageNames(rel, { type: w.type, variant: w.variant, format: w.def.format }, w.arch, { date: new Date(0), n: 0 }).file;
    const [prefix, suffix] = [probe.slice(0, probe.indexOf(`-${revision(rel)}-`) + revision(rel).length + 2), probe.slice(probe.indexOf(`.${w.arch}.`))];
    const candidates = existsSync(dir)
      ? readdirSync(dir)
          .filter((n) => n.startsWith(prefix) && n.endsWith(suffix) && /^\d{8}\.\d+$/.test(n.slice(prefix.length, n.length - suffix.length)))
          .sort(byBuild(prefix.length, suffix.length))
      : [];
    const file = candidates.pop();
    if (!file) {
      (w.def.required ? missing : missingOptional).push(`${kind} ${w.arch}`);
      continue;
    }
    const checksumFile = join(dir, `${file}.CHECKSUM`);
    if (!existsSync(checksumFile)) throw new Error(`${file}: no published checksum (${file}.CHECKSUM)`);
    const published = parseChecksum(readFileSync(checksumFile, 'utf8')).find((e) => e.name === file);
    if (!published) throw new Error(`${file}.CHECKSUM has no entry for ${file}`);
    if (s.dryRun) {
      console.log(`cloud: would collect ${file}`);
      continue;
    }
    const sha = await sha256File(join(dir, file));
    if (sha !== published.sha256) throw new Error(`${file}: checksum mismatch (published ${published.sha256}, file ${sha})`);
    const obj = await store.putFile(join(dir, file), { sha256: sha, size: published.size });
    const build = file.slice(prefix.length, file.length - suffix.length);
    const [day, n] = build.split('.');
    const names = cloudImageNames(rel, { type: w.type, variant: w.variant, primary: w.primary, format: w.def.format }, w.arch, {
      date: new Date(Date.UTC(+day.slice(0, 4), +day.slice(4, 6) - 1, +day.slice(6, 8))),
      n: Number(n),
    });
    images.push({ type: w.type, variant: w.variant, arch: w.arch, format: w.def.format, name: names.file, path: names.file, aliases: names.aliases, build, ...obj });
  }
  if (missing.length) throw new Error(`required cloud images missing from ${src.path}:\n  ${missing.join('\n  ')}`);
  if (missingOptional.length) console.log(`cloud: optional images not found: ${missingOptional.join(', ')}`);
  const manifest = { images, missingOptional };
  if (!s.dryRun) writeJsonAtomic(cloudManifestFile(s.root, s.project), manifest);
  console.log(`cloud: ${images.length} images verified and stored`);
  return manifest;
}

const byBuild = (pre: number, suf: number) => (a: string, b: string) => {
  const key = (n: string) => n.slice(pre, n.length - suf).split('.').map(Number);
  const [ad, an] = key(a);
  const [bd, bn] = key(b);
  return ad - bd || an - bn;
};

export function readCloudManifest(root: string, project: string): CloudManifest {
  const file = cloudManifestFile(root, project);
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`nx run ${project}:cloud\` first`);
  return readJson<CloudManifest>(file);
}
