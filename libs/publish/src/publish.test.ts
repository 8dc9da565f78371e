import { existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventLog, runSync } from '@rocky/exec';
import { checksumDigests, DeletionLimitError, escapeName, excludeMatcher, isChecksumList, isMetadataPath, linkProblem, mirrorNameProblem, publishTree, PublishRefusedError, sourceProblems } from './publish';
import { linkCopyArgv } from '@rocky/exec';
import { deletionArgs, deletionRules, exactPattern, linkDestArgv, parseDestination, parseItemized } from './rsync';

let tmp: string;
/** publishTree's work dir: under the test's dir, so a killed publish leaves nothing behind. */
const work = () => join(tmp, 'publish-work');
const put = (file: string, data: string, mtime = 1_700_000_000) => {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, data);
  utimesSync(file, mtime, mtime);
};
/** Everything under `dir` as path -> content / `-> target` / `dir`. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const n of runSync(['ls', '-A', join(dir, rel)]).toString().split('\n').filter(Boolean)) {
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

describe('what a mirror can carry', () => {
  it('names: valid UTF-8 without control characters (file lists are tab/newline separated)', () => {
    expect(mirrorNameProblem('Rocky-9.7-x86_64-dvd.iso')).toBeUndefined();
    expect(mirrorNameProblem('ünï côdé [x] *?.rpm')).toBeUndefined();
    expect(mirrorNameProblem('a\nb.rpm')).toBe('contains the control character \\n');
    expect(mirrorNameProblem('a\tb')).toBe('contains the control character \\t');
    expect(mirrorNameProblem('a\rb')).toBe('contains the control character \\r');
    expect(mirrorNameProblem('a\x7fb')).toBe('contains the control character \\x7f');
    expect(mirrorNameProblem(Buffer.from([0x61, 0xff, 0x62]))).toBe('is not valid UTF-8');
    expect(mirrorNameProblem(Buffer.from([0xc3, 0xa9]))).toBeUndefined(); // é
    expect(mirrorNameProblem(Buffer.from([0xed, 0xa0, 0x80]))).toBe('is not valid UTF-8'); // a UTF-16 surrogate
  });
  it('escapes names for messages: invalid bytes and control characters, nothing else', () => {
    expect(escapeName(Buffer.from([0x61, 0xff, 0x0a, 0xc3, 0xa9, 0x5c]))).toBe('a\\xff\\né\\\\');
    expect(escapeName('plain name.rpm')).toBe('plain name.rpm');
  });
  it('symlinks stay inside the tree', () => {
    expect(linkProblem('isos/x86_64/Rocky-9-latest-x86_64-dvd.iso', 'Rocky-9.7-x86_64-dvd.iso')).toBeUndefined();
    expect(linkProblem('baseos', 'BaseOS')).toBeUndefined();
    expect(linkProblem('a/b/c', '../../d')).toBeUndefined();
    expect(linkProblem('a/shadow', '/etc/shadow')).toMatch(/absolute/);
    expect(linkProblem('a/b/c', '../../../d')).toMatch(/outside the tree \(to \.\.\/d\)/);
    expect(linkProblem('x', '..')).toMatch(/outside/);
  });
  it('finds every bad name and symlink of the sources, as bytes, inside bad directories too, except what excludes hide', async () => {
    const [a, b] = [join(tmp, 'a'), join(tmp, 'b')];
    const latin1 = (p: string) => Buffer.from(p, 'latin1');
    put(join(a, 'ok/ünï côdé.rpm'), 'x');
    put(join(a, 'ok/\ufffd.rpm'), 'x'); // U+FFFD is itself valid UTF-8
    symlinkSync('ok', join(a, 'fine-link'));
    mkdirSync(latin1(`${a}/bad-\xff`));
    writeFileSync(latin1(`${a}/bad-\xff/tab\there`), 'x');
    symlinkSync(latin1('../../../x\xfe'), latin1(`${a}/bad-\xff/out`));
    put(join(a, 'skip/new\nline'), 'x');
    symlinkSync('/etc', join(a, 'skip/etc'));
    put(join(a, 'x/.~tmp~/new\nline'), 'x'); // rsync's temp dir: never content
    put(join(b, 'ctl\x01'), 'x');
    const problems = await sourceProblems([a, b], ['skip/']);
    expect(problems.sort()).toEqual(
      [
        `${a}/bad-\\xff: the name is not valid UTF-8; mirror file lists cannot carry it`,
        `${a}/bad-\\xff/tab\\there: the name contains the control character \\t; mirror file lists cannot carry it`,
        `${a}/bad-\\xff/out -> ../../../x\\xfe: the symlink resolves outside the tree (to ../../x\ufffd)`,
        `${b}/ctl\\x01: the name contains the control character \\x01; mirror file lists cannot carry it`,
      ].sort(),
    );
  });
  it('fails naming the source and find\'s message, and stops the walks of the other sources', async () => {
    const [a, b] = [join(tmp, 'a'), join(tmp, 'b')];
    put(join(a, 'x.rpm'), 'x');
    put(join(b, 'y.rpm'), 'y');
    const bin = join(tmp, 'bin');
    const pidFile = join(tmp, 'find.pid');
    mkdirSync(bin);
    // In b, a walk that never ends; in a, one that fails.
    writeFileSync(join(bin, 'find'), `#!/bin/sh\ncase "$(pwd)" in */b) echo $$ > ${pidFile}; exec sleep 600;; esac\ni=0\nwhile [ ! -s ${pidFile} ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done\necho "find: './z': Permission denied" >&2\nexit 1\n`, { mode: 0o755 });
    const path = process.env.PATH;
    process.env.PATH = `${bin}${delimiter}${path}`;
    try {
      const err: Error = await sourceProblems([a, b]).catch((e) => e);
      expect(err.message).toMatch(new RegExp(`^checking the names in ${a}: find exited 1: `));
      expect(err.message).toContain("find: './z': Permission denied");
    } finally {
      process.env.PATH = path;
    }
    expect(() => process.kill(Number(readFileSync(pidFile, 'utf8')), 0)).toThrow(/ESRCH/);
  });
  it('reads what sha256sum -c checks in a checksum list', () => {
    const d = 'a'.repeat(64);
    expect([...checksumDigests(`# x.iso: 3 bytes\nSHA256 (x.iso) = ${d.toUpperCase()}\n-----BEGIN PGP SIGNATURE-----\nSHA256 (odd (1).iso) = ${d}\r\n`)]).toEqual([
      ['x.iso', d],
      ['odd (1).iso', d],
    ]);
    expect(['CHECKSUM', 'x.iso.CHECKSUM', 'CHECKSUM.asc'].every(isChecksumList)).toBe(true);
    expect(['CHECKSUM.sig', 'NOTCHECKSUM', 'CHECKSUMS'].some(isChecksumList)).toBe(false);
  });
});

describe('rsync argv', () => {
  it('deletes exactly the planned paths: risk rules for each (wildcards escaped), protect the rest', () => {
    expect(exactPattern('a/b.rpm')).toBe('a/b.rpm');
    expect(exactPattern('odd/we[i]rd*?\\x')).toBe('odd/we\\[i]rd\\*\\?\\\\x');
    expect(exactPattern('back\\slash')).toBe('back\\slash'); // no wildcard: the backslash is literal
    expect(deletionRules(['a/b', 'n\nl'], ['/.~tmp~/**'])).toBe('R /a/b\0R /n\nl\0R /.~tmp~/**\0P *\0');
    expect(deletionArgs({ extraArgs: ['--timeout=300'] }, '/w/rules', '/w/skel', 'rsync://h/m/p')).toEqual([
      '-r',
      '--delete',
      '--existing',
      '--ignore-existing',
      '--from0',
      '--filter=merge /w/rules',
      '--timeout=300',
      '/w/skel/',
      'rsync://h/m/p/',
    ]);
  });
  it('builds the hardlinked tree copies staging makes', () => {
    expect(linkCopyArgv('/s/9.7-RC2', '/w/tree')).toEqual(['cp', '-al', '/s/9.7-RC2/.', '/w/tree/']);
    expect(linkDestArgv({ from: '/c/compose', to: '/w/tree', excludes: ['repodata/'], delete: true })).toEqual([
      'rsync',
      '-rlptgoD',
      '-H',
      '--numeric-ids',
      '--exclude=repodata/',
      '--delete',
      '--link-dest=/c/compose',
      '/c/compose/',
      '/w/tree/',
    ]);
    expect(linkDestArgv({ from: '/c/compose', to: '/w/tree', linkDest: '/old', rsync: '/opt/rsync' })).toEqual(['/opt/rsync', '-rlptgoD', '-H', '--numeric-ids', '--link-dest=/old', '/c/compose/', '/w/tree/']);
  });
  it('splits a remote destination into what exists and the path a publish creates', () => {
    expect(parseDestination('/srv/pub/9.7/')).toEqual({ spec: '/srv/pub/9.7', remote: false, local: '/srv/pub/9.7' });
    expect(parseDestination('rsync://h:873/mirror/pub/rocky/9.7')).toMatchObject({ remote: true, base: 'rsync://h:873/mirror', under: 'pub/rocky/9.7' });
    expect(parseDestination('h::mirror/pub')).toMatchObject({ base: 'h::mirror', under: 'pub' });
    expect(parseDestination('u@h:/srv/pub')).toMatchObject({ base: 'u@h:/', under: 'srv/pub' });
    expect(parseDestination('h:pub')).toMatchObject({ base: 'h:', under: 'pub' });
  });
});

describe('publishTree (local)', () => {
  it('publishes, verifies, is idempotent, and orders its phases', async () => {
    const src = join(tmp, 'src');
    const dest = join(tmp, 'dest');
    tree(src, 1);
    const events = join(tmp, 'events.jsonl');
    const r1 = await publishTree({ workDir: work(), source: src, dest, delete: true, log: eventLog(events) });
    expect(r1.verified).toBe(true);
    expect(snapshot(dest)).toEqual(snapshot(src));
    expect(r1.phases.map((p) => p.name)).toEqual(['content', 'metadata', 'signature', 'repomd', 'links', 'attrs']);

    const again = await publishTree({ workDir: work(), source: src, dest, delete: true });
    expect(again.changed).toBe(false);
    expect(again.phases).toEqual([]);

    // v2: a package replaced, repodata replaced, ISO updated, one file gone.
    rmSync(join(src, 'BaseOS/x86_64/os/Packages/a/a-1.rpm'));
    rmSync(join(src, 'BaseOS/x86_64/os/repodata/1-primary.xml.gz'));
    tree(src, 2);
    const dry = await publishTree({ workDir: work(), source: src, dest, delete: true, dryRun: true });
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

    const r2 = await publishTree({ workDir: work(), source: src, dest, delete: true, deletionGraceMs: 0, log: eventLog(events) });
    expect(snapshot(dest)).toEqual(snapshot(src));
    expect(r2.phases.map((p) => p.name)).toEqual(['content', 'metadata', 'signature', 'repomd', 'delete', 'attrs']);
    expect((await publishTree({ workDir: work(), source: src, dest, delete: true })).changed).toBe(false);
    const types = readFileSync(events, 'utf8').trim().split('\n').map((l) => JSON.parse(l).type);
    expect(types.filter((t) => t === 'publish-done')).toHaveLength(2);
  });

  it('refuses deletions above the limit before changing anything, unless confirmed', async () => {
    const src = join(tmp, 'src');
    const dest = join(tmp, 'dest');
    tree(src, 1);
    for (let i = 0; i < 5; i++) put(join(src, `extra/f${i}`), `${i}`);
    await publishTree({ workDir: work(), source: src, dest, delete: true });
    rmSync(join(src, 'extra'), { recursive: true });
    tree(src, 2);
    const before = snapshot(dest);
    expect((await publishTree({ workDir: work(), source: src, dest, delete: true, deletionLimit: 3, dryRun: true })).needsConfirmation).toBe(true);
    const err = await publishTree({ workDir: work(), source: src, dest, delete: true, deletionLimit: 3 }).catch((e) => e);
    expect(err).toBeInstanceOf(DeletionLimitError);
    expect(err.message).toMatch(/refusing to delete 5 files \(limit 3\).*--confirmDeletions/s);
    expect(snapshot(dest)).toEqual(before);
    const ok = await publishTree({ workDir: work(), source: src, dest, delete: true, deletionLimit: 3, confirmDeletions: true, deletionGraceMs: 0 });
    expect(ok.deletes.filter((d) => d.type === 'file')).toHaveLength(5);
    expect(snapshot(dest)).toEqual(snapshot(src));
  });

  it('keeps extraneous files without delete, and honours excludes', async () => {
    const src = join(tmp, 'src');
    const dest = join(tmp, 'dest');
    tree(src, 1);
    put(join(dest, 'old.rpm'), 'old');
    put(join(dest, 'keep/me'), 'x');
    const r = await publishTree({ workDir: work(), source: src, dest, delete: false, excludes: ['keep/'] });
    expect(r.deletes).toEqual([]);
    expect(readFileSync(join(dest, 'old.rpm'), 'utf8')).toBe('old');
    const r2 = await publishTree({ workDir: work(), source: src, dest, delete: true, excludes: ['keep/'], deletionGraceMs: 0 });
    expect(r2.deletes.map((d) => d.path)).toEqual(['old.rpm']);
    expect(readFileSync(join(dest, 'keep/me'), 'utf8')).toBe('x');
  });

  it('sets the owner (--chown) when running as root', async () => {
    if (process.getuid?.() !== 0) return;
    const src = join(tmp, 'src');
    const dest = join(tmp, 'dest');
    tree(src, 1);
    await publishTree({ workDir: work(), source: src, dest, delete: true, owner: '10004:10005' });
    const st = statSync(join(dest, 'BaseOS/x86_64/os/repodata/repomd.xml'));
    expect([st.uid, st.gid]).toEqual([10004, 10005]);
    expect(lstatSync(join(dest, 'isos/x86_64/Rocky-9-latest-x86_64-dvd.iso')).uid).toBe(10004);
    expect((await publishTree({ workDir: work(), source: src, dest, delete: true, owner: '10004:10005' })).changed).toBe(false);
  });

  it('refuses, before changing anything (dry run too), symlinks leaving the tree and names a mirror cannot carry', async () => {
    const src = join(tmp, 'src');
    const dest = join(tmp, 'dest');
    tree(src, 1);
    await publishTree({ workDir: work(), source: src, dest, delete: true });
    const before = snapshot(dest);
    symlinkSync('/etc/shadow', join(src, 'BaseOS/x86_64/os/shadow'));
    symlinkSync('/root', join(src, 'root'));
    symlinkSync('../../../../etc', join(src, 'isos/x86_64/etc'));
    put(join(src, 'BaseOS/x86_64/os/Packages/a/new\nline.rpm'), 'x');
    writeFileSync(Buffer.from(`${src}/latin1-\xe9.rpm`, 'latin1'), 'x');
    for (const dryRun of [true, false]) {
      const err = await publishTree({ workDir: work(), source: src, dest, delete: true, dryRun }).catch((e) => e);
      expect(err).toBeInstanceOf(PublishRefusedError);
      expect(err.reason).toBe('source');
      expect(err.problems.sort()).toEqual(
        [
          `${src}/BaseOS/x86_64/os/shadow -> /etc/shadow: the symlink is absolute (a mirror would serve its own host's file, or a dangling link)`,
          `${src}/root -> /root: the symlink is absolute (a mirror would serve its own host's file, or a dangling link)`,
          `${src}/isos/x86_64/etc -> ../../../../etc: the symlink resolves outside the tree (to ../../etc)`,
          `${src}/BaseOS/x86_64/os/Packages/a/new\\nline.rpm: the name contains the control character \\n; mirror file lists cannot carry it`,
          `${src}/latin1-\\xe9.rpm: the name is not valid UTF-8; mirror file lists cannot carry it`,
        ].sort(),
      );
      expect(err.message).toMatch(/^refusing to publish to .*; nothing was changed:/);
    }
    expect(snapshot(dest)).toEqual(before);
    // Excluded paths are not published, so not checked.
    expect((await publishTree({ workDir: work(), source: src, dest, delete: false, dryRun: true, excludes: ['shadow', '/root', 'etc', 'new*', 'latin1-*'] })).adds).toEqual([]);
  });

  it('checks the sources while the plan (a dry run) runs; a refusal stops the plan', async () => {
    const src = join(tmp, 'src');
    const dest = join(tmp, 'dest');
    tree(src, 1);
    symlinkSync('/etc/shadow', join(src, 'shadow'));
    const started = join(tmp, 'rsync.pid');
    const bin = join(tmp, 'bin');
    mkdirSync(bin);
    // The plan's rsync says it runs, then never ends.
    const rsync = join(bin, 'slow-rsync');
    writeFileSync(rsync, `#!/bin/sh\necho $$ > ${started}\nexec sleep 600\n`, { mode: 0o755 });
    // The check (find) waits until that rsync runs: only a check beside the plan gets past it at once.
    const find = runSync(['sh', '-c', 'command -v find']).toString().trim();
    writeFileSync(join(bin, 'find'), `#!/bin/sh\ni=0\nwhile [ ! -s ${started} ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done\nexec ${find} "$@"\n`, { mode: 0o755 });
    const path = process.env.PATH;
    process.env.PATH = `${bin}${delimiter}${path}`;
    try {
      const err = await publishTree({ workDir: work(), source: src, dest, delete: true, rsync }).catch((e) => e);
      expect(err).toBeInstanceOf(PublishRefusedError);
      expect(err.problems).toEqual([`${src}/shadow -> /etc/shadow: the symlink is absolute (a mirror would serve its own host's file, or a dangling link)`]);
    } finally {
      process.env.PATH = path;
    }
    expect(existsSync(started)).toBe(true);
    const pid = Number(readFileSync(started, 'utf8'));
    expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
    expect(existsSync(dest)).toBe(false);
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
    await publishTree({ workDir: work(), source: [src, overlay], dest, delete: true });
    expect(snapshot(dest)).toEqual({ ...snapshot(src), ...snapshot(overlay) });
    rmSync(join(src, 'X'), { recursive: true });
    put(join(src, 'X'), 'now a file');
    rmSync(join(src, 'Y'));
    put(join(src, 'Y/z'), 'now a dir');
    // A package hardlinked into a second tree (as composes share store objects).
    put(join(src, 'BaseOS/x86_64/os/Packages/c/c-1.rpm'), 'c');
    mkdirSync(join(src, 'BaseOS/x86_64/kickstart/Packages/c'), { recursive: true });
    linkSync(join(src, 'BaseOS/x86_64/os/Packages/c/c-1.rpm'), join(src, 'BaseOS/x86_64/kickstart/Packages/c/c-1.rpm'));
    const r = await publishTree({ workDir: work(), source: [src, overlay], dest, delete: true, deletionGraceMs: 0 });
    expect(r.verified).toBe(true);
    expect(snapshot(dest)).toEqual({ ...snapshot(src), ...snapshot(overlay) });
    expect(statSync(join(dest, 'BaseOS/x86_64/kickstart/Packages/c/c-1.rpm')).ino).toBe(statSync(join(dest, 'BaseOS/x86_64/os/Packages/c/c-1.rpm')).ino);
    expect((await publishTree({ workDir: work(), source: [src, overlay], dest, delete: true })).changed).toBe(false);
  });
});
