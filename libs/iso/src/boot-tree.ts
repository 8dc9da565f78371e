// buildBootTree: the iso-<arch> stage's builders. `lorax` runs the real thing (production);
// `boot-tree` (the local site's default) makes the same shape from the compose with the host's
// tools: a dnf installroot squashed into images/install.img, the kernel and initrd from the
// release's kernel package, isolinux and a standalone grub where this host has them, .treeinfo,
// .discinfo, media.repo, and a hybrid boot ISO named and labelled as lorax's would be.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { XMLParser } from 'fast-xml-parser';
import { fullName, isoNames, releaseIso, revision, volumeId, type Arch, type Builder } from '@rocky/config';
import { discTimestamp, renderDiscinfo, renderMediaRepo, renderTreeinfo, repoTreeinfo, type TreeInfo } from '@rocky/compose';
import { hashFiles, hasTool, missingHint, preflight, run, sha256, sha256File, tempName, writeFileAtomic } from '@rocky/exec';
import { compareEvr, decompress, parseRepomd, readRepoPackages } from '@rocky/rpm-repo';
import {
  efibootSizeKiB,
  grubCfg,
  grubEmbeddedCfg,
  grubMemdisk,
  hostBootLoaders,
  isolinuxCfg,
  ISOLINUX_MODULES,
  loaderInstallHint,
  type HostLoaders,
} from './bootloaders';
import { describeTree, linkOrCopy, moveDir, replaceDir, settleAll, treeBytes } from './files';
import { isoManifest, verifyIso } from './inspect';
import { collectLoraxTree, loraxArgv, wrapperArgv, wrapperMountProblem, type WrapperMounts } from './lorax';
import { appendFileToLog, grubMkimageArgv, implantisomd5Argv, mcopyArgv, mkfsFatArgv, mkisofsArgv, mksquashfsArgv, mmdArgv, mtoolsEnv, reproducibleEnv, runTool } from './tools';
import type { BootTreeInput, BootTreeResult } from './types';

/** Builds the boot tree and boot ISO of one arch with the site's builder for it (undefined: `haveBuilt` had it). */
export async function buildBootTree(input: BootTreeInput & { haveBuilt: NonNullable<BootTreeInput['haveBuilt']> }): Promise<BootTreeResult | undefined>;
export async function buildBootTree(input: Omit<BootTreeInput, 'haveBuilt'>): Promise<BootTreeResult>;
export async function buildBootTree(input: BootTreeInput): Promise<BootTreeResult | undefined> {
  const b = input.builder;
  switch (b.type) {
    case 'ssh':
    case 'kubernetes':
      throw new Error(`${input.arch}: ${b.type} builder: dispatched builders are handled by the executor`);
    case 'lorax':
      return buildWithLorax(input, b);
    case 'boot-tree':
      return buildLocalTree(input, b);
  }
}

/** Runs a step, turning any failure into an error that names the arch, the tool and the log holding its output. */
async function stepOf<T>(arch: Arch, tool: string, fn: () => Promise<T>, logFile?: string): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const msg = (e as Error).message;
    const seeLog = logFile && !msg.includes(logFile) ? `\nfull log: ${logFile}` : '';
    throw new Error(`${arch}: ${tool} failed: ${msg}${seeLog}`, { cause: e });
  }
}

const NODE_ARCH: Record<string, Arch> = { x64: 'x86_64', arm64: 'aarch64', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

function repoUrl(path: string): string {
  return pathToFileURL(path).href;
}

function checkRepos(arch: Arch, repos: BootTreeInput['repos']): void {
  if (!repos.length) throw new Error(`${arch}: no repos to build the boot tree from`);
  for (const r of repos) {
    if (!existsSync(join(r.path, 'repodata', 'repomd.xml'))) throw new Error(`${arch}: repo ${r.name} at ${r.path} has no repodata/repomd.xml`);
  }
}

async function buildWithLorax(input: BootTreeInput, b: Extract<Builder, { type: 'lorax' }>): Promise<BootTreeResult> {
  const { release, arch, workDir } = input;
  const log = input.log ?? (() => {});
  // A container sees only what is mounted: the compose (lorax's file:// sources) and the work dir (its output).
  const mounts: WrapperMounts = { readOnly: input.composeRoot ? [input.composeRoot] : input.repos.map((r) => r.path), readWrite: [workDir] };
  const unseen = wrapperMountProblem(b.wrapper, mounts);
  if (unseen) throw new Error(`${arch}: lorax builder: builders.${arch}.wrapper: ${unseen}`);
  checkRepos(arch, input.repos);
  if (!b.wrapper.length) {
    if (!hasTool('lorax')) throw new Error(`${arch}: lorax builder: lorax is not installed (${missingHint('lorax')})`);
    // lorax builds for the machine it runs on; a wrapper (podman, mock, ssh) may run it elsewhere.
    const host = NODE_ARCH[process.arch];
    if (host !== arch) throw new Error(`${arch}: lorax builds only for the host's arch (${host ?? process.arch}); configure a wrapper or a dispatched builder`);
  }
  if (releaseIso(release).lorax.removes.length) {
    // empanadas comments these out of lorax's runtime-install.tmpl inside the mock chroot; that
    // edit belongs to the wrapper's image, not to a shared host's lorax.
    log(`lorax removes (${releaseIso(release).lorax.removes.join(', ')}) must be applied by the wrapper's lorax templates`);
  }
  mkdirSync(workDir, { recursive: true });
  const loraxOut = join(workDir, 'lorax');
  rmSync(loraxOut, { recursive: true, force: true }); // lorax refuses an existing output directory
  // lorax's own log stays where the wrapper can write it (beside its output); the caller's log gets a copy.
  const loraxLog = join(workDir, `lorax-${arch}.log`);
  const argv = [...wrapperArgv(b.wrapper, mounts), ...loraxArgv(release, arch, input.repos.map((r) => repoUrl(r.path)), loraxOut, loraxLog)];
  const logFile = input.logFile ?? join(workDir, 'lorax-run.log');
  log(`running lorax into ${loraxOut}`);
  try {
    await stepOf(arch, 'lorax', () => runTool(argv, { logFile, timeoutMs: 6 * 3600_000, stdoutTail: true }), logFile);
  } finally {
    appendFileToLog(logFile, loraxLog);
  }
  return collectLoraxTree(loraxOut, release, arch, input.outDir, { mustBoot: b.mustBoot, logFile });
}

/** Whether the repo's comps (repomd `group`) defines the `core` group. */
export function hasCoreGroup(repoPath: string): boolean {
  const repomd = parseRepomd(readFileSync(join(repoPath, 'repodata', 'repomd.xml'), 'utf8'), `${repoPath}/repodata/repomd.xml`);
  const rec = repomd.records.find((r) => r.type === 'group') ?? repomd.records.find((r) => r.type === 'group_gz' || r.type === 'group_xz');
  if (!rec) return false;
  const xml = decompress(readFileSync(join(repoPath, rec.href)), rec.href).toString('utf8');
  const doc = new XMLParser({ isArray: (n) => n === 'group', parseTagValue: false }).parse(xml) as { comps?: { group?: { id?: string }[] } };
  return (doc.comps?.group ?? []).some((g) => String(g.id).trim() === 'core');
}

/**
 * `<version>-<release>.<arch>` of the newest `name` for `arch` (or noarch) in the repo's primary,
 * as `dnf repoquery --latest-limit=1` prints it, read from the repodata without starting dnf.
 */
export function latestPackage(repoPath: string, name: string, arch: Arch): string | undefined {
  const pkgs = readRepoPackages(repoPath);
  if (!pkgs) throw new Error(`${repoPath} has no repodata/repomd.xml`);
  const newest = pkgs.filter((p) => p.name === name && (p.arch === arch || p.arch === 'noarch')).sort((a, b) => compareEvr(b, a))[0];
  return newest && `${newest.version}-${newest.release}.${newest.arch}`;
}

interface DnfSetup {
  root: string;
  conf: string;
  arch: Arch;
  major: number;
}

/**
 * dnf against the compose repos only, for `arch`, into the installroot. The own config keeps
 * Debian's /etc/dnf/dnf.conf (skip_if_unavailable=True) out, and sets the cache (DNF_CACHE) there:
 * dnf prefixes a config file's `cachedir` with the installroot, not a `--setopt` one, which put
 * every build's metadata into the host's /var/cache (a directory per repo path, never removed,
 * and the `<repo id>.solv` files shared by builds running at once), and a repo rebuilt under the
 * same path was read from the stale copy there ("has incorrect checksum").
 */
function dnfArgv(d: DnfSetup, repos: BootTreeInput['repos']): string[] {
  return [
    'dnf',
    '-y',
    `--config=${d.conf}`,
    `--installroot=${d.root}`,
    `--forcearch=${d.arch}`,
    `--releasever=${d.major}`,
    '--setopt=reposdir=/dev/null',
    '--setopt=skip_if_unavailable=False',
    '--setopt=install_weak_deps=False',
    '--nogpgcheck',
    '--setopt=tsflags=noscripts',
    `--setopt=module_platform_id=platform:el${d.major}`,
    ...repos.map((r) => `--repofrompath=${r.name},${repoUrl(r.path)}`),
    ...repos.map((r) => `--repo=${r.name}`),
  ];
}
/** The installroot's dnf cache (inside the root: removed before squashing). */
const DNF_CACHE = '/var/cache/releng-dnf';

/**
 * What dnf and rpm leave in an installroot that records when and where it was made: dnf's
 * history and logs, and the rpm database (install times). lorax's runtime-cleanup removes them
 * from its install.img too. The database is where this host's rpm keeps it: /var/lib/rpm (EL8,
 * EL9), /usr/lib/sysimage/rpm (EL10, Fedora), ~/.rpmdb under the root (Debian's rpm).
 */
const INSTALL_RECORDS = ['var/lib/dnf', 'var/cache/dnf', 'var/lib/rpm', 'usr/lib/sysimage/rpm', 'root/.rpmdb'];

function removeInstallRecords(root: string): void {
  for (const p of INSTALL_RECORDS) rmSync(join(root, p), { recursive: true, force: true });
  const logs = join(root, 'var/log');
  if (existsSync(logs)) for (const f of readdirSync(logs)) if (/^(dnf|hawkey)\b/.test(f)) rmSync(join(logs, f), { force: true });
}

/** /boot/vmlinuz-<kver> (or /lib/modules/<kver>/vmlinuz, where EL kernels keep it) and its initramfs. */
function findKernel(root: string, arch: Arch, pkg: string, kver: string): { vmlinuz: string; initrd: string } {
  const boot = join(root, 'boot');
  const bootFiles = existsSync(boot) ? readdirSync(boot) : [];
  const found = new Map<string, string>();
  for (const f of bootFiles) {
    const m = /^vmlinuz-(.+)$/.exec(f);
    if (m && !m[1].includes('rescue')) found.set(m[1], join(boot, f));
  }
  if (!found.size) {
    for (const dir of ['lib/modules', 'usr/lib/modules']) {
      const mods = join(root, dir);
      if (!existsSync(mods)) continue;
      for (const v of readdirSync(mods)) if (existsSync(join(mods, v, 'vmlinuz'))) found.set(v, join(mods, v, 'vmlinuz'));
    }
  }
  const version = found.has(kver) ? kver : found.size === 1 ? [...found.keys()][0] : undefined;
  if (!version) {
    throw new Error(
      `${arch}: ${pkg} installed no kernel image (/boot/vmlinuz-*)${found.size ? ` matching ${kver} (found ${[...found.keys()].join(', ')})` : ''}`,
    );
  }
  const initrd = join(boot, `initramfs-${version}.img`);
  if (!existsSync(initrd)) {
    // Real EL kernels make it with dracut in %posttrans, which an installroot without scripts never runs.
    throw new Error(`${arch}: ${pkg} ${version} carries no /boot/initramfs-${version}.img; a kernel whose initramfs is made by dracut needs the lorax builder`);
  }
  return { vmlinuz: found.get(version)!, initrd };
}

/**
 * install.img compression. lorax uses xz, but xz runs at ~9 MB/s here, so a real runtime root
 * (1-2 GB) would spend minutes in it. Small roots (the fixture's) get xz like lorax; large ones
 * zstd (~3x faster). This install.img is a stand-in without anaconda, so no kernel has to read it;
 * production images come from lorax.
 */
export function squashfsCompressor(rootBytes: number): 'xz' | 'zstd' {
  return rootBytes <= 64 * 1024 * 1024 ? 'xz' : 'zstd';
}

/**
 * What the boot tree and ISO are made of, given the installroot: every installed package by the
 * sha256 the repos' primary gives it (the root's files are theirs: no scriptlets run, the install
 * records go), the host's boot loader files (by size and mtime), the release's names and the
 * build timestamp. The builds are reproducible (repro.test.ts): equal digests, equal bytes.
 */
async function bootTreeDigest(input: BootTreeInput, root: string, loaders: HostLoaders, logFile: string): Promise<string> {
  const { release, arch, buildTimestamp } = input;
  const q = await run(['rpm', `--root=${root}`, '-qa', '--qf', '%{NAME} %{EPOCHNUM} %{VERSION} %{RELEASE} %{ARCH}\\n'], { logFile });
  const byNevra = new Map<string, Set<string>>();
  for (const r of input.repos) {
    for (const p of readRepoPackages(r.path) ?? []) {
      const k = `${p.name} ${p.epoch || '0'} ${p.version} ${p.release} ${p.arch}`;
      byNevra.set(k, (byNevra.get(k) ?? new Set()).add(p.sha256));
    }
  }
  const packages = q.stdout.trim().split('\n').filter(Boolean).sort().map((k) => {
    const sums = byNevra.get(k);
    if (!sums) throw new Error(`${arch}: ${k} is installed in the runtime root but is in none of the repos`);
    return [k, [...sums].sort()];
  });
  const stamp = (f: string) => {
    const st = statSync(f);
    return `${f} ${st.size} ${st.mtimeMs}`;
  };
  const loaderFiles = [
    ...(loaders.bios ? [loaders.bios.isolinuxBin, loaders.bios.isohdpfx, ...ISOLINUX_MODULES.map((m) => join(loaders.bios!.modulesDir, m))] : []),
    ...(loaders.uefi ? readdirSync(loaders.uefi.modulesDir).sort().map((m) => join(loaders.uefi!.modulesDir, m)) : []),
  ];
  const names = { volid: volumeId(release, arch), product: fullName(release), fullname: release.fullname, short: release.shortname, revision: revision(release), major: release.major, lorax: releaseIso(release).lorax };
  return sha256(JSON.stringify({ packages, loaders, loaderFiles: loaderFiles.map(stamp), names, buildTimestamp }));
}

async function buildLocalTree(input: BootTreeInput, b: Extract<Builder, { type: 'boot-tree' }>): Promise<BootTreeResult | undefined> {
  const { release, arch, workDir, outDir, buildTimestamp } = input;
  const log = input.log ?? (() => {});
  const loaders: HostLoaders = hostBootLoaders(arch);
  const bootable = !!(loaders.bios || loaders.uefi);
  if (b.mustBoot && !bootable) {
    throw new Error(`${arch}: site requires a bootable ISO but this host has no boot loader for ${arch} (${loaderInstallHint(arch)})`);
  }
  try {
    preflight(['dnf', 'rpm', 'mksquashfs', 'xorriso', 'implantisomd5', 'checkisomd5', 'isoinfo']);
  } catch (e) {
    throw new Error(`${arch}: boot-tree builder: ${(e as Error).message}`);
  }
  checkRepos(arch, input.repos);
  const volid = volumeId(release, arch);
  const product = fullName(release);
  const kernelPkg = releaseIso(release).lorax.kernelPackage;
  const env = reproducibleEnv(buildTimestamp);

  mkdirSync(workDir, { recursive: true });
  const logFile = input.logFile ?? join(workDir, `boot-tree-${arch}.log`);
  const step = <T>(tool: string, fn: () => Promise<T>) => stepOf(arch, tool, fn, logFile);
  const root = join(workDir, 'installroot');
  const build = join(workDir, 'tree');
  for (const d of [root, build]) rmSync(d, { recursive: true, force: true });
  const conf = join(workDir, 'dnf.conf');
  // No plugins: the host's (dnf-plugins-core `local` copies every installed package into
  // /var/lib/dnf/plugins/local and runs createrepo_c there; `versionlock` would filter the
  // compose's packages) must neither change the host nor what the boot tree is made of.
  writeFileSync(conf, `[main]\ncachedir=${DNF_CACHE}\ngpgcheck=0\nskip_if_unavailable=False\nbest=True\ninstall_weak_deps=False\nkeepcache=False\nplugins=False\n`);
  const dnf: DnfSetup = { root, conf, arch, major: release.major };

  // 1. The kernel package, looked up in the first repo (BaseOS) for this arch.
  const first = input.repos[0];
  let kver: string | undefined;
  try {
    kver = latestPackage(first.path, kernelPkg, arch);
  } catch (e) {
    throw new Error(`${arch}: cannot read the packages of ${first.name}: ${(e as Error).message}`, { cause: e });
  }
  if (!kver) throw new Error(`${arch}: no ${kernelPkg} package in ${first.name} for ${arch}`);

  // 2. The installroot: the kernel plus comps `core` when the first repo has it (the smallest
  //    set Rocky calls a system); without comps, the kernel alone.
  let core: boolean;
  try {
    core = hasCoreGroup(first.path);
  } catch (e) {
    throw new Error(`${arch}: cannot read the comps of ${first.name}: ${(e as Error).message}`, { cause: e });
  }
  const pkgs = [kernelPkg, ...(core ? ['@core'] : [])];
  log(`installing ${pkgs.join(' ')} (${arch}) into ${root}`);
  await step('dnf install', () => run([...dnfArgv(dnf, input.repos), 'install', ...pkgs], { logFile, timeoutMs: 3600_000, stdoutTail: true }));
  const kernel = findKernel(root, arch, kernelPkg, kver);
  if (input.haveBuilt && (await input.haveBuilt(await step('rpm -qa', () => bootTreeDigest(input, root, loaders, logFile))))) {
    log(`the runtime root holds the packages of a boot tree built before: not built again`);
    return undefined;
  }

  mkdirSync(join(build, 'images/pxeboot'), { recursive: true });
  linkOrCopy(kernel.vmlinuz, join(build, 'images/pxeboot/vmlinuz'));
  linkOrCopy(kernel.initrd, join(build, 'images/pxeboot/initrd.img'));

  // 3. install.img (lorax --squashfs-only: the runtime root itself as squashfs).
  rmSync(join(root, DNF_CACHE), { recursive: true, force: true });
  removeInstallRecords(root);
  const comp = squashfsCompressor(treeBytes(root));
  log(`squashing the installroot (${comp})`);
  await step('mksquashfs', () => runTool(mksquashfsArgv(root, join(build, 'images/install.img'), comp), { logFile, env, timeoutMs: 3600_000, stdoutTail: true }));

  // 4. Boot loaders.
  const bootloaders: string[] = [];
  if (loaders.bios) {
    const iso = join(build, 'isolinux');
    mkdirSync(iso, { recursive: true });
    linkOrCopy(loaders.bios.isolinuxBin, join(iso, 'isolinux.bin'));
    for (const m of ISOLINUX_MODULES) linkOrCopy(join(loaders.bios.modulesDir, m), join(iso, m));
    // lorax keeps the kernel beside isolinux too; hardlinks, which xorriso stores once.
    linkOrCopy(join(build, 'images/pxeboot/vmlinuz'), join(iso, 'vmlinuz'));
    linkOrCopy(join(build, 'images/pxeboot/initrd.img'), join(iso, 'initrd.img'));
    writeFileSync(join(iso, 'isolinux.cfg'), isolinuxCfg({ product, volid, kernel: 'vmlinuz', initrd: 'initrd.img' }));
    bootloaders.push('bios-isolinux');
  }
  if (loaders.uefi) {
    const efiDir = join(build, 'EFI/BOOT');
    mkdirSync(efiDir, { recursive: true });
    const cfg = join(efiDir, 'grub.cfg');
    writeFileSync(cfg, grubCfg({ product, volid, kernel: '/images/pxeboot/vmlinuz', initrd: '/images/pxeboot/initrd.img' }));
    const loader = join(efiDir, loaders.uefi.bootFile);
    const memdisk = join(workDir, 'grub-memdisk.tar');
    writeFileSync(memdisk, grubMemdisk(loaders.uefi, grubEmbeddedCfg(volid), buildTimestamp));
    const { mkimage, target, modulesDir } = loaders.uefi;
    await step(mkimage, () => runTool(grubMkimageArgv({ mkimage, target, modulesDir, memdisk, out: loader }), { logFile, timeoutMs: 600_000 }));
    const img = join(build, 'images/efiboot.img');
    // A volume serial from the build timestamp instead of mkfs.fat's time-based one.
    const serial = (Math.trunc(buildTimestamp) >>> 0).toString(16).padStart(8, '0');
    const kib = efibootSizeKiB([loader, cfg]);
    await step('mkfs.fat', () => runTool(mkfsFatArgv(img, { label: 'ANACONDA', serial, kib }), { logFile }));
    await step('mmd', () => runTool(mmdArgv(img, ['/EFI', '/EFI/BOOT']), { logFile, env: mtoolsEnv(buildTimestamp) }));
    for (const f of [loader, cfg]) utimesSync(f, buildTimestamp, buildTimestamp); // written just now, by us
    await step('mcopy', () => runTool(mcopyArgv(img, [loader, cfg], '/EFI/BOOT/'), { logFile, env: mtoolsEnv(buildTimestamp) }));
    bootloaders.push('uefi-grub');
  }

  // 5. Metadata. The ISO gets a .treeinfo without boot.iso (it cannot list itself); the tree's
  //    final one adds it.
  const images: Record<string, string> = { kernel: 'images/pxeboot/vmlinuz', initrd: 'images/pxeboot/initrd.img' };
  if (loaders.uefi) images['efiboot.img'] = 'images/efiboot.img';
  const hashed = [...Object.values(images), 'images/install.img'];
  const sums = new Map((await hashFiles(hashed.map((rel) => join(build, rel)))).map((sum, i) => [hashed[i], sum]));
  const treeinfo = (extra: Record<string, string>): string => {
    const t: TreeInfo = repoTreeinfo({
      fullname: release.fullname,
      short: release.shortname,
      version: revision(release),
      arch,
      variant: releaseIso(release).lorax.variant,
      timestamp: buildTimestamp,
    });
    t.images = { [arch]: { ...images, ...extra } };
    t.stage2 = { mainimage: 'images/install.img' };
    t.checksums = Object.fromEntries([...sums].map(([p, h]) => [p, `sha256:${h}`]));
    return renderTreeinfo(t);
  };
  writeFileSync(join(build, '.discinfo'), renderDiscinfo({ timestamp: buildTimestamp, fullname: product, arch }));
  writeFileSync(join(build, '.treeinfo'), treeinfo({}));

  // 6. Into outDir (the ISO is hardlinked into the tree, so both must be on one file system).
  mkdirSync(outDir, { recursive: true });
  const tree = join(outDir, 'lorax');
  const staged = tempName(tree);
  moveDir(build, staged);
  const isoPath = join(outDir, isoNames(release, arch, 'boot').file);
  const isoTmp = tempName(isoPath);
  let implantMd5: string | undefined;
  try {
    log(`writing ${isoPath} (${bootloaders.length ? bootloaders.join(', ') : 'data only: no boot loader for this arch on this host'})`);
    const argv = mkisofsArgv({ out: isoTmp, tree: staged, volid, arch, date: buildTimestamp, bios: loaders.bios, uefi: !!loaders.uefi });
    await step('xorriso', () => runTool(argv, { logFile, env, timeoutMs: 3600_000, stdoutTail: true }));
    // lorax implants the md5 into boot.iso (rd.live.check verifies it at boot).
    await step('implantisomd5', () => runTool(implantisomd5Argv(isoTmp), { logFile, timeoutMs: 3600_000 }));
    const [verified, isoSha, listing] = await settleAll<[{ implantMd5?: string }, string, string[]]>([
      step('ISO verification', () => verifyIso(isoTmp, { bootable, requireMd5: true, logFile })),
      sha256File(isoTmp),
      step('xorriso -find', () => isoManifest(isoTmp, logFile)),
    ]);

    linkOrCopy(isoTmp, join(staged, 'images/boot.iso'));
    sums.set('images/boot.iso', isoSha);
    writeFileAtomic(join(staged, 'images/boot.iso.manifest'), listing.join('\n') + '\n');
    writeFileAtomic(join(staged, '.treeinfo'), treeinfo({ 'boot.iso': 'images/boot.iso' }));
    writeFileAtomic(join(staged, 'media.repo'), renderMediaRepo({ name: product, mediaid: discTimestamp(buildTimestamp) }));
    replaceDir(staged, tree);
    renameSync(isoTmp, isoPath);
    implantMd5 = verified.implantMd5;
  } catch (e) {
    rmSync(isoTmp, { force: true });
    rmSync(staged, { recursive: true, force: true });
    throw e;
  }

  const treeFiles = await describeTree(tree, sums);
  const isoEntry = treeFiles.find((f) => f.path === 'images/boot.iso')!;
  log(`${isoNames(release, arch, 'boot').file}: ${isoEntry.size} bytes, volume id ${volid}, ${treeFiles.length} tree files`);
  return { tree, iso: { path: isoPath, sha256: isoEntry.sha256, size: isoEntry.size }, volumeId: volid, implantMd5, bootable, bootloaders, treeFiles };
}
