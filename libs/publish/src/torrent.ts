// ISO torrents, packaged as gen-torrents.sh does (spec §4.6): one torrent per ISO (never per
// alias symlink) named like the ISO without `.iso`, holding the ISO, its `.manifest` and
// `.CHECKSUM` when present and the directory's CHECKSUM, never CHECKSUM.asc (gen-torrents
// excludes it: a re-signed CHECKSUM must not change every infohash). Unlike gen-torrents, the piece
// length is fixed (4 MiB) and the creation date is the newest input's mtime, so the same ISO
// always gives the same infohash and the same bytes; files are listed in byte order, not in
// directory order. No web seeds: for a multi-file torrent a client fetches <url>/<name>/<file>,
// and mirrors have no <name>/ directory (the files sit in isos/<arch>/). create-torrent and
// parse-torrent are ESM-only (their exports have no require condition): loaded with a native
// import() that the CJS transpile leaves alone.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, lstatSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '@rocky/exec';

const nativeImport = new Function('s', 'return import(s)') as (s: string) => Promise<any>;
/** Native import() hidden from the CJS transpile; inside vitest's module runner (no native
 *  import callback there) the runner's own import() does the job. */
async function esmImport(spec: string): Promise<any> {
  try {
    return await nativeImport(spec);
  } catch (e) {
    if (!/dynamic import callback/i.test((e as Error).message)) throw e;
    return import(spec);
  }
}

export const TORRENT_PIECE_LENGTH = 4 * 1024 * 1024;
export const TORRENT_CREATED_BY = 'rocky-releng';

export interface IsoTorrentOptions {
  isoDir: string;
  outDir: string;
  trackers: string[];
  /** Rocky uses the release notes URL. */
  comment?: string;
  /** Only the ISO with this file name (default: every ISO in isoDir). */
  name?: string;
  pieceLength?: number;
}

export interface IsoTorrentResult {
  /** Torrent files written (absolute paths). */
  created: string[];
  /** Torrent files already identical, left untouched. */
  skipped: string[];
}

interface Input {
  /** Path inside the torrent, below its name. */
  name: string;
  abs: string;
  size: number;
  mtimeMs: number;
}

/** The files a torrent for `iso` carries, in byte order of their names. */
function inputsFor(isoDir: string, iso: string): Input[] {
  const names = [iso, `${iso}.manifest`, `${iso}.CHECKSUM`, 'CHECKSUM'].filter((n) => existsSync(join(isoDir, n)));
  return names
    .map((n) => {
      const st = statSync(join(isoDir, n));
      return { name: n, abs: join(isoDir, n), size: st.size, mtimeMs: st.mtimeMs };
    })
    .sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
}

export async function createIsoTorrents(o: IsoTorrentOptions): Promise<IsoTorrentResult> {
  const pieceLength = o.pieceLength ?? TORRENT_PIECE_LENGTH;
  // Real ISOs only: the alias names are symlinks to them.
  const isos = readdirSync(o.isoDir)
    .filter((n) => n.endsWith('.iso') && (!o.name || n === o.name) && lstatSync(join(o.isoDir, n)).isFile())
    .sort();
  if (o.name && !isos.length) throw new Error(`no ISO ${o.name} in ${o.isoDir}`);
  const { default: createTorrent } = await esmImport('create-torrent');
  const result: IsoTorrentResult = { created: [], skipped: [] };
  for (const iso of isos) {
    const stem = iso.slice(0, -'.iso'.length);
    const out = join(o.outDir, `${stem}.torrent`);
    const inputs = inputsFor(o.isoDir, iso);
    if (await isCurrent(out, stem, inputs, o, pieceLength)) {
      result.skipped.push(out);
      continue;
    }
    const created = new Date(Math.max(...inputs.map((i) => Math.floor(i.mtimeMs / 1000))) * 1000);
    const buf: Uint8Array = await new Promise((resolve, reject) =>
      createTorrent(
        inputs.map((i) => i.abs),
        {
          name: stem,
          comment: o.comment,
          createdBy: TORRENT_CREATED_BY,
          creationDate: created,
          private: false,
          pieceLength,
          // Always given (even empty): otherwise create-torrent adds its own public trackers.
          announceList: o.trackers.map((t) => [t]),
        },
        (err: Error | null, torrent: Uint8Array) => (err ? reject(err) : resolve(torrent)),
      ),
    );
    // create-torrent names multi-path inputs by basename, in input order: check it kept ours.
    const parsed = await parseTorrentFile(Buffer.from(buf));
    const got = parsed.files.map((f: { path: string }) => f.path);
    const want = inputs.map((i) => `${stem}/${i.name}`);
    if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`torrent for ${iso}: unexpected file list ${got.join(', ')}`);
    // The file's time is its creation date too: a torrent made again of the same ISO is the same
    // file, bytes and time, so the staged tree's digest (and the approval given to it) holds.
    writeFileAtomic(out, Buffer.from(buf), created.getTime() / 1000);
    result.created.push(out);
  }
  return result;
}

export async function parseTorrentFile(data: Buffer): Promise<any> {
  const { default: parseTorrent } = await esmImport('parse-torrent');
  return parseTorrent(data);
}

/**
 * An existing torrent is current when its name, files (names and lengths), trackers, (no) web seeds,
 * comment and piece length are what we would write, and its first and last pieces hash to the
 * bytes on disk: a changed ISO of the same size still changes those (or its mtime, which the
 * creation date records).
 */
async function isCurrent(file: string, stem: string, inputs: Input[], o: IsoTorrentOptions, pieceLength: number): Promise<boolean> {
  if (!existsSync(file)) return false;
  let t: any;
  try {
    t = await parseTorrentFile(readFileSync(file));
  } catch {
    return false;
  }
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  const created = Math.max(...inputs.map((i) => Math.floor(i.mtimeMs / 1000)));
  if (
    t.name !== stem ||
    t.pieceLength !== pieceLength ||
    !same(t.files.map((f: any) => [f.path, f.length]), inputs.map((i) => [`${stem}/${i.name}`, i.size])) ||
    !same(t.announce, o.trackers) ||
    (t.urlList ?? []).length > 0 ||
    (t.comment ?? undefined) !== (o.comment ?? undefined) ||
    !t.created ||
    Math.floor(new Date(t.created).getTime() / 1000) !== created
  ) {
    return false;
  }
  const total = inputs.reduce((n, i) => n + i.size, 0);
  const last = t.pieces.length - 1;
  return pieceHash(inputs, 0, Math.min(pieceLength, total)) === t.pieces[0] && pieceHash(inputs, last * pieceLength, total - last * pieceLength) === t.pieces[last];
}

/** sha1 of `length` bytes at `offset` of the torrent's concatenated files. */
export function pieceHash(inputs: { abs: string; size: number }[], offset: number, length: number): string {
  const h = createHash('sha1');
  let pos = 0;
  for (const i of inputs) {
    const start = Math.max(offset, pos);
    const end = Math.min(offset + length, pos + i.size);
    if (start < end) {
      const buf = Buffer.alloc(end - start);
      const fd = openSync(i.abs, 'r');
      try {
        for (let got = 0; got < buf.length; ) {
          const n = readSync(fd, buf, got, buf.length - got, start - pos + got);
          if (n === 0) throw new Error(`${i.abs}: shorter than expected`);
          got += n;
        }
      } finally {
        closeSync(fd);
      }
      h.update(buf);
    }
    pos += i.size;
  }
  return h.digest('hex');
}
