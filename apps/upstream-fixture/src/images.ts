// Small but real cloud images, named the way the image builders name them, each with a
// BSD-tag CHECKSUM beside it: what the `cloud` stage collects.
import { closeSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeFileSync, writeSync, ftruncateSync } from 'node:fs';
import { join } from 'node:path';
import { run, sha256File, writeFileAtomic } from '@rocky/exec';
import { SOURCE_DATE_EPOCH, type ImagePlan } from './model';

const MiB = 1 << 20;

/** A sparse raw disk whose first sector names the image, so every image has its own bytes. */
function rawDisk(file: string, size: number, label: string): void {
  const fd = openSync(file, 'w');
  try {
    writeSync(fd, Buffer.from(`Rocky Linux upstream fixture disk image\n${label}\n`));
    ftruncateSync(fd, size);
  } finally {
    closeSync(fd);
  }
}

function rootfs(dir: string, label: string, project: string): void {
  mkdirSync(join(dir, 'etc'), { recursive: true });
  mkdirSync(join(dir, 'usr', 'bin'), { recursive: true });
  writeFileSync(join(dir, 'etc', 'os-release'), `NAME="Rocky Linux"\nID="rocky"\nFIXTURE_PROJECT="${project}"\n`);
  writeFileSync(join(dir, 'etc', 'fixture-image'), `${label}\n`);
  writeFileSync(join(dir, 'usr', 'bin', 'true'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
}

/** `tar` with fixed owners, order and times; `z`/`J` picks gzip or xz. */
const tar = (compress: 'z' | 'J', out: string, dir: string) => [
  'tar',
  '--sort=name',
  `--mtime=@${SOURCE_DATE_EPOCH}`,
  '--owner=0',
  '--group=0',
  '--numeric-owner',
  `-c${compress}f`,
  out,
  '-C',
  dir,
  '.',
];

/** The BSD-tag CHECKSUM file the producers publish beside each image. */
export async function checksumText(file: string, name: string): Promise<string> {
  return `# ${name}: ${statSync(file).size} bytes\nSHA256 (${name}) = ${await sha256File(file)}\n`;
}

/** Builds one image into `<outDir>/<arch>/<file>` (+ `.CHECKSUM`), using `work` as scratch. */
export async function buildImage(img: ImagePlan, outDir: string, work: string, project: string): Promise<void> {
  const dir = join(outDir, img.arch);
  mkdirSync(dir, { recursive: true });
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const dest = join(dir, img.file);
  const tmp = join(work, img.file);
  const label = `${project} ${img.file}`;
  const raw = join(work, 'disk.raw');
  switch (img.format) {
    case 'qcow2':
      rawDisk(raw, 64 * MiB, label);
      await run(['qemu-img', 'convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, tmp]);
      break;
    case 'vhd':
      // Any data would allocate a whole 2 MiB VHD block; an empty dynamic VHD is a few KiB and
      // still unique (its footer carries a random UUID).
      await run(['qemu-img', 'create', '-q', '-f', 'vpc', '-o', 'subformat=dynamic', tmp, `${64 * MiB}`]);
      break;
    case 'raw.xz': {
      const plain = tmp.slice(0, -'.xz'.length);
      rawDisk(plain, 16 * MiB, label);
      await run(['xz', '-0', '-T1', plain]); // writes <plain>.xz = tmp
      break;
    }
    case 'tar.xz':
    case 'wsl': {
      const fs = join(work, 'rootfs');
      rootfs(fs, label, project);
      await run(tar(img.format === 'wsl' ? 'z' : 'J', tmp, fs));
      break;
    }
    case 'box': {
      // A Vagrant libvirt box: box.img (qcow2), metadata.json and a Vagrantfile, tar+gzip.
      const box = join(work, 'box');
      mkdirSync(box);
      rawDisk(raw, 64 * MiB, label);
      await run(['qemu-img', 'convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, join(box, 'box.img')]);
      writeFileSync(join(box, 'metadata.json'), JSON.stringify({ provider: 'libvirt', format: 'qcow2', virtual_size: 1 }) + '\n');
      writeFileSync(join(box, 'Vagrantfile'), 'Vagrant.configure("2") do |config|\n  config.vm.provider :libvirt do |libvirt|\n    libvirt.driver = "kvm"\n  end\nend\n');
      await run(tar('z', tmp, box));
      break;
    }
    default:
      throw new Error(`unknown cloud image format ${img.format}`);
  }
  renameSync(tmp, dest);
  writeFileAtomic(`${dest}.CHECKSUM`, await checksumText(dest, img.file));
  rmSync(work, { recursive: true, force: true });
}
