import { execFileSync } from 'node:child_process';
import { existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventLog } from '@rocky/exec';
import { DeletionLimitError, excludeMatcher, isMetadataPath, publishTree } from './publish';
import { parseItemized } from './rsync';

let tmp: string;
const put = (file: string, data: string, mtime = 1_700_000_000) => {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, data);
  utimesSync(file, mtime, mtime);
};
/** Everything under `dir` as path -> content / `-> target` / `dir`. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const n of execFileSync('ls', ['-A', join(dir, rel)], { encoding: 'utf8' }).split('\n').filter(Boolean)) {
      const p = rel ? `${rel}/${n}` : n;
      const st = lstatSync(join(dir, p));
      if (st.isSymbolicLink()) out[p] = `-> ${readlinkSync(join(dir, p))}`;
      else if (st.isDirectory()) {
        out[p] = 'dir';
        walk(p);
      } else out[p] = readFileSync(join(dir, p), 'utf8');
    }
  };
  walk('');
  return out;
}

beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'publish-test-'));
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

function tree(root: string, version: number) {
  const os = join(root, 'BaseOS/x86_64/os');
  put(join(os, `Packages/a/a-${version}.rpm`), `a${version}`.repeat(10));
  put(join(os, 'Packages/b/b-1.rpm'), 'b1');
  put(join(os, `repodata/${version}-primary.xml.gz`), `primary ${version}`);
  put(join(os, 'repodata/repomd.xml'), `repomd ${version}`, 1_700_000_000 + version);
  put(join(os, 'repodata/repomd.xml.asc'), `sig ${version}`, 1_700_000_000 + version);
  put(join(os, '.treeinfo'), `treeinfo ${version}`, 1_700_000_000 + version);
  put(join(root, 'isos/x86_64/Rocky-9.7-x86_64-dvd.iso'), `iso ${version}`, 1_700_000_000 + version);
  put(join(root, 'isos/x86_64/CHECKSUM'), `sums ${version}`, 1_700_000_000 + version);
  if (!existsSync(join(root, 'isos/x86_64/Rocky-9-latest-x86_64-dvd.iso'))) symlinkSync('Rocky-9.7-x86_64-dvd.iso', join(root, 'isos/x86_64/Rocky-9-latest-x86_64-dvd.iso'));
}

describe('classification and parsing', () => {
  it('knows metadata paths', () => {
    expect(isMetadataPath('BaseOS/x86_64/os/repodata/abc-primary.xml.gz')).toBe(true);
    expect(isMetadataPath('BaseOS/x86_64/os/.treeinfo')).toBe(true);
    expect(isMetadataPath('isos/x86_64/CHECKSUM.asc')).toBe(true);
    expect(isMetadataPath('metadata/composeinfo.json')).toBe(true);
    expect(isMetadataPath('BaseOS/x86_64/os/Packages/r/repodata-tools-1.rpm')).toBe(false);
    expect(isMetadataPath('isos/x86_64/Rocky-9.7-x86_64-dvd.iso')).toBe(false);
  });
  it('parses itemized output', () => {
    const { entries, other } = parseItemized(
      ['*deleting  |0|old/f', '*deleting  |0|old/', '>f+++++++++|12|a b/c.rpm', 'cL+++++++++|1|lnk -> x', '.d..t......|4096|./', '>f.st......|7|upd', 'hf+++++++++|3|k/x.rpm => o/x.rpm', 'skipping non-regular file "z"'].join('\n'),
    );
    expect(other).toEqual(['skipping non-regular file "z"']);
    expect(entries.map((e) => [e.path, e.type, e.created, e.deleted, e.content, e.bytes])).toEqual([
      ['old/f', 'file', false, true, true, 0],
      ['old', 'dir', false, true, true, 0],
      ['a b/c.rpm', 'file', true, false, true, 12],
      ['lnk', 'symlink', true, false, true, 1],
      ['.', 'dir', false, false, false, 0],
      ['upd', 'file', false, false, true, 7],
      ['k/x.rpm', 'file', true, false, true, 3],
    ]);
    expect(entries[3].target).toBe('x');
    expect(entries[6].hardlinkTo).toBe('o/x.rpm');
  });
  it('matches excludes like rsync', () => {
    const m = excludeMatcher(['repodata/', '/top.txt', '*.tmp', 'a/b']);
    expect(m('x/repodata', true)).toBe(true);
    expect(m('x/repodata', false)).toBe(false);
    expect(m('top.txt', false)).toBe(true);
    expect(m('d/top.txt', false)).toBe(false);
    expect(m('d/e.tmp', false)).toBe(true);
    expect(m('z/a/b', false)).toBe(true);
  });
});

describe('publishTree (local)', () => {
  it('publishes, verifies, is idempotent, and orders its phases', async () => {
    const src = join(tmp, 'src');
    const dest = join(tmp, 'dest');
    tree(src, 1);
    const events = join(tmp, 'events.jsonl');
    const r1 = await publishTree({ source: src, dest, delete: true, log: eventLog(events) });
    expect(r1.verified).toBe(true);
    expect(snapshot(dest)).toEqual(snapshot(src));
    expect(r1.phases.map((p) => p.name)).toEqual(['content', 'metadata', 'signature', 'repomd', 'links', 'attrs']);

    const again = await publishTree({ source: src, dest, delete: true });
    expect(again.changed).toBe(false);
    expect(again.phases).toEqual([]);

    // v2: a package replaced, repodata replaced, ISO updated, one file gone.
    rmSync(join(src, 'BaseOS/x86_64/os/Packages/a/a-1.rpm'));
    rmSync(join(src, 'BaseOS/x86_64/os/repodata/1-primary.xml.gz'));
    tree(src, 2);
    const dry = await publishTree({ source: src, dest, delete: true, dryRun: true });
    expect(dry.adds.map((e) => e.path).sort()).toEqual(['BaseOS/x86_64/os/Packages/a/a-2.rpm', 'BaseOS/x86_64/os/repodata/2-primary.xml.gz']);
    expect(dry.deletes.map((e) => [e.path, e.bytes]).sort()).toEqual([
      ['BaseOS/x86_64/os/Packages/a/a-1.rpm', 20],
      ['BaseOS/x86_64/os/repodata/1-primary.xml.gz', 9],
    ]);
    expect(dry.updates.map((e) => e.path).sort()).toEqual(
      ['BaseOS/x86_64/os/.treeinfo', 'BaseOS/x86_64/os/repodata/repomd.xml', 'BaseOS/x86_64/os/repodata/repomd.xml.asc', 'isos/x86_64/CHECKSUM', 'isos/x86_64/Rocky-9.7-x86_64-dvd.iso'].sort(),
    );
    expect(dry.bytes.add).toBe(20 + 9);
    expect(readFileSync(join(dest, 'BaseOS/x86_64/os/repodata/repomd.xml'), 'utf8')).toBe('repomd 1'); // dry run changed nothing

    const r2 = await publishTree({ source: src, dest, delete: true, deletionGraceMs: 0, log: eventLog(events) });
    expect(snapshot(dest)).toEqual(snapshot(src));
    expect(r2.phases.map((p) => p.name)).toEqual(['content', 'metadata', 'signature', 'repomd', 'delete', 'attrs']);
    expect((await publishTree({ source: src, dest, delete: true })).changed).toBe(false);
    const types = readFileSync(events, 'utf8').trim().split('\n').map((l) => JSON.parse(l).type);
    expect(types.filter((t) => t === 'publish-done')).toHaveLength(2);
  });

  it('refuses deletions above the limit before changing anything, unless confirmed', async () => {
    const src = join(tmp, 'src');
    const dest = join(tmp, 'dest');
    tree(src, 1);
    for (let i = 0; i < 5; i++) put(join(src, `extra/f${i}`), `${i}`);
    await publishTree({ source: src, dest, delete: true });
    rmSync(join(src, 'extra'), { recursive: true });
    tree(src, 2);
    const before = snapshot(dest);
    expect((await publishTree({ source: src, dest, delete: true, deletionLimit: 3, dryRun: true })).needsConfirmation).toBe(true);
    const err = await publishTree({ source: src, dest, delete: true, deletionLimit: 3 }).catch((e) => e);
    expect(err).toBeInstanceOf(DeletionLimitError);
    expect(err.message).toMatch(/refusing to delete 5 files \(limit 3\).*--confirmDeletions/s);
    expect(snapshot(dest)).toEqual(before);
    const ok = await publishTree({ source: src, dest, delete: true, deletionLimit: 3, confirmDeletions: true, deletionGraceMs: 0 });
    expect(ok.deletes.filter((d) => d.type === 'file')).toHaveLength(5);
    expect(snapshot(dest)).toEqual(snapshot(src));
  });

  it('keeps extraneous files without delete, and honours excludes', async () => {
    const src = join(tmp, 'src');
    const dest = join(tmp, 'dest');
    tree(src, 1);
    put(join(dest, 'old.rpm'), 'old');
    put(join(dest, 'keep/me'), 'x');
    const r = await publishTree({ source: src, dest, delete: false, excludes: ['keep/'] });
    expect(r.deletes).toEqual([]);
    expect(readFileSync(join(dest, 'old.rpm'), 'utf8')).toBe('old');
    const r2 = await publishTree({ source: src, dest, delete: true, excludes: ['keep/'], deletionGraceMs: 0 });
    expect(r2.deletes.map((d) => d.path)).toEqual(['old.rpm']);
    expect(readFileSync(join(dest, 'keep/me'), 'utf8')).toBe('x');
  });

  it('sets the owner (--chown) when running as root', async () => {
    if (process.getuid?.() !== 0) return;
    const src = join(tmp, 'src');
    const dest = join(tmp, 'dest');
    tree(src, 1);
    await publishTree({ source: src, dest, delete: true, owner: '10004:10005' });
    const st = statSync(join(dest, 'BaseOS/x86_64/os/repodata/repomd.xml'));
    expect([st.uid, st.gid]).toEqual([10004, 10005]);
    expect(lstatSync(join(dest, 'isos/x86_64/Rocky-9-latest-x86_64-dvd.iso')).uid).toBe(10004);
    expect((await publishTree({ source: src, dest, delete: true, owner: '10004:10005' })).changed).toBe(false);
  });

  it('handles type changes, hardlinks and several sources', async () => {
    const src = join(tmp, 'src');
    const overlay = join(tmp, 'overlay');
    const dest = join(tmp, 'dest');
    tree(src, 1);
    put(join(src, 'X/inner/f'), 'dir first');
    put(join(src, 'Y'), 'file first');
    put(join(overlay, 'torrents/x.torrent'), 't');
    symlinkSync('BaseOS', join(overlay, 'baseos'));
    await publishTree({ source: [src, overlay], dest, delete: true });
    expect(snapshot(dest)).toEqual({ ...snapshot(src), ...snapshot(overlay) });
    rmSync(join(src, 'X'), { recursive: true });
    put(join(src, 'X'), 'now a file');
    rmSync(join(src, 'Y'));
    put(join(src, 'Y/z'), 'now a dir');
    // A package hardlinked into a second tree (as composes share store objects).
    put(join(src, 'BaseOS/x86_64/os/Packages/c/c-1.rpm'), 'c');
    mkdirSync(join(src, 'BaseOS/x86_64/kickstart/Packages/c'), { recursive: true });
    linkSync(join(src, 'BaseOS/x86_64/os/Packages/c/c-1.rpm'), join(src, 'BaseOS/x86_64/kickstart/Packages/c/c-1.rpm'));
    const r = await publishTree({ source: [src, overlay], dest, delete: true, deletionGraceMs: 0 });
    expect(r.verified).toBe(true);
    expect(snapshot(dest)).toEqual({ ...snapshot(src), ...snapshot(overlay) });
    expect(statSync(join(dest, 'BaseOS/x86_64/kickstart/Packages/c/c-1.rpm')).ino).toBe(statSync(join(dest, 'BaseOS/x86_64/os/Packages/c/c-1.rpm')).ino);
    expect((await publishTree({ source: [src, overlay], dest, delete: true })).changed).toBe(false);
  });
});
