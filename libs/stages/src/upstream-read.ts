// Reading an upstream fingerprint. What to read (the plan) is a pure function of the site, the
// release files and the code, and making it loads the config and ensures the fixture
// (upstream.ts); reading it needs neither, so the Nx hook keeps a plan between runs while those
// are unchanged (tools/executors/src/fingerprint.ts) and a warm run costs only the reads.
// Light on purpose: Node built-ins only, the libraries for remote sources loaded when used.
import { createHash } from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { DownloadLimits, Site } from '@rocky/config';

type BucketSource = Extract<NonNullable<Site['cloud']>['source'], { type: 's3' }>;

export type FingerprintPlan =
  /** Every repomd.xml of the release: a file (the fixture) or a URL; `label` names the tree. */
  | { kind: 'repos'; site: string; trees: { label: string; file?: string; url?: string }[]; download?: DownloadLimits }
  /** The cloud image source: none, a directory per arch, or a bucket prefix per arch. */
  | { kind: 'cloud-none' }
  | { kind: 'cloud-dir'; dirs: { arch: string; dir: string }[] }
  | { kind: 'cloud-bucket'; source: BucketSource; prefixes: string[] };

/**
 * The fingerprint a plan describes. Repos: sha256 over every repomd.xml (real sites GET them in
 * parallel). Cloud: names and sizes of a dir source; keys, sizes and ETags of a bucket source (an
 * object rewritten in place changes its ETag), so new images invalidate `cloud`.
 */
export async function readFingerprint(plan: FingerprintPlan): Promise<string> {
  const h = createHash('sha256');
  switch (plan.kind) {
    case 'repos': {
      const fetchBuffer = plan.trees.some((t) => t.url) ? (await import('@rocky/rpm-repo')).fetchBuffer : undefined;
      const read = (t: (typeof plan.trees)[number]) => (t.file ? readFile(t.file) : fetchBuffer!(t.url!, { attempts: 2, download: plan.download }));
      const sums = await Promise.all(plan.trees.map(async (t) => createHash('sha256').update(await read(t)).digest('hex')));
      plan.trees.forEach((t, i) => h.update(`${t.label} ${sums[i]}\n`));
      return `${plan.site} ${h.digest('hex')}`;
    }
    case 'cloud-none':
      return 'no cloud source';
    case 'cloud-dir':
      for (const { arch, dir } of plan.dirs) {
        const names = (await readdir(dir).catch(() => [] as string[])).sort();
        for (const n of names) h.update(`${arch}/${n} ${(await stat(join(dir, n))).size}\n`);
      }
      return h.digest('hex');
    case 'cloud-bucket': {
      const { Bucket } = await import('@rocky/store'); // only bucket sources pay for loading the SDK
      const bucket = Bucket.open(plan.source);
      try {
        for (const prefix of plan.prefixes) {
          const objects = (await bucket.list(prefix)).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
          for (const o of objects) h.update(`${o.key} ${o.size} ${o.etag}\n`);
        }
      } finally {
        bucket.destroy();
      }
      return `${bucket.url(plan.source.prefix)} ${h.digest('hex')}`;
    }
  }
}
