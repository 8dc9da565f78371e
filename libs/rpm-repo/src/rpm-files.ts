// Files out of an RPM's payload: rpm2cpio (the one rpm tool that converts any payload
// compression) turns the package into a cpio archive, read here in the SVR4 "newc" format it
// writes. Used for the files a release ships beside its packages (EULA, GPG keys), which come
// from the release's own packages.
import { createReadStream } from 'node:fs';
import { runPipe } from '@rocky/exec';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const HEADER = 110;
const pad4 = (n: number) => (n + 3) & ~3;

/**
 * Regular files of a newc cpio archive whose path (`/usr/share/...`, leading `./` dropped) passes
 * `want`. Hardlinked files keep their data on the last link only, as cpio writes them.
 */
export function readNewc(buf: Buffer, want: (path: string) => boolean, what = 'cpio archive'): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let off = 0;
  for (;;) {
    if (off + HEADER > buf.length) throw new Error(`${what}: truncated at byte ${off} (no TRAILER!!!)`);
    const magic = buf.toString('latin1', off, off + 6);
    if (magic !== '070701' && magic !== '070702') throw new Error(`${what}: not a newc cpio entry at byte ${off} (magic ${JSON.stringify(magic)})`);
    const field = (i: number) => {
      const hex = buf.toString('latin1', off + 6 + i * 8, off + 14 + i * 8);
      if (!/^[0-9a-fA-F]{8}$/.test(hex)) throw new Error(`${what}: bad header field at byte ${off}`);
      return parseInt(hex, 16);
    };
    const mode = field(1);
    const size = field(6);
    const nameSize = field(11);
    const nameEnd = off + HEADER + nameSize - 1;
    const name = buf.toString('utf8', off + HEADER, nameEnd);
    const data = pad4(off + HEADER + nameSize);
    if (data + size > buf.length) throw new Error(`${what}: ${name} is cut short`);
    if (name === 'TRAILER!!!') return out;
    const path = name.replace(/^\.?\/*/, '/');
    if ((mode & S_IFMT) === S_IFREG && (size > 0 || !out.has(path)) && want(path)) out.set(path, buf.subarray(data, data + size));
    off = pad4(data + size);
  }
}

/** The regular files of package `rpm` whose installed path passes `want`. */
export async function rpmFiles(rpm: string, want: (path: string) => boolean, opts: { logFile?: string } = {}): Promise<Map<string, Buffer>> {
  const chunks: Buffer[] = [];
  // rpm2cpio reads the package from stdin when given no file (rpm 4.14 on EL8 does too).
  for await (const c of runPipe(['rpm2cpio'], createReadStream(rpm), { logFile: opts.logFile })) chunks.push(c as Buffer);
  return readNewc(Buffer.concat(chunks), want, `rpm2cpio ${rpm}`);
}

/** rpm's version comparison (rpmvercmp): -1, 0 or 1. Digits beat letters, `~` sorts before anything (even the end), `^` after the end but before anything else. */
export function rpmVercmp(a: string, b: string): number {
  if (a === b) return 0;
  let i = 0;
  let j = 0;
  const sep = (s: string, k: number) => k < s.length && !/[A-Za-z0-9~^]/.test(s[k]);
  for (;;) {
    while (sep(a, i)) i++;
    while (sep(b, j)) j++;
    if (a[i] === '~' || b[j] === '~') {
      if (a[i] !== '~') return 1;
      if (b[j] !== '~') return -1;
      i++, j++;
      continue;
    }
    if (a[i] === '^' || b[j] === '^') {
      if (i >= a.length) return -1;
      if (j >= b.length) return 1;
      if (a[i] !== '^') return 1;
      if (b[j] !== '^') return -1;
      i++, j++;
      continue;
    }
    if (i >= a.length || j >= b.length) break;
    const numeric = /[0-9]/.test(a[i]);
    const re = numeric ? /^[0-9]+/ : /^[A-Za-z]+/;
    const x = re.exec(a.slice(i))?.[0] ?? '';
    const y = re.exec(b.slice(j))?.[0] ?? '';
    // Segments of different kinds: the numeric one is newer.
    if (!y) return numeric ? 1 : -1;
    i += x.length;
    j += y.length;
    if (numeric) {
      const xs = x.replace(/^0+/, '');
      const ys = y.replace(/^0+/, '');
      if (xs.length !== ys.length) return xs.length > ys.length ? 1 : -1;
      if (xs !== ys) return xs > ys ? 1 : -1;
    } else if (x !== y) return x > y ? 1 : -1;
  }
  if (i >= a.length && j >= b.length) return 0;
  return i >= a.length ? -1 : 1;
}

/** Compares two packages by epoch, version and release as rpm does. */
export function compareEvr(a: { epoch?: string; version: string; release: string }, b: { epoch?: string; version: string; release: string }): number {
  return Math.sign(Number(a.epoch || 0) - Number(b.epoch || 0)) || rpmVercmp(a.version, b.version) || rpmVercmp(a.release, b.release);
}
