// The artifact store on S3 (or an S3-compatible server), for runners that share no filesystem.
//
// The bucket holds the same content-addressed objects as a local store; every runner keeps a
// local cacache store (site.store.cache) as a read-through cache, so trees are still built by
// hardlink and each object crosses the network at most once per runner. Nothing downloaded is
// trusted: bytes stream into the local store through Store.putStream with the expected sha256,
// so a corrupted or truncated object is refused and never lands under its final name.
//
// S3Store extends Store only so that it is assignable where a Store is expected (a class with
// private members is nominal in TypeScript); all work is delegated to a plain local Store, so
// the base class's internal calls (putFile → this.has) never reach the bucket by accident.
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { Store, type StoredObject } from './store';

/**
 * The AWS SDK, loaded on first use: most processes that load the store (every stage, the upstream
 * fingerprint of every task hash) never reach S3, and loading the SDK costs ~0.2 CPU-s.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const awsSdk = (): typeof import('@aws-sdk/client-s3') => require('@aws-sdk/client-s3');

const HEX64 = /^[0-9a-f]{64}$/;
const MiB = 1 << 20;

export interface S3StoreOptions {
  bucket: string;
  /** Key prefix inside the bucket; a trailing `/` is added when missing. */
  prefix?: string;
  /** Local cache directory (a plain cacache Store). */
  cache: string;
  client: S3Client;
  /** Objects above this size go up as multipart uploads (a single PutObject is capped at 5 GiB). */
  multipartThreshold?: number;
  /** Multipart part size (S3: at least 5 MiB, at most 10,000 parts). */
  partSize?: number;
}

/**
 * An S3 client for the artifact store. Checksums are WHEN_REQUIRED because the SDK's default
 * flexible checksums send streamed bodies with aws-chunked framing, which S3-compatible
 * servers (s3rver, older MinIO/Ceph) store verbatim: a silently corrupted object
 * (research/toolchain.md §4 gotcha 8). Integrity is ours instead: ChecksumSHA256 on upload
 * (verified server-side by AWS) and a sha256 check of every download.
 */
export function s3Client(opts: { region: string; endpoint?: string }, extra: S3ClientConfig = {}): S3Client {
  return new (awsSdk().S3Client)({
    region: opts.region,
    // Custom endpoints (MinIO, Ceph, s3rver) rarely have per-bucket DNS names.
    ...(opts.endpoint ? { endpoint: opts.endpoint, forcePathStyle: true } : {}),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...extra,
  });
}

const isNotFound = (e: unknown) => {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return err.name === 'NotFound' || err.name === 'NoSuchKey' || err.$metadata?.httpStatusCode === 404;
};

interface KeyRecord {
  key: string;
  sha256: string;
  size: number;
  metadata: Record<string, unknown>;
}

export class S3Store extends Store {
  readonly local: Store;
  readonly bucket: string;
  readonly prefix: string;
  readonly client: S3Client;
  private readonly multipartThreshold: number;
  private readonly partSize: number;
  /** One download per object at a time: parallel materializes of one package share it. */
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(opts: S3StoreOptions) {
    super(opts.cache);
    this.local = new Store(opts.cache);
    this.bucket = opts.bucket;
    this.prefix = opts.prefix && !opts.prefix.endsWith('/') ? `${opts.prefix}/` : (opts.prefix ?? '');
    this.client = opts.client;
    this.partSize = opts.partSize ?? 64 * MiB;
    this.multipartThreshold = opts.multipartThreshold ?? 4 * 1024 * MiB;
  }

  /** Bucket key of an object's bytes. */
  objectKey(sha256: string): string {
    if (!HEX64.test(sha256)) throw new Error(`not a sha256: ${sha256}`);
    return `${this.prefix}content/sha256/${sha256.slice(0, 2)}/${sha256.slice(2, 4)}/${sha256}`;
  }

  /** Bucket key of a named key's record (hashed: store keys may hold any characters). */
  keyKey(key: string): string {
    return `${this.prefix}keys/${createHash('sha256').update(key).digest('hex')}.json`;
  }

  private url(key: string) {
    return `s3://${this.bucket}/${key}`;
  }

  /** Size of the object in the bucket, or undefined when it is not there. */
  private async remoteSize(sha256: string): Promise<number | undefined> {
    try {
      const h = await this.client.send(new (awsSdk().HeadObjectCommand)({ Bucket: this.bucket, Key: this.objectKey(sha256) }));
      return h.ContentLength;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  override async has(sha256: string): Promise<boolean> {
    return (await this.local.has(sha256)) || (await this.remoteSize(sha256)) !== undefined;
  }

  override hasMany(shas: string[]): Promise<boolean[]> {
    return Promise.all(shas.map((h) => this.has(h)));
  }

  override async size(sha256: string): Promise<number | undefined> {
    return (await this.local.size(sha256)) ?? (await this.remoteSize(sha256));
  }

  override async putStream(source: Readable, expect: { sha256?: string; size?: number; what: string }, onData?: (n: number, chunk: Buffer) => void): Promise<StoredObject> {
    const obj = await this.local.putStream(source, expect, onData);
    await this.upload(obj, expect.what);
    return obj;
  }

  override async putBytes(buf: Buffer, expect: { sha256?: string; size?: number; what: string; absent?: boolean }): Promise<StoredObject> {
    const obj = await this.local.putBytes(buf, expect);
    await this.upload(obj, expect.what);
    return obj;
  }

  /** Generated bytes stay in the local store: any runner makes them alike, and a round trip per tree file would cost more than the bytes. */
  override placeBytes(bytes: Buffer, dest: string, mtime: number): Promise<void> {
    return this.local.placeBytes(bytes, dest, mtime);
  }

  override async putFile(file: string, known?: StoredObject): Promise<StoredObject> {
    const obj = await this.local.putFile(file, known);
    await this.upload(obj, file);
    return obj;
  }

  /**
   * Copies a locally verified object to the bucket unless it is already there, then checks
   * what the bucket holds (size; AWS also checks the sha256 we send with single-part uploads).
   */
  private async upload(obj: StoredObject, what: string): Promise<void> {
    const key = this.objectKey(obj.sha256);
    const present = await this.remoteSize(obj.sha256);
    if (present === obj.size) return;
    // present with another size: a broken earlier upload; overwrite it with the right bytes.
    const file = this.local.pathOf(obj.sha256);
    if (obj.size > this.multipartThreshold) {
      await this.uploadMultipart(key, file, obj.size);
    } else {
      await this.client.send(
        new (awsSdk().PutObjectCommand)({
          Bucket: this.bucket,
          Key: key,
          Body: createReadStream(file, { highWaterMark: MiB }),
          ContentLength: obj.size,
          ContentType: 'application/octet-stream',
          ChecksumSHA256: Buffer.from(obj.sha256, 'hex').toString('base64'),
        }),
      );
    }
    const stored = await this.remoteSize(obj.sha256);
    if (stored !== obj.size) {
      throw new Error(`${what}: upload to ${this.url(key)} stored ${stored ?? 'nothing'} bytes, expected ${obj.size} (a proxy or server that rewrites the body?)`);
    }
  }

  private async uploadMultipart(key: string, file: string, size: number): Promise<void> {
    const partSize = Math.max(this.partSize, Math.ceil(size / 10_000));
    const { UploadId } = await this.client.send(new (awsSdk().CreateMultipartUploadCommand)({ Bucket: this.bucket, Key: key, ContentType: 'application/octet-stream' }));
    try {
      const parts: { PartNumber: number; ETag?: string }[] = [];
      for (let start = 0, n = 1; start < size; start += partSize, n++) {
        const end = Math.min(start + partSize, size);
        const r = await this.client.send(
          new (awsSdk().UploadPartCommand)({
            Bucket: this.bucket,
            Key: key,
            UploadId,
            PartNumber: n,
            Body: createReadStream(file, { start, end: end - 1, highWaterMark: MiB }),
            ContentLength: end - start,
          }),
        );
        parts.push({ PartNumber: n, ETag: r.ETag });
      }
      await this.client.send(new (awsSdk().CompleteMultipartUploadCommand)({ Bucket: this.bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
    } catch (e) {
      // Abandoned parts are billed until aborted.
      await this.client.send(new (awsSdk().AbortMultipartUploadCommand)({ Bucket: this.bucket, Key: key, UploadId })).catch(() => undefined);
      throw e;
    }
  }

  /**
   * Makes the object present in the local cache (downloading and verifying it if needed) and
   * returns its local path. Callers that read an object's bytes through `pathOf` need this
   * first on a runner that has not seen the object yet.
   */
  override localPath(sha256: string): Promise<string> {
    return this.ensureLocal(sha256);
  }

  async ensureLocal(sha256: string): Promise<string> {
    const path = this.local.pathOf(sha256);
    if (await this.local.has(sha256)) return path;
    let p = this.inflight.get(sha256);
    if (!p) {
      p = this.download(sha256).finally(() => this.inflight.delete(sha256));
      this.inflight.set(sha256, p);
    }
    return p;
  }

  private async download(sha256: string): Promise<string> {
    const key = this.objectKey(sha256);
    let res;
    try {
      res = await this.client.send(new (awsSdk().GetObjectCommand)({ Bucket: this.bucket, Key: key }));
    } catch (e) {
      if (isNotFound(e)) throw new Error(`store object ${sha256} is missing (not in ${this.local.dir} nor ${this.url(key)})`);
      throw e;
    }
    if (!res.Body) throw new Error(`${this.url(key)}: empty response body`);
    // Verified while streaming into the local store; a mismatch throws IntegrityError and
    // leaves nothing behind.
    await this.local.putStream(res.Body as Readable, { sha256, size: res.ContentLength, what: this.url(key) });
    return this.local.pathOf(sha256);
  }

  override async materialize(sha256: string, dest: string): Promise<'linked' | 'copied' | 'present'> {
    await this.ensureLocal(sha256);
    return this.local.materialize(sha256, dest);
  }

  /**
   * Keys live in the bucket only: they are mutable pointers (the latest DVD for a set of
   * inputs), so a runner's local copy could be stale.
   */
  override async setKey(key: string, obj: StoredObject, metadata: Record<string, unknown> = {}): Promise<void> {
    // A key must never name an object other runners cannot fetch.
    if (await this.local.has(obj.sha256)) await this.upload(obj, key);
    else if ((await this.remoteSize(obj.sha256)) === undefined) throw new Error(`setKey ${key}: object ${obj.sha256} is in neither the local cache nor the bucket`);
    const record: KeyRecord = { key, sha256: obj.sha256, size: obj.size, metadata: { ...metadata, sha256: obj.sha256 } };
    const body = Buffer.from(JSON.stringify(record));
    await this.client.send(
      new (awsSdk().PutObjectCommand)({
        Bucket: this.bucket,
        Key: this.keyKey(key),
        Body: body,
        ContentLength: body.length,
        ContentType: 'application/json',
        ChecksumSHA256: createHash('sha256').update(body).digest('base64'),
      }),
    );
  }

  override async getKey(key: string): Promise<(StoredObject & { metadata: Record<string, unknown> }) | undefined> {
    let text: string;
    try {
      const res = await this.client.send(new (awsSdk().GetObjectCommand)({ Bucket: this.bucket, Key: this.keyKey(key) }));
      text = (await res.Body?.transformToString('utf8')) ?? '';
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
    let rec: KeyRecord;
    try {
      rec = JSON.parse(text) as KeyRecord;
    } catch {
      return undefined; // an unreadable record is a miss: the stage rebuilds and rewrites it
    }
    if (rec.key !== key || !HEX64.test(String(rec.sha256)) || !(await this.has(rec.sha256))) return undefined;
    return { sha256: rec.sha256, size: rec.size, metadata: rec.metadata ?? {} };
  }

  /** Checks the local cache only; bucket objects are verified whenever they are downloaded. */
  override verify(): Promise<{ verifiedContent: number; badContentCount: number }> {
    return this.local.verify();
  }
}
