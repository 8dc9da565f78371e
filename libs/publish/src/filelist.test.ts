import { spawn } from 'node:child_process';
import { chmodSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { runSync } from '@rocky/exec';
import { generateFileLists, parseFileTimeList, type FileListOptions } from './filelist';
import { walkTree } from './filelist-walk';

let tmp: string;
let rocky: string;
let sig: string;

function put(file: string, data: string, mode = 0o644) {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, data);
  chmodSync(file, mode);
}

// A Rocky-like module plus a sig module sharing a hardlink, with every kind of entry the
// lists must handle or skip.
function buildTrees() {
  tmp = mkdtempSync(join(tmpdir(), 'filelist-'));
  rocky = join(tmp, 'pub', 'rocky');
  sig = join(tmp, 'pub', 'sig');
  const os = join(rocky, '9.7', 'BaseOS', 'x86_64', 'os');
  put(join(os, 'repodata', 'repomd.xml'), '<repomd>one</repomd>\n');
  put(join(os, 'repodata', 'primary.xml.gz'), 'gz');
  put(join(os, 'Packages', 'b', 'bash-5.1.8-9.el9.x86_64.rpm'), 'rpm'.repeat(100));
  put(join(rocky, '9.7', 'AppStream', 'x86_64', 'os', 'repodata', 'repomd.xml'), '<repomd>two</repomd>\n');
  put(join(rocky, '9.7', 'isos', 'x86_64', 'Rocky-9.7-x86_64-dvd.iso'), 'iso!');
  put(join(rocky, '9.7', 'images', 'x86_64', 'Rocky-9-GenericCloud.qcow2'), 'qcow');
  put(join(rocky, '9.7', 'images', 'x86_64', 'Rocky-9-Vagrant-Libvirt-9.7-20251120.0.x86_64.box'), 'box');
  put(join(rocky, '9.7', 'isos', 'x86_64', 'CHECKSUM'), 'sums');
  symlinkSync('Rocky-9.7-x86_64-dvd.iso', join(rocky, '9.7', 'isos', 'x86_64', 'Rocky-9-latest-x86_64-dvd.iso'));
  symlinkSync('9.7', join(rocky, '9'));
  symlinkSync('does-not-exist', join(rocky, '9.7', 'dangling'));
  linkSync(join(os, 'Packages', 'b', 'bash-5.1.8-9.el9.x86_64.rpm'), join(rocky, '9.7', 'bash-hardlink.rpm'));
  put(join(rocky, 'name with space.txt'), 'x');
  put(join(rocky, 'é-ünïcode.txt'), 'x');
  put(join(rocky, 'deep', 'fullfilelist'), 'nested lists are content');
  // Skipped: rsync --delay-updates temps, NFS silly renames, top-level lists, stale temps of ours.
  put(join(rocky, '9.7', 'BaseOS', '.~tmp~', 'partial.rpm'), 'partial');
  put(join(rocky, '.~tmp~', 'x'), 'partial');
  put(join(rocky, '9.7', '.nfs0000000001'), 'nfs');
  put(join(rocky, 'fullfiletimelist-rocky-old'), 'old');
  put(join(rocky, 'imagelist-old'), 'old');
  put(join(rocky, '.fullfiletimelist-rocky.tmp@another-host.999999-0'), 'stale temp');
  // Restricted (pre-bitflip) content: a dir not world-readable, a file only group-readable,
  // and one not even group-readable (the rsync daemon could not serve it: skipped).
  put(join(rocky, '10.0', 'BaseOS', 'readme.txt'), 'soon');
  put(join(rocky, '10.0', 'group-only.txt'), 'g', 0o640);
  put(join(rocky, '10.0', 'owner-only.txt'), 'o', 0o600);
  chmodSync(join(rocky, '10.0'), 0o750);
  // sig shares a hardlink with rocky.
  put(join(sig, '9', 'cloud', 'x86_64', 'repodata', 'repomd.xml'), '<repomd>sig</repomd>\n');
  linkSync(join(os, 'repodata', 'primary.xml.gz'), join(sig, '9', 'shared.xml.gz'));
}

const SKIPPED_ROCKY = [
  '9.7/BaseOS/.~tmp~',
  '9.7/BaseOS/.~tmp~/partial.rpm',
  '.~tmp~',
  '.~tmp~/x',
  '9.7/.nfs0000000001',
  '9.7/dangling',
  'fullfiletimelist-rocky-old',
  'imagelist-old',
  '.fullfiletimelist-rocky.tmp@another-host.999999-0',
  '10.0/owner-only.txt',
];
const LISTS_ROCKY = ['fullfilelist', 'fullfiletimelist-rocky', 'imagelist-rocky', 'fullfiletimelist', 'fullfiletimelist-rocky-linux'];

const opts = (extra: Partial<FileListOptions> = {}): FileListOptions => ({
  lockFile: join(tmp, 'locks', 'filelist.lock'),
  cacheFile: join(tmp, 'cache', 'filelist-sha1.json'),
  aliases: { rocky: ['fullfiletimelist', 'fullfiletimelist-rocky-linux'] },
  ...extra,
});
const modules = () => [
  { name: 'rocky', dir: rocky },
  { name: 'sig', dir: sig },
];
const read = (f: string) => readFileSync(f, 'utf8');
const mtimeNs = (f: string) => lstatSync(f, { bigint: true }).mtimeNs;
/** `find .` as the shell prints it (LC_ALL=C sort = byte order). */
const findDot = (dir: string) =>
  runSync(['sh', '-c', 'find . | LC_ALL=C sort'], { cwd: dir })
    .toString()
    .split('\n')
    .filter(Boolean);

beforeEach(buildTrees);
afterEach(() => {
  chmodSync(join(rocky, '10.0'), 0o755);
  rmSync(tmp, { recursive: true, force: true });
});

describe('generateFileLists', () => {
  it('writes a fullfiletimelist that parses and matches lstat for every entry', async () => {
    const r = await generateFileLists(modules(), opts());
    const list = parseFileTimeList(read(join(rocky, 'fullfiletimelist-rocky')));
    expect(list.version).toBe(2);
    expect(read(join(rocky, 'fullfiletimelist-rocky')).startsWith('[Version]\n2\n\n[Files]\n')).toBe(true);
    expect(read(join(rocky, 'fullfiletimelist-rocky')).endsWith('\n[End]\n')).toBe(true);

    // Every entry find sees, minus the skipped ones and the lists themselves, in byte order.
    const expected = findDot(rocky)
      .filter((p) => p !== '.')
      .map((p) => p.slice(2))
      .filter((p) => !SKIPPED_ROCKY.includes(p) && !LISTS_ROCKY.includes(p));
    expect(list.files.map((f) => f.path)).toEqual(expected);
    expect(r.files).toBe(list.files.length + parseFileTimeList(read(join(sig, 'fullfiletimelist-sig'))).files.length);

    for (const f of list.files) {
      const st = lstatSync(join(rocky, f.path), { bigint: true });
      const t = st.mtimeNs > st.ctimeNs ? st.mtimeNs : st.ctimeNs;
      const type = st.isSymbolicLink() ? 'l' : st.isDirectory() ? 'd' : 'f';
      expect(f.type[0], f.path).toBe(type);
      expect(f.size, f.path).toBe(Number(st.size));
      expect(f.mtime, f.path).toBe(Number(t / 1_000_000_000n));
    }
    for (const s of SKIPPED_ROCKY) expect(list.files.some((f) => f.path === s), s).toBe(false);
    expect(existsSync(join(rocky, '.fullfiletimelist-rocky.tmp@another-host.999999-0'))).toBe(false); // stale temp cleared

    const byPath = new Map(list.files.map((f) => [f.path, f]));
    expect(byPath.get('9')?.type).toBe('l');
    expect(byPath.get('9')?.size).toBe(3); // symlink size = target length
    expect(byPath.get('deep/fullfilelist')?.type).toBe('f'); // only top-level lists are skipped
    // Hardlinks are listed under each name.
    expect(byPath.get('9.7/bash-hardlink.rpm')?.size).toBe(300);
  });

  it('marks restricted entries: "-" not world-readable, "*" inside such a dir', async () => {
    await generateFileLists(modules(), opts());
    const types = new Map(parseFileTimeList(read(join(rocky, 'fullfiletimelist-rocky'))).files.map((f) => [f.path, f.type]));
    expect(types.get('10.0')).toBe('d-');
    expect(types.get('10.0/BaseOS')).toBe('d*');
    expect(types.get('10.0/BaseOS/readme.txt')).toBe('f*');
    expect(types.get('10.0/group-only.txt')).toBe('f-');
    expect(types.get('9.7')).toBe('d');
  });

  it('checksums repomd.xml with SHA1 exactly as sha1sum does', async () => {
    await generateFileLists(modules(), opts());
    const list = parseFileTimeList(read(join(rocky, 'fullfiletimelist-rocky')));
    const repomds = list.files.filter((f) => f.path.endsWith('/repomd.xml')).map((f) => f.path);
    expect(repomds.length).toBe(2);
    expect(Object.keys(list.checksums)).toEqual(['SHA1']);
    expect(Object.keys(list.checksums.SHA1).sort()).toEqual(repomds.sort());
    for (const p of repomds) {
      const want = runSync(['sha1sum', p], { cwd: rocky }).toString().split(' ')[0];
      expect(list.checksums.SHA1[p]).toBe(want);
    }
    const sigList = parseFileTimeList(read(join(sig, 'fullfiletimelist-sig')));
    expect(Object.keys(sigList.checksums.SHA1)).toEqual(['9/cloud/x86_64/repodata/repomd.xml']);
  });

  it('writes fullfilelist as sorted `find .` output minus skipped entries', async () => {
    await generateFileLists(modules(), opts());
    const expected = findDot(rocky).filter((p) => !SKIPPED_ROCKY.includes(p.slice(2)) && !LISTS_ROCKY.includes(p.slice(2)));
    expect(expected[0]).toBe('.');
    expect(read(join(rocky, 'fullfilelist'))).toBe(expected.join('\n') + '\n');
    const sigExpected = findDot(sig).filter((p) => !['./fullfilelist', './fullfiletimelist-sig', './imagelist-sig'].includes(p));
    expect(read(join(sig, 'fullfilelist'))).toBe(sigExpected.join('\n') + '\n');
  });

  it("writes imagelist as create-filelist does (./ paths, productmd's suffixes, alias links included), and the aliases as exact copies", async () => {
    await generateFileLists(modules(), opts());
    // `.box` is no productmd format (vagrant-libvirt.box is): create-filelist leaves it out.
    expect(read(join(rocky, 'imagelist-rocky'))).toBe(
      ['./9.7/images/x86_64/Rocky-9-GenericCloud.qcow2', './9.7/isos/x86_64/Rocky-9-latest-x86_64-dvd.iso', './9.7/isos/x86_64/Rocky-9.7-x86_64-dvd.iso', ''].join('\n'),
    );
    expect(read(join(sig, 'imagelist-sig'))).toBe('');
    const main = read(join(rocky, 'fullfiletimelist-rocky'));
    expect(read(join(rocky, 'fullfiletimelist'))).toBe(main);
    expect(read(join(rocky, 'fullfiletimelist-rocky-linux'))).toBe(main);
    expect(existsSync(join(sig, 'fullfiletimelist'))).toBe(false);
  });

  it('writes lists mode 644 whatever the umask', async () => {
    const old = process.umask(0o077);
    try {
      await generateFileLists(modules(), opts());
    } finally {
      process.umask(old);
    }
    for (const f of LISTS_ROCKY) expect(lstatSync(join(rocky, f)).mode & 0o777, f).toBe(0o644);
  });

  it('leaves unchanged lists untouched and hashes nothing on a rerun', async () => {
    const first = await generateFileLists(modules(), opts());
    expect(first.hashed).toBe(3);
    expect(first.reusedHashes).toBe(0);
    expect(first.written.length).toBe(8);
    const files = [...LISTS_ROCKY.map((f) => join(rocky, f)), join(sig, 'fullfiletimelist-sig'), join(sig, 'fullfilelist'), join(sig, 'imagelist-sig'), opts().cacheFile!];
    const before = files.map(mtimeNs);
    const content = files.map(read);

    const again = await generateFileLists(modules(), opts());
    expect(again.written).toEqual([]);
    expect(again.unchanged.length).toBe(8);
    expect(again.hashed).toBe(0);
    expect(again.reusedHashes).toBe(3);
    expect(files.map(mtimeNs)).toEqual(before);
    expect(files.map(read)).toEqual(content);
  });

  it('rehashes a repomd.xml rewritten with the same size and rewrites the lists', async () => {
    await generateFileLists(modules(), opts());
    const repomd = join(rocky, '9.7', 'BaseOS', 'x86_64', 'os', 'repodata', 'repomd.xml');
    const old = read(repomd);
    const changed = old.replace('one', 'ONE');
    expect(changed.length).toBe(old.length);
    writeFileSync(repomd, changed);

    const r = await generateFileLists(modules(), opts());
    expect(r.hashed).toBe(1);
    expect(r.reusedHashes).toBe(2);
    expect(r.written).toContain(join(rocky, 'fullfiletimelist-rocky'));
    expect(r.written).toContain(join(rocky, 'fullfiletimelist'));
    expect(r.unchanged).toContain(join(sig, 'fullfiletimelist-sig'));
    const list = parseFileTimeList(read(join(rocky, 'fullfiletimelist-rocky')));
    const want = runSync(['sha1sum', repomd]).toString().split(' ')[0];
    expect(list.checksums.SHA1['9.7/BaseOS/x86_64/os/repodata/repomd.xml']).toBe(want);
  });

  it('lists a future mtime as is and counts it', async () => {
    const f = join(rocky, '9.7', 'isos', 'x86_64', 'CHECKSUM');
    const future = Math.floor(Date.now() / 1000) + 86_400;
    utimesSync(f, future, future);
    const r = await generateFileLists(modules(), opts());
    const e = parseFileTimeList(read(join(rocky, 'fullfiletimelist-rocky'))).files.find((x) => x.path === '9.7/isos/x86_64/CHECKSUM');
    expect(e?.mtime).toBe(future);
    expect(r.futureTimes).toBe(1);
    expect(r.futurePaths).toEqual(['rocky:9.7/isos/x86_64/CHECKSUM']);
    // With a clock a day ahead, nothing is in the future.
    const r2 = await generateFileLists(modules(), opts({ now: () => (future + 60) * 1000 }));
    expect(r2.futureTimes).toBe(0);
  });

  it('serialises concurrent runs on one lock; both complete with valid lists', async () => {
    const events: string[] = [];
    const run = (tag: string) => generateFileLists(modules(), opts({ log: (m) => m.includes(' lock ') && events.push(`${tag} ${m.includes('acquired') ? 'acquired' : 'released'}`) }));
    const [a, b] = await Promise.all([run('A'), run('B')]);
    expect(events).toEqual(['A acquired', 'A released', 'B acquired', 'B released']);
    expect(a.written.length).toBe(8);
    expect(b.written).toEqual([]);
    parseFileTimeList(read(join(rocky, 'fullfiletimelist-rocky')));
    parseFileTimeList(read(join(sig, 'fullfiletimelist-sig')));
    expect(existsSync(opts().lockFile)).toBe(false);
  });

  it('waits for a lock held by another live process', async () => {
    const holder = spawn('sleep', ['60'], { stdio: 'ignore' }); // raw: a live pid to name as the lock's owner, killed below
    try {
      mkdirSync(dirname(opts().lockFile), { recursive: true });
      writeFileSync(opts().lockFile, `${holder.pid}\n`);
      let done = false;
      const p = generateFileLists(modules(), opts()).then((r) => ((done = true), r));
      await new Promise((r) => setTimeout(r, 400));
      expect(done).toBe(false);
      expect(existsSync(join(rocky, 'fullfiletimelist-rocky'))).toBe(false);
      holder.kill();
      await new Promise((r) => holder.once('exit', r));
      const r = await p;
      expect(r.written.length).toBe(8);
    } finally {
      holder.kill();
    }
  });

  it('changes no list when any module fails', async () => {
    await generateFileLists(modules(), opts());
    const before = mtimeNs(join(rocky, 'fullfiletimelist-rocky'));
    put(join(rocky, 'new.txt'), 'new');
    put(join(sig, 'bad\nname'), 'x');
    await expect(generateFileLists(modules(), opts())).rejects.toThrow(/tab or newline/);
    expect(mtimeNs(join(rocky, 'fullfiletimelist-rocky'))).toBe(before);
    expect(read(join(rocky, 'fullfilelist'))).not.toContain('new.txt');
    expect(existsSync(opts().lockFile)).toBe(false);
  });

  it('refuses a file name that is not valid UTF-8 rather than dropping it', async () => {
    writeFileSync(Buffer.concat([Buffer.from(join(rocky, '9.7') + '/'), Buffer.from([0x66, 0xff, 0x2e, 0x72, 0x70, 0x6d])]), 'x');
    await expect(generateFileLists(modules(), opts())).rejects.toThrow(/not valid UTF-8/);
    expect(existsSync(join(rocky, 'fullfiletimelist-rocky'))).toBe(false);
  });

  it('refuses a lock or cache file inside a module', async () => {
    await expect(generateFileLists(modules(), opts({ lockFile: join(rocky, '.lock') }))).rejects.toThrow(/inside module rocky/);
    await expect(generateFileLists(modules(), opts({ cacheFile: join(sig, 'cache.json') }))).rejects.toThrow(/inside module sig/);
  });
});

describe('walkTree', () => {
  const rules = { topExact: ['fullfilelist'], topPrefixes: ['fullfiletimelist', 'imagelist'], checksumNames: ['repomd.xml'], imageExtensions: ['.iso'] };
  const entries = async (root: string) => {
    const out = new Map<string, { kind: string; flags: number; size: number }>();
    for (const c of await walkTree(root, rules)) c.paths.forEach((p, i) => out.set(p, { kind: 'fdl'[c.nums[i * 7]], flags: c.nums[i * 7 + 3], size: c.nums[i * 7 + 2] }));
    return out;
  };

  it('carries restriction down nested dirs and back out, skips what is under a skipped dir, keeps odd names', async () => {
    const t = join(tmp, 'walk');
    put(join(t, 'a', 'b', 'c', 'deep.txt'), 'deep');
    put(join(t, 'a', 'b', 'open.txt'), 'open');
    put(join(t, 'a', 'after.txt'), 'after');
    put(join(t, 'z.txt'), 'z');
    put(join(t, 'hidden', 'x', 'inside.txt'), 'x');
    put(join(t, 'fullfiletimelist-dir', 'inner.txt'), 'a top-level dir named like a list');
    put(join(t, '-dash  two spaces', 'é.iso'), 'iso');
    chmodSync(join(t, 'a', 'b', 'c'), 0o750);
    chmodSync(join(t, 'a', 'b'), 0o750);
    chmodSync(join(t, 'hidden'), 0o700);
    try {
      const e = await entries(t);
      expect([...e.keys()].sort()).toEqual(['-dash  two spaces', '-dash  two spaces/é.iso', 'a', 'a/after.txt', 'a/b', 'a/b/c', 'a/b/c/deep.txt', 'a/b/open.txt', 'z.txt']);
      expect(e.get('a/b')?.flags).toBe(2); // itself not world-readable
      expect(e.get('a/b/c')?.flags).toBe(3); // and inside such a dir
      expect(e.get('a/b/c/deep.txt')?.flags).toBe(1);
      expect(e.get('a/b/open.txt')?.flags).toBe(1);
      expect(e.get('a/after.txt')?.flags).toBe(0); // out of a/b again
      expect(e.get('z.txt')?.flags).toBe(0);
      expect(e.get('-dash  two spaces/é.iso')).toEqual({ kind: 'f', flags: 8, size: 3 });
    } finally {
      for (const d of ['a/b/c', 'a/b', 'hidden']) chmodSync(join(t, d), 0o755);
    }
  });

  it('walks the top-level dirs in separate finds without carrying restriction across them, top-level files and links included', async () => {
    const t = join(tmp, 'split');
    for (const d of ['p', 'q', 'r', 's']) put(join(t, d, 'sub', 'f.txt'), d);
    put(join(t, 'top.txt'), 'top');
    symlinkSync('p', join(t, 'link'));
    // p and r share a find (every other dir in name order), q and s the other one.
    chmodSync(join(t, 'p'), 0o750);
    chmodSync(join(t, 'q', 'sub'), 0o750);
    try {
      const e = await entries(t);
      expect([...e.keys()].sort()).toEqual(['link', 'p', 'p/sub', 'p/sub/f.txt', 'q', 'q/sub', 'q/sub/f.txt', 'r', 'r/sub', 'r/sub/f.txt', 's', 's/sub', 's/sub/f.txt', 'top.txt']);
      expect(['p', 'p/sub', 'p/sub/f.txt', 'q', 'q/sub', 'q/sub/f.txt'].map((p) => e.get(p)?.flags)).toEqual([2, 1, 1, 0, 2, 1]);
      expect(['r', 'r/sub', 'r/sub/f.txt', 's', 's/sub', 's/sub/f.txt', 'top.txt', 'link'].map((p) => e.get(p)?.flags)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
      expect(e.get('link')?.kind).toBe('l');
    } finally {
      chmodSync(join(t, 'p'), 0o755);
      chmodSync(join(t, 'q', 'sub'), 0o755);
    }
  });

  // With one core one find walks everything: there is no other to stop.
  it.skipIf(availableParallelism() < 2)('stops the other find at once when one fails, and reports the failing one with its output', async () => {
    const t = join(tmp, 'find-fails');
    put(join(t, 'a', 'f.txt'), 'a');
    put(join(t, 'b', 'f.txt'), 'b');
    // A `find` first on PATH: the one given ./a fails as an unreadable dir makes find fail; the
    // other (./b) records its pid and never ends on its own.
    const bin = join(tmp, 'find-shim');
    const pidFile = join(tmp, 'slow-find.pid');
    put(
      join(bin, 'find'),
      `#!/bin/sh\ncase " $* " in *" ./a "*) echo "find: './a/secret': Permission denied" >&2; exit 1;; esac\necho $$ > ${pidFile}\nexec sleep 100000\n`,
      0o755,
    );
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path}`;
    // Also when the walk hangs (the test times out, its finally never runs): the slow find goes.
    onTestFinished(() => {
      try {
        if (existsSync(pidFile)) process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
      } catch {
        // already gone
      }
    });
    try {
      const err = await walkTree(t, rules).catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toBe(`find in ${t} (the file-list walk) exited with code 1:\nfind: './a/secret': Permission denied`);
      // The slow one was stopped (it may have been stopped before it wrote its pid).
      const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : undefined;
      if (pid) expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
    } finally {
      process.env.PATH = path;
    }
  });

  it('marks everything restricted under a root that is not world-readable', async () => {
    const t = join(tmp, 'closed');
    put(join(t, 'd', 'f.txt'), 'f');
    chmodSync(t, 0o750);
    try {
      const e = await entries(t);
      expect([...e.values()].map((x) => x.flags & 1)).toEqual([1, 1]);
    } finally {
      chmodSync(t, 0o755);
    }
  });
});

describe('parseFileTimeList', () => {
  const good = '[Version]\n2\n\n[Files]\n1700000000\td\t4096\ta\n1700000000\tf*\t3\ta/repomd.xml\n\n[Checksums SHA1]\n' + 'a'.repeat(40) + '\ta/repomd.xml\n\n[End]\n';

  it('reads a well-formed list', () => {
    expect(parseFileTimeList(good)).toEqual({
      version: 2,
      files: [
        { mtime: 1700000000, type: 'd', size: 4096, path: 'a' },
        { mtime: 1700000000, type: 'f*', size: 3, path: 'a/repomd.xml' },
      ],
      checksums: { SHA1: { 'a/repomd.xml': 'a'.repeat(40) } },
    });
    expect(parseFileTimeList('[Version]\n2\n\n[Files]\n\n[Checksums SHA1]\n\n[End]\n').files).toEqual([]);
  });

  it('rejects a list without [End] as truncated', () => {
    expect(() => parseFileTimeList(good.slice(0, good.indexOf('[End]')))).toThrow(/truncated/);
    expect(() => parseFileTimeList(good.slice(0, 60))).toThrow(/truncated/);
    expect(() => parseFileTimeList('')).toThrow(/truncated/);
  });

  it('rejects malformed headers, fields and sections', () => {
    const bad = [
      good.replace('[Version]\n2\n\n', '[Version]\n2\n'), // no blank line
      good.replace('[Version]\n2', '[Version]\nx'),
      good.replace('[Version]\n2', '[Version]\n9'),
      good.replace('\t4096\t', ' 4096\t'), // 3 fields
      good.replace('\td\t', '\tx\t'),
      good.replace('\tf*\t', '\tf**\t'),
      good.replace('\ta\n', '\t./a\n'),
      good.replace('a'.repeat(40), 'a'.repeat(39)),
      good.replace('\n\n[End]', '\n[End]'),
      good.replace('[Checksums SHA1]', '[Checksums]'),
      good + 'trailing\n',
    ];
    for (const b of bad) expect(() => parseFileTimeList(b), JSON.stringify(b)).toThrow();
  });
});
