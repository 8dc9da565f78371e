import { describe, it, expect, beforeEach, afterEach, vi } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, readFileSync, statSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { Store, IntegrityError, integrityOf } from './store';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

// Both ways of calling the file system: synchronous (a store on a local disk) and the promise API (on NFS).
describe.each([
  ['local', true],
  ['network', false],
])('Store (%s file system calls)', (_, localFs) => {
  let dir: string;
  let store: Store;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'store-'));
    store = new Store(join(dir, 'store'), localFs);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('stores a verified stream once and hardlinks it into several trees', async () => {
    const body = Buffer.from('package bytes');
    const obj = await store.putStream(Readable.from([body]), { sha256: sha(body), size: body.length, what: 'p.rpm' });
    expect(obj).toEqual({ sha256: sha(body), size: body.length });
    expect(await store.has(obj.sha256)).toBe(true);
    const a = join(dir, 'c1/Packages/p.rpm');
    const b = join(dir, 'c2/Packages/p.rpm');
    expect(await store.materialize(obj.sha256, a)).toBe('linked');
    expect(await store.materialize(obj.sha256, b)).toBe('linked');
    expect(await store.materialize(obj.sha256, b)).toBe('present');
    expect(statSync(a).ino).toBe(statSync(b).ino);
    expect(readFileSync(a)).toEqual(body);
  });

  it("an object's path is cacache's content path, so cacache finds and verifies what we store", async () => {
    const body = Buffer.from('cacache reads this');
    const obj = await store.putBytes(body, { sha256: sha(body), what: 'x' });
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const contentPath = require('cacache/lib/content/path') as (cache: string, integrity: string) => string;
    expect(store.pathOf(obj.sha256)).toBe(contentPath(join(dir, 'store'), integrityOf(obj.sha256)));
    await store.setKey('k', obj); // cacache verifies the content its index names
    expect(await store.verify()).toEqual({ verifiedContent: 1, badContentCount: 0 });
    expect(() => store.pathOf('../../etc/passwd')).toThrow(/not a sha256/);
  });

  it('putBytes verifies and stores bytes held in memory; hasMany answers as has() does, cold store included', async () => {
    const a = Buffer.from('package a');
    const absent = [sha('never stored'), `${sha(a).slice(0, 2)}${'0'.repeat(62)}`]; // the second under a's first-level directory
    expect(await store.hasMany([sha(a), ...absent])).toEqual([false, false, false]);
    await expect(store.putBytes(a, { sha256: sha('other'), size: a.length, what: 'a.rpm' })).rejects.toBeInstanceOf(IntegrityError);
    await expect(store.putBytes(a, { sha256: sha(a), size: a.length + 1, what: 'a.rpm' })).rejects.toThrow(/a\.rpm: checksum mismatch/);
    const tmp = join(dir, 'store/tmp');
    expect(existsSync(tmp) ? readdirSync(tmp) : []).toEqual([]);
    expect(await store.putBytes(a, { sha256: sha(a), size: a.length, what: 'a.rpm' })).toEqual({ sha256: sha(a), size: a.length });
    expect((statSync(store.pathOf(sha(a))).mode & 0o777).toString(8)).toBe('444');
    expect(await store.hasMany([sha(a), ...absent])).toEqual([true, false, false]);
    expect(await store.hasMany([])).toEqual([]);
  });

  it('rejects a body whose checksum does not match and keeps nothing of it', async () => {
    const body = Buffer.from('corrupted');
    await expect(store.putStream(Readable.from([body]), { sha256: sha('original'), what: 'x.rpm' })).rejects.toBeInstanceOf(IntegrityError);
    expect(await store.has(sha(body))).toBe(false);
    expect(readdirSync(join(dir, 'store/tmp'))).toEqual([]);
  });

  it('rejects a truncated body by size', async () => {
    const body = Buffer.from('half');
    await expect(store.putStream(Readable.from([body]), { size: 8, what: 'x.rpm' })).rejects.toThrow(/checksum mismatch/);
  });

  // Small objects of announced size are stored from memory, bigger ones streamed: both keep the checks.
  for (const [what, n] of [['small (in memory)', 3000], ['big (streamed)', (1 << 20) + 3000]] as const) {
    it(`stores a ${what} object from many chunks read-only, and refuses one longer than announced, keeping nothing`, async () => {
      const body = Buffer.alloc(n, 7);
      const chunks = Array.from({ length: 3 }, (_, i) => body.subarray((i * n) / 3, ((i + 1) * n) / 3));
      let seen = 0;
      const obj = await store.putStream(Readable.from(chunks), { sha256: sha(body), size: n, what: 'p.rpm' }, (k) => (seen += k));
      expect(obj).toEqual({ sha256: sha(body), size: n });
      expect(seen).toBe(n);
      expect(readFileSync(store.pathOf(obj.sha256))).toEqual(body);
      expect(statSync(store.pathOf(obj.sha256)).mode & 0o777).toBe(0o444);
      const longer = Buffer.concat([body, Buffer.from('more')]);
      await expect(store.putStream(Readable.from([longer]), { sha256: sha(body), size: n, what: 'q.rpm' })).rejects.toThrow(/q\.rpm: checksum mismatch/);
      expect(await store.has(sha(longer))).toBe(false);
      expect(readdirSync(join(dir, 'store/tmp'))).toEqual([]);
    });
  }

  it('ingests a local file by hardlink and names it by key', async () => {
    const f = join(dir, 'boot.iso');
    writeFileSync(f, 'iso bytes');
    const obj = await store.putFile(f);
    expect(statSync(store.pathOf(obj.sha256)).ino).toBe(statSync(f).ino);
    await store.setKey('dvd:x86_64:abc', obj, { arch: 'x86_64' });
    const got = await store.getKey('dvd:x86_64:abc');
    expect(got?.sha256).toBe(obj.sha256);
    expect(got?.metadata.arch).toBe('x86_64');
    expect(await store.getKey('dvd:x86_64:other')).toBeUndefined();
    expect((await store.verify()).badContentCount).toBe(0);
  });

  it('a second file with bytes already stored becomes a link to the object, not a second copy', async () => {
    const a = join(dir, 'Rocky-9.7-20261206.0/work/lorax/boot.iso');
    const b = join(dir, 'Rocky-9.7-20261206.1/work/lorax/boot.iso');
    const c = join(dir, 'other.iso');
    for (const [f, text] of [[a, 'same bytes'], [b, 'same bytes'], [c, 'other bytes']]) {
      mkdirSync(join(f, '..'), { recursive: true });
      writeFileSync(f, text);
    }
    const first = await store.putFile(a);
    const again = await store.putFile(b, first);
    expect(again).toEqual(first);
    expect(statSync(b).ino).toBe(statSync(store.pathOf(first.sha256)).ino);
    expect(readFileSync(b, 'utf8')).toBe('same bytes');
    expect(readdirSync(join(b, '..'))).toEqual(['boot.iso']);
    await store.putFile(c);
    expect(statSync(c).ino).not.toBe(statSync(a).ino);
    expect(statSync(store.pathOf(first.sha256)).nlink).toBe(3);
  });

  it('never leaves a partial file under the destination name', async () => {
    const obj = await store.putStream(Readable.from([Buffer.from('x')]), { what: 'x' });
    const dest = join(dir, 'tree/x');
    await store.materialize(obj.sha256, dest);
    expect(readdirSync(join(dir, 'tree'))).toEqual(['x']);
    await expect(store.materialize('0'.repeat(64), join(dir, 'tree/y'))).rejects.toThrow(/missing/);
    expect(existsSync(join(dir, 'tree/y'))).toBe(false);
  });

  it('a small object stored twice at once (a concurrent writer) is kept once, its temp files gone; a failed write keeps nothing', async () => {
    const body = Buffer.from('small object');
    const expect1 = { sha256: sha(body), size: body.length, what: 'p.rpm' };
    const [x, y] = await Promise.all([store.putBytes(body, expect1), store.putStream(Readable.from([body]), expect1)]);
    expect(x).toEqual(y);
    expect(readdirSync(join(dir, 'store/tmp'))).toEqual([]);
    expect(statSync(store.pathOf(x.sha256)).nlink).toBe(1);
    // A store whose content directory cannot be made: the error is the filesystem's, and no temp file stays.
    const ro = new Store(join(dir, 'ro'), localFs);
    mkdirSync(join(dir, 'ro/tmp'), { recursive: true });
    writeFileSync(join(dir, 'ro/content-v2'), 'not a directory');
    await expect(ro.putBytes(body, expect1)).rejects.toThrow(/ENOTDIR/);
    expect(readdirSync(join(dir, 'ro/tmp'))).toEqual([]);
  });

  it('bytes the store has are not written again: putBytes of a present object touches no temp file', async () => {
    const body = Buffer.from('repomd.xml, the same as last time');
    const first = await store.putBytes(body, { what: 'repomd.xml' });
    const ino = statSync(store.pathOf(first.sha256)).ino;
    // Its temp dir made unusable: a write would fail with ENOTDIR.
    rmSync(join(dir, 'store/tmp'), { recursive: true, force: true });
    writeFileSync(join(dir, 'store/tmp'), 'not a directory');
    expect(await store.putBytes(body, { what: 'repomd.xml' })).toEqual(first);
    expect(statSync(store.pathOf(first.sha256)).ino).toBe(ino);
    // Still verified first: wrong bytes for a sha256 the store has are refused.
    await expect(store.putBytes(Buffer.from('other'), { sha256: first.sha256, what: 'repomd.xml' })).rejects.toBeInstanceOf(IntegrityError);
  });

  it('absent: the store is not asked again, and an object stored meanwhile is kept as it is', async () => {
    const body = Buffer.from('a package a concurrent sync stored after our plan');
    const theirs = await store.putBytes(body, { what: 'p.rpm' });
    const ino = statSync(store.pathOf(theirs.sha256)).ino;
    const has = vi.spyOn(store, 'has');
    try {
      expect(await store.putBytes(body, { sha256: theirs.sha256, what: 'p.rpm', absent: true })).toEqual(theirs);
      expect(has).not.toHaveBeenCalled();
    } finally {
      has.mockRestore();
    }
    expect(statSync(store.pathOf(theirs.sha256)).ino).toBe(ino);
    expect(readdirSync(join(dir, 'store/tmp'))).toEqual([]);
  });
});
