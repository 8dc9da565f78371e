// The tool wrappers: each argv builder against the command line it must produce (the options that
// make the output reproducible included), the grub memdisk as GNU tar reads it, and the runner's
// log file.
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, ToolError } from '@rocky/exec';
import { grubMemdisk } from './bootloaders';
import {
  checkisomd5Argv,
  dialogScript,
  dialogWord,
  grubMkimageArgv,
  implantisomd5Argv,
  isoDate,
  isoinfoArgv,
  mcopyArgv,
  mkfsFatArgv,
  mkisofsArgv,
  mksquashfsArgv,
  mmdArgv,
  mtoolsEnv,
  reproducibleEnv,
  runTool,
  runXorrisoDialog,
  xorrisoDialogArgv,
  xorrisoReadArgv,
} from './tools';

const TS = 1763650000; // 2025-11-20T14:46:40Z
const tmp = mkdtempSync(join(tmpdir(), 'iso-tools-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('argv builders', () => {
  it('dates in ECMA-119 form, GMT', () => {
    expect(isoDate(TS)).toBe('2025112014464000');
    expect(isoDate(TS + 0.9)).toBe('2025112014464000');
    expect(reproducibleEnv(TS)).toMatchObject({ SOURCE_DATE_EPOCH: '1763650000', TZ: 'UTC' });
    expect(mtoolsEnv(TS)).toMatchObject({ SOURCE_DATE_EPOCH: '1763650000', TZ: 'UTC', MTOOLS_SKIP_CHECK: '1' });
  });

  it('xorriso: the hybrid boot ISO with fixed dates, GPT GUIDs and Rock Ridge owners', () => {
    const common = ['xorriso', '-no_rc', '-as', 'mkisofs', '-o', '/o/boot.iso', '-r', '-J', '-joliet-long', '-iso-level', '3', '-V', 'Rocky-9-7-x86_64-dvd', '-sysid', 'LINUX'];
    const dates = ['--modification-date=2025112014464000', '--set_all_file_dates', '2025112014464000', '--gpt_disk_guid', 'modification-date'];
    expect(mkisofsArgv({ out: '/o/boot.iso', tree: '/t', volid: 'Rocky-9-7-x86_64-dvd', arch: 'x86_64', date: TS, bios: { isohdpfx: '/usr/lib/ISOLINUX/isohdpfx.bin' }, uefi: true })).toEqual([
      ...common,
      ...dates,
      ...['-isohybrid-mbr', '/usr/lib/ISOLINUX/isohdpfx.bin', '-b', 'isolinux/isolinux.bin', '-c', 'isolinux/boot.cat', '-no-emul-boot', '-boot-load-size', '4', '-boot-info-table'],
      ...['-eltorito-alt-boot', '-e', 'images/efiboot.img', '-no-emul-boot', '-isohybrid-gpt-basdat'],
      '/t',
    ]);
    // UEFI only (aarch64): no MBR, so no GPT; data only: no boot options at all.
    expect(mkisofsArgv({ out: '/o/boot.iso', tree: '/t', volid: 'V', arch: 'aarch64', date: TS, uefi: true }).slice(common.length + dates.length)).toEqual(['-e', 'images/efiboot.img', '-no-emul-boot', '/t']);
    expect(mkisofsArgv({ out: '/o/boot.iso', tree: '/t', volid: 'V', arch: 'ppc64le', date: TS }).slice(12)).toEqual(['V', '-sysid', 'PPC', ...dates, '/t']);
  });

  it('xorriso: read-only and dialog runs', () => {
    expect(xorrisoReadArgv('/i.iso', ['-find', '/'])).toEqual(['xorriso', '-no_rc', '-indev', '/i.iso', '-find', '/']);
    expect(xorrisoDialogArgv()).toEqual(['xorriso', '-no_rc', '-dialog', 'on']);
    expect(dialogScript([['-indev', dialogWord('/a b')], ['-end']])).toBe("-indev '/a b'\n-end\n");
  });

  it('isomd5sum and isoinfo', () => {
    expect(implantisomd5Argv('/i.iso')).toEqual(['implantisomd5', '/i.iso']);
    expect(implantisomd5Argv('/i.iso', { supported: true, force: true })).toEqual(['implantisomd5', '--supported-iso', '-f', '/i.iso']);
    expect(checkisomd5Argv('/i.iso')).toEqual(['checkisomd5', '/i.iso']);
    expect(checkisomd5Argv('/i.iso', { md5sumonly: true })).toEqual(['checkisomd5', '--md5sumonly', '/i.iso']);
    expect(isoinfoArgv('/i.iso')).toEqual(['isoinfo', '-d', '-i', '/i.iso']);
  });

  it('mksquashfs: no host xattrs; dates from SOURCE_DATE_EPOCH, not options that conflict with it', () => {
    const argv = mksquashfsArgv('/root', '/t/images/install.img', 'xz');
    expect(argv).toEqual(['mksquashfs', '/root', '/t/images/install.img', '-comp', 'xz', '-no-xattrs', '-noappend', '-quiet', '-no-progress']);
    expect(argv.filter((a) => /time/.test(a))).toEqual([]);
  });

  it('mkfs.fat and mtools: invariant mode with our serial after it; mcopy keeps the files\' dates', () => {
    expect(mkfsFatArgv('/t/efiboot.img', { label: 'ANACONDA', serial: '691ee950', kib: 4096 })).toEqual([
      'mkfs.fat',
      '--invariant',
      '-i',
      '691ee950',
      '-C',
      '-n',
      'ANACONDA',
      '/t/efiboot.img',
      '4096',
    ]);
    expect(mmdArgv('/e.img', ['/EFI', '/EFI/BOOT'])).toEqual(['mmd', '-i', '/e.img', '::/EFI', '::/EFI/BOOT']);
    expect(mcopyArgv('/e.img', ['/a/BOOTX64.EFI', '/a/grub.cfg'], '/EFI/BOOT/')).toEqual(['mcopy', '-m', '-i', '/e.img', '/a/BOOTX64.EFI', '/a/grub.cfg', '::/EFI/BOOT/']);
  });

  it('grub: grub-mkimage as grub-mkstandalone runs it, with our memdisk', () => {
    expect(grubMkimageArgv({ mkimage: 'grub2-mkimage', target: 'x86_64-efi', modulesDir: '/usr/lib/grub/x86_64-efi', memdisk: '/w/m.tar', out: '/t/BOOTX64.EFI' })).toEqual([
      'grub2-mkimage',
      '-O',
      'x86_64-efi',
      '-d',
      '/usr/lib/grub/x86_64-efi',
      '-o',
      '/t/BOOTX64.EFI',
      '-p',
      '(memdisk)/boot/grub',
      '-m',
      '/w/m.tar',
      'memdisk',
      'tar',
    ]);
  });
});

describe('grub memdisk', () => {
  it('is a ustar archive of the modules, their lists and the config, in byte order, dated and owned alike', async () => {
    const mods = join(tmp, 'x86_64-efi');
    mkdirSync(mods);
    for (const [f, text] of [['normal.mod', 'n'.repeat(700)], ['all_video.mod', 'v'], ['moddep.lst', 'deps'], ['modinfo.sh', 'sh'], ['kernel.img', 'not copied'], ['config.h', 'nor this']]) {
      writeFileSync(join(mods, f), text);
    }
    const tar = join(tmp, 'memdisk.tar');
    writeFileSync(tar, grubMemdisk({ mkimage: 'grub-mkimage', target: 'x86_64-efi', modulesDir: mods, bootFile: 'BOOTX64.EFI' }, 'configfile x\n', TS));
    const { stdout } = await run(['tar', '--list', '--verbose', '--numeric-owner', '--full-time', '--file', tar], { env: { ...process.env, TZ: 'UTC' } });
    expect(stdout.trim().split('\n').map((l) => l.split(/\s+/))).toEqual([
      ['-rw-r--r--', '0/0', '13', '2025-11-20', '14:46:40', 'boot/grub/grub.cfg'],
      ['-rw-r--r--', '0/0', '1', '2025-11-20', '14:46:40', 'boot/grub/x86_64-efi/all_video.mod'],
      ['-rw-r--r--', '0/0', '4', '2025-11-20', '14:46:40', 'boot/grub/x86_64-efi/moddep.lst'],
      ['-rw-r--r--', '0/0', '2', '2025-11-20', '14:46:40', 'boot/grub/x86_64-efi/modinfo.sh'],
      ['-rw-r--r--', '0/0', '700', '2025-11-20', '14:46:40', 'boot/grub/x86_64-efi/normal.mod'],
    ]);
    await run(['tar', '--extract', '--file', tar, '--directory', tmp]);
    expect(readFileSync(join(tmp, 'boot/grub/x86_64-efi/normal.mod'), 'utf8')).toBe('n'.repeat(700));
  });
});

describe('runTool', () => {
  const chatty = ['sh', '-c', 'for i in $(seq 1 40); do echo "line $i"; done; exit 3'];

  it('keeps the whole output in the log and names the log when the tool fails', async () => {
    const logFile = join(tmp, 'logs', 'chatty.log');
    const err = await runTool(chatty, { logFile }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ToolError); // callers still read the tool's result
    expect((err as ToolError).result.code).toBe(3);
    expect((err as Error).message).toMatch(/^sh exited 3: .*\n[^]*line 40\nfull log: .*\/logs\/chatty\.log$/);
    expect((err as Error).message).not.toContain('line 1\n'); // the message shows the tail only
    const log = readFileSync(logFile, 'utf8');
    for (let i = 1; i <= 40; i++) expect(log).toContain(`line ${i}\n`);
  });

  it('puts a dialog script into the log, since it is not on the command line', async () => {
    const logFile = join(tmp, 'dialog.log');
    await runXorrisoDialog(dialogScript([['-version'], ['-end']]), { logFile });
    const log = readFileSync(logFile, 'utf8');
    expect(log).toContain('xorriso dialog script (stdin):\n-version\n-end\n');
    expect(log).toContain('$ xorriso -no_rc -dialog on');
    expect(log).toMatch(/xorriso 1\.\d+\.\d+/);
  });

  it('leaves no log behind when none is asked for', async () => {
    await expect(runTool(chatty)).rejects.toThrow(/^sh exited 3: [^]*line 40$/);
    expect(existsSync(join(tmp, 'undefined'))).toBe(false);
  });
});
