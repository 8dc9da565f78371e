// Reading a bucket someone else writes (the image producer's) with the store's S3 client. An
// object is streamed straight into the content-addressed store and hashed as it streams, so
// bytes that do not match what is expected never land under a digest.
import type { S3Client } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { awsSdk, s3Client } from './s3';
import type { Store, StoredObject } from './store';

export interface BucketObject {
  key: string;
  size: number;
  /** Without the quotes S3 puts around it. */
  etag: string;
}

const unquote = (etag: string | undefined) => (etag ?? '').replace(/^"|"$/g, '');

export class Bucket {
  constructor(
    readonly name: string,
    readonly client: S3Client,
  ) {}

  /** A bucket on AWS (or at `endpoint`); credentials from the standard AWS chain, as for the store. */
  static open(src: { bucket: string; region: string; endpoint?: string }): Bucket {
    return new Bucket(src.bucket, s3Client(src));
  }

  url(key: string): string {
    return `s3://${this.name}/${key}`;
  }

  /** Every object under `prefix` (ListObjectsV2, page by page). */
  async list(prefix: string, pageSize?: number): Promise<BucketObject[]> {
    const out: BucketObject[] = [];
    let token: string | undefined;
    do {
      const r = await this.client.send(new (awsSdk().ListObjectsV2Command)({ Bucket: this.name, Prefix: prefix, ContinuationToken: token, MaxKeys: pageSize }));
      for (const o of r.Contents ?? []) if (o.Key) out.push({ key: o.Key, size: o.Size ?? 0, etag: unquote(o.ETag) });
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  private async get(obj: BucketObject) {
    try {
      // If-Match: the bytes read are those of the version listed, or the read fails.
      const res = await this.client.send(new (awsSdk().GetObjectCommand)({ Bucket: this.name, Key: obj.key, IfMatch: `"${obj.etag}"` }));
      if (!res.Body) throw new Error('empty response body');
      // Servers that ignore If-Match (s3rver) still say which version they sent.
      if (res.ETag && unquote(res.ETag) !== obj.etag) throw new Error(`ETag ${unquote(res.ETag)}, listed as ${obj.etag}`);
      return res.Body as Readable & { transformToString(enc?: string): Promise<string> };
    } catch (e) {
      const err = e as Error & { $metadata?: { httpStatusCode?: number } };
      const why = err.$metadata?.httpStatusCode === 412 ? `changed after it was listed (ETag no longer ${obj.etag})` : err.message;
      throw new Error(`${this.url(obj.key)}: ${why}`, { cause: e });
    }
  }

  /** A small object's text (a checksum file); a large one is refused rather than buffered. */
  async text(obj: BucketObject, maxBytes = 1 << 20): Promise<string> {
    if (obj.size > maxBytes) throw new Error(`${this.url(obj.key)}: ${obj.size} bytes, expected a small text file (at most ${maxBytes})`);
    return (await this.get(obj)).transformToString('utf8');
  }

  /**
   * Streams an object into the store, checking its size and, when given, its sha256 while it
   * streams (IntegrityError on a mismatch; nothing is stored then).
   */
  async ingest(store: Store, obj: BucketObject, sha256?: string): Promise<StoredObject> {
    return store.putStream(await this.get(obj), { sha256, size: obj.size, what: this.url(obj.key) });
  }

  destroy(): void {
    this.client.destroy();
  }
}
