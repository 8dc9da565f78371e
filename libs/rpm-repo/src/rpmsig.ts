// The signing key of an RPM, read from its signature header (no rpm process per package):
// lead (96 bytes), then a header structure whose RSAHEADER/DSAHEADER/PGP/GPG tag holds an
// OpenPGP signature packet; its issuer subpacket names the key. rpms.json records the short id.
import { open } from 'node:fs/promises';

/** Bytes read first: the lead and, in practice, the whole signature header. */
export const RPM_HEAD_BYTES = 8192;
const SIG_TAGS = new Set([268 /* RSAHEADER */, 267 /* DSAHEADER */, 1002 /* PGP */, 1005 /* GPG */]);

/** 16-hex-digit key id of the first OpenPGP signature in an RPM's signature header, or null. */
export async function rpmSignerKeyId(file: string): Promise<string | null> {
  const fh = await open(file, 'r');
  try {
    // One read nearly always holds the lead and the whole signature header (a few KiB); a second only when it does not.
    const head = Buffer.alloc(RPM_HEAD_BYTES);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    const found = rpmSignerOf(head.subarray(0, bytesRead), file, bytesRead < head.length);
    if (found !== undefined) return found;
    const need = 96 + 16 + signatureHeaderSize(head, file);
    const all = Buffer.alloc(need);
    await fh.read(all, 0, need, 0);
    return rpmSignerOf(all, file, true)!;
  } finally {
    await fh.close();
  }
}

/**
 * The signer (as rpmSignerKeyId) from the first bytes of an RPM: undefined when `head` ends
 * before the signature header does, unless `whole` (the file ends there: the rest reads as zeros).
 */
export function rpmSignerOf(head: Buffer, file: string, whole = false): string | null | undefined {
  const need = 96 + 16 + signatureHeaderSize(head, file);
  if (head.length < need) {
    if (!whole) return undefined;
    head = Buffer.concat([head, Buffer.alloc(need - head.length)]);
  }
  for (const { start, end } of signatureSpans(head)) {
    const id = pgpIssuer(head.subarray(start, end));
    if (id) return id;
  }
  return null;
}

/** Where each OpenPGP signature of an RPM's signature header lies in `rpm` (which holds the whole header), in header order. */
export function rpmSignatureSpans(rpm: Buffer, file: string): { start: number; end: number }[] {
  if (rpm.length < 96 + 16 + signatureHeaderSize(rpm, file)) throw new Error(`${file}: the signature header ends past ${rpm.length} bytes`);
  return signatureSpans(rpm);
}

/** rpmSignatureSpans of a header its caller checked (signatureHeaderSize) and holds whole. */
function signatureSpans(rpm: Buffer): { start: number; end: number }[] {
  const nindex = rpm.readUInt32BE(96 + 8);
  const store = 96 + 16 + nindex * 16;
  // An entry pointing past the header's data is cut at its end, as a read of the header alone would be.
  const limit = store + rpm.readUInt32BE(96 + 12);
  const spans: { start: number; end: number }[] = [];
  for (let i = 0; i < nindex; i++) {
    const e = 96 + 16 + i * 16;
    if (!SIG_TAGS.has(rpm.readUInt32BE(e))) continue;
    const start = Math.min(store + rpm.readUInt32BE(e + 8), limit);
    spans.push({ start, end: Math.min(start + rpm.readUInt32BE(e + 12), limit) });
  }
  return spans;
}

/** Bytes of the signature header after its 16-byte intro (index entries and data), checked for plausibility. */
function signatureHeaderSize(head: Buffer, file: string): number {
  if (head.length < 96 + 16 || head.readUInt32BE(0) !== 0xedabeedb) throw new Error(`${file}: not an RPM (bad lead magic)`);
  if (head.readUInt32BE(96) >>> 8 !== 0x8eade8) throw new Error(`${file}: bad signature header magic`);
  const nindex = head.readUInt32BE(96 + 8);
  const hsize = head.readUInt32BE(96 + 12);
  if (nindex > 1000 || hsize > 1 << 20) throw new Error(`${file}: implausible signature header`);
  return nindex * 16 + hsize;
}

/** Issuer key id of an OpenPGP signature packet (v3 or v4). */
export function pgpIssuer(pkt: Buffer): string | null {
  if (pkt.length < 2 || !(pkt[0] & 0x80)) return null;
  let off: number;
  if (pkt[0] & 0x40) {
    // new-format length
    const l0 = pkt[1];
    off = l0 < 192 ? 2 : l0 < 224 ? 3 : 6;
  } else {
    const lt = pkt[0] & 3;
    off = 1 + (lt === 0 ? 1 : lt === 1 ? 2 : lt === 2 ? 4 : 0);
  }
  const version = pkt[off];
  if (version === 3) return pkt.subarray(off + 7, off + 15).toString('hex');
  if (version !== 4 && version !== 5) return null;
  let p = off + 4;
  for (const _area of ['hashed', 'unhashed']) {
    const len = pkt.readUInt16BE(p);
    let q = p + 2;
    const end = q + len;
    while (q < end) {
      let sl = pkt[q];
      let hdr = 1;
      if (sl >= 192 && sl < 255) (sl = ((sl - 192) << 8) + pkt[q + 1] + 192), (hdr = 2);
      else if (sl === 255) (sl = pkt.readUInt32BE(q + 1)), (hdr = 5);
      const type = pkt[q + hdr] & 0x7f;
      const data = pkt.subarray(q + hdr + 1, q + hdr + sl);
      if (type === 16) return data.toString('hex'); // issuer key id
      if (type === 33) return data.subarray(data.length - 8).toString('hex'); // issuer fingerprint (v4: low 64 bits)
      q += hdr + sl;
    }
    p = end;
  }
  return null;
}
