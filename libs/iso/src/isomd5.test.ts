// The implant prediction against the real isomd5sum: the header implantisomd5 writes, checkisomd5's
// verdict, and the fallback whenever the prediction does not hold.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '@rocky/exec';
import { followFile, implantResult, ImplantPrediction, parsePvd, readAppData, renderAppData, sha256WithAppData, type Implant } from './isomd5';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'isomd5-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** An ISO of `files` random files of `bytes` each (checkisomd5 needs about 700 KB at least). */
async function makeIso(name: string, files: number, bytes: number): Promise<string> {
  const dir = join(tmp, `${name}-tree`);
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < files; i++) writeFileSync(join(dir, `f${i}`), randomBytes(bytes));
  const iso = join(tmp, `${name}.iso`);
  await run(['xorriso', '-no_rc', '-as', 'mkisofs', '-V', `VOL-${name}`, '-o', iso, dir]);
  return iso;
}

function predict(iso: string, chunk: number): Implant {
  const p = new ImplantPrediction();
  const data = readFileSync(iso);
  for (let at = 0; at < data.length; at += chunk) p.update(data.subarray(at, at + chunk));
  return p.finish(true);
}

const sha256sum = async (f: string) => (await run(['sha256sum', f])).stdout.split(' ')[0];

function flipByte(file: string, at: number): void {
  const fd = openSync(file, 'r+');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, at);
  b[0] ^= 0xff;
  writeSync(fd, b, 0, 1, at);
  closeSync(fd);
}

describe('ImplantPrediction', () => {
  // Sizes around the fragment arithmetic: barely over checkisomd5's minimum, odd sector counts, several MiB.
  it.each([
    ['small', 1, 800_000],
    ['odd', 7, 333_333],
    ['larger', 3, 2_500_000],
  ])('predicts the header implantisomd5 writes (%s image), however the bytes arrive', async (name, files, bytes) => {
    const iso = await makeIso(name, files, bytes);
    const byChunk = [7777, 32768, 4 << 20].map((c) => predict(iso, c));
    for (const p of byChunk) expect(p.appData.equals(byChunk[0].appData)).toBe(true);
    const [p] = byChunk;
    expect(p.pvd.volumeId).toBe(`VOL-${name}`);
    expect(p.fragmentSums).toMatch(/^[0-9a-f]{60}$/);
    const sha = await sha256WithAppData(iso, p.appData);

    await run(['implantisomd5', '--supported-iso', '-f', iso]);
    expect((await readAppData(iso)).toString('latin1')).toBe(p.appData.toString('latin1'));
    expect(sha).toBe(await sha256sum(iso));
    await run(['checkisomd5', iso]);
    const shown = (await run(['checkisomd5', '--md5sumonly', iso])).stdout;
    expect(shown).toContain(p.md5);
    expect(shown).toContain(`Fragment sums: ${p.fragmentSums}`);
  });

  it('names what is wrong with an image it cannot predict', () => {
    expect(() => parsePvd(Buffer.alloc(2048))).toThrow(/no ISO 9660 primary volume descriptor/);
    expect(() => new ImplantPrediction().update(Buffer.alloc(40_000))).toThrow(/no ISO 9660 primary volume descriptor/);
    const p = new ImplantPrediction();
    p.update(Buffer.alloc(1000));
    expect(() => p.finish(true)).toThrow(/ended before its primary volume descriptor/);
  });

  it('refuses to finish on an image shorter than its volume', async () => {
    const iso = await makeIso('short', 1, 900_000);
    const data = readFileSync(iso);
    const p = new ImplantPrediction();
    p.update(data.subarray(0, data.length / 2));
    expect(() => p.finish(true)).toThrow(/ended at \d+ bytes, its volume is \d+/);
  });
});

describe('followFile', () => {
  it('reads every byte another process appends, and ends when that process ends', async () => {
    const file = join(tmp, 'growing');
    writeFileSync(file, '');
    const writer = run(['sh', '-c', `for i in 1 2 3 4 5 6 7 8; do head -c 300001 /dev/urandom >> '${file}'; sleep 0.05; done`]).then(() => undefined);
    const h = createHash('sha256');
    let chunks = 0;
    const n = await followFile(file, writer, (b) => {
      h.update(b);
      chunks++;
    });
    expect(n).toBe(8 * 300001);
    expect(h.digest('hex')).toBe(await sha256sum(file));
    expect(chunks).toBeGreaterThan(1);
  });

  it('stops when the writer fails', async () => {
    const file = join(tmp, 'failing');
    writeFileSync(file, randomBytes(100_000));
    let reads = 0;
    await expect(followFile(file, Promise.reject(new Error('xorriso: FAILURE')), () => reads++)).rejects.toThrow(/xorriso: FAILURE/);
    expect(reads).toBeLessThanOrEqual(1);
  });
});

describe('implantResult', () => {
  it('takes the prediction when implantisomd5 wrote exactly the predicted header', async () => {
    const iso = await makeIso('fast', 1, 1_200_000);
    const p = predict(iso, 1 << 20);
    const sha = sha256WithAppData(iso, p.appData);
    await run(['implantisomd5', '--supported-iso', '-f', iso]);
    const lines: string[] = [];
    await expect(implantResult(iso, { implant: p, sha256: sha }, (l) => lines.push(l))).resolves.toEqual({ md5: p.md5, sha256: await sha256sum(iso), volumeId: 'VOL-fast' });
    expect(lines).toEqual([]);
  });

  it('falls back to checkisomd5 when the image changed after it was read (a writer that went back)', async () => {
    const iso = await makeIso('back', 1, 1_200_000);
    const p = predict(iso, 1 << 20);
    flipByte(iso, 600_000);
    await run(['implantisomd5', '--supported-iso', '-f', iso]);
    const lines: string[] = [];
    const r = await implantResult(iso, { implant: p, sha256: sha256WithAppData(iso, p.appData) }, (l) => lines.push(l));
    expect(r.md5).not.toBe(p.md5);
    expect((await run(['checkisomd5', '--md5sumonly', iso])).stdout).toContain(r.md5);
    expect(r.sha256).toBe(await sha256sum(iso));
    expect(lines.join('\n')).toMatch(new RegExp(`implanted md5 ${r.md5}, predicted ${p.md5}; verifying with checkisomd5`));
  });

  it('fails when checkisomd5 does: an image corrupted after the implant', async () => {
    const iso = await makeIso('corrupt', 1, 1_200_000);
    const p = predict(iso, 1 << 20);
    await run(['implantisomd5', '--supported-iso', '-f', iso]);
    const bad = join(tmp, 'corrupt-copy.iso');
    copyFileSync(iso, bad);
    flipByte(bad, 700_000);
    const stale = { ...p, appData: renderAppData('0'.repeat(32), p.fragmentSums, true) };
    await expect(implantResult(bad, { implant: stale, sha256: Promise.resolve('unused') })).rejects.toThrow(/corrupt-copy\.iso: checkisomd5 failed/);
    await expect(implantResult(bad, undefined)).rejects.toThrow(/checkisomd5 failed/);
  });
});
