// Remote artifact stores: S3 against a real s3rver on loopback, and the shared-filesystem case.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, readdirSync, existsSync, statSync, createReadStream, writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash, randomBytes } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { S3Store, s3Client } from './s3';
import { Store, IntegrityError } from './store';
import { openStore } from './index';

interface S3rverLike {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
}
type S3rverCtor = new (opts: Record<string, unknown>) => S3rverLike;

const MiB = 1 << 20;
const BUCKET = 'releng-artifacts';
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** A deterministic pseudo-random stream of `size` bytes, produced chunk by chunk (never whole in memory). */
function bigStream(size: number, seed: string): { stream: Readable; digest: () => string } {
  const h = createHash('sha256');
  let left = size;
  let block = createHash('sha256').update(seed).digest();
  const stream = new Readable({
    read() {
      if (left === 0) return this.push(null);
      const n = Math.min(MiB, left);
      block = createHash('sha256').update(block).digest();
      const chunk = Buffer.alloc(n);
      for (let i = 0; i < n; i += 32) block.copy(chunk, i, 0, Math.min(32, n - i));
      chunk.writeUInt32BE(left >>> 0, 0); // make chunks differ beyond the 32-byte pattern
      h.update(chunk);
      left -= n;
      this.push(chunk);
    },
  });
  return { stream, digest: () => h.digest('hex') };
}

async function hashOf(stream: Readable): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  await pipeline(stream, async function* (src) {
    for await (const c of src as AsyncIterable<Buffer>) {
      h.update(c);
      size += c.length;
    }
  });
  return { sha256: h.digest('hex'), size };
}

describe('S3Store against s3rver', () => {
  let dir: string;
  let server: S3rverLike;
  let endpoint: string;
  let client: S3Client;
  const runner = (name: string, extra: Partial<ConstructorParameters<typeof S3Store>[0]> = {}) =>
    new S3Store({ bucket: BUCKET, prefix: 'releng', cache: join(dir, name, 'cache'), client, ...extra });

  beforeAll(async () => {
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
    dir = mkdtempSync(join(tmpdir(), 's3store-'));
    // s3rver ships no types; a computed specifier keeps tsc from looking for them.
    const S3rver = ((await import('s3rver' as string)) as { default: S3rverCtor }).default;
    server = new S3rver({ port: 0, address: '127.0.0.1', directory: join(dir, 's3rver'), silent: true, configureBuckets: [{ name: BUCKET }] });
    const { port } = await server.run();
    endpoint = `http://127.0.0.1:${port}`;
    client = s3Client({ region: 'us-east-1', endpoint }, { credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  });
  afterAll(async () => {
    client?.destroy();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  let big: { sha256: string; size: number };

  it('round-trips a 64 MiB streamed upload with the right sha256', async () => {
    const a = runner('a');
    const src = bigStream(64 * MiB, 'dvd');
    big = await a.putStream(src.stream, { what: 'Rocky-9-x86_64-dvd.iso' });
    expect(big).toEqual({ sha256: src.digest(), size: 64 * MiB });
    // What the bucket holds, read back independently of the store.
    const res = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: `releng/content/sha256/${big.sha256.slice(0, 2)}/${big.sha256.slice(2, 4)}/${big.sha256}` }));
    expect(await hashOf(res.Body as Readable)).toEqual(big);
    expect(statSync(a.pathOf(big.sha256)).size).toBe(big.size);
  });

  it('lets another runner with an empty cache materialize by digest, verified', async () => {
    const b = runner('b');
    expect(await b.local.has(big.sha256)).toBe(false);
    expect(await b.has(big.sha256)).toBe(true); // HeadObject
    expect(await b.size(big.sha256)).toBe(big.size);
    const dest = join(dir, 'b', 'compose/images/dvd.iso');
    // Two materializes at once share one download.
    const [r1] = await Promise.all([b.materialize(big.sha256, dest), b.materialize(big.sha256, join(dir, 'b', 'other/dvd.iso'))]);
    expect(r1).toBe('linked');
    expect(await hashOf(createReadStream(dest))).toEqual(big);
    expect(statSync(dest).ino).toBe(statSync(b.pathOf(big.sha256)).ino);
    expect((await b.verify()).badContentCount).toBe(0);
  });

  it('uploads large objects as multipart and they round-trip', async () => {
    const m = runner('m', { multipartThreshold: 8 * MiB, partSize: 5 * MiB });
    const src = bigStream(23 * MiB + 17, 'multipart');
    const obj = await m.putStream(src.stream, { what: 'multipart.iso' });
    const n = runner('n');
    const dest = join(dir, 'n', 'multipart.iso');
    await n.materialize(obj.sha256, dest);
    expect(await hashOf(createReadStream(dest))).toEqual({ sha256: src.digest(), size: 23 * MiB + 17 });
  });

  it('detects a body rewritten in transit at upload (the SDK default checksums, gotcha 8)', async () => {
    // The default client frames streamed parts as aws-chunked; s3rver stores the framing.
    const defaults = s3Client({ region: 'us-east-1', endpoint }, {
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      requestChecksumCalculation: 'WHEN_SUPPORTED',
      responseChecksumValidation: 'WHEN_SUPPORTED',
    });
    try {
      const w = runner('w', { client: defaults, multipartThreshold: 8 * MiB, partSize: 5 * MiB });
      await expect(w.putStream(bigStream(9 * MiB, 'framed').stream, { what: 'framed.iso' })).rejects.toThrow(/framed\.iso: upload .* stored \d+ bytes, expected 9437184/);
      // The store's own client sends plain bodies (the multipart test above round-trips).
      expect(await client.config.requestChecksumCalculation()).toBe('WHEN_REQUIRED');
      expect(await client.config.responseChecksumValidation()).toBe('WHEN_REQUIRED');
    } finally {
      defaults.destroy();
    }
  });

  it('refuses a corrupted object on download and leaves nothing under the final name', async () => {
    const a = runner('a');
    const body = randomBytes(3 * MiB);
    const obj = await a.putStream(Readable.from([body]), { what: 'BaseOS/Packages/b/bash.rpm' });
    // Same length, one flipped byte: only the sha256 check can catch it.
    const bad = Buffer.from(body);
    bad[MiB] ^= 0xff;
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: a.objectKey(obj.sha256), Body: bad, ContentLength: bad.length }));

    const c = runner('c');
    const dest = join(dir, 'c', 'tree/bash.rpm');
    const err = await c.materialize(obj.sha256, dest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as Error).message).toMatch(/checksum mismatch/);
    expect(existsSync(dest)).toBe(false);
    expect(await c.local.has(obj.sha256)).toBe(false);
    expect(readdirSync(join(dir, 'c', 'cache', 'tmp'))).toEqual([]);
  });

  it("places generated bytes (a tree's .treeinfo) from this runner's local store only: nothing goes to the bucket", async () => {
    const c = runner('generated');
    const bytes = Buffer.from('[general]\ntimestamp = 1796601600\n');
    const dest = join(dir, 'generated', 'compose/BaseOS/x86_64/os/.treeinfo');
    await c.placeBytes(bytes, dest, 1_796_601_600);
    expect(readFileSync(dest)).toEqual(bytes);
    expect(statSync(dest).mtimeMs).toBe(1_796_601_600_000);
    expect(statSync(dest).ino).toBe(statSync(c.pathOf(sha(bytes))).ino);
    expect(await c.local.has(sha(bytes))).toBe(true);
    expect(await runner('elsewhere').has(sha(bytes))).toBe(false); // not in the bucket
  });

  it('reports a missing object clearly', async () => {
    await expect(runner('c').materialize('0'.repeat(64), join(dir, 'c', 'x'))).rejects.toThrow(/missing.*s3:\/\/releng-artifacts\/releng\/content/);
    expect(await runner('c').has('0'.repeat(64))).toBe(false);
  });

  it('round-trips keys between runners', async () => {
    const a = runner('a');
    await a.setKey('dvd:rocky-9:x86_64:inputs=abc', big, { arch: 'x86_64' });
    const got = await runner('d').getKey('dvd:rocky-9:x86_64:inputs=abc');
    expect(got).toEqual({ ...big, metadata: { arch: 'x86_64', sha256: big.sha256 } });
    expect(await runner('d').getKey('dvd:rocky-9:x86_64:inputs=other')).toBeUndefined();
    await expect(a.setKey('k', { sha256: 'f'.repeat(64), size: 1 })).rejects.toThrow(/neither/);
  });

  it('is what openStore returns for an s3 site', () => {
    const s = openStore({ store: { type: 's3', bucket: BUCKET, prefix: 'p', endpoint, region: 'us-east-1', cache: join(dir, 'site-cache') } });
    expect(s).toBeInstanceOf(S3Store);
    expect(s).toBeInstanceOf(Store);
    expect((s as S3Store).objectKey('a'.repeat(64))).toBe(`p/content/sha256/aa/aa/${'a'.repeat(64)}`);
  });
});

describe('shared-filesystem store (the NFS case)', () => {
  it('one runner puts an ISO, another materializes it by digest, verified', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sharedfs-'));
    try {
      const iso = join(dir, 'runner1/boot.iso');
      const bytes = randomBytes(8 * MiB);
      mkdirSync(join(dir, 'runner1'));
      writeFileSync(iso, bytes);
      const obj = await new Store(join(dir, 'mnt/store')).putFile(iso);
      const reader = new Store(join(dir, 'mnt/store')); // another runner, same mount
      const dest = join(dir, 'runner2/compose/images/boot.iso');
      expect(await reader.materialize(obj.sha256, dest)).toBe('linked');
      expect(obj).toEqual({ sha256: sha(bytes), size: bytes.length });
      expect(sha(readFileSync(dest))).toBe(obj.sha256);
      expect((await reader.verify()).badContentCount).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
