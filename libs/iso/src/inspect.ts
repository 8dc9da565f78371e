// Reading ISOs back: volume id, file list, boot records, implanted md5. Everything here opens the
// image read-only (`-indev`, never `-dev`, which empanadas uses and which opens it for writing).
// `logFile`, where given, gets each tool's command line and full output, and failures name it.
import { ToolError } from '@rocky/exec';
import { byteOrder } from '@rocky/compose';
import { settleAll } from './files';
import { checkisomd5Argv, isoinfoArgv, runTool, xorrisoReadArgv } from './tools';

const fail = (iso: string, reason: string, cause?: unknown): never => {
  throw new Error(`${iso}: ${reason}`, cause ? { cause } : undefined);
};

/** Points a conclusion drawn from a tool's output at the log that holds all of it. */
const seeLog = (logFile?: string) => (logFile ? `\nfull log: ${logFile}` : '');

const toolOutput = (e: unknown) => (e instanceof ToolError ? `${e.result.stdout}\n${e.result.stderr}` : '');

/** The primary volume descriptor's volume id (`isoinfo -d`, as empanadas reads it with pycdlib). */
export async function readVolumeId(iso: string, logFile?: string): Promise<string> {
  let out: string;
  try {
    out = (await runTool(isoinfoArgv(iso), { logFile })).stdout;
  } catch (e) {
    return fail(iso, `cannot read the volume id (isoinfo -d): ${(e as Error).message}`, e);
  }
  const m = /^Volume id: ?(.*)$/m.exec(out);
  if (!m || !m[1].trim()) return fail(iso, `isoinfo -d printed no volume id: not an ISO 9660 image?${seeLog(logFile)}`);
  return m[1].trim();
}

/**
 * Splits xorriso's result lines (`'/a b/it'"'"'s'`): shell-style quoted words, one per line; a
 * newline inside quotes belongs to the name.
 */
export function parseXorrisoWords(text: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, i + 1);
      if (end < 0) throw new Error(`xorriso output has an unterminated quote: ${text.slice(i, i + 80)}`);
      cur += text.slice(i + 1, end);
      inWord = true;
      i = end;
    } else if (c === '\n') {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else if (c !== '\r') {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

/** Runs read-only xorriso commands on an ISO; a file that is not an ISO image is an error, not a blank image. */
async function xorrisoRead(iso: string, cmds: string[], what: string, logFile?: string): Promise<{ stdout: string; stderr: string }> {
  let r;
  try {
    r = await runTool(xorrisoReadArgv(iso, cmds), { logFile });
  } catch (e) {
    return fail(iso, `xorriso ${what} failed: ${(e as Error).message}`, e);
  }
  // xorriso treats a non-ISO file as a blank image and exits 0.
  if (/No ISO 9660 image at LBA 0/.test(r.stderr)) fail(iso, `not an ISO 9660 image (xorriso ${what})${seeLog(logFile)}`);
  return r;
}

/**
 * The ISO's files and directories, sorted in byte order, without the leading `/` and without the
 * root itself: empanadas' `<iso>.manifest` (which sorts with the locale; byte order is stable).
 */
export async function isoManifest(iso: string, logFile?: string): Promise<string[]> {
  const { stdout } = await xorrisoRead(iso, ['-find', '/'], '-find', logFile);
  return parseXorrisoWords(stdout)
    .filter((p) => p !== '/')
    .map((p) => p.replace(/^\/+/, ''))
    .sort(byteOrder);
}

export interface ElTorito {
  /** Boot images by kind: `-b` (BIOS / platform 0), `-e` (EFI), `chrp` (PowerPC CHRP). */
  bios: string[];
  efi: string[];
  chrp: boolean;
  /** Problems xorriso reported (`SORRY`, `FAILURE`) while replaying the boot setup. */
  problems: string[];
  report: string;
}

/** `xorriso -report_el_torito as_mkisofs`: the boot setup as mkisofs options, and any SORRY. */
export async function elTorito(iso: string, logFile?: string): Promise<ElTorito> {
  let text: string;
  try {
    const r = await xorrisoRead(iso, ['-report_el_torito', 'as_mkisofs'], '-report_el_torito', logFile);
    text = `${r.stdout}\n${r.stderr}`;
  } catch (e) {
    // A report that trips xorriso's problem threshold still tells us why.
    const out = toolOutput((e as Error).cause);
    if (!out) throw e;
    text = out;
  }
  const paths = (opt: string) => [...text.matchAll(new RegExp(`^${opt} '([^']*)'`, 'gm'))].map((m) => m[1]);
  return {
    bios: paths('-b'),
    efi: paths('-e'),
    chrp: /^-chrp-boot/m.test(text),
    problems: text.split('\n').filter((l) => /: (SORRY|FAILURE|FATAL|ABORT) :/.test(l) || /\bSORRY\b/.test(l)),
    report: text,
  };
}

/** The boot loaders an El Torito report shows, named as BootTreeResult.bootloaders. */
export function bootloadersOf(t: ElTorito): string[] {
  const out: string[] = [];
  for (const b of t.bios) {
    if (/isolinux/.test(b)) out.push('bios-isolinux');
    else if (/eltorito\.img$/.test(b)) out.push('bios-grub');
    else if (/cdboot\.img$/.test(b)) out.push('s390-cdboot');
    else out.push(`bios:${b}`);
  }
  if (t.efi.length) out.push('uefi-grub');
  if (t.chrp) out.push('ieee1275-grub');
  return [...new Set(out)];
}

/** Whether an El Torito report describes a bootable image: some boot record and no SORRY. */
export const isBootable = (t: ElTorito) => (t.bios.length > 0 || t.efi.length > 0 || t.chrp) && t.problems.length === 0;

/** The md5 implanted by implantisomd5 (`checkisomd5 --md5sumonly`), or undefined when there is none. */
export async function implantedMd5(iso: string, logFile?: string): Promise<string | undefined> {
  try {
    const { stdout } = await runTool(checkisomd5Argv(iso, { md5sumonly: true }), { logFile });
    const m = /:\s+([0-9a-f]{32})\s*$/m.exec(stdout);
    return m ? m[1] : undefined;
  } catch (e) {
    // rc 1 with no output: nothing implanted.
    if (e instanceof ToolError && e.result.code === 1 && !e.result.stdout.trim()) return undefined;
    throw e;
  }
}

/** empanadas' check of a bootable image: its El Torito report shows a boot record and no SORRY. */
export async function checkBootRecord(iso: string, logFile?: string): Promise<void> {
  const t = await elTorito(iso, logFile);
  if (t.problems.length) fail(iso, `IMAGE WAS NOT BUILT CORRECTLY: xorriso -report_el_torito reports\n${t.problems.join('\n')}${seeLog(logFile)}`);
  if (!t.bios.length && !t.efi.length && !t.chrp) fail(iso, `should be bootable but has no El Torito boot record${seeLog(logFile)}`);
}

/**
 * Verifies an ISO as empanadas does after building one: the implanted md5 must check
 * (checkisomd5), and a bootable image's El Torito report must show a boot record and no SORRY.
 * `requireMd5` makes a missing implant an error too (for ISOs this pipeline implanted).
 */
export async function verifyIso(
  iso: string,
  opts: { bootable?: boolean; requireMd5?: boolean; logFile?: string } = {},
): Promise<{ volumeId: string; implantMd5?: string }> {
  const { logFile } = opts;
  const [volumeId, implantMd5] = await settleAll<[string, string | undefined]>([readVolumeId(iso, logFile), implantedMd5(iso, logFile)]);
  if (!implantMd5 && opts.requireMd5) fail(iso, `no implanted md5 (implantisomd5 did not run or the header is damaged)${seeLog(logFile)}`);
  const checks: Promise<void>[] = [];
  if (implantMd5) {
    checks.push(
      runTool(checkisomd5Argv(iso), { logFile }).then(
        () => undefined,
        (e) => fail(iso, `checkisomd5 failed: the content does not match the implanted md5 ${implantMd5}\n${(e as Error).message}`, e),
      ),
    );
  }
  if (opts.bootable) checks.push(checkBootRecord(iso, logFile));
  await settleAll(checks);
  return implantMd5 ? { volumeId, implantMd5 } : { volumeId };
}
