// buildExtraIso: the DVD, empanadas' way (build-iso-extra): xorriso replays the boot ISO's boot
// setup (`-boot_image any replay`) and adds the boot tree, the disc's metadata and every package
// and the repodata of the configured repos; then implantisomd5 and verification. The implanted md5
// is predicted while xorriso writes (isomd5.ts), so verifying it and taking the sha256 overlap
// implantisomd5 instead of following it; checkisomd5 runs whenever the prediction does not hold.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fullName, revision, volumeId } from '@rocky/config';
import { discTimestamp, discTreeinfo, parseTreeinfo, renderDiscinfo, renderMediaRepo, renderTreeinfo, treeinfoImagePaths } from '@rocky/compose';
import { hashFiles, preflight, tempName } from '@rocky/exec';
import { listFiles, settleAll } from './files';
import { checkBootRecord, elTorito, isBootable, isoManifest, readVolumeId, type ElTorito } from './inspect';
import { followFile, implantResult, ImplantPrediction, sha256WithAppData } from './isomd5';
import { implantisomd5Argv, renderDialog, reproducibleEnv, runTool, runXorrisoDialog, type Graft } from './tools';
import type { ExtraIsoInput, ExtraIsoResult } from './types';

/**
 * Boot-tree paths that replace the boot ISO's copy (empanadas' updatable set; fnmatch patterns
 * there, plain paths here). `.treeinfo` and `media.repo` are added: the disc needs its own
 * .treeinfo (both variants, [media]), which empanadas fails to put on when boot.iso has one.
 */
export const UPDATABLE = new Set([
  'isolinux/isolinux.cfg',
  'etc/yaboot.conf',
  'ppc/ppc64/yaboot.conf',
  'EFI/BOOT/BOOTX64.conf',
  'EFI/BOOT/grub.cfg',
  'images/efiboot.img',
  '.discinfo',
  '.treeinfo',
  'media.repo',
]);

/** Tree files a disc never carries (empanadas deletes them from disc copies of the lorax tree). */
const NOT_ON_DISC = new Set(['images/boot.iso', 'images/boot.iso.manifest']);

/** Disc metadata written by buildExtraIso itself, not taken from the boot tree. */
const DISC_METADATA = ['.treeinfo', '.discinfo', 'media.repo'];

/**
 * Which boot-tree files go onto the disc and how: files missing from the boot ISO are mapped,
 * updatable ones present in it are updated, the rest are already there.
 */
export function planTreeGrafts(bootTree: string, treeFiles: string[], bootIsoPaths: Set<string>): Graft[] {
  const out: Graft[] = [];
  for (const rel of treeFiles) {
    if (NOT_ON_DISC.has(rel) || DISC_METADATA.includes(rel)) continue;
    const src = join(bootTree, rel);
    if (!bootIsoPaths.has(rel)) out.push({ op: '-map', src, iso: `/${rel}` });
    else if (UPDATABLE.has(rel)) out.push({ op: '-update', src, iso: `/${rel}` });
  }
  return out;
}

/** Symlinks under `dir` whose target does not exist. */
function danglingLinks(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const p = join(e.parentPath, e.name);
    if (e.isSymbolicLink() && !existsSync(p)) out.push(p);
  }
  return out.sort();
}

export async function buildExtraIso(input: ExtraIsoInput): Promise<ExtraIsoResult> {
  const { release, arch, image, workDir, outFile, buildTimestamp } = input;
  const log = input.log ?? (() => {});
  const logFile = input.logFile ?? join(workDir, `${arch}-${image}.log`);
  const what = `${image}/${arch}`;
  const step = async <T>(tool: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      throw new Error(`${what}: ${tool} failed: ${(e as Error).message}`, { cause: e });
    }
  };
  try {
    preflight(['xorriso', 'implantisomd5', 'checkisomd5', 'isoinfo']);
  } catch (e) {
    throw new Error(`${what}: ${(e as Error).message}`);
  }
  if (!existsSync(input.bootIso)) throw new Error(`${what}: boot ISO ${input.bootIso} does not exist`);
  const tiPath = join(input.bootTree, '.treeinfo');
  if (!existsSync(tiPath)) throw new Error(`${what}: boot tree ${input.bootTree} has no .treeinfo`);
  if (!input.repos.length) throw new Error(`${what}: no repos to put on the disc`);
  for (const r of input.repos) {
    if (!existsSync(join(r.path, 'repodata', 'repomd.xml'))) throw new Error(`${what}: repo ${r.name} at ${r.path} has no repodata/repomd.xml`);
    // xorriso (-follow link) puts a dangling symlink on the disc as a link, silently.
    const dangling = ['Packages', 'repodata'].flatMap((d) => danglingLinks(join(r.path, d)));
    if (dangling.length) throw new Error(`${what}: repo ${r.name} has symlinks to nothing, which would go on the disc instead of files: ${dangling.slice(0, 5).join(', ')}`);
  }
  for (const f of input.extraFiles ?? []) if (!existsSync(f)) throw new Error(`${what}: extra file ${f} does not exist`);

  // The DVD keeps the boot ISO's volume id: stage2 (inst.stage2=hd:LABEL=…) looks for it.
  const [volid, bootPaths, torito] = await settleAll<[string, string[], ElTorito]>([
    readVolumeId(input.bootIso, logFile),
    isoManifest(input.bootIso, logFile),
    elTorito(input.bootIso, logFile),
  ]);
  const expected = volumeId(release, arch);
  if (volid !== expected) throw new Error(`${what}: boot ISO ${input.bootIso} has volume id ${volid}, expected ${expected}`);
  const bootable = isBootable(torito);

  const disc = join(workDir, 'disc');
  rmSync(disc, { recursive: true, force: true });
  mkdirSync(disc, { recursive: true });

  // The disc's .treeinfo: both variants at <repo>/, [media] 1/1, no boot.iso, checksums of the images.
  const base = parseTreeinfo(readFileSync(tiPath, 'utf8'));
  const toHash = treeinfoImagePaths(base).filter((rel) => !NOT_ON_DISC.has(rel) && !base.checksums?.[rel]);
  for (const rel of toHash) if (!existsSync(join(input.bootTree, rel))) throw new Error(`${what}: ${tiPath} names ${rel}, which is missing from the boot tree`);
  const hashed = await hashFiles(toHash.map((rel) => join(input.bootTree, rel)));
  const sums = Object.fromEntries(toHash.map((rel, i) => [rel, `sha256:${hashed[i]}`]));
  const ti = discTreeinfo(base, {
    repos: input.repos.map((r) => r.name),
    mainVariant: input.mainVariant,
    disc: true,
    arch,
    checksums: sums,
    dropBootIso: true,
    release: { name: release.fullname, short: release.shortname, version: revision(release) },
  });
  writeFileSync(join(disc, '.treeinfo'), renderTreeinfo(ti));
  writeFileSync(join(disc, '.discinfo'), renderDiscinfo({ timestamp: buildTimestamp, fullname: fullName(release), arch }));
  writeFileSync(join(disc, 'media.repo'), renderMediaRepo({ name: fullName(release), mediaid: discTimestamp(buildTimestamp) }));

  const grafts: Graft[] = [
    ...planTreeGrafts(input.bootTree, listFiles(input.bootTree), new Set(bootPaths)),
    ...DISC_METADATA.map((f): Graft => ({ op: '-update', src: join(disc, f), iso: `/${f}` })),
  ];
  // Whole directories, one line each: xorriso walks them itself, much faster than a line per file.
  for (const r of input.repos) {
    if (existsSync(join(r.path, 'Packages'))) grafts.push({ op: '-map', src: join(r.path, 'Packages'), iso: `/${r.name}/Packages` });
    else log(`${r.name} has no Packages directory`);
    grafts.push({ op: '-map', src: join(r.path, 'repodata'), iso: `/${r.name}/repodata` });
  }
  // Extra files last: they win over anything of the same name.
  for (const f of input.extraFiles ?? []) grafts.push({ op: '-update', src: f, iso: `/${basename(f)}` });

  mkdirSync(dirname(outFile), { recursive: true });
  const tmp = tempName(outFile);
  const dialog = renderDialog({ bootIso: input.bootIso, outIso: tmp, arch, volid, grafts, date: buildTimestamp });
  try {
    log(`xorriso: ${grafts.length} grafts onto ${basename(input.bootIso)} → ${basename(outFile)}`);
    // Created here so the md5 can follow xorriso's writing from the first byte (xorriso does not truncate).
    writeFileSync(tmp, '');
    const xorriso = step('xorriso', () => runXorrisoDialog(dialog, { logFile, env: reproducibleEnv(buildTimestamp), timeoutMs: 6 * 3600_000, stdoutTail: true }));
    const prediction = new ImplantPrediction();
    const followed = followFile(tmp, xorriso, (b) => prediction.update(b)).then(() => prediction.finish(true));
    followed.catch(() => {}); // a failed prediction only means the slow verification below
    await xorriso;
    // -f: the boot ISO's implanted md5 (copied by the replay) must not stop a new one from being written.
    const implant = step('implantisomd5', () => runTool(implantisomd5Argv(tmp, { supported: true, force: true }), { logFile, timeoutMs: 6 * 3600_000 }));
    // implantisomd5 only writes the application area: the listing and boot records are final already.
    const listing = step('xorriso -find', () => isoManifest(tmp, logFile));
    const bootCheck = bootable ? step('verification', () => checkBootRecord(tmp, logFile)) : Promise.resolve();
    const predicted = await followed.then(
      (implant) => ({ implant, sha256: sha256WithAppData(tmp, implant.appData) }),
      (e: Error) => void log(`${basename(outFile)}: no implant prediction (${e.message}); checkisomd5 will verify`),
    );
    predicted?.sha256.catch(() => {}); // awaited by implantResult unless the implant fails first
    const [, manifest] = await settleAll<[unknown, string[], void]>([implant, listing, bootCheck]);
    const { md5: implantMd5, sha256, volumeId: written } = await step('verification', () => implantResult(tmp, predicted, log, logFile));
    if (written !== volid) throw new Error(`${what}: the DVD has volume id ${written}, expected ${volid}`);
    const size = statSync(tmp).size;
    renameSync(tmp, outFile);
    log(`${basename(outFile)}: ${size} bytes, md5 ${implantMd5}, ${manifest.length} paths`);
    return { iso: { path: outFile, sha256, size }, volumeId: volid, implantMd5, manifest, bootable };
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
