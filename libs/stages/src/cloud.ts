// The cloud stage (replaces `pull-cloud-image`): find the newest build of every cloud image the
// release lists in the site's image source, verify it, name it the Rocky way with its latest
// links, and keep it in the artifact store. A missing required image fails the stage with the
// full list; a missing optional one is reported.
//
// Sources: a directory of the producer's builds, each with its published `.CHECKSUM`, or the
// producer's bucket itself (empanadas-spec.md §1.6), streamed into the store and hashed as it
// streams. In the bucket, a `<key>.CHECKSUM` object is the producer's checksum; where there is
// none (empanadas' image builds upload kiwi's output directory, which has no checksum file) the
// sha256 of the first read is recorded in the store's index and every later read of that key
// must match it. The producer never rewrites a key (each upload has its own epoch directory),
// so bytes that differ from that record are a changed or damaged object, never a new build.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  cloudBucketPrefix,
  cloudImageNames,
  cloudObjectKey,
  dayStamp,
  parseCloudBucketKey,
  parseCloudImageName,
  revision,
  type Arch,
  type CloudBuild,
  type Release,
} from '@rocky/config';
import { mapLimit, readJson, sha256File } from '@rocky/exec';
import { Bucket, IntegrityError, openStore, type BucketObject, type Store } from '@rocky/store';
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
  /** Bucket sources: the object read and what its sha256 was checked against. */
  origin?: { url: string; etag: string; checksum: 'published' | 'recorded' };
}
export interface CloudManifest {
  images: CloudImageEntry[];
  missingOptional: string[];
}
export interface CloudResult {
  manifest: CloudManifest;
  /** Files or objects whose bytes were read in this run (the others were in the store already). */
  read: string[];
}

interface Found {
  /** As recorded; the sha256 is unknown before the first read of an unpublished object. */
  entry: Omit<CloudImageEntry, 'sha256'> & { sha256?: string };
  /** Dir source: the producer's file. */
  file?: string;
  /** Bucket source: the producer's object. */
  object?: BucketObject;
  /** What says the sha256 is right: a checksum file, or the record of the first read. */
  checksumFrom?: string;
  /** Bucket source: the object changed (ETag, size) since its sha256 was recorded: read it again even though the store has that sha256. */
  reread?: boolean;
  /** Recorded at the first read (kept when the record is rewritten). */
  recordedAt?: string;
}

export interface CloudPlan {
  found: Found[];
  missing: string[];
  missingOptional: string[];
  source?: string;
  /** Bucket sources: the client (closed by dispose). */
  bucket?: Bucket;
}

interface Wanted {
  type: string;
  variant?: string;
  kind: string;
  arch: Arch;
  format: string;
  primary: boolean;
  required: boolean;
}

/** Every image x variant x arch the release lists. */
function wantedImages(rel: Release): Wanted[] {
  return Object.entries(rel.cloud.images).flatMap(([type, def]) =>
    rel.arches
      .filter((a) => !def.arches || def.arches.includes(a))
      .flatMap((arch) =>
        (def.variants.length ? def.variants : [undefined]).map((variant) => ({
          type,
          variant,
          kind: variant ? `${type}-${variant}` : type,
          arch,
          format: def.format,
          primary: variant !== undefined && variant === def.primaryVariant,
          required: def.required,
        })),
      ),
  );
}

type Candidate<T> = { build: CloudBuild & { epoch?: number }; id: string; item: T };

/** The newest build (date, then build number, then the later upload) of `w` among `candidates`. */
function newest<T>(rel: Release, w: Wanted, candidates: Candidate<T>[]): Candidate<T> | undefined {
  return candidates
    .filter(({ build: b }) => b.kind === w.kind && b.revision === revision(rel) && b.arch === w.arch && b.ext === w.format)
    .sort((x, y) => x.build.date.getTime() - y.build.date.getTime() || x.build.n - y.build.n || (x.build.epoch ?? 0) - (y.build.epoch ?? 0) || (x.id < y.id ? -1 : 1))
    .pop();
}

function entryFor(rel: Release, w: Wanted, b: CloudBuild, size: number, sha256?: string): Found['entry'] {
  const names = cloudImageNames(rel, { type: w.type, variant: w.variant, primary: w.primary, format: w.format }, w.arch, b);
  return { type: w.type, variant: w.variant, arch: w.arch, format: w.format, name: names.file, path: names.file, aliases: names.aliases, build: `${dayStamp(b.date)}.${b.n}`, sha256, size };
}

function planDir(rel: Release, wanted: Wanted[], path: string, plan: CloudPlan): void {
  for (const w of wanted) {
    const dir = join(path, rel.project, w.arch);
    const files = (existsSync(dir) ? readdirSync(dir) : []).flatMap((name) => {
      const build = parseCloudImageName(rel, name);
      return build ? [{ build, id: name, item: name }] : [];
    });
    const hit = newest(rel, w, files);
    if (!hit) {
      (w.required ? plan.missing : plan.missingOptional).push(`${w.kind} ${w.arch}`);
      continue;
    }
    const file = hit.item;
    const checksumFile = join(dir, `${file}.CHECKSUM`);
    if (!existsSync(checksumFile)) throw new Error(`${join(dir, file)}: no published checksum (${file}.CHECKSUM)`);
    const published = parseChecksum(readFileSync(checksumFile, 'utf8')).find((e) => e.name === file);
    if (!published) throw new Error(`${checksumFile} has no entry for ${file}`);
    plan.found.push({ file: join(dir, file), checksumFrom: checksumFile, entry: entryFor(rel, w, hit.build, published.size, published.sha256) });
  }
}

async function planBucket(rel: Release, wanted: Wanted[], prefix: string, bucket: Bucket, store: Store, concurrency: number, plan: CloudPlan): Promise<void> {
  // One listing per arch: `buildimage-<revision>-<arch>/` holds every build of every image.
  const arches = [...new Set(wanted.map((w) => w.arch))];
  const listed = await mapLimit(arches, concurrency, (arch) => bucket.list(cloudBucketPrefix(rel, arch, prefix)));
  const listings = new Map(arches.map((a, i) => [a, listed[i]]));
  const found = await mapLimit(wanted, concurrency, async (w): Promise<Found | undefined> => {
    const objects = listings.get(w.arch)!;
    const images = objects.flatMap((o) => {
      const build = parseCloudBucketKey(rel, o.key, prefix);
      return build ? [{ build, id: o.key, item: { o, file: build.file } }] : [];
    });
    const hit = newest(rel, w, images);
    if (!hit) return undefined;
    const { o, file } = hit.item;
    const f: Found = { object: o, entry: entryFor(rel, w, hit.build, o.size) };
    const sums = objects.find((x) => x.key === `${o.key}.CHECKSUM`);
    if (sums) {
      // The producer's checksum names the object (`layer.tar.xz`) or the image it is placed as.
      const names = [o.key.slice(o.key.lastIndexOf('/') + 1), file];
      const published = parseChecksum(await bucket.text(sums)).find((e) => names.includes(e.name));
      if (!published) throw new Error(`${bucket.url(sums.key)} has no entry for ${names.join(' or ')}`);
      f.checksumFrom = bucket.url(sums.key);
      f.entry.sha256 = published.sha256;
    } else {
      const rec = await store.getKey(cloudObjectKey(bucket.name, o.key));
      if (rec) {
        f.entry.sha256 = rec.sha256;
        f.recordedAt = String(rec.metadata.recordedAt ?? '');
        f.checksumFrom = `the sha256 recorded at its first read (${f.recordedAt}, ETag ${String(rec.metadata.etag)}, ${rec.size} bytes)`;
        f.reread = rec.metadata.etag !== o.etag || rec.size !== o.size;
      }
    }
    f.entry.origin = { url: bucket.url(o.key), etag: o.etag, checksum: sums ? 'published' : 'recorded' };
    return f;
  });
  wanted.forEach((w, i) => {
    if (found[i]) plan.found.push(found[i]);
    else (w.required ? plan.missing : plan.missingOptional).push(`${w.kind} ${w.arch}`);
  });
}

export const cloudStage: Stage<CloudPlan, CloudResult> = {
  name: 'cloud',
  tools: () => [],

  async plan(ctx) {
    const { release: rel, site } = ctx;
    const wanted = wantedImages(rel);
    const plan: CloudPlan = { found: [], missing: [], missingOptional: [] };
    if (!wanted.length) return plan;
    const src = site.cloud?.source;
    if (!src) throw new Error(`${ctx.project} lists cloud images but site ${site.name} has no cloud.source`);
    if (src.type === 'dir') {
      plan.source = src.path;
      planDir(rel, wanted, src.path, plan);
    } else {
      plan.source = `s3://${src.bucket}/${cloudBucketPrefix(rel, '<arch>', src.prefix)}`;
      plan.bucket = Bucket.open(src);
      await planBucket(rel, wanted, src.prefix, plan.bucket, openStore(site), site.concurrency.downloads, plan);
    }
    if (plan.missing.length) throw new Error(`required cloud images missing from ${plan.source}:\n  ${plan.missing.join('\n  ')}`);
    return plan;
  },

  describe: (p) => ({
    summary: `${p.found.length} cloud images to verify and store from ${p.source}${p.missingOptional.length ? `; optional images not found: ${p.missingOptional.join(', ')}` : ''}`,
    details: p.found.map((f) => `${f.entry.name} ← ${f.file ?? f.entry.origin?.url} (${f.checksumFrom ? `verified against ${f.checksumFrom}` : 'no published checksum: its sha256 is recorded at this first read'})`),
  }),

  async execute(ctx, plan) {
    const store = openStore(ctx.site);
    const read: string[] = [];
    const recorded: string[] = [];
    const images = await mapLimit(plan.found, ctx.site.concurrency.downloads, async (f): Promise<CloudImageEntry> => {
      const want = f.entry.sha256;
      if (f.file) {
        const stored = want && (await store.has(want));
        if (!stored) read.push(f.file);
        const sha = stored ? want : await sha256File(f.file);
        if (sha !== want) throw new Error(`${f.file}: checksum mismatch (published ${want}, file ${sha})`);
        return { ...f.entry, ...(await store.putFile(f.file, { sha256: sha, size: f.entry.size })) };
      }
      const o = f.object!;
      const bucket = plan.bucket!;
      if (want && !f.reread && (await store.has(want))) return { ...f.entry, sha256: want };
      read.push(bucket.url(o.key));
      let obj;
      try {
        obj = await bucket.ingest(store, o, want);
      } catch (e) {
        if (!(e instanceof IntegrityError)) throw e;
        throw new Error(`${bucket.url(o.key)}: its bytes do not match: ${f.checksumFrom} says sha256 ${e.expected}, the object read has sha256 ${e.actual}`, { cause: e });
      }
      if (f.entry.origin?.checksum === 'recorded') {
        // A first read, or a read of an object whose ETag changed but whose bytes did not (a re-upload).
        await store.setKey(cloudObjectKey(bucket.name, o.key), obj, { etag: o.etag, recordedAt: f.recordedAt || new Date().toISOString() });
        if (f.reread) ctx.log.info(`${bucket.url(o.key)}: ETag changed since its first read (${f.recordedAt}), the bytes did not`);
        else recorded.push(o.key);
      }
      return { ...f.entry, ...obj };
    });
    if (recorded.length) ctx.log.info(`${recorded.length} objects have no published checksum: their sha256 is recorded at this first read, and every later read must match it`);
    return { manifest: { images, missingOptional: plan.missingOptional }, read };
  },

  async verify(ctx, _plan, { manifest: m }) {
    const store = openStore(ctx.site);
    for (const i of m.images) if ((await store.size(i.sha256)) !== i.size) throw new Error(`cloud: ${i.name} (${i.sha256}) is not in the artifact store with ${i.size} bytes`);
  },

  async record(_ctx, plan, { manifest: m, read }) {
    return {
      summary: `${m.images.length} cloud images verified and stored (${read.length} read from ${plan.source}, the others were in the store)`,
      manifests: { 'manifest.json': m },
    };
  },

  async dispose(plan) {
    plan.bucket?.destroy();
  },
};

export function readCloudManifest(root: string, project: string): CloudManifest {
  const file = join(targetDistDir({ root, project, target: 'cloud' }), 'manifest.json');
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`nx run ${project}:cloud\` first`);
  return readJson<CloudManifest>(file);
}
