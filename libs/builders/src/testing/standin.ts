// Test stand-ins for the remote side: a `lorax` that makes a lorax-shaped tree with xorriso,
// and a throwaway sshd on loopback. Used by the builders' tests only.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { runSync } from '@rocky/exec';

/**
 * Writes an executable stand-in for lorax into `dir`. It records its argv (NUL-separated) in
 * $STANDIN_RECORD and builds `<outdir>/{.treeinfo, images/boot.iso, images/install.img,
 * images/pxeboot/{vmlinuz,initrd.img}}`. STANDIN_MODE: ok | fail (exit 1 after logging) |
 * badvolid (an ISO with the wrong volume id). STANDIN_BOOTABLE=0 leaves out the El Torito record.
 */
export function writeStandinLorax(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'lorax');
  writeFileSync(
    file,
    `#!/bin/sh
set -eu
if [ -n "\${STANDIN_RECORD:-}" ]; then
  : > "$STANDIN_RECORD"
  for a in "$@"; do printf '%s\\0' "$a" >> "$STANDIN_RECORD"; done
fi
volid= logfile=/dev/null arch= out= product= version= variant=
for a in "$@"; do
  case "$a" in
    --volid=*) volid=\${a#--volid=} ;;
    --logfile=*) logfile=\${a#--logfile=} ;;
    --buildarch=*) arch=\${a#--buildarch=} ;;
    --product=*) product=\${a#--product=} ;;
    --version=*) version=\${a#--version=} ;;
    --variant=*) variant=\${a#--variant=} ;;
    --*) ;;
    *) out=$a ;;
  esac
done
echo "stand-in lorax: $product $version $arch into $out" > "$logfile"
echo "stand-in lorax starting"
if [ "\${STANDIN_MODE:-ok}" = fail ]; then
  echo "ERROR: stand-in: no package provides kernel-core for $arch" >> "$logfile"
  echo "lorax failed, see $logfile" >&2
  exit 1
fi
[ "\${STANDIN_MODE:-ok}" = badvolid ] && volid=NOT-THE-VOLUME-ID
# Like lorax: the output dir must not exist yet.
[ ! -e "$out" ] || { echo "$out already exists" >&2; exit 1; }
stage=$(mktemp -d)
mkdir -p "$out/images/pxeboot" "$stage/images/pxeboot" "$stage/isolinux"
head -c 1200000 /dev/urandom > "$out/images/install.img"
printf 'stand-in kernel %s\\n' "$arch" > "$out/images/pxeboot/vmlinuz"
printf 'stand-in initrd %s\\n' "$arch" > "$out/images/pxeboot/initrd.img"
cp "$out/images/install.img" "$stage/images/"
cp "$out/images/pxeboot/vmlinuz" "$out/images/pxeboot/initrd.img" "$stage/images/pxeboot/"
boot=
if [ "\${STANDIN_BOOTABLE:-1}" = 1 ]; then
  head -c 2048 /dev/zero > "$stage/isolinux/isolinux.bin"
  boot="-b isolinux/isolinux.bin -c isolinux/boot.cat -no-emul-boot -boot-load-size 4 -boot-info-table"
fi
xorriso -as mkisofs -quiet -V "$volid" -R -J $boot -o "$out/images/boot.iso" "$stage" 2>> "$logfile"
rm -rf "$stage"
sum() { sha256sum "$out/$1" | cut -d' ' -f1; }
cat > "$out/.treeinfo" <<EOT
[checksums]
images/boot.iso = sha256:$(sum images/boot.iso)
images/install.img = sha256:$(sum images/install.img)
images/pxeboot/initrd.img = sha256:$(sum images/pxeboot/initrd.img)
images/pxeboot/vmlinuz = sha256:$(sum images/pxeboot/vmlinuz)

[general]
arch = $arch
family = $product
name = $product $version
platforms = $arch
timestamp = 1700000000
variant = $variant
version = $version

[header]
type = productmd.treeinfo
version = 1.2

[images-$arch]
boot.iso = images/boot.iso
initrd = images/pxeboot/initrd.img
kernel = images/pxeboot/vmlinuz

[release]
name = $product
short = Rocky
version = $version

[stage2]
mainimage = images/install.img

[tree]
arch = $arch
build_timestamp = 1700000000
platforms = $arch
variants = $variant

[variant-$variant]
id = $variant
name = $variant
packages = Packages
repository = .
type = variant
uid = $variant
EOT
echo "stand-in lorax: done" >> "$logfile"
`,
  );
  chmodSync(file, 0o755);
  return file;
}

/** The argv a stand-in recorded. */
export const recordedArgv = (file: string) => readFileSync(file, 'utf8').split('\0').slice(0, -1);

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface TestSshd {
  port: number;
  pid: number;
  /** Client key for the builder's identityFile. */
  identityFile: string;
  /** known_hosts with the server's key for [127.0.0.1]:port. */
  knownHosts: string;
  stop(): Promise<void>;
}

/** A real sshd on 127.0.0.1 with throwaway keys, accepting the current user (root) by key only. */
export async function startSshd(dir: string): Promise<TestSshd> {
  mkdirSync(dir, { recursive: true });
  const hostKey = join(dir, 'host_ed25519');
  const clientKey = join(dir, 'client_ed25519');
  runSync(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'test-host', '-f', hostKey]);
  runSync(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'test-client', '-f', clientKey]);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${clientKey}.pub`));
  // sshd refuses to start without its privilege separation directory.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const port = await freePort();
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'UsePAM no',
      'StrictModes no', // the keys live in a tmp dir
      'PermitRootLogin yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  const hostPub = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostPub}\n`);

  // Raw: a long-lived server, watched for its exit while it starts and stopped by the test.
  const child: ChildProcess = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  // Ready when the port accepts connections; sshd -D at LogLevel ERROR prints nothing on success.
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`sshd exited ${child.exitCode}: ${stderr}`);
    if (await canConnect(port)) break;
    if (i > 100) throw new Error(`sshd did not listen on ${port}: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    pid: child.pid!,
    identityFile: clientKey,
    knownHosts,
    async stop() {
      if (child.exitCode === null) process.kill(child.pid!, 'SIGTERM');
      await exited;
    },
  };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });
}
