// An arch this host has no boot loader for (aarch64 without grub-efi-arm64-bin): the tree and a
// data ISO with the right volume id are still built, and reported as not bootable; a site that
// requires a bootable ISO gets an error naming the arch and what to install.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isoNames, volumeId } from '@rocky/config';
import { parseTreeinfo } from '@rocky/compose';
import { run, sha256File } from '@rocky/exec';
import { buildBootTree, buildExtraIso, hostBootLoaders, type BootTreeResult } from './index';
import { buildTestRepos, rpmFileDigests, testRelease, type TestRepos } from './testing/repos';

const TS = 1763650000;
const rel = testRelease();
const grubArm64 = !!hostBootLoaders('aarch64').uefi;
let tmp: string;
let repos: TestRepos;
let boot: BootTreeResult;
const repoList = () => [
  { name: 'BaseOS', path: repos.baseos },
  { name: 'AppStream', path: repos.appstream },
];

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'iso-aarch64-'));
  repos = await buildTestRepos(join(tmp, 'repos'));
  boot = await buildBootTree({
    release: rel,
    arch: 'aarch64',
    repos: repoList(),
    builder: { type: 'boot-tree', mustBoot: false },
    outDir: join(tmp, 'out'),
    workDir: join(tmp, 'work'),
    buildTimestamp: TS,
  });
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('aarch64 on an x86_64 host', () => {
  if (grubArm64) console.log('this host has grub arm64-efi: the aarch64 ISO is expected to be UEFI-bootable');

  it('builds the tree from the aarch64 kernel and a data ISO with the right volume id', async () => {
    const digests = await rpmFileDigests(repos.kernelRpm.aarch64);
    expect(await sha256File(join(boot.tree, 'images/pxeboot/vmlinuz'))).toBe(digests.get('/boot/vmlinuz-5.14.0-570.tc.el9.aarch64'));
    expect(boot.iso.path).toBe(join(tmp, 'out', isoNames(rel, 'aarch64', 'boot').file));
    expect(boot.volumeId).toBe('Rocky-9-7-aarch64-dvd');
    const { stdout } = await run(['isoinfo', '-d', '-i', boot.iso.path]);
    expect(stdout).toContain(`Volume id: ${volumeId(rel, 'aarch64')}`);
    const ti = parseTreeinfo(readFileSync(join(boot.tree, '.treeinfo'), 'utf8'));
    expect(ti.tree.arch).toBe('aarch64');
    expect(ti.images!.aarch64.kernel).toBe('images/pxeboot/vmlinuz');
    expect(ti.stage2?.mainimage).toBe('images/install.img');
    await run(['checkisomd5', boot.iso.path]);
  });

  it.skipIf(grubArm64)('reports it as not bootable and puts no boot loader on it', async () => {
    expect(boot.bootable).toBe(false);
    expect(boot.bootloaders).toEqual([]);
    expect(existsSync(join(boot.tree, 'isolinux'))).toBe(false);
    expect(existsSync(join(boot.tree, 'images/efiboot.img'))).toBe(false);
    const r = await run(['xorriso', '-indev', boot.iso.path, '-report_el_torito', 'as_mkisofs']);
    expect(r.stdout).not.toMatch(/^-[be] /m);
  });

  it.skipIf(grubArm64)('fails when the site requires a bootable ISO, naming the arch and the reason', async () => {
    await expect(
      buildBootTree({
        release: rel,
        arch: 'aarch64',
        repos: repoList(),
        builder: { type: 'boot-tree', mustBoot: true },
        outDir: join(tmp, 'must-out'),
        workDir: join(tmp, 'must-work'),
        buildTimestamp: TS,
      }),
    ).rejects.toThrow(/^aarch64: site requires a bootable ISO but this host has no boot loader for aarch64 \(install grub-efi-arm64-bin/);
    expect(existsSync(join(tmp, 'must-out'))).toBe(false);
  });

  it('fails the same way for s390x, before doing any work', async () => {
    await expect(
      buildBootTree({
        release: rel,
        arch: 's390x',
        repos: repoList(),
        builder: { type: 'boot-tree', mustBoot: true },
        outDir: join(tmp, 's390x-out'),
        workDir: join(tmp, 's390x-work'),
        buildTimestamp: TS,
      }),
    ).rejects.toThrow(/^s390x: site requires a bootable ISO but this host has no boot loader for s390x \(.*lorax builder/);
    expect(existsSync(join(tmp, 's390x-work'))).toBe(false);
  });

  it('still makes a verified (data-only) DVD from it', async () => {
    const res = await buildExtraIso({
      release: rel,
      arch: 'aarch64',
      image: 'dvd',
      bootIso: boot.iso.path,
      bootTree: boot.tree,
      repos: repoList(),
      mainVariant: 'AppStream',
      outFile: join(tmp, 'isos', isoNames(rel, 'aarch64', 'dvd').file),
      workDir: join(tmp, 'dvd-work'),
      buildTimestamp: TS,
    });
    expect(res.volumeId).toBe('Rocky-9-7-aarch64-dvd');
    expect(res.bootable).toBe(boot.bootable);
    await run(['checkisomd5', res.iso.path]);
    expect(res.manifest).toContain('BaseOS/repodata/repomd.xml');
    expect(res.manifest).toContain('AppStream/Packages/app-tc-1.0-1.el9.noarch.rpm');
  });
});
