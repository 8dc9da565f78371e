// Boot smoke test: start an ISO in qemu (TCG: KVM does not work on this host), watch the serial
// console for a marker, and kill qemu as soon as it shows (or at a safety limit).
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasTool } from '@rocky/exec';

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

/** Why a boot test cannot run here, or undefined when it can. */
export function qemuMissing(uefi = false): string | undefined {
  if (!hasTool('qemu-system-x86_64')) return 'qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)';
  if (uefi && !(existsSync(OVMF_CODE) && existsSync(OVMF_VARS))) return `OVMF firmware is not installed (${OVMF_CODE}; apt-get install ovmf)`;
  return undefined;
}

export interface BootRun {
  found: boolean;
  /** Serial output with CRs and ANSI escapes removed. */
  output: string;
}

export function bootToMarker(iso: string, marker: string, opts: { uefi?: boolean; limitMs?: number } = {}): Promise<BootRun> {
  const scratch = mkdtempSync(join(tmpdir(), 'qemu-'));
  const args = ['-m', opts.uefi ? '512' : '256', '-nographic', '-no-reboot', '-cdrom', iso, '-serial', 'mon:stdio'];
  if (opts.uefi) {
    const vars = join(scratch, 'vars.fd');
    copyFileSync(OVMF_VARS, vars);
    args.push('-drive', `if=pflash,format=raw,readonly=on,file=${OVMF_CODE}`, '-drive', `if=pflash,format=raw,file=${vars}`);
  } else {
    args.push('-boot', 'd');
  }
  return runToMarker(args, marker, scratch, opts.limitMs);
}

/**
 * Network boot (BIOS, the iPXE ROM qemu's packages bring, on an e1000): qemu's user network serves `script` (an iPXE
 * script) over TFTP as the DHCP boot file; the guest reaches the host's loopback as 10.0.2.2.
 */
export function pxeBootToMarker(script: string, marker: string, opts: { limitMs?: number } = {}): Promise<BootRun> {
  const scratch = mkdtempSync(join(tmpdir(), 'qemu-pxe-'));
  writeFileSync(join(scratch, 'boot.ipxe'), script);
  const args = ['-m', '256', '-nographic', '-no-reboot', '-boot', 'n', '-netdev', `user,id=n0,tftp=${scratch},bootfile=boot.ipxe`, '-device', 'e1000,netdev=n0', '-serial', 'mon:stdio'];
  return runToMarker(args, marker, scratch, opts.limitMs);
}

function runToMarker(args: string[], marker: string, scratch: string, limitMs?: number): Promise<BootRun> {
  return new Promise((resolve, reject) => {
    // Raw: the guest's console is read from both streams as it comes, and qemu killed once the marker shows.
    const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let found = false;
    const clean = (s: string) => s.replace(/\r/g, '').replace(/\x1b\[[0-9;?=]*[A-Za-z]/g, '');
    const stop = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    const limit = setTimeout(stop, limitMs ?? 300_000);
    const onData = (d: Buffer) => {
      out += d.toString('latin1');
      if (!found && clean(out).includes(marker)) {
        found = true;
        stop();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (e) => {
      clearTimeout(limit);
      rmSync(scratch, { recursive: true, force: true });
      reject(e);
    });
    child.on('close', () => {
      clearTimeout(limit);
      rmSync(scratch, { recursive: true, force: true });
      resolve({ found, output: clean(out) });
    });
  });
}
