// implantisomd5's sums, computed here while xorriso is still writing the image. isomd5sum (1.2)
// hashes the image up to 15 sectors before its end, reading the 512-byte application area of the
// primary volume descriptor as spaces, 32 KiB at a time, and takes a "fragment sum" (three hex
// characters of the running md5) each time a read starts in the next of 21 equal parts. Predicting
// the header implantisomd5 will write lets the DVD build
//   - verify the implant without a third full read: a header equal to the prediction means the
//     implanted sums are those of the bytes read here, which is what checkisomd5 establishes;
//   - take the sha256 of the final image while implantisomd5 is still running.
// Any difference (another isomd5sum version, a writer that went back over what was read) is not an
// error: the caller falls back to checkisomd5 and a plain sha256 of the file.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { sha256File } from '@rocky/exec';
import { settleAll } from './files';
import { verifyIso } from './inspect';

const SECTOR = 2048;
const PVD_AT = 16 * SECTOR;
const APPDATA_AT = PVD_AT + 883;
const APPDATA_SIZE = 512;
const SKIP_SECTORS = 15;
const FRAGMENT_COUNT = 20;
const FRAGMENT_CHARS = 60 / FRAGMENT_COUNT;
/** implantisomd5's read size: where fragment sums are taken depends on it. */
const READ_SIZE = 16 * SECTOR;
const CHUNK = 4 << 20;

export interface Pvd {
  volumeId: string;
  /** Volume space size, in bytes. */
  isoSize: number;
}

/** The primary volume descriptor at sector 16 (the first descriptor xorriso and mkisofs write). */
export function parsePvd(sector: Buffer): Pvd {
  if (sector.length < SECTOR || sector[0] !== 1 || sector.toString('latin1', 1, 6) !== 'CD001') {
    throw new Error('no ISO 9660 primary volume descriptor at sector 16');
  }
  return { volumeId: sector.toString('latin1', 40, 72).trimEnd(), isoSize: sector.readUInt32BE(84) * SECTOR };
}

export interface Implant {
  md5: string;
  fragmentSums: string;
  /** The application area as implantisomd5 writes it. */
  appData: Buffer;
  pvd: Pvd;
}

/** The application area implantisomd5 writes for these sums. */
export function renderAppData(md5: string, fragmentSums: string, supported: boolean): Buffer {
  const text =
    `ISO MD5SUM = ${md5};SKIPSECTORS = ${SKIP_SECTORS};RHLISOSTATUS=${supported ? 1 : 0};` +
    `FRAGMENT SUMS = ${fragmentSums};FRAGMENT COUNT = ${FRAGMENT_COUNT};THIS IS NOT THE SAME AS RUNNING MD5SUM ON THIS ISO!!`;
  const out = Buffer.alloc(APPDATA_SIZE, 0x20);
  out.write(text, 'latin1');
  return out;
}

/** The md5 an application area names, if any (for messages). */
const appDataMd5 = (appData: Buffer) => /ISO MD5SUM = ([0-9a-f]{32})/.exec(appData.toString('latin1'))?.[1];

/**
 * The sums implantisomd5 computes, fed the image's bytes in order (any chunk sizes). Copies what
 * it keeps, so callers may reuse their buffers.
 */
export class ImplantPrediction {
  private readonly md5 = createHash('md5');
  /** The first bytes, kept until the primary volume descriptor has arrived. */
  private head: Buffer[] = [];
  private headBytes = 0;
  private seen = 0;
  private pvd?: Pvd;
  private total = 0;
  /** Image offsets after which implantisomd5 takes a fragment sum. */
  private checkpoints: number[] = [];
  private nextCheckpoint = 0;
  private fragments = '';

  update(chunk: Buffer): void {
    if (this.pvd) return this.consume(chunk);
    this.head.push(Buffer.from(chunk));
    this.headBytes += chunk.length;
    if (this.headBytes < PVD_AT + SECTOR) return;
    const head = Buffer.concat(this.head);
    this.head = [];
    this.start(parsePvd(head.subarray(PVD_AT, PVD_AT + SECTOR)));
    this.consume(head);
  }

  private start(pvd: Pvd): void {
    this.pvd = pvd;
    this.total = pvd.isoSize - SKIP_SECTORS * SECTOR;
    if (this.total <= APPDATA_AT + APPDATA_SIZE) throw new Error(`ISO volume of ${pvd.isoSize} bytes is too small for an implanted md5`);
    let previous = 0;
    for (let at = READ_SIZE; at < this.total; at += READ_SIZE) {
      const fragment = Math.floor((at * (FRAGMENT_COUNT + 1)) / this.total);
      if (fragment !== previous) this.checkpoints.push(Math.min(at + READ_SIZE, this.total));
      previous = fragment;
    }
  }

  private consume(chunk: Buffer): void {
    const start = this.seen;
    this.seen += chunk.length;
    if (start >= this.total) return;
    let data = start + chunk.length > this.total ? chunk.subarray(0, this.total - start) : chunk;
    const end = start + data.length;
    if (start < APPDATA_AT + APPDATA_SIZE && end > APPDATA_AT) {
      data = Buffer.from(data);
      data.fill(0x20, Math.max(APPDATA_AT - start, 0), Math.min(APPDATA_AT + APPDATA_SIZE - start, data.length));
    }
    let at = start;
    while (this.nextCheckpoint < this.checkpoints.length && this.checkpoints[this.nextCheckpoint] <= end) {
      const cp = this.checkpoints[this.nextCheckpoint++];
      this.md5.update(data.subarray(at - start, cp - start));
      at = cp;
      const d = this.md5.copy().digest();
      // "%01x" of a byte, first character: the high nibble, or the low one below 16.
      for (let i = 0; i < FRAGMENT_CHARS; i++) this.fragments += d[i].toString(16)[0];
    }
    this.md5.update(data.subarray(at - start));
  }

  /** The sums and header, once every byte up to the skipped tail has been seen. */
  finish(supported: boolean): Implant {
    if (!this.pvd) throw new Error('the image ended before its primary volume descriptor');
    if (this.seen < this.total) throw new Error(`the image ended at ${this.seen} bytes, its volume is ${this.pvd.isoSize}`);
    const md5 = this.md5.digest('hex');
    return { md5, fragmentSums: this.fragments, appData: renderAppData(md5, this.fragments, supported), pvd: this.pvd };
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Reads a file another process is writing front to back, until that process has ended (`writer`
 * resolved) and the end is reached. Returns the number of bytes read; stops with the writer's
 * error if it fails. Only bytes the writer has completed are visible to a read, so every chunk
 * holds final data if the writer never goes back.
 */
export async function followFile(file: string, writer: Promise<unknown>, onChunk: (b: Buffer) => void): Promise<number> {
  let ended = false;
  let failure: unknown;
  const settled = writer.then(
    () => (ended = true),
    (e) => (failure = e ?? new Error('the writer failed')),
  );
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    let pos = 0;
    for (;;) {
      if (failure) throw failure;
      // Read the flag first: once the writer has ended, a read that finds nothing is the end.
      const done = ended;
      const { bytesRead } = await fh.read(buf, 0, CHUNK, pos);
      if (bytesRead > 0) {
        onChunk(buf.subarray(0, bytesRead));
        pos += bytesRead;
      } else if (done) {
        return pos;
      } else {
        await Promise.race([sleep(20), settled]);
      }
    }
  } finally {
    await fh.close();
  }
}

/** sha256 of `file` with its application area replaced by `appData` (the implant to come). */
export async function sha256WithAppData(file: string, appData: Buffer): Promise<string> {
  const h = createHash('sha256');
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    for (let pos = 0; ; ) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, pos);
      if (!bytesRead) break;
      const end = pos + bytesRead;
      if (pos < APPDATA_AT + APPDATA_SIZE && end > APPDATA_AT) {
        const from = Math.max(APPDATA_AT - pos, 0);
        appData.copy(buf, from, Math.max(pos - APPDATA_AT, 0), Math.min(APPDATA_SIZE, end - APPDATA_AT));
      }
      h.update(buf.subarray(0, bytesRead));
      pos = end;
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

/** The application area as it is in the file now. */
export async function readAppData(file: string): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(APPDATA_SIZE);
    const { bytesRead } = await fh.read(buf, 0, APPDATA_SIZE, APPDATA_AT);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/**
 * After implantisomd5: the implanted md5, the image's sha256 and volume id. From the prediction
 * when the written header is exactly the predicted one; otherwise checkisomd5 verifies the image
 * and a full read takes its sha256 (checkisomd5's output goes to `logFile`).
 */
export async function implantResult(
  iso: string,
  predicted: { implant: Implant; sha256: Promise<string> } | undefined,
  log: (line: string) => void = () => {},
  logFile?: string,
): Promise<{ md5: string; sha256: string; volumeId: string }> {
  const written = await readAppData(iso);
  if (predicted && written.equals(predicted.implant.appData)) {
    return { md5: predicted.implant.md5, sha256: await predicted.sha256, volumeId: predicted.implant.pvd.volumeId };
  }
  if (predicted) log(`${basename(iso)}: implanted md5 ${appDataMd5(written) ?? '(none)'}, predicted ${predicted.implant.md5}; verifying with checkisomd5`);
  const [verified, sha256] = await settleAll<[Awaited<ReturnType<typeof verifyIso>>, string]>([verifyIso(iso, { requireMd5: true, logFile }), sha256File(iso)]);
  return { md5: verified.implantMd5!, sha256, volumeId: verified.volumeId };
}
