// Integration: the x86_64 boot tree and boot ISO from real rpms (dnf, mksquashfs, isolinux,
// grub-mkimage, xorriso, implantisomd5), the DVD made from it, boot smoke tests in qemu,
// and the failure paths.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isoNames, volumeId } from '@rocky/config';
import { parseTreeinfo, renderTreeinfo } from '@rocky/compose';
import { run, sha256File } from '@rocky/exec';
import { bootMarker, buildBootTree, buildExtraIso, collectLoraxTree, isoManifest, loraxArgv, verifyIso, type BootTreeResult, type ExtraIsoInput, type ExtraIsoResult } from './index';
import { buildTestRepos, rpmFileDigests, testRelease, type TestRepos } from './testing/repos';
import { bootToMarker, qemuMissing } from './testing/qemu';

const TS = 1763650000;
const rel = testRelease();
const beta = testRelease({ minor: 8, type: 'beta', rc: 'BETA1', profile: '9-beta', project: 'rocky-9-beta' });
let tmp: string;
let repos: TestRepos;
let boot: BootTreeResult;
let dvd: ExtraIsoResult;
const dvdLog: string[] = [];
const repoList = () => [
  { name: 'BaseOS', path: repos.baseos },
  { name: 'AppStream', path: repos.appstream },
];

/** The x86_64 DVD of the test repos, built into `name` and `name-work` under tmp. */
const dvdInput = (name: string, o: Partial<ExtraIsoInput> = {}): ExtraIsoInput => ({
  release: rel,
  arch: 'x86_64',
  image: 'dvd',
  bootIso: boot.iso.path,
  bootTree: boot.tree,
  repos: repoList(),
  mainVariant: 'AppStream',
  outFile: join(tmp, name, 'dvd.iso'),
  workDir: join(tmp, `${name}-work`),
  buildTimestamp: TS,
  ...o,
});
/**
 * Runs `fn` with `tool` replaced on PATH by one that prints 40 lines and exits 5 (when its
 * arguments contain `when`; otherwise it runs the real tool). Returns the error `fn` fails with.
 */
async function withFailingTool(tool: string, fn: () => Promise<unknown>, when = ''): Promise<Error> {
  const real = (await run(['sh', '-c', `command -v ${tool}`])).stdout.trim();
  const bin = mkdtempSync(join(tmp, 'bin-'));
  writeFileSync(
    join(bin, tool),
    `#!/bin/sh\ncase " $* " in *" ${when}"*) i=0; while [ $i -lt 40 ]; do i=$((i+1)); echo "${tool} line $i" >&2; done; exit 5;; esac\nexec ${real} "$@"\n`,
    { mode: 0o755 },
  );
  const path = process.env.PATH;
  process.env.PATH = `${bin}:${path}`;
  try {
    await fn();
  } catch (e) {
    return e as Error;
  } finally {
    process.env.PATH = path;
  }
  throw new Error(`${tool} was replaced by a failing one, but the build succeeded`);
}
const isoinfoVolid = async (iso: string) => /^Volume id: (.*)$/m.exec((await run(['isoinfo', '-d', '-i', iso])).stdout)![1].trim();

/** What the host's own /var/cache holds of a dnf cache named as the installroot's (nothing, unless a build wrote there). */
const hostDnfCache = () => (existsSync('/var/cache/releng-dnf') ? readdirSync('/var/cache/releng-dnf').sort() : []);
let hostCacheBefore: string[];

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'iso-test-'));
  repos = await buildTestRepos(join(tmp, 'repos'));
  hostCacheBefore = hostDnfCache();
  boot = await buildBootTree({
    release: rel,
    arch: 'x86_64',
    repos: repoList(),
    builder: { type: 'boot-tree', mustBoot: true },
    outDir: join(tmp, 'out'),
    workDir: join(tmp, 'work'),
    buildTimestamp: TS,
  });
  const extra = join(tmp, 'RPM-GPG-KEY-Rocky-9');
  writeFileSync(extra, 'not a real key\n');
  dvd = await buildExtraIso(
    dvdInput('isos', { extraFiles: [extra], outFile: join(tmp, 'isos', isoNames(rel, 'x86_64', 'dvd').file), workDir: join(tmp, 'dvd-work'), log: (l) => dvdLog.push(l) }),
  );
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('x86_64 boot tree (boot-tree builder)', () => {
  it('has lorax\'s shape, with the kernel and initrd of the kernel package', async () => {
    expect(boot.tree).toBe(join(tmp, 'out', 'lorax'));
    for (const f of [
      '.treeinfo',
      '.discinfo',
      'media.repo',
      'images/pxeboot/vmlinuz',
      'images/pxeboot/initrd.img',
      'images/install.img',
      'images/efiboot.img',
      'images/boot.iso',
      'images/boot.iso.manifest',
      'isolinux/isolinux.bin',
      'isolinux/isolinux.cfg',
      'isolinux/ldlinux.c32',
      'isolinux/vmlinuz',
      'EFI/BOOT/BOOTX64.EFI',
      'EFI/BOOT/grub.cfg',
    ]) {
      expect(existsSync(join(boot.tree, f)), f).toBe(true);
    }
    const digests = await rpmFileDigests(repos.kernelRpm.x86_64);
    const v = '5.14.0-570.tc.el9.x86_64';
    expect(await sha256File(join(boot.tree, 'images/pxeboot/vmlinuz'))).toBe(digests.get(`/boot/vmlinuz-${v}`));
    expect(await sha256File(join(boot.tree, 'images/pxeboot/initrd.img'))).toBe(digests.get(`/boot/initramfs-${v}.img`));
    const cfg = readFileSync(join(boot.tree, 'isolinux/isolinux.cfg'), 'utf8');
    expect(cfg.split('\n')[0]).toBe('serial 0 115200');
    expect(cfg).toContain(`inst.stage2=hd:LABEL=${volumeId(rel, 'x86_64')}`);
    expect(readFileSync(join(boot.tree, 'EFI/BOOT/grub.cfg'), 'utf8')).toContain('linux /images/pxeboot/vmlinuz');
  });

  it('squashes an installroot made by dnf: the kernel and the comps core group', async () => {
    const { stdout } = await run(['unsquashfs', '-l', '-d', '', join(boot.tree, 'images/install.img')]);
    expect(stdout).toContain('/boot/vmlinuz-5.14.0-570.tc.el9.x86_64');
    expect(stdout).toContain('/usr/share/tc/basesystem-tc');
    expect(stdout).toContain('/usr/share/tc/bash-tc');
    expect(stdout).not.toContain('/usr/share/tc/app-tc'); // not in core
    expect(stdout).not.toContain('releng-dnf'); // the dnf cache is not shipped
    // Nor left on the host: dnf's metadata went to the root's cache, not the host's /var/cache.
    expect(hostDnfCache()).toEqual(hostCacheBefore);
  });

  it('writes a .treeinfo listing the images, stage2 and checksums that match the files', async () => {
    const ti = parseTreeinfo(readFileSync(join(boot.tree, '.treeinfo'), 'utf8'));
    expect(ti.tree.arch).toBe('x86_64');
    expect(ti.tree.buildTimestamp).toBe(TS);
    expect(ti.release).toEqual({ name: 'Rocky Linux', short: 'Rocky', version: '9.7' });
    expect(ti.variants.map((v) => v.id)).toEqual(['BaseOS']);
    expect(ti.images!.x86_64).toEqual({
      kernel: 'images/pxeboot/vmlinuz',
      initrd: 'images/pxeboot/initrd.img',
      'efiboot.img': 'images/efiboot.img',
      'boot.iso': 'images/boot.iso',
    });
    expect(ti.stage2).toEqual({ mainimage: 'images/install.img' });
    const paths = ['images/pxeboot/vmlinuz', 'images/pxeboot/initrd.img', 'images/efiboot.img', 'images/boot.iso', 'images/install.img'];
    expect(Object.keys(ti.checksums!).sort()).toEqual([...paths].sort());
    for (const p of paths) expect(ti.checksums![p], p).toBe(`sha256:${await sha256File(join(boot.tree, p))}`);
    expect(readFileSync(join(boot.tree, '.discinfo'), 'utf8')).toBe(`${TS}.000000\nRocky Linux 9.7\nx86_64\nALL\n`);
    expect(readFileSync(join(boot.tree, 'media.repo'), 'utf8')).toContain(`mediaid=${TS}.000000`);
  });

  it('makes a bootable hybrid BIOS+UEFI ISO labelled with the volume id', async () => {
    expect(boot.volumeId).toBe('Rocky-9-7-x86_64-dvd');
    expect(await isoinfoVolid(boot.iso.path)).toBe(volumeId(rel, 'x86_64'));
    expect(boot.iso.path).toBe(join(tmp, 'out', 'Rocky-9.7-x86_64-boot.iso'));
    expect(boot.iso.size).toBeGreaterThanOrEqual(1 << 20);
    expect(boot.iso.size).toBe(statSync(boot.iso.path).size);
    expect(boot.iso.sha256).toBe(await sha256File(boot.iso.path));
    expect(statSync(join(boot.tree, 'images/boot.iso')).ino).toBe(statSync(boot.iso.path).ino); // hardlink, not a copy
    expect(boot.bootable).toBe(true);
    expect(boot.bootloaders).toEqual(['bios-isolinux', 'uefi-grub']);
    const report = await run(['xorriso', '-indev', boot.iso.path, '-report_el_torito', 'as_mkisofs']);
    const text = report.stdout + report.stderr;
    expect(text).not.toContain('SORRY');
    expect(text).toContain("-b '/isolinux/isolinux.bin'");
    expect(text).toContain("-e '/images/efiboot.img'");
    await run(['checkisomd5', boot.iso.path]); // lorax implants boot.iso too
  });

  it('reports every tree file, relative, with its real hash', async () => {
    const paths = boot.treeFiles.map((f) => f.path);
    expect(paths).toContain('images/boot.iso');
    expect(paths).toContain('.treeinfo');
    expect(paths.every((p) => !p.startsWith('/'))).toBe(true);
    for (const f of boot.treeFiles) {
      expect(f.sha256, f.path).toBe(await sha256File(join(boot.tree, f.path)));
      expect(f.size, f.path).toBe(statSync(join(boot.tree, f.path)).size);
    }
    expect(readFileSync(join(boot.tree, 'images/boot.iso.manifest'), 'utf8').trim().split('\n')).toEqual(await isoManifest(boot.iso.path));
  });
});

describe('boot smoke tests in qemu (TCG)', () => {
  const bios = qemuMissing(false);
  const uefi = qemuMissing(true);
  if (bios) console.log(`skipping BIOS boot tests: ${bios}`);
  if (uefi) console.log(`skipping UEFI boot tests: ${uefi}`);

  // The limits are a safety stop for a hung VM, not a speed assertion.
  it.skipIf(!!bios)('the boot ISO boots to isolinux (BIOS)', async () => {
    const r = await bootToMarker(boot.iso.path, bootMarker('isolinux', boot.volumeId), { limitMs: 300_000 });
    expect(r.found, r.output.slice(-2000)).toBe(true);
  });
  it.skipIf(!!bios)('the DVD boots to isolinux (BIOS)', async () => {
    const r = await bootToMarker(dvd.iso.path, bootMarker('isolinux', dvd.volumeId), { limitMs: 300_000 });
    expect(r.found, r.output.slice(-2000)).toBe(true);
  });
  it.skipIf(!!uefi)('the boot ISO boots to grub (UEFI)', async () => {
    const r = await bootToMarker(boot.iso.path, bootMarker('grub', boot.volumeId), { uefi: true, limitMs: 600_000 });
    expect(r.found, r.output.slice(-2000)).toBe(true);
  });
  it.skipIf(!!uefi)('the DVD boots to grub (UEFI)', async () => {
    const r = await bootToMarker(dvd.iso.path, bootMarker('grub', dvd.volumeId), { uefi: true, limitMs: 600_000 });
    expect(r.found, r.output.slice(-2000)).toBe(true);
  });
  it.skipIf(!!bios || !!uefi)('a DVD boots with the loader configs of its boot tree (the -update set takes effect)', async () => {
    const tree = join(tmp, 'edited-tree');
    cpSync(boot.tree, tree, { recursive: true });
    for (const f of ['EFI/BOOT/grub.cfg', 'isolinux/isolinux.cfg']) {
      const text = readFileSync(join(tree, f), 'utf8').replace('RELENG-BOOT', 'RELENG-BOOT EDITED');
      rmSync(join(tree, f));
      writeFileSync(join(tree, f), text);
    }
    const edited = await buildExtraIso(dvdInput('edited', { bootTree: tree }));
    const b = await bootToMarker(edited.iso.path, `RELENG-BOOT EDITED isolinux ${edited.volumeId}`, { limitMs: 300_000 });
    expect(b.found, b.output.slice(-2000)).toBe(true);
    // grub itself sits in efiboot.img (unchanged); it must read the menu from the DVD's file system.
    const u = await bootToMarker(edited.iso.path, `RELENG-BOOT EDITED grub ${edited.volumeId}`, { uefi: true, limitMs: 600_000 });
    expect(u.found, u.output.slice(-2000)).toBe(true);
  });
});

describe('DVD (buildExtraIso)', () => {
  it('passes checkisomd5 and keeps the boot ISO\'s volume id and boot records', async () => {
    expect(dvd.iso.path).toBe(join(tmp, 'isos', 'Rocky-9.7-x86_64-dvd.iso'));
    await run(['checkisomd5', dvd.iso.path]);
    const { stdout } = await run(['checkisomd5', '--md5sumonly', dvd.iso.path]);
    expect(stdout).toContain(dvd.implantMd5);
    expect(stdout).toContain('Supported ISO: yes');
    expect(await isoinfoVolid(dvd.iso.path)).toBe(await isoinfoVolid(boot.iso.path));
    expect(dvd.volumeId).toBe(boot.volumeId);
    expect(dvd.bootable).toBe(true);
    expect(dvd.iso.sha256).toBe(await sha256File(dvd.iso.path));
    expect(dvd.iso.size).toBe(statSync(dvd.iso.path).size);
    // Verified by the prediction taken while xorriso wrote, not by the checkisomd5 fallback.
    expect(dvdLog.join('\n')).not.toMatch(/checkisomd5/);
    const report = await run(['xorriso', '-indev', dvd.iso.path, '-report_el_torito', 'as_mkisofs']);
    expect(report.stdout + report.stderr).not.toContain('SORRY');
    expect(report.stdout).toContain("-b '/isolinux/isolinux.bin'");
    expect(report.stdout).toContain("-e '/images/efiboot.img'");
  });

  it('carries every package and the repodata of both repos, the boot tree, and the extra file', async () => {
    const m = new Set(dvd.manifest);
    expect(dvd.manifest).toEqual(await isoManifest(dvd.iso.path));
    expect([...dvd.manifest].sort()).toEqual(dvd.manifest);
    for (const p of repos.packages.baseos) expect(m.has(`BaseOS/Packages/${p}`), p).toBe(true);
    for (const p of repos.packages.appstream) expect(m.has(`AppStream/Packages/${p}`), p).toBe(true);
    for (const [name, path] of [['BaseOS', repos.baseos], ['AppStream', repos.appstream]]) {
      const { stdout } = await run(['find', join(path, 'repodata'), '-type', 'f', '-printf', '%P\n']);
      for (const f of stdout.trim().split('\n')) expect(m.has(`${name}/repodata/${f}`), f).toBe(true);
    }
    for (const p of ['.treeinfo', '.discinfo', 'media.repo', 'RPM-GPG-KEY-Rocky-9', 'images/install.img', 'images/pxeboot/vmlinuz', 'isolinux/isolinux.cfg', 'EFI/BOOT/BOOTX64.EFI']) {
      expect(m.has(p), p).toBe(true);
    }
    expect(m.has('images/boot.iso')).toBe(false);
    expect(m.has('images/boot.iso.manifest')).toBe(false);
  });

  it('has repodata dnf can read and the rewritten disc .treeinfo', async () => {
    const ex = join(tmp, 'dvd-extracted');
    await run(['xorriso', '-osirrox', 'on', '-indev', dvd.iso.path, '-extract', '/', ex]);
    const { stdout } = await run([
      'dnf',
      '-q',
      `--installroot=${join(tmp, 'dnfroot')}`,
      '--releasever=9',
      '--forcearch=x86_64',
      '--setopt=reposdir=/dev/null',
      '--setopt=skip_if_unavailable=False',
      `--repofrompath=dvd-BaseOS,file://${ex}/BaseOS`,
      `--repofrompath=dvd-AppStream,file://${ex}/AppStream`,
      '--repo=dvd-BaseOS',
      '--repo=dvd-AppStream',
      'repoquery',
      '--qf',
      '%{name}-%{version}-%{release}.%{arch}.rpm',
    ]);
    const listed = stdout.trim().split('\n').sort();
    // repoquery lists every arch in the repos (the DVD carries BaseOS verbatim, aarch64 kernel too).
    expect(listed).toEqual([...repos.packages.baseos, ...repos.packages.appstream].sort());

    const ti = parseTreeinfo(readFileSync(join(ex, '.treeinfo'), 'utf8'));
    expect(ti.media).toEqual({ discnum: 1, totaldiscs: 1 });
    expect(ti.mainVariant).toBe('AppStream');
    expect(ti.variants.map((v) => [v.id, v.repository, v.packages])).toEqual([
      ['AppStream', 'AppStream', 'AppStream/Packages'],
      ['BaseOS', 'BaseOS', 'BaseOS/Packages'],
    ]);
    expect(ti.images!.x86_64['boot.iso']).toBeUndefined();
    expect(ti.stage2?.mainimage).toBe('images/install.img');
    for (const [p, sum] of Object.entries(ti.checksums!)) expect(sum, p).toBe(`sha256:${await sha256File(join(ex, p))}`);
    expect(readFileSync(join(ex, '.discinfo'), 'utf8')).toBe(readFileSync(join(boot.tree, '.discinfo'), 'utf8'));
  });

  it('is reproducible: the same inputs give the same DVD', async () => {
    const again = await buildExtraIso(dvdInput('isos-again', { extraFiles: [join(tmp, 'RPM-GPG-KEY-Rocky-9')] }));
    expect(again.iso.sha256).toBe(dvd.iso.sha256);
    expect(again.implantMd5).toBe(dvd.implantMd5);
  });

  it('verifyIso rejects a DVD corrupted after the implant', async () => {
    const bad = join(tmp, 'corrupt.iso');
    cpSync(dvd.iso.path, bad);
    const fd = openSync(bad, 'r+');
    const at = Math.floor(statSync(bad).size / 2);
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, at);
    b[0] ^= 0xff;
    writeSync(fd, b, 0, 1, at);
    closeSync(fd);
    await expect(verifyIso(bad, { bootable: true })).rejects.toThrow(/corrupt\.iso: checkisomd5 failed/);
    await expect(verifyIso(dvd.iso.path, { bootable: true })).resolves.toEqual({ volumeId: dvd.volumeId, implantMd5: dvd.implantMd5 });
    unlinkSync(bad);
  });
});

describe('failures', () => {
  it('names the arch when the first repo has no kernel package', async () => {
    await expect(
      buildBootTree({
        release: rel,
        arch: 'x86_64',
        repos: [{ name: 'AppStream', path: repos.appstream }],
        builder: { type: 'boot-tree', mustBoot: false },
        outDir: join(tmp, 'nokernel-out'),
        workDir: join(tmp, 'nokernel-work'),
        buildTimestamp: TS,
      }),
    ).rejects.toThrow('x86_64: no kernel package in AppStream for x86_64');
    expect(existsSync(join(tmp, 'nokernel-out', 'lorax'))).toBe(false);
  });

  it('refuses a repo with a symlink to nothing (xorriso would put the link on the disc), before writing anything', async () => {
    const broken = join(tmp, 'broken-appstream');
    await run(['cp', '-al', repos.appstream, broken]);
    symlinkSync('/nonexistent/vanished-1.0-1.el9.noarch.rpm', join(broken, 'Packages', 'vanished-1.0-1.el9.noarch.rpm'));
    await expect(
      buildExtraIso(dvdInput('broken-isos', { repos: [{ name: 'BaseOS', path: repos.baseos }, { name: 'AppStream', path: broken }] })),
    ).rejects.toThrow(/^dvd\/x86_64: repo AppStream has symlinks to nothing, which would go on the disc instead of files: .*\/Packages\/vanished-1\.0-1\.el9\.noarch\.rpm$/);
    expect(existsSync(join(tmp, 'broken-isos'))).toBe(false);
  });

  it('keeps a failed tool\'s whole output in the caller\'s log file and names it (boot tree)', async () => {
    const logFile = join(tmp, 'logs', 'boot-failing.log');
    const err = await withFailingTool('mksquashfs', () =>
      buildBootTree({
        release: rel,
        arch: 'x86_64',
        repos: repoList(),
        builder: { type: 'boot-tree', mustBoot: true },
        outDir: join(tmp, 'failing-boot-out'),
        workDir: join(tmp, 'failing-boot-work'),
        buildTimestamp: TS,
        logFile,
      }),
    );
    expect(err.message).toMatch(/^x86_64: mksquashfs failed: mksquashfs exited 5: [^]*mksquashfs line 40\nfull log: .*\/logs\/boot-failing\.log$/);
    const log = readFileSync(logFile, 'utf8');
    expect(log).toContain('install kernel @core'); // the earlier tools' output is there too
    for (let i = 1; i <= 40; i++) expect(log).toContain(`mksquashfs line ${i}\n`);
    expect(existsSync(join(tmp, 'failing-boot-out', 'lorax'))).toBe(false);
  });

  it('keeps a failed tool\'s whole output in the caller\'s log file and names it (DVD)', async () => {
    const logFile = join(tmp, 'logs', 'dvd-failing.log');
    const err = await withFailingTool('xorriso', () => buildExtraIso(dvdInput('failing-dvd', { logFile })), '-dialog');
    expect(err.message).toMatch(/^dvd\/x86_64: xorriso failed: xorriso exited 5: [^]*xorriso line 40\nfull log: .*\/logs\/dvd-failing\.log$/);
    const log = readFileSync(logFile, 'utf8');
    expect(log).toContain("xorriso dialog script (stdin):\n-abort_on FAILURE\n-indev '");
    for (let i = 1; i <= 40; i++) expect(log).toContain(`xorriso line ${i}\n`);
    expect(readdirSync(join(tmp, 'failing-dvd'))).toEqual([]); // no partial image
  });

  it('leaves dispatched builders to the executor', async () => {
    await expect(
      buildBootTree({
        release: rel,
        arch: 's390x',
        repos: repoList(),
        builder: { type: 'ssh', host: 'z.example', workdir: '/var/tmp/releng', loraxCommand: ['lorax'], mustBoot: true },
        outDir: join(tmp, 'ssh-out'),
        workDir: join(tmp, 'ssh-work'),
        buildTimestamp: TS,
      }),
    ).rejects.toThrow('dispatched builders are handled by the executor');
  });
});

describe('collectLoraxTree', () => {
  /** A recorded lorax output: the boot tree as lorax leaves it (legacy .treeinfo, no media.repo, no manifest). */
  function recordLoraxTree(dir: string): string {
    const lorax = join(dir, 'lorax');
    cpSync(boot.tree, lorax, { recursive: true });
    rmSync(join(lorax, 'media.repo'));
    rmSync(join(lorax, 'images/boot.iso.manifest'));
    writeFileSync(
      join(lorax, '.treeinfo'),
      [
        '[general]',
        'name = Rocky Linux-9.7',
        'family = Rocky Linux',
        `timestamp = ${TS}.25`,
        'variant = BaseOS',
        'version = 9.7',
        'packagedir = ',
        'arch = x86_64',
        '',
        '[stage2]',
        'mainimage = images/install.img',
        '',
        '[images-x86_64]',
        'kernel = images/pxeboot/vmlinuz',
        'initrd = images/pxeboot/initrd.img',
        'efiboot.img = images/efiboot.img',
        'boot.iso = images/boot.iso',
        '',
      ].join('\n'),
    );
    return lorax;
  }

  it('adopts a lorax-shaped tree', async () => {
    const lorax = recordLoraxTree(join(tmp, 'recorded'));
    const res = await collectLoraxTree(lorax, rel, 'x86_64', join(tmp, 'collected'));
    expect(res.tree).toBe(join(tmp, 'collected', 'lorax'));
    expect(res.iso.path).toBe(join(tmp, 'collected', 'Rocky-9.7-x86_64-boot.iso'));
    expect(res.iso.sha256).toBe(boot.iso.sha256);
    expect(res.volumeId).toBe('Rocky-9-7-x86_64-dvd');
    expect(res.bootable).toBe(true);
    expect(res.bootloaders).toEqual(['bios-isolinux', 'uefi-grub']);
    const paths = res.treeFiles.map((f) => f.path);
    expect(paths).toContain('images/install.img');
    expect(paths).toContain('images/boot.iso.manifest'); // added, as empanadas' buildImage does
    expect(existsSync(join(lorax, 'images/boot.iso.manifest'))).toBe(false); // the source is left alone
    for (const f of res.treeFiles) expect(f.sha256, f.path).toBe(await sha256File(join(res.tree, f.path)));
  });

  it('is what the lorax builder runs after lorax (a stand-in lorax behind the wrapper)', async () => {
    const recorded = recordLoraxTree(join(tmp, 'recorded-for-wrapper'));
    const fake = join(tmp, 'fake-lorax.cjs');
    // Called as `node fake-lorax.cjs <recorded> lorax --product=… <outDir>`: logs its argv, copies the recording.
    writeFileSync(
      fake,
      `const fs = require('node:fs');
const [recorded, ...argv] = process.argv.slice(2);
fs.writeFileSync(recorded + '.argv.json', JSON.stringify(argv));
fs.cpSync(recorded, argv[argv.length - 1], { recursive: true });
`,
    );
    const work = join(tmp, 'lorax-work');
    const res = await buildBootTree({
      release: rel,
      arch: 'x86_64',
      repos: repoList(),
      builder: { type: 'lorax', wrapper: ['node', fake, recorded], mustBoot: true },
      outDir: join(tmp, 'lorax-out'),
      workDir: work,
      buildTimestamp: TS,
    });
    const argv = JSON.parse(readFileSync(recorded + '.argv.json', 'utf8'));
    expect(argv).toEqual(loraxArgv(rel, 'x86_64', [`file://${repos.baseos}`, `file://${repos.appstream}`], join(work, 'lorax'), join(work, 'lorax-x86_64.log')));
    expect(res.tree).toBe(join(tmp, 'lorax-out', 'lorax'));
    expect(res.bootable).toBe(true);
    expect(res.iso.sha256).toBe(boot.iso.sha256);
  });

  it('a failed lorax: its output and its own log file go into the caller\'s log file, which the error names', async () => {
    const fake = join(tmp, 'failing-lorax.cjs');
    writeFileSync(
      fake,
      `const fs = require('node:fs');
const log = process.argv.find((a) => a.startsWith('--logfile=')).slice('--logfile='.length);
fs.writeFileSync(log, 'pylorax DEBUG: running runtime-install.tmpl\\n');
console.error('pylorax ERROR: template command error in runtime-install.tmpl');
process.exit(1);
`,
    );
    const logFile = join(tmp, 'logs', 'lorax-failing.log');
    await expect(
      buildBootTree({
        release: rel,
        arch: 'x86_64',
        repos: repoList(),
        builder: { type: 'lorax', wrapper: ['node', fake], mustBoot: true },
        outDir: join(tmp, 'lorax-failing-out'),
        workDir: join(tmp, 'lorax-failing-work'),
        buildTimestamp: TS,
        logFile,
      }),
    ).rejects.toThrow(/^x86_64: lorax failed: node exited 1: [^]*runtime-install\.tmpl\nfull log: .*\/logs\/lorax-failing\.log$/);
    const log = readFileSync(logFile, 'utf8');
    expect(log).toContain('pylorax ERROR: template command error in runtime-install.tmpl');
    expect(log).toContain(`--- ${join(tmp, 'lorax-failing-work', 'lorax-x86_64.log')} ---\npylorax DEBUG: running runtime-install.tmpl\n`);
    expect(existsSync(join(tmp, 'lorax-failing-out', 'lorax'))).toBe(false);
  });

  it('names what is missing', async () => {
    const lorax = recordLoraxTree(join(tmp, 'recorded-broken'));
    rmSync(join(lorax, 'images/install.img'));
    await expect(collectLoraxTree(lorax, rel, 'x86_64', join(tmp, 'collected-broken'))).rejects.toThrow(/incomplete: missing images\/install\.img/);
    rmSync(join(lorax, '.treeinfo'));
    await expect(collectLoraxTree(lorax, rel, 'x86_64', join(tmp, 'collected-broken'))).rejects.toThrow(/missing \.treeinfo, images\/install\.img/);
    expect(existsSync(join(tmp, 'collected-broken', 'lorax'))).toBe(false);
  });

  it('refuses a boot.iso with another volume id, or a checksum that does not match', async () => {
    const lorax = recordLoraxTree(join(tmp, 'recorded-other'));
    await expect(collectLoraxTree(lorax, beta, 'x86_64', join(tmp, 'collected-other'))).rejects.toThrow(
      /boot\.iso has volume id Rocky-9-7-x86_64-dvd, expected Rocky-9-8-BETA1-x86_64-dvd/,
    );
    const ti = parseTreeinfo(readFileSync(join(boot.tree, '.treeinfo'), 'utf8'));
    ti.checksums!['images/install.img'] = `sha256:${'0'.repeat(64)}`;
    writeFileSync(join(lorax, '.treeinfo'), renderTreeinfo(ti));
    await expect(collectLoraxTree(lorax, rel, 'x86_64', join(tmp, 'collected-other'))).rejects.toThrow(/images\/install\.img does not match its \.treeinfo checksum/);
  });
});
