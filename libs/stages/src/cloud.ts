// The cloud stage (replaces `pull-cloud-image`): find the newest build of every cloud image the
// release lists in the site's image source, verify it against its published CHECKSUM, name it
// the Rocky way with its latest links, and keep it in the artifact store. A missing required
// image fails the stage with the full list; a missing optional one is reported.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cloudImageNames, dayStamp, parseCloudImageName, revision, type Arch } from '@rocky/config';
import { readJson, sha256File } from '@rocky/exec';
import { openStore } from '@rocky/store';
import { parseChecksum } from '@rocky/compose';
import type { FileEntry } from './manifests';
import { targetDistDir, type Stage } from './stage';

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

interface Found {
  entry: Omit<CloudImageEntry, 'sha256'> & { sha256: string };
  /** The producer's file. */
  file: string;
}

export interface CloudPlan {
  found: Found[];
  missing: string[];
  missingOptional: string[];
  source?: string;
}

const byBuild = (a: { date: Date; n: number }, b: { date: Date; n: number }) => a.date.getTime() - b.date.getTime() || a.n - b.n;

export const cloudStage: Stage<CloudPlan, CloudManifest> = {
  name: 'cloud',
  tools: () => [],

  async plan(ctx) {
    const { release: rel, site } = ctx;
    const wanted = Object.entries(rel.cloud.images).flatMap(([type, def]) =>
      rel.arches
        .filter((a) => !def.arches || def.arches.includes(a))
        .flatMap((arch) => (def.variants.length ? def.variants : [undefined]).map((variant) => ({ type, variant, arch, def, primary: variant !== undefined && variant === def.primaryVariant }))),
    );
    const plan: CloudPlan = { found: [], missing: [], missingOptional: [] };
    if (!wanted.length) return plan;
    const src = site.cloud?.source;
    if (!src) throw new Error(`${ctx.project} lists cloud images but site ${site.name} has no cloud.source`);
    plan.source = src.path;
    for (const w of wanted) {
      const kind = w.variant ? `${w.type}-${w.variant}` : w.type;
      const dir = join(src.path, rel.project, w.arch);
      // The producer's builds of this image (parsed names); the newest build wins.
      const builds = (existsSync(dir) ? readdirSync(dir) : [])
        .map((name) => ({ name, b: parseCloudImageName(rel, name) }))
        .filter((x) => x.b && x.b.kind === kind && x.b.revision === revision(rel) && x.b.arch === w.arch && x.b.ext === w.def.format)
        .sort((x, y) => byBuild(x.b!, y.b!));
      const newest = builds.pop();
      if (!newest) {
        (w.def.required ? plan.missing : plan.missingOptional).push(`${kind} ${w.arch}`);
        continue;
      }
      const { name: file, b } = { name: newest.name, b: newest.b! };
      const checksumFile = join(dir, `${file}.CHECKSUM`);
      if (!existsSync(checksumFile)) throw new Error(`${join(dir, file)}: no published checksum (${file}.CHECKSUM)`);
      const published = parseChecksum(readFileSync(checksumFile, 'utf8')).find((e) => e.name === file);
      if (!published) throw new Error(`${checksumFile} has no entry for ${file}`);
      const names = cloudImageNames(rel, { type: w.type, variant: w.variant, primary: w.primary, format: w.def.format }, w.arch, b);
      const build = `${dayStamp(b.date)}.${b.n}`;
      plan.found.push({ file: join(dir, file), entry: { type: w.type, variant: w.variant, arch: w.arch, format: w.def.format, name: names.file, path: names.file, aliases: names.aliases, build, sha256: published.sha256, size: published.size } });
    }
    if (plan.missing.length) throw new Error(`required cloud images missing from ${src.path}:\n  ${plan.missing.join('\n  ')}`);
    return plan;
  },

  describe: (p) => ({
    summary: `${p.found.length} cloud images to verify and store${p.missingOptional.length ? `; optional images not found: ${p.missingOptional.join(', ')}` : ''}`,
    details: p.found.map((f) => `${f.entry.name} ← ${f.file}`),
  }),

  async execute(ctx, plan) {
    const store = openStore(ctx.site);
    const images: CloudImageEntry[] = [];
    for (const f of plan.found) {
      const sha = (await store.has(f.entry.sha256)) ? f.entry.sha256 : await sha256File(f.file);
      if (sha !== f.entry.sha256) throw new Error(`${f.file}: checksum mismatch (published ${f.entry.sha256}, file ${sha})`);
      const obj = await store.putFile(f.file, { sha256: sha, size: f.entry.size });
      images.push({ ...f.entry, ...obj });
    }
    return { images, missingOptional: plan.missingOptional };
  },

  async verify(ctx, _plan, m) {
    const store = openStore(ctx.site);
    for (const i of m.images) if ((await store.size(i.sha256)) !== i.size) throw new Error(`cloud: ${i.name} (${i.sha256}) is not in the artifact store with ${i.size} bytes`);
  },

  async record(_ctx, _plan, m) {
    return { summary: `${m.images.length} cloud images verified and stored`, manifests: { 'manifest.json': m } };
  },
};

export function readCloudManifest(root: string, project: string): CloudManifest {
  const file = join(targetDistDir({ root, project, target: 'cloud' }), 'manifest.json');
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`nx run ${project}:cloud\` first`);
  return readJson<CloudManifest>(file);
}
