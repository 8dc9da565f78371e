// Mirror file lists in quick-fedora-mirror's format (research: empanadas-spec §4.5, §5;
// peers §4.2–4.4): fullfiletimelist-<module> (+ aliases), fullfilelist and imagelist-<module>
// for each module dir, generated together under one lock and swapped in by rename.
//
// What mirrors rely on, and so what this guarantees:
// - a list is replaced atomically (temp name in the same dir + rename), never seen half written;
// - all modules are generated before any is renamed: modules share hardlinks, and a client
//   seeing one module's new list with another's old one may copy instead of link;
// - an unchanged list is not rewritten: clients compare lists, and a new mtime means work;
// - [Checksums SHA1] covers repomd.xml because its size and time alone can miss an update.
import { createHash } from 'node:crypto';
import { closeSync, fchmodSync, fstatSync, fsyncSync, linkSync, lstatSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { acquireLockWaiting, tempName, writeFileAtomic } from '@rocky/exec';
import { SUPPORTED_IMAGE_FORMATS } from '@rocky/compose';
import { ListWriter, TIME_LIST_HEADER, finishTimeList } from './filelist-format';
import { F, FLAG_CHECKSUM, FLAG_IMAGE, FLAG_IN_RESTRICTED, FLAG_SELF_RESTRICTED, KIND, STRIDE, walkTree, type WalkRules, type WalkChunk } from './filelist-walk';

export { parseFileTimeList, type FileTimeList, type FileTimeListEntry } from './filelist-format';

export interface FileListModule {
  /** Module name as mirrors know it (rsync module), e.g. `rocky`, `sig`. */
  name: string;
  dir: string;
}

export interface FileListOptions {
  /** Exclusive lock, outside every module dir (else it would be listed). Waited for, not failed on. */
  lockFile: string;
  /** How long to wait for the lock (default 30 min). */
  lockTimeoutMs?: number;
  /** SHA1 cache: a checksummed file is rehashed only when its (path, size, mtime, ctime, inode) changed. */
  cacheFile?: string;
  /** Base names that get a [Checksums SHA1] line. Default ['repomd.xml']. */
  checksumNames?: string[];
  /** Suffixes that put a file in imagelist-<module>. Default: productmd's image formats. */
  imageExtensions?: string[];
  /** module name -> extra names for a copy of its fullfiletimelist in the module dir (e.g. rocky: fullfiletimelist, fullfiletimelist-rocky-linux). */
  aliases?: Record<string, string[]>;
  /** Clock (ms since epoch) for the future-timestamp check. */
  now?: () => number;
  log?: (msg: string) => void;
}

export interface FileListResult {
  /** List files replaced (absolute paths). */
  written: string[];
  /** List files whose content was already current, left untouched (absolute paths). */
  unchanged: string[];
  /** Entries listed, over all modules. */
  files: number;
  /** Checksummed files read and hashed this run. */
  hashed: number;
  /** Checksummed files whose SHA1 came from the cache. */
  reusedHashes: number;
  /** Entries whose max(mtime, ctime) is after now (clock skew, or a bad touch): listed as is, worth a warning. */
  futureTimes: number;
  /** Up to 20 of those, as `<module>:<path>`. */
  futurePaths: string[];
}

export const DEFAULT_CHECKSUM_NAMES = ['repomd.xml'];
/** create-filelist's imagelist: every entry whose name ends in `.<format>` for a productmd format (a `.box` is not one: productmd's are `vagrant-libvirt.box`…). */
export const DEFAULT_IMAGE_EXTENSIONS = SUPPORTED_IMAGE_FORMATS.map((f) => `.${f}`);

const LIST_PREFIXES = ['fullfiletimelist', 'imagelist'];
const NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;
const CACHE_VERSION = 1;

interface Walked {
  module: FileListModule;
  dir: string;
  paths: string[];
  nums: Float64Array;
  order: number[];
}

interface CacheRec {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  sha1: string;
}

export async function generateFileLists(modules: FileListModule[], opts: FileListOptions): Promise<FileListResult> {
  const mods = validate(modules, opts);
  const log = opts.log ?? (() => undefined);
  // Queued behind any holder, in this process or another (as quick-fedora-mirror's flock).
  const unlock = await acquireLockWaiting(opts.lockFile, 'mirror file lists', { timeoutMs: opts.lockTimeoutMs ?? 30 * 60_000 });
  log(`file lists: lock ${opts.lockFile} acquired`);
  try {
    return await generateLocked(mods, opts, log);
  } finally {
    unlock();
    log(`file lists: lock ${opts.lockFile} released`);
  }
}

async function generateLocked(mods: FileListModule[], opts: FileListOptions, log: (m: string) => void): Promise<FileListResult> {
  const nowSec = Math.floor((opts.now ?? Date.now)() / 1000);

  // 1. Walk every module.
  const walked: Walked[] = [];
  for (const m of mods) {
    const rules = walkRules(m, opts);
    removeStaleTemps(m.dir, rules);
    walked.push({ module: m, dir: m.dir, ...sortByPath(await walkTree(m.dir, rules)) });
  }

  // 2. SHA1 of the checksummed files, from the cache where (size, mtime, ctime, inode) match.
  const cache = opts.cacheFile ? loadCache(opts.cacheFile, log) : new Map<string, CacheRec>();
  const want = new Map<string, { size: number; mtimeMs: number; ctimeMs: number; ino: number }>();
  const [stride, oFlags, ckF] = [STRIDE, F.flags, FLAG_CHECKSUM]; // locals: see the render loop
  for (const { nums, paths, dir } of walked) {
    for (let i = 0; i < paths.length; i++) {
      const o = i * stride;
      if (!(nums[o + oFlags] & ckF)) continue;
      want.set(`${dir}/${paths[i]}`, { size: nums[o + F.size], mtimeMs: nums[o + F.mtimeMs], ctimeMs: nums[o + F.ctimeMs], ino: nums[o + F.ino] });
    }
  }
  const sums = new Map<string, CacheRec>();
  const todo: string[] = [];
  for (const [abs, st] of want) {
    const c = cache.get(abs);
    if (c && c.size === st.size && c.mtimeMs === st.mtimeMs && c.ctimeMs === st.ctimeMs && c.ino === st.ino) sums.set(abs, c);
    else todo.push(abs);
  }
  const reusedHashes = sums.size;
  const chunk = Buffer.allocUnsafe(1 << 20);
  for (const abs of todo) {
    const st = want.get(abs)!;
    const sha1 = sha1File(abs, chunk);
    // A writer replacing the file mid-run would pair this digest with another file's size/time.
    const after = lstatSync(abs, { throwIfNoEntry: false });
    if (!after || after.size !== st.size || after.mtimeMs !== st.mtimeMs || after.ctimeMs !== st.ctimeMs || after.ino !== st.ino) {
      throw new Error(`${abs} changed while the file lists were being generated; rerun once the tree is quiet`);
    }
    sums.set(abs, { ...st, sha1 });
  }

  // 3. Render every list, then keep only those whose bytes differ from what is there.
  const result: FileListResult = { written: [], unchanged: [], files: 0, hashed: todo.length, reusedHashes, futureTimes: 0, futurePaths: [] };
  const planned: Array<{ file: string; data: Buffer; last: boolean }> = [];
  for (const w of walked) {
    const { name } = w.module;
    // Size hints: the paths' length plus each list's per-line overhead, so neither grows.
    const pathChars = w.paths.reduce((n, p) => n + p.length, 0);
    const tl = new ListWriter(pathChars + 32 * w.paths.length + 4096).add(TIME_LIST_HEADER);
    const fl = new ListWriter(pathChars + 4 * w.paths.length + 64).add('.\n');
    const images: string[] = [];
    const sha1: Array<[string, string]> = [];
    // Hot loop over every entry: imported bindings are getters once transpiled to CJS, so
    // take locals; the walk already classified each entry (flags).
    const { nums, paths, order } = w;
    const [oKind, oT, oSize] = [F.kind, F.tsec, F.size];
    const [kinds, selfR, inR, imgF] = [KIND, FLAG_SELF_RESTRICTED, FLAG_IN_RESTRICTED, FLAG_IMAGE];
    for (let k = 0; k < order.length; k++) {
      const i = order[k];
      const o = i * stride;
      const p = paths[i];
      const flags = nums[o + oFlags];
      const t = nums[o + oT];
      const type = flags & selfR ? kinds[nums[o + oKind]] + '-' : flags & inR ? kinds[nums[o + oKind]] + '*' : kinds[nums[o + oKind]];
      if (t > nowSec) {
        result.futureTimes++;
        if (result.futurePaths.length < 20) result.futurePaths.push(`${name}:${p}`);
      }
      tl.add(`${secondsText(t)}\t${type}\t${nums[o + oSize]}\t${p}\n`);
      fl.add(`./${p}\n`);
      if (flags & ckF) sha1.push([p, sums.get(`${w.dir}/${p}`)!.sha1]);
      if (flags & imgF) images.push(`./${p}`); // create-filelist lists `./`-prefixed paths, links included
    }
    result.files += order.length;
    const timeList = finishTimeList(tl, sha1);
    const lists: Array<[string, Buffer, boolean]> = [
      ['fullfilelist', fl.done(), false],
      [`imagelist-${name}`, Buffer.from(images.map((p) => `${p}\n`).join('')), false],
      ...(opts.aliases?.[name] ?? []).map((a): [string, Buffer, boolean] => [a, timeList, false]),
      // Last: mirrors poll this name, so it should appear once its companions are in place.
      [`fullfiletimelist-${name}`, timeList, true],
    ];
    for (const [file, data, last] of lists) {
      const target = join(w.dir, file);
      if (sameContent(target, data)) result.unchanged.push(target);
      else planned.push({ file: target, data, last });
    }
    log(`file lists: ${name}: ${order.length} entries, ${sha1.length} checksums, ${images.length} images`);
  }

  // 4. Temps for everything first, then the renames back to back: the window in which
  //    modules disagree is a handful of renames, and a failure before it changes nothing.
  planned.sort((a, b) => Number(a.last) - Number(b.last));
  const temps: string[] = [];
  try {
    // The aliases hold the very bytes of their fullfiletimelist: one write and fsync, then links
    // (each name is still replaced by its own rename; mirrors see the same bytes under each).
    const written = new Map<Buffer, string>();
    for (const p of planned) {
      const same = written.get(p.data);
      if (same === undefined) written.set(p.data, temps[temps.push(writeTemp(p.file, p.data)) - 1]);
      else temps.push(linkTemp(same, p.file));
    }
    planned.forEach((p, i) => renameSync(temps[i], p.file));
    temps.length = 0;
  } finally {
    for (const t of temps) rmSync(t, { force: true });
  }
  for (const d of new Set(planned.map((p) => dirname(p.file)))) syncDir(d);
  result.written = planned.map((p) => p.file);

  if (opts.cacheFile) saveCache(opts.cacheFile, cache, sums);
  if (result.futureTimes > 0) log(`file lists: ${result.futureTimes} entries have a time in the future (clock skew?), e.g. ${result.futurePaths[0]}`);
  log(`file lists: ${result.written.length} written, ${result.unchanged.length} unchanged, ${result.hashed} hashed, ${result.reusedHashes} hashes reused`);
  return result;
}

/**
 * `${t}` for a whole number of seconds. Today's times (~1.8e9) are past V8's small-integer range,
 * and formatting such a double took 3/4 of the render; its two halves are small integers.
 */
function secondsText(t: number): string {
  if (t < 100_000) return `${t}`; // negatives included
  const hi = Math.floor(t / 100_000);
  return `${hi}${`${t - hi * 100_000 + 100_000}`.slice(1)}`;
}

function validate(modules: FileListModule[], opts: FileListOptions): FileListModule[] {
  if (modules.length === 0) throw new Error('no file-list modules given');
  const mods = modules.map((m) => ({ name: m.name, dir: resolve(m.dir) }));
  const names = new Set<string>();
  const dirs = new Set<string>();
  for (const m of mods) {
    if (!NAME.test(m.name)) throw new Error(`bad file-list module name ${JSON.stringify(m.name)}`);
    if (names.has(m.name)) throw new Error(`file-list module ${m.name} given twice`);
    // Two modules in one dir would overwrite each other's fullfilelist.
    if (dirs.has(m.dir)) throw new Error(`file-list modules share the dir ${m.dir}`);
    names.add(m.name);
    dirs.add(m.dir);
    for (const [what, file] of [['lock', opts.lockFile], ['cache', opts.cacheFile]] as const) {
      if (file === undefined) continue;
      const rel = relative(m.dir, resolve(file));
      if (!rel.startsWith('..') && !isAbsolute(rel)) throw new Error(`the file-list ${what} file ${file} is inside module ${m.name} (${m.dir}); it would be listed and mirrored`);
    }
  }
  for (const [mod, list] of Object.entries(opts.aliases ?? {})) {
    if (!names.has(mod)) throw new Error(`file-list aliases name unknown module ${mod}`);
    for (const a of list) {
      if (!NAME.test(a) || a === `fullfiletimelist-${mod}` || a === 'fullfilelist' || a === `imagelist-${mod}`) throw new Error(`bad file-list alias ${JSON.stringify(a)} for ${mod}`);
    }
  }
  return mods;
}

function walkRules(m: FileListModule, opts: FileListOptions): WalkRules {
  return {
    topExact: ['fullfilelist', ...(opts.aliases?.[m.name] ?? [])],
    topPrefixes: LIST_PREFIXES,
    checksumNames: opts.checksumNames ?? DEFAULT_CHECKSUM_NAMES,
    imageExtensions: opts.imageExtensions ?? DEFAULT_IMAGE_EXTENSIONS,
  };
}

/** Temp names of tempName (`.<name>.tmp@<host>.<pid>-<n>`), and of releases that used `.tmp-<pid>-<n>`. */
const TEMP = /^\.(.+)\.tmp[@-]/;
const isOurList = (name: string, rules: WalkRules) => rules.topExact.includes(name) || rules.topPrefixes.some((p) => name.startsWith(p));

/** Temps of ours left by a killed run: we hold the lock, so no live run owns them. */
function removeStaleTemps(dir: string, rules: WalkRules): void {
  for (const name of readdirSync(dir)) {
    const m = TEMP.exec(name);
    if (m && isOurList(m[1], rules)) rmSync(join(dir, name), { force: true });
  }
}

function linkTemp(existing: string, file: string): string {
  const tmp = tempName(file);
  linkSync(existing, tmp);
  return tmp;
}

function writeTemp(file: string, data: Buffer): string {
  const tmp = tempName(file);
  const fd = openSync(tmp, 'wx', 0o644);
  try {
    fchmodSync(fd, 0o644); // world-readable whatever the umask: mirrors fetch it anonymously
    for (let off = 0; off < data.length; ) off += writeSync(fd, data, off, data.length - off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  return tmp;
}

/** SHA1 of a file, read synchronously through `buf`: a stream per file cost a millisecond each, and these (repomd.xml) are a few KiB. */
function sha1File(file: string, buf: Buffer): string {
  const h = createHash('sha1');
  const fd = openSync(file, 'r');
  try {
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

function syncDir(dir: string): void {
  // Best effort: makes the renames durable; not every filesystem allows fsync on a dir.
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    /* ignore */
  }
}

/** Whether `file` holds exactly `data`: its size first, then its bytes a piece at a time (lists run to tens of MiB). */
function sameContent(file: string, data: Buffer): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
  try {
    if (fstatSync(fd).size !== data.length) return false;
    const buf = Buffer.allocUnsafe(Math.min(data.length, 1 << 20));
    for (let at = 0; at < data.length; ) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, data.length - at), at);
      if (n === 0 || buf.compare(data, at, at + n, 0, n) !== 0) return false;
      at += n;
    }
    return true;
  } finally {
    closeSync(fd);
  }
}

/**
 * Flattens the walk's chunks and orders entries by path in byte (UTF-8) order, for a
 * deterministic list (clients treat order as irrelevant). JS compares UTF-16 code units, which
 * matches UTF-8 byte order except between astral and U+E000–U+FFFF characters.
 */
function sortByPath(chunks: WalkChunk[]): { paths: string[]; nums: Float64Array; order: number[] } {
  let n = 0;
  for (const c of chunks) n += c.paths.length;
  const paths: string[] = new Array(n);
  const nums = new Float64Array(n * STRIDE);
  let k = 0;
  for (const c of chunks) {
    nums.set(c.nums, k * STRIDE);
    for (const p of c.paths) paths[k++] = p;
  }
  let keys = paths;
  if (paths.some((p) => /[\uD800-\uFFFF]/.test(p))) keys = paths.map((p) => Buffer.from(p).toString('latin1'));
  // A plain array: V8 sorts it with a comparator several times faster than a typed array.
  const order: number[] = new Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  // Paths are unique: one comparison decides.
  order.sort((a, b) => (keys[a] < keys[b] ? -1 : 1));
  return { paths, nums, order };
}

function loadCache(file: string, log: (m: string) => void): Map<string, CacheRec> {
  const map = new Map<string, CacheRec>();
  let raw: string;
  try {
    raw = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return map;
    throw e;
  }
  try {
    const j = JSON.parse(raw) as { version: number; sha1: Record<string, [number, number, number, number, string]> };
    if (j.version !== CACHE_VERSION) throw new Error(`version ${j.version}`);
    for (const [abs, [size, mtimeMs, ctimeMs, ino, sha1]] of Object.entries(j.sha1)) map.set(abs, { size, mtimeMs, ctimeMs, ino, sha1 });
  } catch (e) {
    // Only a cache: rebuilding costs a rehash, refusing would block publishing.
    log(`file lists: ignoring unreadable SHA1 cache ${file}: ${(e as Error).message}`);
    map.clear();
  }
  return map;
}

/** Keeps only files seen this run, so removed trees do not accumulate; unchanged → not rewritten. */
function saveCache(file: string, old: Map<string, CacheRec>, now: Map<string, CacheRec>): void {
  const sha1: Record<string, [number, number, number, number, string]> = {};
  for (const abs of [...now.keys()].sort()) {
    const r = now.get(abs)!;
    sha1[abs] = [r.size, r.mtimeMs, r.ctimeMs, r.ino, r.sha1];
  }
  const data = JSON.stringify({ version: CACHE_VERSION, sha1 }) + '\n';
  if (old.size === now.size && sameContent(file, Buffer.from(data))) return;
  writeFileAtomic(file, data);
}
