// Issue 16.5: the cloud stage reads the producer's bucket itself (empanadas-spec.md §1.6), here
// s3rver on loopback holding the fixture's images in the producer's real layout.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloudBucketKey, cloudObjectKey, loadRelease, type Release, type Site } from '@rocky/config';
import { openStore } from '@rocky/store';
import { cloudSourceFingerprint, type CloudPlan, type CloudResult } from '@rocky/stages';
import { serveBucket, type FixtureBucket } from '@rocky/upstream-fixture';
import { sharedFixture, testSite, type TestSite } from '../helpers/fixture';
import { repoRoot } from '../helpers/workspace';

const REL = 'rocky-9';
let E: number; // the fixture builds' upload epoch
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const checksum = (name: string, bytes: Buffer | string) => `# ${name}: ${Buffer.byteLength(bytes)} bytes\nSHA256 (${name}) = ${sha(bytes)}\n`;
const flipped = (b: Buffer) => {
  const c = Buffer.from(b);
  c[c.length >> 1] ^= 0xff; // same length: only the sha256 can tell
  return c;
};

const ENV = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] as const;
const savedEnv = Object.fromEntries(ENV.map((k) => [k, process.env[k]]));

let dir: string;
let rel: Release;
let fx: string;
/** The producer publishing `<key>.CHECKSUM` beside each image, and one publishing none. */
let pub: FixtureBucket;
let raw: FixtureBucket;
const sites: TestSite[] = [];

const cloudSource = (b: FixtureBucket): Site['cloud'] => ({ source: { type: 's3', bucket: b.bucket, prefix: '', region: b.region, endpoint: b.endpoint } });
const site = async (b: FixtureBucket) => {
  const t = await testSite(fx, { cloud: cloudSource(b) });
  sites.push(t);
  return t;
};
const keyOf = (b: FixtureBucket, r: { path: string }) => r.path.slice(`/${b.bucket}/`.length);
const lists = (b: FixtureBucket) => b.requests.filter((r) => r.method === 'GET' && r.query.includes('list-type=2'));
const gets = (b: FixtureBucket) => b.requests.filter((r) => r.method === 'GET' && !r.query.includes('list-type')).map((r) => keyOf(b, r));
const imageKey = (file: string, epoch = E): string => cloudBucketKey(rel, file, epoch, file.includes('-Container-') ? 'layer.tar.xz' : file);
const fixtureFile = (b: FixtureBucket, key: string) => b.images.find((i) => i.key === key)!.file;

beforeAll(async () => {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  dir = mkdtempSync(join(tmpdir(), 'cloud-bucket-'));
  rel = loadRelease(repoRoot, REL);
  fx = await sharedFixture();
  pub = await serveBucket({ workspaceRoot: repoRoot, root: fx, releases: [REL], dir: join(dir, 'pub'), checksums: true });
  raw = await serveBucket({ workspaceRoot: repoRoot, root: fx, releases: [REL], dir: join(dir, 'raw') });
  E = pub.epoch;
  // The code under test takes credentials from the environment, as in production.
  process.env.AWS_ACCESS_KEY_ID = pub.credentials.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = pub.credentials.secretAccessKey;
  // Other builds of three images, each with its published checksum.
  const other = async (file: string, epoch: number, bytes: string) => {
    await pub.put(imageKey(file, epoch), bytes);
    await pub.put(`${imageKey(file, epoch)}.CHECKSUM`, checksum(file, bytes));
  };
  await other('Rocky-9-GenericCloud-Base-9.7-20251119.0.x86_64.qcow2', E - 86400, 'an older build');
  await other('Rocky-9-EC2-Base-9.7-20251121.9.x86_64.qcow2', E + 86400, 'build 9 of the 21st');
  await other('Rocky-9-EC2-Base-9.7-20251121.10.x86_64.qcow2', E + 86400, 'build 10 of the 21st: newer than 9, though "10" < "9" as text');
  await other('Rocky-9-GenericCloud-LVM-9.7-20251120.0.x86_64.qcow2', E + 600, 'the same build uploaded again, later');
  pub.requests.length = 0;
});

afterAll(async () => {
  // Runs whether or not the tests passed: stop both s3rvers, remove every temp dir.
  for (const t of sites) await t.close().catch(() => undefined);
  await pub?.close().catch(() => undefined);
  await raw?.close().catch(() => undefined);
  if (dir) rmSync(dir, { recursive: true, force: true });
  for (const k of ENV) if (savedEnv[k] === undefined) delete process.env[k];
  else process.env[k] = savedEnv[k];
});

describe("cloud images from the producer's bucket", () => {
  let t: TestSite;
  let first: CloudResult;
  /** The key the stage must pick for each image, and the bytes it holds. */
  const chosen = new Map<string, Buffer>();

  it('picks the newest build of every image, places layer.tar.xz under its build name, verified against the published checksums', async () => {
    for (const i of pub.images) chosen.set(i.key, readFileSync(i.file));
    chosen.delete(imageKey('Rocky-9-EC2-Base-9.7-20251120.0.x86_64.qcow2'));
    chosen.set(imageKey('Rocky-9-EC2-Base-9.7-20251121.10.x86_64.qcow2', E + 86400), Buffer.from('build 10 of the 21st: newer than 9, though "10" < "9" as text'));
    chosen.delete(imageKey('Rocky-9-GenericCloud-LVM-9.7-20251120.0.x86_64.qcow2'));
    chosen.set(imageKey('Rocky-9-GenericCloud-LVM-9.7-20251120.0.x86_64.qcow2', E + 600), Buffer.from('the same build uploaded again, later'));

    t = await site(pub);
    const store = openStore(t.site);
    // A dry run lists and reads the checksums, and changes nothing.
    const dry = await t.run<CloudPlan>('cloud', REL, { dryRun: true });
    expect(dry.found.length).toBe(chosen.size);
    expect(pub.requests.filter((r) => r.method !== 'GET')).toEqual([]);
    expect(gets(pub).filter((k) => !k.endsWith('.CHECKSUM'))).toEqual([]);
    expect(await Promise.all([...chosen.values()].map((b) => store.has(sha(b))))).not.toContain(true);

    pub.requests.length = 0;
    first = await t.run<CloudResult>('cloud', REL);
    const log = pub.requests.map((r) => `${r.method} ${r.path}${r.query}`);
    console.log(`request log of the first run (${log.length} requests):\n  ${log.join('\n  ')}`);

    // One listing per arch, then one GET of each chosen image and of its checksum: nothing else.
    expect(lists(pub).map((r) => new URLSearchParams(r.query).get('prefix')).sort()).toEqual(rel.arches.map((a) => `buildimage-9.7-${a}/`).sort());
    expect(gets(pub).sort()).toEqual([...chosen.keys()].flatMap((k) => [k, `${k}.CHECKSUM`]).sort());
    expect(pub.requests.every((r) => r.method === 'GET')).toBe(true);

    const m = first.manifest;
    expect(m.missingOptional).toEqual([]);
    expect(m.images.map((i) => i.origin!.url).sort()).toEqual([...chosen.keys()].map((k) => `s3://resf-empanadas/${k}`).sort());
    for (const i of m.images) {
      const bytes = chosen.get(i.origin!.url.slice('s3://resf-empanadas/'.length))!;
      expect({ name: i.name, sha256: i.sha256, size: i.size, checksum: i.origin!.checksum }).toEqual({ name: i.name, sha256: sha(bytes), size: bytes.length, checksum: 'published' });
      expect(await store.size(i.sha256)).toBe(bytes.length);
    }
    const byName = (name: string) => m.images.find((i) => i.name === name);
    const container = byName('Rocky-9-Container-Base-9.7-20251120.0.x86_64.tar.xz')!;
    expect(container.origin!.url).toBe(`s3://resf-empanadas/buildimage-9.7-x86_64/Rocky-9-Container-Base-9.7-20251120.0.x86_64/${E}/layer.tar.xz`);
    expect(container.aliases).toEqual(['Rocky-9-Container-Base.latest.x86_64.tar.xz']);
    expect(byName('Rocky-9-EC2-Base-9.7-20251121.10.x86_64.qcow2')?.aliases).toEqual(['Rocky-9-EC2-Base.latest.x86_64.qcow2', 'Rocky-9-EC2.latest.x86_64.qcow2']);
    expect(byName('Rocky-9-GenericCloud-Base-9.7-20251120.0.x86_64.qcow2')).toBeDefined();
    expect(first.read).toHaveLength(chosen.size);
  });

  it('a second run downloads nothing', async () => {
    pub.requests.length = 0;
    const again = await t.run<CloudResult>('cloud', REL);
    expect(again.read).toEqual([]);
    expect(gets(pub).filter((k) => !k.endsWith('.CHECKSUM'))).toEqual([]);
    expect(lists(pub)).toHaveLength(rel.arches.length);
    expect(again.manifest).toEqual(first.manifest);
  });

  it('an object whose bytes changed, its checksum not, fails naming the key and both digests', async () => {
    const key = imageKey('Rocky-9-GenericCloud-Base-9.7-20251120.0.x86_64.qcow2');
    const good = readFileSync(fixtureFile(pub, key));
    const bad = flipped(good);
    await pub.put(key, bad);
    try {
      const fresh = await site(pub); // an empty store: the object must be read
      const err = (await fresh.run('cloud', REL).catch((e: unknown) => e)) as Error;
      console.log(`the failure: ${err.message}`);
      expect(err.message).toContain(`s3://resf-empanadas/${key}`);
      expect(err.message).toContain(`s3://resf-empanadas/${key}.CHECKSUM says sha256 ${sha(good)}`);
      expect(err.message).toContain(`the object read has sha256 ${sha(bad)}`);
      expect(await openStore(fresh.site).has(sha(bad))).toBe(false);
    } finally {
      await pub.put(key, good);
    }
  });
});

describe('a bucket without published checksums: the first read is recorded, later reads must match it', () => {
  let t: TestSite;
  it('records the sha256 of every first read in the store index, keyed by bucket and key with its ETag and size', async () => {
    t = await site(raw);
    const r = await t.run<CloudResult>('cloud', REL);
    expect(r.read).toHaveLength(raw.images.length);
    const store = openStore(t.site);
    for (const i of r.manifest.images) {
      const key = i.origin!.url.slice(`s3://${raw.bucket}/`.length);
      const bytes = readFileSync(fixtureFile(raw, key));
      const rec = await store.getKey(cloudObjectKey(raw.bucket, key));
      expect({ sha256: rec?.sha256, size: rec?.size, etag: rec?.metadata.etag }).toEqual({ sha256: sha(bytes), size: bytes.length, etag: createHash('md5').update(bytes).digest('hex') });
      expect(i.origin!.checksum).toBe('recorded');
    }
  });

  it('a second run downloads nothing', async () => {
    raw.requests.length = 0;
    const r = await t.run<CloudResult>('cloud', REL);
    expect(r.read).toEqual([]);
    expect(gets(raw)).toEqual([]);
    expect(lists(raw)).toHaveLength(rel.arches.length);
  });

  it('an object rewritten with other bytes fails naming the key, the recorded and the read digest', async () => {
    const key = imageKey('Rocky-9-Container-UBI-9.7-20251120.0.aarch64.tar.xz');
    const good = readFileSync(fixtureFile(raw, key));
    const bad = flipped(good);
    await raw.put(key, bad);
    raw.requests.length = 0;
    const err = (await t.run('cloud', REL).catch((e: unknown) => e)) as Error;
    console.log(`the failure: ${err.message}`);
    expect(err.message).toContain(`s3://${raw.bucket}/${key}: its bytes do not match: the sha256 recorded at its first read`);
    expect(err.message).toContain(`says sha256 ${sha(good)}, the object read has sha256 ${sha(bad)}`);
    expect(gets(raw)).toEqual([key]); // only the changed object is read again
    expect(await openStore(t.site).has(sha(bad))).toBe(false);
  });
});

describe("the bucket's fingerprint (the cloud target's Nx runtime input)", () => {
  it('is the same for an unchanged bucket, and changes with an object rewritten in place or a new build', async () => {
    const s = { cloud: cloudSource(pub) };
    pub.requests.length = 0;
    const fp = await cloudSourceFingerprint(s, rel);
    expect(await cloudSourceFingerprint(s, rel)).toBe(fp);
    expect(fp).toMatch(/^s3:\/\/resf-empanadas\/ [0-9a-f]{64}$/);
    expect(pub.requests.every((r) => r.method === 'GET' && r.query.includes('list-type=2'))).toBe(true); // listings only

    const key = imageKey('Rocky-9-RPI-9.7-20251120.0.aarch64.raw.xz');
    const good = readFileSync(fixtureFile(pub, key));
    await pub.put(key, flipped(good));
    expect(await cloudSourceFingerprint(s, rel)).not.toBe(fp);
    await pub.put(key, good);
    expect(await cloudSourceFingerprint(s, rel)).toBe(fp);
    await pub.put(imageKey('Rocky-9-RPI-9.7-20251122.0.aarch64.raw.xz'), 'a new build');
    expect(await cloudSourceFingerprint(s, rel)).not.toBe(fp);
  });
});
