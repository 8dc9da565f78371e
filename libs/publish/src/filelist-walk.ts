// Tree walk for the mirror file lists: every entry under a module dir with its lstat numbers,
// applying quick-fedora-mirror's skip rules, returned as compact columnar records.
//
// The walk is GNU find's (-printf), the very primitive the shell floor runs, read as it streams:
// find lstats relative to an open directory (fstatat), where Node can only lstat absolute paths
// (a kernel path walk per entry) and allocates a Stats object and four Dates per call. Measured
// on 206k entries / 2 busy cores: Node's own walk (sync, or shared by 2 worker threads) took
// 1.9 CPU-s, 1.0 of it in the kernel; find -printf takes 0.9, and parsing its output 0.5 on the
// other core, overlapped. find is in findutils on every host we support (4.6 on Rocky 8).
import * as fs from 'node:fs';
import { availableParallelism } from 'node:os';
import { allOrFirstFailure, run, type RunResult } from '@rocky/exec';

/** Numbers per entry in WalkChunk.nums. */
export const STRIDE = 7;
/** Offsets within an entry's STRIDE numbers. */
export const F = { kind: 0, tsec: 1, size: 2, flags: 3, mtimeMs: 4, ctimeMs: 5, ino: 6 } as const;
export const KIND = ['f', 'd', 'l'] as const;
/** flags bits: the entry is inside a non-world-readable dir / is itself not world-readable /
 *  is a file named in checksumNames / is an entry with an image extension (imagelist). */
export const FLAG_IN_RESTRICTED = 1;
export const FLAG_SELF_RESTRICTED = 2;
export const FLAG_CHECKSUM = 4;
export const FLAG_IMAGE = 8;

export interface WalkRules {
  /** Top-level names that are list files (never listed, nor their temp files). */
  topExact: string[];
  topPrefixes: string[];
  /** Classified in the walk, so the caller only formats. */
  checksumNames: string[];
  imageExtensions: string[];
}

export interface WalkChunk {
  /** Paths relative to the walked dir, `/`-separated, no `./`. */
  paths: string[];
  /**
   * STRIDE numbers per path; see F. tsec = max(mtime, ctime) in whole seconds, exact. mtimeMs,
   * ctimeMs and ino (Node's lstat figures, what the SHA1 cache keys on) only for checksummed
   * files, 0 for the others.
   */
  nums: Float64Array;
}

const TMP = /^\.(.+)\.tmp[@-]/;
const isListName = (name: string, rules: WalkRules) => rules.topExact.includes(name) || rules.topPrefixes.some((p) => name.startsWith(p));
/** A top-level list file of ours or its temp: not content. */
function isTopList(name: string, rules: WalkRules): boolean {
  if (isListName(name, rules)) return true;
  const m = TMP.exec(name);
  return m !== null && isListName(m[1], rules);
}

/**
 * One record per entry, NUL-terminated, the path last (it may hold spaces): type, type of a
 * symlink's target (N: dangling, L: loop), permission bits (octal), size, mtime and ctime as
 * seconds with the exact fraction, path from the root as `./<path>` (find runs in the root). Pruned, so never printed nor
 * entered: rsync --delay-updates temp dirs (.~tmp~) and NFS silly-renamed files (.nfs*) anywhere,
 * which are never content, and directories that are not group-readable, which the rsync daemon
 * cannot serve (so clients must not ask for what is inside).
 */
const FIND_ARGS = ['(', '-name', '.~tmp~*', '-o', '-name', '.nfs*', '-o', '-type', 'd', '!', '-perm', '-g=r', ')', '-prune', '-o', '-printf', '%y %Y %m %s %T@ %C@ %p\\0'];
/** find processes walking at once (a machine with one core gets one). */
const WALKERS = 2;

/** The pieces of `buf` between `sep` bytes (after a trailing `sep`, one empty piece). */
export function* splitBytes(buf: Buffer, sep: number): Generator<Buffer> {
  for (let at = 0; at <= buf.length; ) {
    const end = buf.indexOf(sep, at);
    yield buf.subarray(at, end < 0 ? buf.length : end);
    if (end < 0) return;
    at = end + 1;
  }
}

/** max(mtime, ctime) in whole seconds, exactly, from Node's lstat. */
function wholeSeconds(abs: string, st: fs.Stats): number {
  const t = st.mtimeMs > st.ctimeMs ? st.mtimeMs : st.ctimeMs;
  // Node builds mtimeMs as sec*1e3 + nsec/1e6 in a double, which can round x.9999999 up to the
  // next whole second, landing exactly on a multiple of 1000: only then re-read in nanoseconds.
  if (t > 0 && t % 1000 !== 0) return Math.floor(t / 1000);
  const b = fs.lstatSync(abs, { bigint: true, throwIfNoEntry: false });
  if (b === undefined) return Math.floor(t / 1000);
  const ns = b.mtimeNs > b.ctimeNs ? b.mtimeNs : b.ctimeNs;
  const s = ns / 1_000_000_000n;
  return Number(ns < 0n && ns % 1_000_000_000n !== 0n ? s - 1n : s);
}

/** The unsigned integer in `s` from `from` to `to` in base `radix` (find's digits; no allocation: this runs per entry). */
function digits(s: string, from: number, to: number, radix: number): number {
  let v = 0;
  for (let i = from; i < to; i++) v = v * radix + (s.charCodeAt(i) - 48);
  return v;
}

/** Whole seconds (floor) of find's `%T@` text in `s` from `from` to `to`, `[-]<sec>.<fraction>`, exactly (no float rounding). */
function floorSeconds(s: string, from: number, to: number): number {
  const neg = s.charCodeAt(from) === 45; /* - */
  let dot = s.indexOf('.', from);
  if (dot < 0 || dot > to) dot = to;
  const sec = digits(s, neg ? from + 1 : from, dot, 10);
  if (!neg) return sec;
  for (let i = dot + 1; i < to; i++) if (s.charCodeAt(i) !== 48) return -sec - 1;
  return -sec;
}

/**
 * Walks `root` (not listing `root` itself) and returns its entries. Everything inside a root that
 * is not world-readable is marked restricted. find lists a directory before what is in it and
 * the whole of it before its next sibling, which lets one prefix carry restriction down.
 *
 * The top-level directories are shared out between WALKERS finds run at once (each one's
 * subtrees whole, so the rule above holds per stream): one find was the walk's critical path,
 * its output parsed here with time to spare.
 */
export async function walkTree(root: string, rules: WalkRules): Promise<WalkChunk[]> {
  const st = fs.statSync(root);
  if (!st.isDirectory()) throw new Error(`${root} is not a directory`);
  const rootRestricted = (st.mode & 0o004) === 0;
  // Start points `./<name>` (a name may begin with `-`), printed as `%p`; the list files at the top are not content.
  const top = fs.readdirSync(root, { withFileTypes: true }).filter((e) => !isTopList(e.name, rules)).sort((a, b) => (a.name < b.name ? -1 : 1));
  const groups: string[][] = Array.from({ length: Math.min(WALKERS, availableParallelism()) }, () => []);
  let g = 0;
  for (const e of top) if (e.isDirectory()) groups[g++ % groups.length].push(`./${e.name}`);
  for (const e of top) if (!e.isDirectory()) groups[0].push(`./${e.name}`);
  const chunks: WalkChunk[] = [];
  const decoder = new TextDecoder('utf-8', { fatal: true });
  // Names and suffixes with a `/` never match one entry's name: dropped once, not tested per entry.
  const [checksumNames, imageExtensions] = [rules.checksumNames, rules.imageExtensions].map((xs) => xs.filter((x) => !x.includes('/')));
  // The last character of each image extension: one lookup rules out most names (…rpm) before
  // the dozens of endsWith (every name matches an empty extension: no filter then).
  const imageLast = imageExtensions.includes('') ? undefined : new Set(imageExtensions.map((x) => x.charCodeAt(x.length - 1)));

  /** A parser for one find's stream: records, and the outermost open dir that is not world-readable (`<path>/`). */
  const parser = () => {
    let restrictedUnder = '';
    // Fields are read at their offsets in the batch's text: no string per record, nor per name.
    return (rec: string) => {
      // Only a path can hold these (the other fields are numbers and letters).
      if (/[\t\n\r]/.test(rec)) {
        const p = rec.split('\0').find((r) => /[\t\n\r]/.test(r))!.replace(/^(\S+ ){6}\.\//, '');
        throw new Error(`cannot list a name containing a tab or newline: ${JSON.stringify(`${root}/${p}`)}`);
      }
      const paths: string[] = [];
      let nums = new Float64Array(((rec.length >> 6) + 64) * STRIDE); // records run to ~70 bytes; grown if shorter
      let n = 0;
      for (let at = 0, end = 0; at < rec.length; at = end + 1) {
        end = rec.indexOf('\0', at);
        if (end < 0) end = rec.length;
        const a = rec.indexOf(' ', at);
        const b = rec.indexOf(' ', a + 1);
        const c = rec.indexOf(' ', b + 1);
        const d = rec.indexOf(' ', c + 1);
        const e = rec.indexOf(' ', d + 1);
        const f = rec.indexOf(' ', e + 1);
        const y = rec.charCodeAt(at);
        const kind = y === 102 /* f */ ? 0 : y === 100 /* d */ ? 1 : y === 108 /* l */ ? 2 : -1;
        if (kind < 0) continue; // sockets, fifos, devices: not mirror content
        if (kind === 2) {
          const target = rec.charCodeAt(a + 1);
          if (target === 78 /* N */ || target === 76 /* L */ || target === 63 /* ? */) continue; // dangling (or looping) symlink
        }
        const mode = digits(rec, b + 1, c, 8);
        // Not group-readable: the rsync daemon cannot serve it (directories were pruned by find).
        if (kind !== 2 && (mode & 0o040) === 0) continue;
        const p = rec.slice(f + 3, end); // after `./`
        if (restrictedUnder !== '' && !p.startsWith(restrictedUnder)) restrictedUnder = '';
        const inRestricted = rootRestricted || restrictedUnder !== '';
        const self = kind !== 2 && (mode & 0o004) === 0;
        if (kind === 1 && self && !inRestricted) restrictedUnder = `${p}/`;
        let flags = (inRestricted ? 1 : 0) | (self ? 2 : 0);
        const o = n * STRIDE;
        if (o === nums.length) {
          const more = new Float64Array(nums.length * 2);
          more.set(nums);
          nums = more;
        }
        nums[o] = kind;
        if (kind === 0 && checksumNames.some((x) => p.endsWith(x) && (p.length === x.length || p.charCodeAt(p.length - x.length - 1) === 47 /* / */))) {
          flags |= 4;
          // Hashed and cached by these figures (compared with Node's lstat again after hashing): take them all from one lstat of Node's.
          const ls = fs.lstatSync(`${root}/${p}`, { throwIfNoEntry: false });
          if (ls === undefined) continue; // vanished since find saw it
          nums[o + 1] = wholeSeconds(`${root}/${p}`, ls);
          nums[o + 2] = ls.size;
          nums[o + 4] = ls.mtimeMs;
          nums[o + 5] = ls.ctimeMs;
          nums[o + 6] = ls.ino;
        } else {
          const m = floorSeconds(rec, d + 1, e);
          const ct = floorSeconds(rec, e + 1, f);
          nums[o + 1] = m > ct ? m : ct;
          nums[o + 2] = digits(rec, c + 1, d, 10);
        }
        // create-filelist puts any entry with an image suffix in the imagelist: alias links too.
        if ((imageLast === undefined || imageLast.has(p.charCodeAt(p.length - 1))) && imageExtensions.some((x) => p.endsWith(x))) flags |= 8;
        nums[o + 3] = flags;
        paths.push(p);
        n++;
      }
      if (n * STRIDE < nums.length) nums = nums.slice(0, n * STRIDE);
      chunks.push({ paths, nums });
    };
  };

  /** The records in `buf` (up to its last NUL) as text; a path that is not UTF-8 is refused, named as bytes. */
  const records = (buf: Buffer): string => {
    try {
      return decoder.decode(buf);
    } catch {
      for (const rec of splitBytes(buf, 0)) {
        if (Buffer.from(rec.toString('utf8')).equals(rec)) continue;
        let at = 0;
        for (let i = 0; i < 6; i++) at = rec.indexOf(32, at) + 1; // the path follows the 6th space
        throw new Error(`file name is not valid UTF-8: ${JSON.stringify(`${root}/${rec.subarray(at + 2).toString('latin1')}`)} (bytes shown as Latin-1)`);
      }
      throw new Error(`${root}: find's output is not valid UTF-8`);
    }
  };

  // The first failure of either find (its output, or its exit with the tool's stderr) stops the
  // other at once and is the one reported.
  const walk = (starts: string[]) => async (signal: AbortSignal, fail: (e: unknown) => void) => {
    const parse = parser();
    let rest: Buffer | undefined;
    const onStdout = (data: Buffer) => {
      if (signal.aborted) return;
      const buf = rest ? Buffer.concat([rest, data]) : data;
      const last = buf.lastIndexOf(0);
      if (last < 0) {
        rest = buf;
        return;
      }
      rest = last + 1 < buf.length ? buf.subarray(last + 1) : undefined;
      try {
        parse(records(buf.subarray(0, last)));
      } catch (e) {
        fail(e);
      }
    };
    // find exits 1 for any entry it could not read; entries removed while it ran are simply not there any more.
    let r: RunResult;
    try {
      r = await run(['find', ...starts, ...FIND_ARGS], { cwd: root, env: { ...process.env, LC_ALL: 'C' }, okCodes: [0, 1], cancelSignal: signal, onStdout });
    } catch (e) {
      if (signal.aborted) return; // the failure that stopped it is the one reported
      throw e;
    }
    if (signal.aborted) return;
    const problems = r.stderr.split('\n').filter((l) => l.trim() && !/: No such file or directory$/.test(l));
    if (r.code !== 0 && (problems.length > 0 || !r.stderr.trim())) throw new Error(`find in ${root} (the file-list walk) exited with code ${r.code}${r.stderr.trim() ? `:\n${r.stderr.trim()}` : ''}`);
    if (rest?.length) throw new Error(`find in ${root}: output ends in an unterminated record`);
  };
  await allOrFirstFailure(groups.filter((s) => s.length > 0).map(walk));
  return chunks;
}
