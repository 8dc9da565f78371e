import { createHash, randomFillSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIsoTorrents, parseTorrentFile, TORRENT_PIECE_LENGTH } from './torrent';

let tmp: string;
let isoDir: string;
const ISO = 'Rocky-9.7-x86_64-dvd.iso';
const opts = () => ({
  isoDir,
  outDir: join(tmp, 'torrents'),
  trackers: ['udp://tracker.opentrackr.org:1337/announce', 'udp://tracker.openbittorrent.com:80/announce'],
  comment: 'https://docs.rockylinux.org/release_notes/9_7/',
});

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'torrent-test-'));
  isoDir = join(tmp, 'isos/x86_64');
  mkdirSync(isoDir, { recursive: true });
  // 9.5 pieces: the last one is short, and a piece spans the ISO and the next file.
  writeFileSync(join(isoDir, ISO), randomFillSync(Buffer.alloc(9 * TORRENT_PIECE_LENGTH + 12345)));
  writeFileSync(join(isoDir, `${ISO}.manifest`), 'boot\nBaseOS\n');
  writeFileSync(join(isoDir, 'Rocky-9.7-x86_64-boot.iso'), randomFillSync(Buffer.alloc(3 << 20)));
  writeFileSync(join(isoDir, 'CHECKSUM'), '# sums\n');
  writeFileSync(join(isoDir, `${ISO}.CHECKSUM`), '# one sum\n');
  writeFileSync(join(isoDir, 'CHECKSUM.asc'), '-----BEGIN PGP SIGNED MESSAGE-----\n');
  symlinkSync(ISO, join(isoDir, 'Rocky-9-latest-x86_64-dvd.iso'));
  symlinkSync(ISO, join(isoDir, 'Rocky-x86_64-dvd.iso'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('createIsoTorrents', () => {
  it('makes one torrent per real ISO, as gen-torrents packages them', async () => {
    const r = await createIsoTorrents(opts());
    expect(r.created.map((f) => f.slice(f.lastIndexOf('/') + 1)).sort()).toEqual(['Rocky-9.7-x86_64-boot.torrent', 'Rocky-9.7-x86_64-dvd.torrent']);
    const t = await parseTorrentFile(readFileSync(join(tmp, 'torrents/Rocky-9.7-x86_64-dvd.torrent')));
    expect(t.name).toBe('Rocky-9.7-x86_64-dvd');
    expect(t.files.map((f: any) => [f.path, f.length])).toEqual([
      ['Rocky-9.7-x86_64-dvd/CHECKSUM', 7],
      [`Rocky-9.7-x86_64-dvd/${ISO}`, statSync(join(isoDir, ISO)).size],
      [`Rocky-9.7-x86_64-dvd/${ISO}.CHECKSUM`, 10],
      [`Rocky-9.7-x86_64-dvd/${ISO}.manifest`, 12],
    ]);
    expect(t.announce).toEqual(opts().trackers);
    expect(t.urlList).toEqual([]); // no web seeds: mirrors have no <name>/ directory for a client to fetch from
    expect(t.comment).toBe(opts().comment);
    expect(t.private).toBe(false);
    expect(t.pieceLength).toBe(TORRENT_PIECE_LENGTH);
    // Pieces cover CHECKSUM, then the ISO: check the first piece and one wholly inside the ISO
    // against the bytes on disk.
    const iso = readFileSync(join(isoDir, ISO));
    const head = Buffer.concat([readFileSync(join(isoDir, 'CHECKSUM')), iso]).subarray(0, TORRENT_PIECE_LENGTH);
    expect(t.pieces[0]).toBe(createHash('sha1').update(head).digest('hex'));
    const off = 3 * TORRENT_PIECE_LENGTH - 7; // piece 3 starts 7 bytes (CHECKSUM) before this ISO offset
    expect(t.pieces[3]).toBe(createHash('sha1').update(iso.subarray(off, off + TORRENT_PIECE_LENGTH)).digest('hex'));
    const total = t.files.reduce((n: number, f: any) => n + f.length, 0);
    expect(t.pieces).toHaveLength(Math.ceil(total / TORRENT_PIECE_LENGTH));
  });

  it('skips identical torrents, and is reproducible', async () => {
    const file = join(tmp, 'torrents/Rocky-9.7-x86_64-dvd.torrent');
    const before = readFileSync(file);
    const st = statSync(file);
    const r = await createIsoTorrents(opts());
    expect(r.created).toEqual([]);
    expect(r.skipped).toHaveLength(2);
    expect(statSync(file).mtimeMs).toBe(st.mtimeMs);
    rmSync(file);
    await createIsoTorrents({ ...opts(), name: ISO });
    expect(readFileSync(file).equals(before)).toBe(true);
  });

  it('leaves every torrent and infohash as it was when CHECKSUM is signed again', async () => {
    const files = ['Rocky-9.7-x86_64-dvd.torrent', 'Rocky-9.7-x86_64-boot.torrent'].map((f) => join(tmp, 'torrents', f));
    const before = await Promise.all(files.map(async (f) => (await parseTorrentFile(readFileSync(f))).infoHash));
    writeFileSync(join(isoDir, 'CHECKSUM.asc'), '-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n(a new signature)\n');
    const r = await createIsoTorrents(opts());
    expect(r.created).toEqual([]);
    expect(await Promise.all(files.map(async (f) => (await parseTorrentFile(readFileSync(f))).infoHash))).toEqual(before);
  });

  it('rewrites a torrent when the ISO or the options change', async () => {
    const file = join(tmp, 'torrents/Rocky-9.7-x86_64-boot.torrent');
    const old = await parseTorrentFile(readFileSync(file));
    const boot = join(isoDir, 'Rocky-9.7-x86_64-boot.iso');
    const data = readFileSync(boot);
    data[0] ^= 0xff; // same size and a fresh file: the first piece no longer matches
    writeFileSync(boot, data);
    const r = await createIsoTorrents({ ...opts(), name: 'Rocky-9.7-x86_64-boot.iso' });
    expect(r.created).toEqual([file]);
    expect((await parseTorrentFile(readFileSync(file))).infoHash).not.toBe(old.infoHash);
    const r2 = await createIsoTorrents({ ...opts(), comment: 'other', name: 'Rocky-9.7-x86_64-boot.iso' });
    expect(r2.created).toEqual([file]);
  });
});
