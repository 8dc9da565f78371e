// The boot loaders this host can put on a boot tree (isolinux for BIOS, a standalone grub for
// UEFI), their configs, and the files they need. Configs follow what lorax writes for Rocky
// (inst.stage2=hd:LABEL=<volid>), with a serial console and a marker line a smoke test can see.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { byteOrder } from '@rocky/compose';
import type { Arch } from '@rocky/config';
import { hasTool } from '@rocky/exec';

/** The line each loader prints on the serial console before its menu. */
export const bootMarker = (loader: 'isolinux' | 'grub', volid: string) => `RELENG-BOOT ${loader} ${volid}`;

/** isolinux modules the config uses: ldlinux (core), menu and its libraries. */
export const ISOLINUX_MODULES = ['ldlinux.c32', 'libcom32.c32', 'libutil.c32', 'menu.c32'];

export interface BiosLoader {
  isolinuxBin: string;
  isohdpfx: string;
  modulesDir: string;
}
export interface UefiLoader {
  /** grub-mkimage (Debian) or grub2-mkimage (Rocky). */
  mkimage: string;
  /** grub platform (`x86_64-efi`). */
  target: string;
  /** The platform's modules (`/usr/lib/grub/x86_64-efi`). */
  modulesDir: string;
  /** Removable-media loader name (`BOOTX64.EFI`). */
  bootFile: string;
}
export interface HostLoaders {
  bios?: BiosLoader;
  uefi?: UefiLoader;
}

const firstExisting = (paths: string[]) => paths.find((p) => existsSync(p));

// Debian/Ubuntu paths first, then Rocky/Fedora's.
const ISOLINUX_DIRS = ['/usr/lib/ISOLINUX', '/usr/share/syslinux'];
const SYSLINUX_MODULE_DIRS = ['/usr/lib/syslinux/modules/bios', '/usr/share/syslinux'];
const GRUB_LIB_DIRS = ['/usr/lib/grub', '/usr/lib/grub2'];

const EFI: Partial<Record<Arch, { target: string; bootFile: string; hostPackage: string }>> = {
  x86_64: { target: 'x86_64-efi', bootFile: 'BOOTX64.EFI', hostPackage: 'grub-efi-amd64-bin' },
  aarch64: { target: 'arm64-efi', bootFile: 'BOOTAA64.EFI', hostPackage: 'grub-efi-arm64-bin' },
  riscv64: { target: 'riscv64-efi', bootFile: 'BOOTRISCV64.EFI', hostPackage: 'grub-efi-riscv64-bin' },
};

/** What this host can make bootable for `arch`. Only x86_64 has a BIOS loader (isolinux is x86-only). */
export function hostBootLoaders(arch: Arch): HostLoaders {
  const out: HostLoaders = {};
  if (arch === 'x86_64') {
    const isolinuxBin = firstExisting(ISOLINUX_DIRS.map((d) => join(d, 'isolinux.bin')));
    const isohdpfx = firstExisting(ISOLINUX_DIRS.map((d) => join(d, 'isohdpfx.bin')));
    const modulesDir = SYSLINUX_MODULE_DIRS.find((d) => ISOLINUX_MODULES.every((m) => existsSync(join(d, m))));
    if (isolinuxBin && isohdpfx && modulesDir) out.bios = { isolinuxBin, isohdpfx, modulesDir };
  }
  const efi = EFI[arch];
  const mkimage = ['grub-mkimage', 'grub2-mkimage'].find(hasTool);
  const fatTools = ['mkfs.fat', 'mmd', 'mcopy'].every(hasTool);
  if (efi && mkimage && fatTools) {
    const modulesDir = GRUB_LIB_DIRS.map((d) => join(d, efi.target)).find((d) => existsSync(join(d, 'normal.mod')));
    if (modulesDir) out.uefi = { mkimage, target: efi.target, modulesDir, bootFile: efi.bootFile };
  }
  return out;
}

/** What to install for a bootable ISO of `arch` on this host, for error messages. */
export function loaderInstallHint(arch: Arch): string {
  const efi = EFI[arch];
  if (arch === 'x86_64') return `install isolinux syslinux-common (BIOS) and/or ${efi!.hostPackage} grub-common mtools dosfstools (UEFI)`;
  if (efi) return `install ${efi.hostPackage} grub-common mtools dosfstools, or build ${arch} with the lorax builder on a ${arch} host`;
  return `the boot-tree builder has no ${arch} boot loader: use the lorax builder on a ${arch} host (ssh or kubernetes builder)`;
}

/** Kernel arguments are parsed by udev's label rules: anything outside this set is \xHH-escaped (as lorax does). */
export function udevLabel(volid: string): string {
  return volid.replace(/[^A-Za-z0-9#+\-.:=@_]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export interface LoaderConfigInput {
  /** `Rocky Linux 9.7`. */
  product: string;
  volid: string;
  /** Kernel and initrd paths as the loader sees them. */
  kernel: string;
  initrd: string;
}

/** isolinux.cfg in the shape of Rocky's, with `serial` first (it must be) and a `say` marker. */
export function isolinuxCfg(o: LoaderConfigInput): string {
  const stage2 = `inst.stage2=hd:LABEL=${udevLabel(o.volid)}`;
  const entry = (label: string, title: string, extra: string, isDefault = false) =>
    [`label ${label}`, `  menu label ${title}`, ...(isDefault ? ['  menu default'] : []), `  kernel ${o.kernel}`, `  append initrd=${o.initrd} ${stage2}${extra} quiet`, ''];
  return [
    'serial 0 115200',
    // The padding protects the marker: a serial line may lose its last characters on reset.
    `say ${bootMarker('isolinux', o.volid)} ........`,
    // menu.c32 rather than Rocky's vesamenu.c32: a text menu also shows on a serial console.
    'default menu.c32',
    'timeout 600',
    `menu title ${o.product}`,
    '',
    ...entry('linux', `^Install ${o.product}`, ''),
    ...entry('check', `Test this ^media & install ${o.product}`, ' rd.live.check', true),
    'menu separator',
    ...entry('rescue', `^Rescue a ${o.product} system`, ' inst.rescue'),
    'label local',
    '  menu label Boot from ^local drive',
    '  localboot 0xffff',
    '',
  ].join('\n');
}

const grubQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** EFI/BOOT/grub.cfg: Rocky's menu, upstream grub's `linux`/`initrd` (Rocky's grub has linuxefi). */
export function grubCfg(o: LoaderConfigInput): string {
  const stage2 = `inst.stage2=hd:LABEL=${udevLabel(o.volid)}`;
  const entry = (title: string, extra: string) =>
    [`menuentry ${grubQuote(title)} --class rocky --class gnu-linux --class gnu --class os {`, `\tlinux ${o.kernel} ${stage2}${extra} quiet`, `\tinitrd ${o.initrd}`, '}'];
  return [
    'set default="1"',
    'function load_video {',
    '\tinsmod all_video',
    '}',
    'load_video',
    'set gfxpayload=keep',
    'insmod gzio',
    'insmod part_gpt',
    'insmod iso9660',
    'if serial --unit=0 --speed=115200; then',
    '\tterminal_input serial console',
    '\tterminal_output serial console',
    'fi',
    `echo ${grubQuote(`${bootMarker('grub', o.volid)} ........`)}`,
    'set timeout=60',
    `search --no-floppy --set=root -l ${grubQuote(o.volid)}`,
    ...entry(`Install ${o.product}`, ''),
    ...entry(`Test this media & install ${o.product}`, ' rd.live.check'),
    `submenu 'Troubleshooting -->' {`,
    ...entry(`Rescue a ${o.product} system`, ' inst.rescue').map((l) => `\t${l}`),
    '}',
    '',
  ].join('\n');
}

/**
 * The config built into the standalone grub image: find the ISO by its label and read the menu
 * from EFI/BOOT/grub.cfg there (so a DVD's `-update EFI/BOOT/grub.cfg` takes effect), falling
 * back to the copy beside the loader in efiboot.img. `prefix` stays on the memdisk, where the
 * modules are.
 */
export function grubEmbeddedCfg(volid: string): string {
  return [
    `search --no-floppy --set=root --label ${grubQuote(volid)}`,
    'if [ -e ($root)/EFI/BOOT/grub.cfg ]; then',
    '\tconfigfile ($root)/EFI/BOOT/grub.cfg',
    'fi',
    'configfile $cmdpath/grub.cfg',
    '',
  ].join('\n');
}

/** What grub-mkstandalone copies from the platform directory besides the modules (grub-install-common.c). */
const GRUB_PLATFORM_DATA = ['efiemu32.o', 'efiemu64.o', 'moddep.lst', 'command.lst', 'fs.lst', 'partmap.lst', 'parttool.lst', 'video.lst', 'crypto.lst', 'terminal.lst', 'modinfo.sh'];

/**
 * The memdisk of a standalone grub, as grub-mkstandalone makes it (every module of the platform
 * and its lists under boot/grub/<platform>/, the config as boot/grub/grub.cfg), as a ustar
 * archive that depends on its contents only: entries in byte order, dated `mtime`, owner 0,
 * mode 0644 (grub-mkstandalone's own is in directory order and dated when it ran).
 */
export function grubMemdisk(loader: UefiLoader, config: string, mtime: number): Buffer {
  const names = readdirSync(loader.modulesDir).filter((f) => f.endsWith('.mod') || GRUB_PLATFORM_DATA.includes(f));
  const entries: [string, Buffer][] = [
    ...names.map((f): [string, Buffer] => [`boot/grub/${loader.target}/${f}`, readFileSync(join(loader.modulesDir, f))]),
    ['boot/grub/grub.cfg', Buffer.from(config)],
  ];
  entries.sort(([a], [b]) => byteOrder(a, b));
  const blocks: Buffer[] = [];
  for (const [name, data] of entries) {
    blocks.push(ustarHeader(name, data.length, mtime), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024)); // end of archive
  return Buffer.concat(blocks);
}

function ustarHeader(name: string, size: number, mtime: number): Buffer {
  if (Buffer.byteLength(name) > 99) throw new Error(`grub memdisk: name longer than a ustar header holds: ${name}`);
  const h = Buffer.alloc(512);
  const octal = (at: number, len: number, n: number) => h.write(`${n.toString(8).padStart(len - 1, '0')}\0`, at, 'latin1');
  h.write(name, 0, 'latin1');
  octal(100, 8, 0o644);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, size);
  octal(136, 12, Math.trunc(mtime));
  h.write('0', 156, 'latin1'); // regular file
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  h.fill(0x20, 148, 156); // the checksum is taken with its own field as spaces
  const sum = h.reduce((n, b) => n + b, 0);
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

/** efiboot.img size in KiB: the files plus room for FAT structures, rounded up to a MiB. */
export function efibootSizeKiB(files: string[]): number {
  const bytes = files.reduce((n, f) => n + statSync(f).size, 0);
  const kib = Math.ceil((bytes * 1.05) / 1024) + 1024;
  return Math.ceil(kib / 1024) * 1024;
}
