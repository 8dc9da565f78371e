// The production builder: lorax, run exactly as empanadas' buildImage.tmpl.sh runs it, and the
// adoption of a lorax output tree (pull-unpack-tree's job) into the pipeline's layout.
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { isFinal, isoNames, releaseIso, revision, volumeId, WRAPPER_MOUNTS, type Arch, type Release } from '@rocky/config';
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

/** Wrappers that run lorax in a container, which sees only what is mounted into it. */
const CONTAINER_ENGINES = new Set(['podman', 'docker']);

/** What lorax behind a wrapper must see: its sources (read) and its work dir (output and log). */
export interface WrapperMounts {
  readOnly: string[];
  readWrite: string[];
}

/**
 * The wrapper with `{mounts}` replaced by `-v <path>:<path>:ro` for each source and `-v <path>:<path>`
 * for each work path: the same paths inside, because lorax's argv names host paths.
 */
export function wrapperArgv(wrapper: string[], mounts: WrapperMounts): string[] {
  return wrapper.flatMap((w) =>
    w === WRAPPER_MOUNTS ? [...mounts.readOnly.flatMap((p) => ['-v', `${p}:${p}:ro`]), ...mounts.readWrite.flatMap((p) => ['-v', `${p}:${p}`])] : [w],
  );
}

/** The `-v`/`--volume` bind mounts written out in a container wrapper. */
function explicitVolumes(wrapper: string[]): { src: string; dst: string; ro: boolean }[] {
  const specs: string[] = [];
  wrapper.forEach((w, i) => {
    if ((w === '-v' || w === '--volume') && wrapper[i + 1]) specs.push(wrapper[i + 1]);
    else if (w.startsWith('--volume=')) specs.push(w.slice('--volume='.length));
    else if (/^-v[^-]/.test(w)) specs.push(w.slice(2));
  });
  return specs.map((v) => {
    const [src, dst = src, opts = ''] = v.split(':');
    return { src: src.replace(/\/+$/, ''), dst: dst.replace(/\/+$/, ''), ro: opts.split(',').includes('ro') };
  });
}

/**
 * Why lorax behind this wrapper would not see what it needs (a container engine's `run` without
 * `{mounts}` nor same-path volumes covering every path), or undefined. Other wrappers (mock,
 * sudo) see the host's files.
 */
export function wrapperMountProblem(wrapper: string[], mounts: WrapperMounts): string | undefined {
  const engine = basename(wrapper[0] ?? '');
  if (!CONTAINER_ENGINES.has(engine) || !wrapper.includes('run') || wrapper.includes(WRAPPER_MOUNTS)) return undefined;
  const volumes = explicitVolumes(wrapper);
  const covered = (p: string, write: boolean) => volumes.some((v) => v.src === v.dst && (p === v.src || p.startsWith(`${v.src}/`)) && !(write && v.ro));
  const unseen = [...mounts.readOnly.filter((p) => !covered(p, false)).map((p) => `${p} (its sources)`), ...mounts.readWrite.filter((p) => !covered(p, true)).map((p) => `${p} (its output, writable)`)];
  if (!unseen.length) return undefined;
  return `${engine} runs lorax in a container that does not see ${unseen.join(' nor ')}: put "${WRAPPER_MOUNTS}" in the wrapper before the image (it becomes -v <path>:<path>:ro for the compose and -v <path>:<path> for lorax's work dir)`;
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
  const [{ volumeId: volid, implantMd5 }, torito, isoSha] = await settleAll<[{ volumeId: string; implantMd5?: string }, ElTorito, string]>([
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
    implantMd5,
    bootable,
    bootloaders: bootable ? bootloadersOf(torito) : [],
    treeFiles,
  };
}
