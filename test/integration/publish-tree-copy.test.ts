// The hardlinked tree copies staging builds its private tree with (linkCopy: `cp -al`;
// linkDestSync: rsync --link-dest), run for real, with the system rsync and Debian 12's 3.2.7.
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { linkCopy } from '@rocky/exec';
import { linkDestSync } from '@rocky/publish';
import { oldRsync, OLD_RSYNC_DEB } from './publish-helpers';

let old: Awaited<ReturnType<typeof oldRsync>>;
let tmp: string;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'publish-tree-copy-'));
  old = await oldRsync();
  if (old.skip) console.warn(`publish-tree-copy: skipping ${OLD_RSYNC_DEB}: ${old.skip}`);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const put = (file: string, data: string) => {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, data);
};
const ino = (f: string) => statSync(f).ino;

describe.each([
  { name: 'system rsync', which: 'system' },
  { name: OLD_RSYNC_DEB, which: 'old' },
])('tree copies with $name', ({ name, which }) => {
  it('linkCopy hardlinks a staged tree; linkDestSync lays a compose over it, keeping its repodata', async (ctx) => {
    if (which === 'old' && old.skip) return ctx.skip(old.skip);
    const rsync = which === 'old' ? old.bin! : 'rsync';
    const dir = join(tmp, name.replace(/[^A-Za-z0-9]+/g, '-'));
    const staged = join(dir, 'staged');
    const compose = join(dir, 'compose');
    const tree = join(dir, 'tree');
    put(join(staged, 'BaseOS/Packages/a-1.rpm'), 'a1');
    put(join(staged, 'BaseOS/Packages/old-1.rpm'), 'old');
    put(join(staged, 'BaseOS/repodata/repomd.xml'), 'signed staged repodata');
    symlinkSync('BaseOS', join(staged, 'baseos'));
    put(join(compose, 'BaseOS/Packages/a-1.rpm'), 'a1');
    put(join(compose, 'BaseOS/Packages/b-1.rpm'), 'b1');
    put(join(compose, 'BaseOS/repodata/repomd.xml'), 'compose repodata');

    mkdirSync(tree, { recursive: true });
    await linkCopy(staged, tree);
    expect(ino(join(tree, 'BaseOS/Packages/old-1.rpm'))).toBe(ino(join(staged, 'BaseOS/Packages/old-1.rpm')));
    expect(ino(join(tree, 'BaseOS/repodata/repomd.xml'))).toBe(ino(join(staged, 'BaseOS/repodata/repomd.xml')));
    expect(readlinkSync(join(tree, 'baseos'))).toBe('BaseOS');

    await linkDestSync({ from: compose, to: tree, excludes: ['repodata/'], delete: true, rsync });
    // The compose's files, hardlinked from it; what it lacks is gone; the excluded repodata stays the staged one.
    expect(ino(join(tree, 'BaseOS/Packages/b-1.rpm'))).toBe(ino(join(compose, 'BaseOS/Packages/b-1.rpm')));
    expect(lstatSync(join(tree, 'BaseOS/Packages/a-1.rpm')).nlink).toBeGreaterThan(1);
    expect(existsSync(join(tree, 'BaseOS/Packages/old-1.rpm'))).toBe(false);
    expect(existsSync(join(tree, 'baseos'))).toBe(false);
    expect(readFileSync(join(tree, 'BaseOS/repodata/repomd.xml'), 'utf8')).toBe('signed staged repodata');
    // Nothing was written through a hardlink into the inputs.
    expect(readFileSync(join(staged, 'BaseOS/Packages/old-1.rpm'), 'utf8')).toBe('old');
    expect(readFileSync(join(compose, 'BaseOS/repodata/repomd.xml'), 'utf8')).toBe('compose repodata');
  });
});
