// Every external tool libs/iso runs (lorax's argv is in lorax.ts; dnf is wrapped elsewhere): pure
// argv builders, and one runner that keeps each tool's full output in the caller's log file and
// names that file when a tool fails. The builders carry what makes the output depend on the inputs
// only: fixed dates, ids and GUIDs, normalized owners and modes. Every option used here is in
// xorriso 1.4.6+ (Rocky 8 has 1.4.8), dosfstools 3.0.28+ and squashfs-tools 4.1+; squashfs-tools
// takes its dates from SOURCE_DATE_EPOCH since 4.4 (Rocky 8's 4.3 stamps install.img with the clock).
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { run, type RunResult } from '@rocky/exec';
import type { Arch } from '@rocky/config';

export interface ToolRun {
  /** Gets the command line and all of the tool's output, appended; named in the error when the tool fails. */
  logFile?: string;
  env?: NodeJS.ProcessEnv;
  input?: string;
  timeoutMs?: number;
  okCodes?: number[];
  /** Keep only the tail of stdout (see RunOptions): the chatty builders, whose output only the log needs. */
  stdoutTail?: boolean;
}

/** Runs a tool (see `run`); a failure's ToolError ends with the log file that holds the tool's full output. */
export const runTool = (argv: string[], o: ToolRun = {}): Promise<RunResult> => run(argv, o);

/** Appends a log another tool wrote to a file of its own (lorax's), when there is one. */
export function appendFileToLog(logFile: string, file: string): void {
  if (!existsSync(file)) return;
  mkdirSync(dirname(logFile), { recursive: true });
  appendFileSync(logFile, `--- ${file} ---\n`);
  appendFileSync(logFile, readFileSync(file));
}

/**
 * The environment for tools whose output records dates: SOURCE_DATE_EPOCH (mksquashfs clamps
 * file times to it and stamps the superblock with it, mtools dates new entries with it) and UTC
 * (FAT dates are local times).
 */
export const reproducibleEnv = (epoch: number): NodeJS.ProcessEnv => ({ ...process.env, SOURCE_DATE_EPOCH: String(Math.trunc(epoch)), TZ: 'UTC' });

/** An ECMA-119 volume timestamp, `YYYYMMDDhhmmsscc` in GMT, as xorriso's --modification-date and -volume_date uuid take it. */
export function isoDate(epoch: number): string {
  return new Date(Math.trunc(epoch) * 1000).toISOString().replace(/\D/g, '').slice(0, 14) + '00';
}

// --- xorriso ---

/** Read-only xorriso commands on an image (`-indev`, never `-dev`, which opens it for writing). */
export const xorrisoReadArgv = (iso: string, cmds: string[]): string[] => ['xorriso', '-no_rc', '-indev', iso, ...cmds];

/** xorriso reading its commands from stdin (the DVD's dialog script). */
export const xorrisoDialogArgv = (): string[] => ['xorriso', '-no_rc', '-dialog', 'on'];

/** A word of a xorriso dialog line. xorriso reads '…' and "…" as quotes; a newline cannot be quoted. */
export function dialogWord(w: string): string {
  if (/[\n\r]/.test(w)) throw new Error(`xorriso dialog: a path with a line break cannot be passed: ${JSON.stringify(w)}`);
  if (!w.includes("'")) return `'${w}'`;
  if (!w.includes('"')) return `"${w}"`;
  throw new Error(`xorriso dialog: a path with both quote characters cannot be passed: ${w}`);
}

/** A dialog script: one command per line, words as given (quote paths with dialogWord). */
export const dialogScript = (lines: string[][]): string => lines.map((l) => l.join(' ')).join('\n') + '\n';

/** Runs a dialog script; the log gets the script too, since it is not on the command line. */
export function runXorrisoDialog(script: string, o: ToolRun = {}): Promise<RunResult> {
  if (o.logFile) {
    mkdirSync(dirname(o.logFile), { recursive: true });
    appendFileSync(o.logFile, `xorriso dialog script (stdin):\n${script}`);
  }
  return runTool(xorrisoDialogArgv(), { ...o, input: script });
}

export interface Graft {
  op: '-map' | '-update';
  src: string;
  /** ISO path, with the leading `/`. */
  iso: string;
}

/**
 * The DVD's dialog: empanadas' xorriso.tmpl.txt plus -abort_on, no_emul_toc and -follow, and
 * what makes it reproducible (`date`: the compose timestamp): every file's dates, the volume
 * dates and the boot catalog's (-volume_date uuid), the hybrid GPT's GUIDs and the MBR id
 * (derived from that uuid), and Rock Ridge owners and modes as `-r` sets them, so neither when
 * the inputs reached this runner nor who owns them shows in the bytes.
 */
export function renderDialog(o: { bootIso: string; outIso: string; arch: Arch; volid: string; grafts: Graft[]; date?: number }): string {
  return dialogScript([
    // Stop at the first failed command instead of writing an ISO that lacks what failed.
    ['-abort_on', 'FAILURE'],
    ['-indev', dialogWord(o.bootIso)],
    ['-outdev', dialogWord(o.outIso)],
    ['-boot_image', 'any', 'replay'],
    ...(o.date !== undefined ? [['-boot_image', 'any', 'gpt_disk_guid=volume_date_uuid']] : []),
    ['-joliet', 'on'],
    ['-system_id', o.arch === 'ppc64le' ? 'PPC' : 'LINUX'],
    ['-compliance', 'joliet_long_names'],
    ...(o.arch === 'ppc64le' ? [['-compliance', 'untranslated_names']] : []),
    // Write the image front to back, as xorrisofs does, instead of rewriting its first 64 KiB
    // (an emulated TOC for appending sessions) at the end: a release DVD never gets another
    // session, and a single forward pass lets the md5 run while the image is written.
    ['-compliance', 'no_emul_toc'],
    ['-volid', dialogWord(o.volid)],
    // A disc must be self-contained: store what symlinks (e.g. into an artifact store) point at.
    ['-follow', 'link'],
    ...o.grafts.map((g) => [g.op, dialogWord(g.src), dialogWord(g.iso)]),
    ...(o.date !== undefined
      ? [
          ['-find', '/', '-exec', 'mkisofs_r', '--'],
          ['-alter_date_r', 'b-c', `=${Math.trunc(o.date)}`, '/', '--'],
          ['-volume_date', 'uuid', isoDate(o.date)],
        ]
      : []),
    ['-end'],
  ]);
}

export interface MkisofsInput {
  out: string;
  /** The directory that becomes the ISO's root. */
  tree: string;
  volid: string;
  arch: Arch;
  /** Every date in the image (files, volume, boot catalog) and the source of its ids. */
  date: number;
  /** isolinux El Torito boot with an isohybrid MBR (the isohdpfx.bin path). */
  bios?: { isohdpfx: string };
  /** EFI El Torito boot from images/efiboot.img. */
  uefi?: boolean;
}

/** The boot ISO: `xorriso -as mkisofs` as lorax runs it, hybrid when there is a BIOS loader. */
export function mkisofsArgv(o: MkisofsInput): string[] {
  const d = isoDate(o.date);
  const argv = ['xorriso', '-no_rc', '-as', 'mkisofs', '-o', o.out];
  // -r (not -R): Rock Ridge owners root and modes normalized, so neither the runner's user nor
  // the umask the builder wrote its files with shows in the directory records.
  argv.push('-r', '-J', '-joliet-long', '-iso-level', '3', '-V', o.volid, '-sysid', o.arch === 'ppc64le' ? 'PPC' : 'LINUX');
  // Volume dates and the boot catalog's, the MBR id, the GPT GUIDs: from the date, not the clock
  // or a random source; files get it too, not the time the builder wrote them.
  argv.push(`--modification-date=${d}`, '--set_all_file_dates', d, '--gpt_disk_guid', 'modification-date');
  if (o.bios) {
    argv.push('-isohybrid-mbr', o.bios.isohdpfx, '-b', 'isolinux/isolinux.bin', '-c', 'isolinux/boot.cat', '-no-emul-boot', '-boot-load-size', '4', '-boot-info-table');
  }
  if (o.uefi) {
    if (o.bios) argv.push('-eltorito-alt-boot');
    argv.push('-e', 'images/efiboot.img', '-no-emul-boot');
    // Marks efiboot.img as the EFI partition of the hybrid image (USB boot); needs the isohybrid MBR.
    if (o.bios) argv.push('-isohybrid-gpt-basdat');
  }
  argv.push(o.tree);
  return argv;
}

// --- isomd5sum, isoinfo ---

export const implantisomd5Argv = (iso: string, o: { supported?: boolean; force?: boolean } = {}): string[] => [
  'implantisomd5',
  ...(o.supported ? ['--supported-iso'] : []),
  ...(o.force ? ['-f'] : []),
  iso,
];

export const checkisomd5Argv = (iso: string, o: { md5sumonly?: boolean } = {}): string[] => ['checkisomd5', ...(o.md5sumonly ? ['--md5sumonly'] : []), iso];

export const isoinfoArgv = (iso: string): string[] => ['isoinfo', '-d', '-i', iso];

// --- mksquashfs ---

/**
 * install.img. Dates come from SOURCE_DATE_EPOCH (reproducibleEnv; squashfs-tools >= 4.4 clamps
 * to it, and refuses it together with -mkfs-time/-all-time). No xattrs: on an SELinux host new
 * files get the host's labels, which would make the image depend on the runner.
 */
export const mksquashfsArgv = (root: string, out: string, comp: 'xz' | 'zstd'): string[] => [
  'mksquashfs',
  root,
  out,
  '-comp',
  comp,
  '-no-xattrs',
  '-noappend',
  '-quiet',
  '-no-progress',
];

// --- FAT (efiboot.img) ---

/**
 * A FAT image file of `kib` KiB. --invariant fixes what mkfs.fat would take from the clock or a
 * random source (the label's date, in UTC; the MBR signature); -i, after it, sets our serial.
 */
export const mkfsFatArgv = (img: string, o: { label: string; serial: string; kib: number }): string[] => [
  'mkfs.fat',
  '--invariant',
  '-i',
  o.serial,
  '-C',
  '-n',
  o.label,
  img,
  String(o.kib),
];

/** Directories in a FAT image (mtools dates them with SOURCE_DATE_EPOCH, where it supports it: Debian's since 4.0.18). */
export const mmdArgv = (img: string, dirs: string[]): string[] => ['mmd', '-i', img, ...dirs.map((d) => `::${d}`)];

/**
 * Files into a FAT image directory, in the order given (the order of their entries), dated with
 * their mtime (-m): callers set it, which works with every mtools.
 */
export const mcopyArgv = (img: string, files: string[], dir: string): string[] => ['mcopy', '-m', '-i', img, ...files, `::${dir}`];

/** mtools' environment: no drive configuration checks on an image file, reproducible dates. */
export const mtoolsEnv = (epoch: number): NodeJS.ProcessEnv => ({ ...reproducibleEnv(epoch), MTOOLS_SKIP_CHECK: '1' });

// --- grub ---

/**
 * A standalone grub EFI image as grub-mkstandalone makes it (the modules and the config in a
 * memdisk, `grub-mkstandalone -v` shows this command), from a memdisk we write reproducibly
 * (grubMemdisk): grub-mkstandalone's own carries the time it ran and directory order.
 */
export const grubMkimageArgv = (o: { mkimage: string; target: string; modulesDir: string; memdisk: string; out: string }): string[] => [
  o.mkimage,
  '-O',
  o.target,
  '-d',
  o.modulesDir,
  '-o',
  o.out,
  '-p',
  '(memdisk)/boot/grub',
  '-m',
  o.memdisk,
  'memdisk',
  'tar',
];
