// Pure parts: lorax's argv (against empanadas' buildImage.tmpl.sh), the DVD's graft plan and
// dialog, xorriso output parsing, loader configs.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  bootloadersOf,
  dialogWord,
  grubCfg,
  isolinuxCfg,
  loraxArgv,
  parseXorrisoWords,
  planTreeGrafts,
  renderDialog,
  squashfsCompressor,
  udevLabel,
  type ElTorito,
} from './index';
import { testRelease } from './testing/repos';
import { latestPackage } from './boot-tree';
import { moveDir } from './files';

describe('loraxArgv', () => {
  const src = ['file:///c/BaseOS/x86_64/os', 'file:///c/AppStream/x86_64/os'];
  const cases = [
    {
      what: 'final (9.7)',
      release: testRelease(),
      arch: 'x86_64' as const,
      expected: [
        'lorax',
        '--product=Rocky Linux',
        '--version=9.7',
        '--release=9.7',
        '--isfinal',
        `--source=${src[0]}`,
        `--source=${src[1]}`,
        '--squashfs-only',
        '--bugurl=https://bugs.rockylinux.org',
        '--variant=BaseOS',
        '--nomacboot',
        '--buildarch=x86_64',
        '--volid=Rocky-9-7-x86_64-dvd',
        '--logfile=/builddir/lorax-x86_64.log',
        '--rootfs-size=4',
        '/builddir/lorax',
      ],
    },
    {
      what: 'beta (9.8 BETA1), no squashfs-only',
      release: testRelease({
        minor: 8,
        type: 'beta',
        rc: 'BETA1',
        profile: '9-beta',
        project: 'rocky-9-beta',
        iso: { lorax: { variant: 'BaseOS', repos: ['BaseOS', 'AppStream'], squashfsOnly: false }, extra: {} },
      }),
      arch: 'aarch64' as const,
      expected: [
        'lorax',
        '--product=Rocky Linux',
        '--version=9.8',
        '--release=9.8',
        `--source=${src[0]}`,
        `--source=${src[1]}`,
        '--bugurl=https://bugs.rockylinux.org',
        '--variant=BaseOS',
        '--nomacboot',
        '--buildarch=aarch64',
        '--volid=Rocky-9-8-BETA1-aarch64-dvd',
        '--logfile=/builddir/lorax-aarch64.log',
        '--rootfs-size=4',
        '/builddir/lorax',
      ],
    },
  ];
  for (const c of cases) {
    it(c.what, () => {
      expect(loraxArgv(c.release, c.arch, src, '/builddir/lorax', `/builddir/lorax-${c.arch}.log`)).toEqual(c.expected);
    });
  }
});

describe('DVD graft plan', () => {
  const inBoot = new Set(['isolinux', 'isolinux/isolinux.cfg', 'isolinux/isolinux.bin', 'images', 'images/install.img', 'images/efiboot.img', '.treeinfo', '.discinfo']);
  const files = ['.discinfo', '.treeinfo', 'media.repo', 'images/boot.iso', 'images/boot.iso.manifest', 'images/efiboot.img', 'images/install.img', 'images/pxeboot/vmlinuz', 'isolinux/isolinux.bin', 'isolinux/isolinux.cfg'];
  it('maps what the boot ISO lacks, updates the updatable set, skips the rest and the boot ISO itself', () => {
    expect(planTreeGrafts('/t', files, inBoot)).toEqual([
      { op: '-update', src: '/t/images/efiboot.img', iso: '/images/efiboot.img' },
      { op: '-map', src: '/t/images/pxeboot/vmlinuz', iso: '/images/pxeboot/vmlinuz' },
      { op: '-update', src: '/t/isolinux/isolinux.cfg', iso: '/isolinux/isolinux.cfg' },
    ]);
  });
  it('renders the empanadas dialog (PPC system id and untranslated names on ppc64le)', () => {
    const d = renderDialog({
      bootIso: '/w/boot.iso',
      outIso: '/w/dvd.iso',
      arch: 'ppc64le',
      volid: 'Rocky-9-7-ppc64le-dvd',
      grafts: [{ op: '-map', src: "/r/it's", iso: '/BaseOS/Packages' }],
      date: 1763650000,
    });
    expect(d.split('\n')).toEqual([
      '-abort_on FAILURE',
      "-indev '/w/boot.iso'",
      "-outdev '/w/dvd.iso'",
      '-boot_image any replay',
      '-boot_image any gpt_disk_guid=volume_date_uuid',
      '-joliet on',
      '-system_id PPC',
      '-compliance joliet_long_names',
      '-compliance untranslated_names',
      '-compliance no_emul_toc',
      "-volid 'Rocky-9-7-ppc64le-dvd'",
      '-follow link',
      `-map "/r/it's" '/BaseOS/Packages'`,
      '-find / -exec mkisofs_r --',
      '-alter_date_r b-c =1763650000 / --',
      '-volume_date uuid 2025112014464000',
      '-end',
      '',
    ]);
    expect(renderDialog({ bootIso: 'b', outIso: 'o', arch: 'x86_64', volid: 'V', grafts: [] })).toContain('-system_id LINUX\n-compliance joliet_long_names\n-compliance no_emul_toc\n-volid');
  });
  it('refuses paths it cannot quote', () => {
    expect(() => dialogWord('a\nb')).toThrow(/line break/);
    expect(() => dialogWord(`a'b"c`)).toThrow(/both quote/);
  });
});

describe('xorriso output', () => {
  it('parses quoted -find output, including quotes and newlines in names', () => {
    expect(parseXorrisoWords(`'/'\n'/a b'\n'/a b/it'"'"'s'\n'/back\\slash'\n'/nl\nx'\n`)).toEqual(['/', '/a b', "/a b/it's", '/back\\slash', '/nl\nx']);
  });
  it('names boot loaders from an El Torito report', () => {
    const t = (p: Partial<ElTorito>): ElTorito => ({ bios: [], efi: [], chrp: false, problems: [], report: '', ...p });
    expect(bootloadersOf(t({ bios: ['/isolinux/isolinux.bin'], efi: ['/images/efiboot.img'] }))).toEqual(['bios-isolinux', 'uefi-grub']);
    expect(bootloadersOf(t({ bios: ['/images/eltorito.img'] }))).toEqual(['bios-grub']);
    expect(bootloadersOf(t({ bios: ['/images/cdboot.img'] }))).toEqual(['s390-cdboot']);
    expect(bootloadersOf(t({ chrp: true }))).toEqual(['ieee1275-grub']);
  });
});

describe('loader configs', () => {
  const o = { product: 'Rocky Linux 9.7', volid: 'Rocky-9-7-x86_64-dvd', kernel: 'vmlinuz', initrd: 'initrd.img' };
  it('isolinux: serial first, a say marker, Rocky-style stage2 labels', () => {
    const cfg = isolinuxCfg(o);
    expect(cfg.split('\n').slice(0, 2)).toEqual(['serial 0 115200', 'say RELENG-BOOT isolinux Rocky-9-7-x86_64-dvd ........']);
    expect(cfg).toContain('  append initrd=initrd.img inst.stage2=hd:LABEL=Rocky-9-7-x86_64-dvd rd.live.check quiet');
  });
  it('grub: serial console, marker, linux/initrd entries', () => {
    const cfg = grubCfg({ ...o, kernel: '/images/pxeboot/vmlinuz', initrd: '/images/pxeboot/initrd.img' });
    expect(cfg).toContain("echo 'RELENG-BOOT grub Rocky-9-7-x86_64-dvd ........'");
    expect(cfg).toContain('\tlinux /images/pxeboot/vmlinuz inst.stage2=hd:LABEL=Rocky-9-7-x86_64-dvd quiet');
    expect(cfg).toContain("search --no-floppy --set=root -l 'Rocky-9-7-x86_64-dvd'");
  });
  it('escapes labels the way udev reads them', () => {
    expect(udevLabel('Rocky 9 x86_64')).toBe('Rocky\\x209\\x20x86_64');
  });
  it('uses xz like lorax for small roots and zstd for large ones', () => {
    expect(squashfsCompressor(10 << 20)).toBe('xz');
    expect(squashfsCompressor(2 * 1024 ** 3)).toBe('zstd');
  });
});

describe('latestPackage (the boot tree builder\'s kernel, from the repodata)', () => {
  it('picks the newest of the arch or noarch by rpm version order, as dnf repoquery --latest-limit=1', () => {
    const dir = mkdtempSync(join(tmpdir(), 'latest-pkg-'));
    try {
      const pkg = (name: string, arch: string, ver: string, rel: string, i: number) =>
        `<package type="rpm"><name>${name}</name><arch>${arch}</arch><version epoch="0" ver="${ver}" rel="${rel}"/><checksum type="sha256" pkgid="YES">${String(i).repeat(64)}</checksum><size package="10" installed="10" archive="10"/><location href="Packages/${name}-${ver}-${rel}.${arch}.rpm"/></package>`;
      const primary = `<?xml version="1.0"?>\n<metadata xmlns="http://linux.duke.edu/metadata/common" packages="4">${[
        pkg('kernel', 'x86_64', '5.14.0', '9.el9', 1),
        pkg('kernel', 'x86_64', '5.14.0', '10.el9', 2), // 10 > 9: not string order
        pkg('kernel', 'aarch64', '5.14.0', '11.el9', 3),
        pkg('kernel-tools', 'x86_64', '6.0', '1.el9', 4),
      ].join('')}</metadata>\n`;
      mkdirSync(join(dir, 'repodata'));
      writeFileSync(join(dir, 'repodata/primary.xml'), primary);
      const sum = createHash('sha256').update(primary).digest('hex');
      writeFileSync(join(dir, 'repodata/repomd.xml'), `<?xml version="1.0"?>\n<repomd xmlns="http://linux.duke.edu/metadata/repo"><data type="primary"><checksum type="sha256">${sum}</checksum><location href="repodata/primary.xml"/></data></repomd>\n`);
      expect(latestPackage(dir, 'kernel', 'x86_64')).toBe('5.14.0-10.el9.x86_64');
      expect(latestPackage(dir, 'kernel', 'aarch64')).toBe('5.14.0-11.el9.aarch64');
      expect(latestPackage(dir, 'kernel', 'ppc64le')).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('moveDir', () => {
  it('renames on one file system, copies across two (/dev/shm), and refuses an existing destination', () => {
    const base = mkdtempSync(join(tmpdir(), 'rocky-move-'));
    const shm = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/rocky-move-') : undefined;
    try {
      const make = (dir: string) => {
        mkdirSync(join(dir, 'images'), { recursive: true });
        writeFileSync(join(dir, 'images/install.img'), 'squashfs');
        symlinkSync('images/install.img', join(dir, 'link'));
        return statSync(join(dir, 'images/install.img')).ino;
      };
      const ino = make(join(base, 'a'));
      moveDir(join(base, 'a'), join(base, 'deep/b'));
      expect(statSync(join(base, 'deep/b/images/install.img')).ino).toBe(ino);
      expect(existsSync(join(base, 'a'))).toBe(false);
      mkdirSync(join(base, 'c'));
      expect(() => moveDir(join(base, 'deep/b'), join(base, 'c'))).toThrow(/exists/);
      if (shm) {
        make(join(shm, 'a'));
        moveDir(join(shm, 'a'), join(base, 'from-shm'));
        expect(readFileSync(join(base, 'from-shm/images/install.img'), 'utf8')).toBe('squashfs');
        expect(readlinkSync(join(base, 'from-shm/link'))).toBe('images/install.img');
        expect(existsSync(join(shm, 'a'))).toBe(false);
      }
    } finally {
      rmSync(base, { recursive: true, force: true });
      if (shm) rmSync(shm, { recursive: true, force: true });
    }
  });
});
