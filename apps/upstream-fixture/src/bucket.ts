// The image producer's bucket, played by s3rver (a real S3 API on loopback): the fixture's cloud
// images uploaded in the layout empanadas' image builds write (empanadas-spec.md §1.6),
// `buildimage-<revision>-<arch>/<base>/<epoch>/<base>.<ext>`, container builds as
// `layer.tar.xz`, each beside the builder's `kiwi.result.json`. Every request s3rver serves
// after the upload is logged, so a test can see what a consumer listed and read.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { cloudBucketKey, loadRelease } from '@rocky/config';
import { releasePlan, SOURCE_DATE_EPOCH } from './model';
import { FixtureLayout } from './paths';

export interface BucketRequest {
  method: string;
  /** The decoded path: `/<bucket>/<key>` (path-style). */
  path: string;
  /** The query string, `?list-type=2&prefix=…`, or ''. */
  query: string;
}

export interface BucketUpload {
  key: string;
  /** The fixture file whose bytes it holds. */
  file: string;
}

export interface FixtureBucket {
  endpoint: string;
  region: string;
  bucket: string;
  /** s3rver's fixed credentials: put them in the environment of the code under test. */
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** A client of the bucket for the test itself (uploads, damage). */
  client: S3Client;
  /** The epoch directory the fixture's builds are uploaded under. */
  epoch: number;
  /** The images uploaded (checksum and kiwi files not listed). */
  images: BucketUpload[];
  /** Requests served since the upload (clear it with `requests.length = 0`). */
  requests: BucketRequest[];
  put(key: string, body: Buffer | string): Promise<void>;
  close(): Promise<void>;
}

export interface BucketOptions {
  /** Workspace whose release files describe the images. */
  workspaceRoot: string;
  /** A fixture root built by ensureFixture. */
  root: string;
  releases: string[];
  /** s3rver's data directory. */
  dir: string;
  bucket?: string;
  /** Also upload each image's BSD-tag `.CHECKSUM` as `<key>.CHECKSUM` (a producer that publishes checksums). */
  checksums?: boolean;
}

interface S3rver {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
  httpServer: import('node:http').Server;
}

const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/** Starts s3rver on a free loopback port with the releases' images in the producer's layout. */
export async function serveBucket(opts: BucketOptions): Promise<FixtureBucket> {
  // Loaded here: importing the fixture must not load the AWS SDK (the Nx fingerprint script does).
  const [{ PutObjectCommand }, { s3Client }] = await Promise.all([import('@aws-sdk/client-s3'), import('@rocky/store')]);
  const bucket = opts.bucket ?? 'resf-empanadas';
  const region = 'us-east-2';
  mkdirSync(opts.dir, { recursive: true });
  // s3rver ships no types; a computed specifier keeps tsc from looking for them.
  const Ctor = ((await import('s3rver' as string)) as { default: new (o: Record<string, unknown>) => S3rver }).default;
  const server = new Ctor({ port: 0, address: '127.0.0.1', directory: opts.dir, silent: true, configureBuckets: [{ name: bucket }] });
  const { port } = await server.run();
  const requests: BucketRequest[] = [];
  server.httpServer.on('request', (req: import('node:http').IncomingMessage) => {
    const url = new URL(req.url ?? '/', 'http://s3rver');
    requests.push({ method: req.method ?? '', path: decodeURIComponent(url.pathname), query: url.search });
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const client = s3Client({ region, endpoint }, { credentials: CREDENTIALS });
  const put = async (key: string, body: Buffer | string) => {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: Buffer.byteLength(body) }));
  };
  const images: BucketUpload[] = [];
  try {
    const layout = new FixtureLayout(opts.root);
    for (const name of opts.releases) {
      const rel = loadRelease(opts.workspaceRoot, name);
      for (const img of releasePlan(rel).images) {
        const file = join(layout.images(rel.project), img.arch, img.file);
        const key = cloudBucketKey(rel, img.file, SOURCE_DATE_EPOCH, img.type === 'Container' ? 'layer.tar.xz' : img.file);
        const dir = key.slice(0, key.lastIndexOf('/') + 1);
        await put(key, readFileSync(file));
        await put(`${dir}kiwi.result.json`, `${JSON.stringify({ image: img.file })}\n`);
        if (opts.checksums) await put(`${key}.CHECKSUM`, readFileSync(`${file}.CHECKSUM`));
        images.push({ key, file });
      }
    }
  } catch (e) {
    client.destroy();
    await server.close();
    throw e;
  }
  requests.length = 0;
  return {
    endpoint,
    region,
    bucket,
    epoch: SOURCE_DATE_EPOCH,
    credentials: CREDENTIALS,
    client,
    images,
    requests,
    put,
    close: async () => {
      client.destroy();
      await server.close();
    },
  };
}
