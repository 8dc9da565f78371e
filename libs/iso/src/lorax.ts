// The production builder: lorax, run exactly as empanadas' buildImage.tmpl.sh runs it, and the
// adoption of a lorax output tree (pull-unpack-tree's job) into the pipeline's layout.
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isFinal, isoNames, releaseIso, revision, volumeId, type Arch, type Release } from '@rocky/config';
import { parseTreeinfo, type TreeInfo } from '@rocky/compose';
import { hashFiles, sha256File, tempName, writeFileAtomic } from '@rocky/exec';
import { describeTree, linkOrCopy, linkTree, replaceDir, settleAll } from './files';
import { bootloadersOf, elTorito, isBootable, isoManifest, verifyIso, type ElTorito } from './inspect';
import type { BootTreeResult } from './types';

/**
 * lorax's command line, flag for flag as empanadas' buildImage.tmpl.sh writes it (HEAD:
 * `--squashfs-only` when configured, `--rootfs-size=4`). `--isfinal` only for GA releases.
 */
export function loraxArgv(release: Release, arch: Arch, sources: string[], outDir: string, logFile: string): string[] {
  const l = releaseIso(release).lorax;
  const rev = revision(release);
  return [
    'lorax',
    `--product=${release.fullname}`,
    `--version=${rev}`,
    `--release=${rev}`,
    ...(isFinal(release) ? ['--isfinal'] : []),
    ...sources.map((s) => `--source=${s}`),
    ...(l.squashfsOnly ? ['--squashfs-only'] : []),
    `--bugurl=${l.bugurl}`,
    `--variant=${l.variant}`,
    '--nomacboot',
    `--buildarch=${arch}`,
    `--volid=${volumeId(release, arch)}`,
    `--logfile=${logFile}`,
    '--rootfs-size=4',
    outDir,
  ];
}

/** Files named by a lorax .treeinfo that must exist, with lorax's defaults when a key is absent. */
function requiredFiles(ti: TreeInfo | undefined, arch: Arch): string[] {
  const images = ti?.images?.[arch] ?? {};
  return [
    ...new Set([
      'images/boot.iso',
      ti?.stage2?.mainimage ?? 'images/install.img',
      images.kernel || 'images/pxeboot/vmlinuz',
      images.initrd || 'images/pxeboot/initrd.img',
    ]),
  ];
}

/**
 * Validates a lorax output directory and adopts it as `<outDir>/lorax` (hardlinks; the source is
 * left as it was) with the boot ISO at `<outDir>/<boot iso name>`. Refuses a tree with missing
 * pieces (naming them), a boot.iso whose volume id is not volumeId(release, arch), a .treeinfo
 * checksum that does not match its file, or an implanted md5 that does not check. The tools'
 * output goes to `opts.logFile`.
 */
export async function collectLoraxTree(
  loraxDir: string,
  release: Release,
  arch: Arch,
  outDir: string,
  opts: { mustBoot?: boolean; logFile?: string } = {},
): Promise<BootTreeResult> {
  const { logFile } = opts;
  const missing: string[] = [];
  let ti: TreeInfo | undefined;
  const tiPath = join(loraxDir, '.treeinfo');
  if (!existsSync(tiPath)) missing.push('.treeinfo');
  else {
    try {
      ti = parseTreeinfo(readFileSync(tiPath, 'utf8'));
    } catch (e) {
      throw new Error(`${arch}: ${tiPath}: ${(e as Error).message}`, { cause: e });
    }
    if (ti.tree.arch !== arch) throw new Error(`${arch}: ${tiPath} describes a ${ti.tree.arch} tree`);
    if (!ti.images?.[arch]) missing.push(`[images-${arch}] in .treeinfo`);
    if (!ti.stage2?.mainimage) missing.push('[stage2] mainimage in .treeinfo');
  }
  for (const f of requiredFiles(ti, arch)) if (!existsSync(join(loraxDir, f))) missing.push(f);
  if (missing.length) throw new Error(`${arch}: lorax tree ${loraxDir} is incomplete: missing ${missing.join(', ')}`);

  const bootIso = join(loraxDir, 'images/boot.iso');
  const expected = volumeId(release, arch);
  // One pass each, together: the implanted md5 (checkisomd5), the boot records, the sha256.
  const [{ volumeId: volid }, torito, isoSha] = await settleAll<[{ volumeId: string }, ElTorito, string]>([
    verifyIso(bootIso, { logFile }),
    elTorito(bootIso, logFile),
    sha256File(bootIso),
  ]);
  if (volid !== expected) throw new Error(`${arch}: ${bootIso} has volume id ${volid}, expected ${expected}`);
  const bootable = isBootable(torito);
  // Checked before anything goes to outDir: nothing unverified may stay there for a later step.
  if (opts.mustBoot && !bootable) throw new Error(`${arch}: the builder must make a bootable ISO, but images/boot.iso has no clean El Torito boot record`);

  // Every checksum the tree claims must hold (lorax's own .treeinfo has none; empanadas' rewritten one does).
  const claimed = Object.entries(ti?.checksums ?? {}).flatMap(([rel, sum]) => (sum.startsWith('sha256:') ? [[rel, sum.slice('sha256:'.length)]] : []));
  for (const [rel] of claimed) if (!existsSync(join(loraxDir, rel))) throw new Error(`${arch}: ${tiPath} has a checksum for ${rel}, which is missing`);
  const known = new Map<string, string>([['images/boot.iso', isoSha]]);
  const toHash = claimed.map(([rel]) => rel).filter((rel) => !known.has(rel));
  (await hashFiles(toHash.map((rel) => join(loraxDir, rel)))).forEach((sum, i) => known.set(toHash[i], sum));
  for (const [rel, hex] of claimed) {
    const actual = known.get(rel)!;
    if (actual !== hex) throw new Error(`${arch}: ${rel} does not match its .treeinfo checksum (${hex}, file has ${actual})`);
  }

  const tree = join(outDir, 'lorax');
  const manifestRel = 'images/boot.iso.manifest';
  if (resolve(loraxDir) !== resolve(tree)) {
    const tmp = tempName(tree);
    linkTree(loraxDir, tmp);
    if (!existsSync(join(tmp, manifestRel))) writeFileAtomic(join(tmp, manifestRel), (await isoManifest(bootIso, logFile)).join('\n') + '\n');
    replaceDir(tmp, tree);
  } else if (!existsSync(join(tree, manifestRel))) {
    writeFileAtomic(join(tree, manifestRel), (await isoManifest(bootIso, logFile)).join('\n') + '\n');
  }
  const isoPath = join(outDir, isoNames(release, arch, 'boot').file);
  const isoTmp = tempName(isoPath);
  linkOrCopy(join(tree, 'images/boot.iso'), isoTmp);
  renameSync(isoTmp, isoPath);

  const treeFiles = await describeTree(tree, known);
  const isoEntry = treeFiles.find((f) => f.path === 'images/boot.iso')!;
  return {
    tree,
    iso: { path: isoPath, sha256: isoEntry.sha256, size: isoEntry.size },
    volumeId: volid,
    bootable,
    bootloaders: bootable ? bootloadersOf(torito) : [],
    treeFiles,
  };
}
