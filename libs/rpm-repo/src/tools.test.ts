// The command lines of createrepo_c, modifyrepo_c and dnf (unit), and each tool run for real on
// a small repo (integration): createrepo_c and modifyrepo_c write what dnf reads; xz, zstd and
// bzip2 decompress repodata as a stream.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { run, runSync } from '@rocky/exec';
import { createrepo, createrepoArgv, modifyrepo, modifyrepoArgv } from './createrepo';
import { dnfArgv, dnfConfig, pluginArgs, repoclosureArgv, reposyncArgv } from './dnf';
import { repoclosure } from './repoclosure';
import { decompress, decompressStream, parseRepomd, readRepodata } from './repodata';
import { Readable } from 'node:stream';

describe('createrepo_c and modifyrepo_c command lines', () => {
  it('builds the fixture form and the staging form', () => {
    expect(createrepoArgv({ dir: '/r', quiet: true, database: false, workers: 1, revision: 1763596800, setTimestampToRevision: true, groupfile: 'comps' })).toEqual([
      'createrepo_c', '--quiet', '--no-database', '--workers', '1', '--revision', '1763596800', '--set-timestamp-to-revision', '-g', 'comps', '/r',
    ]);
    expect(
      createrepoArgv({ dir: '/r', update: true, checksum: 'sha256', uniqueMdFilenames: true, revision: '8.10', distro: 'cpe:/o:rocky:rocky:8.10,Rocky Linux 8.10', workers: 2, groupfile: '/t/comps.xml' }),
    ).toEqual([
      'createrepo_c', '--update', '--checksum=sha256', '--unique-md-filenames', '--workers', '2', '--revision', '8.10', '--distro=cpe:/o:rocky:rocky:8.10,Rocky Linux 8.10', '-g', '/t/comps.xml', '/r',
    ]);
    expect(createrepoArgv({ dir: '/r', update: true, keepAllMetadata: true, quiet: true })).toEqual(['createrepo_c', '--update', '--keep-all-metadata', '--quiet', '/r']);
    expect(modifyrepoArgv({ mdtype: 'updateinfo', file: '/t/updateinfo.xml', repodata: '/r/repodata' })).toEqual(['modifyrepo_c', '--mdtype=updateinfo', '/t/updateinfo.xml', '/r/repodata']);
  });
});

describe('dnf command lines', () => {
  const repos = [{ id: 'b', path: '/c/BaseOS/x86_64/os' }, { id: 'a', url: 'http://127.0.0.1:1/a' }];
  it('every call pins its config, releasever, no system repos and no skipping', () => {
    expect(dnfArgv({ config: '/w/dnf.conf', releasever: 9, repos, quiet: true }, ['repoquery', '--location', 'x'])).toEqual([
      'dnf', '-q', '--config=/w/dnf.conf', '--releasever=9', '--setopt=reposdir=/dev/null', '--setopt=skip_if_unavailable=False',
      '--repofrompath=b,file:///c/BaseOS/x86_64/os', '--repofrompath=a,http://127.0.0.1:1/a', '--repo=b', '--repo=a', 'repoquery', '--location', 'x',
    ]);
  });
  it('repoclosure checks one repo against its deps with Rocky arch flags', () => {
    const argv = repoclosureArgv({ config: '/w/dnf.conf', releasever: 9, check: { id: 'app', path: '/a' }, deps: [{ id: 'base', path: '/b' }], arch: 'aarch64' });
    expect(argv.slice(argv.indexOf('repoclosure'))).toEqual(['repoclosure', '--check=app', '--forcearch=aarch64', '--arch=aarch64', '--arch=noarch']);
    expect(argv).toContain('--repo=base');
    expect(argv.filter((a) => a.includes('plugin'))).toEqual(['--disableplugin=*', '--enableplugin=repoclosure']);
  });
  it("plugins: unset leaves the host's, a list keeps only those", () => {
    expect(pluginArgs(undefined)).toEqual([]);
    expect(pluginArgs(['a', 'b'])).toEqual(['--disableplugin=*', '--enableplugin=a', '--enableplugin=b']);
    expect(pluginArgs([])).toEqual(['--disableplugin=*']);
  });
  it('reposync', () => {
    expect(reposyncArgv({ config: '/w/c', releasever: 9, forcearch: 'aarch64', repos: [repos[1]], quiet: true, downloadMetadata: true, arches: ['aarch64', 'noarch'], dest: '/o' }).slice(1)).toEqual([
      '-q', '-y', '--config=/w/c', '--forcearch=aarch64', '--releasever=9', '--setopt=reposdir=/dev/null', '--setopt=skip_if_unavailable=False',
      '--repofrompath=a,http://127.0.0.1:1/a', '--repo=a', 'reposync', '--download-metadata', '--arch=aarch64', '--arch=noarch', '-p', '/o',
    ]);
  });
});

describe('the tools, run', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rpm-repo-tools-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A repo of one noarch package `name`, under `dir`. */
  async function oneRpmRepo(name: string): Promise<string> {
    const top = join(dir, `rpmbuild-${name}`);
    mkdirSync(join(top, 'SPECS'), { recursive: true });
    writeFileSync(join(top, 'SPECS/t.spec'), `Name: ${name}\nVersion: 1\nRelease: 1\nSummary: t\nLicense: MIT\nBuildArch: noarch\n%description\nt\n%files\n`);
    await run(['rpmbuild', '--quiet', '--define', `_topdir ${top}`, '-bb', join(top, 'SPECS/t.spec')]);
    const repo = join(dir, `repo-${name}`);
    mkdirSync(repo);
    runSync(['cp', '-r', join(top, 'RPMS/noarch'), join(repo, 'Packages')]);
    await createrepo({ dir: repo, quiet: true, database: false });
    return repo;
  }

  it('createrepo_c then modifyrepo_c write repodata dnf reads, with the added metadata recorded', async () => {
    const repo = await oneRpmRepo('toolstest');
    const ui = join(dir, 'updateinfo.xml');
    writeFileSync(ui, '<?xml version="1.0" encoding="UTF-8"?>\n<updates/>\n');
    await modifyrepo({ mdtype: 'updateinfo', file: ui, repodata: join(repo, 'repodata') });
    const md = parseRepomd(readFileSync(join(repo, 'repodata/repomd.xml'), 'utf8'));
    expect(md.records.map((r) => r.type).sort()).toEqual(['filelists', 'other', 'primary', 'updateinfo']);
    const q = await run(dnfArgv({ config: dnfConfig(join(dir, 'dnf')), releasever: 9, repos: [{ id: 'r', path: repo }], quiet: true }, ['repoquery', '--qf', '%{name}']));
    expect(q.stdout.trim()).toBe('toolstest');
  });

  it("a repoclosure loads dnf's repoclosure plugin and no other", async () => {
    const repo = await oneRpmRepo('closuretest');
    const workDir = join(dir, 'closure');
    expect((await repoclosure({ check: { id: 'r', path: repo }, deps: [], arch: 'x86_64', releasever: 9, workDir })).ok).toBe(true);
    // dnf logs the plugins it loaded; without the limit this host's dnf-plugins-core loads 22.
    expect(readFileSync(join(workDir, 'log', 'dnf.log'), 'utf8')).toMatch(/Loaded plugins: repoclosure\n/);
  });

  it.each(['xz', 'zstd', 'bzip2'])('%s-compressed repodata is decompressed as a stream, and in memory', async (tool) => {
    const xml = `<metadata>${'<package/>'.repeat(200_000)}</metadata>\n`; // more than a pipe buffer
    const plain = join(dir, `p-${tool}.xml`);
    writeFileSync(plain, xml);
    const ext = { xz: 'xz', zstd: 'zst', bzip2: 'bz2' }[tool];
    runSync([tool, '-k', '-q', plain]);
    const file = `${plain}.${ext}`;
    expect((await readRepodata(file)).toString('utf8')).toBe(xml);
    expect(decompress(readFileSync(file), file).toString('utf8')).toBe(xml);
  });

  it('gzip natively; a corrupt file fails naming the file and the tool with its message', async () => {
    const gz = join(dir, 'p.xml.gz');
    writeFileSync(gz, gzipSync('<x/>'));
    expect((await readRepodata(gz)).toString()).toBe('<x/>');
    const bad = join(dir, 'bad.xml.xz');
    writeFileSync(bad, 'not xz at all');
    await expect(readRepodata(bad)).rejects.toThrow(/bad\.xml\.xz: cannot decompress: xz exited 1: xz -dc\n[^]*format not recognized/);
    expect(() => decompress(readFileSync(bad), bad)).toThrow(/bad\.xml\.xz: cannot decompress: xz exited 1/);
  });

  it('a missing decompressor is named, with how to install it', async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      const s = decompressStream(Readable.from([Buffer.from('x')]), 'primary.xml.zst');
      await expect((async () => { for await (const _ of s); })()).rejects.toThrow(/zstd is not installed \(apt-get install zstd \/ dnf install zstd/);
    } finally {
      process.env.PATH = path;
    }
  });
});
