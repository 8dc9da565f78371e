// Reproducible ISOs: the same inputs give the same bytes, whatever the work directory, the time of
// the build, and the inputs' mtimes, owners and modes. Built twice each: the x86_64 boot tree and
// boot ISO (squashfs, grub memdisk, FAT image, hybrid GPT), and the DVD.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, chownSync, cpSync, lstatSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBootTree, buildExtraIso, type BootTreeInput, type BootTreeResult, type ExtraIsoInput } from './index';
import { buildTestRepos, testRelease, type TestRepos } from './testing/repos';

const TS = 1763650000;
const rel = testRelease();
let tmp: string;
let repos: TestRepos;
let first: BootTreeResult;
let firstStarted: number;

/** Sets the times (and, with `owner`, the owner, and group write access) of everything under `dir`. */
function restamp(dir: string, seconds: number, owner?: number): void {
  const entries = readdirSync(dir, { withFileTypes: true, recursive: true }).map((e) => join(e.parentPath, e.name));
  for (const p of [...entries, dir]) {
    if (lstatSync(p).isSymbolicLink()) continue;
    if (owner !== undefined) {
      chownSync(p, owner, owner);
      chmodSync(p, lstatSync(p).mode | 0o020);
    }
    utimesSync(p, seconds, seconds);
  }
}

/**
 * Resolves once the clock has passed `ms`: a rebuild must run at another time than the first
 * build, by more than FAT's 2-second date steps (the builds take longer anyway; this makes sure).
 */
async function clockPast(ms: number): Promise<void> {
  while (Date.now() <= ms) await new Promise((r) => setTimeout(r, ms - Date.now() + 1));
}

const bootInput = (name: string): BootTreeInput => ({
  release: rel,
  arch: 'x86_64',
  repos: [
    { name: 'BaseOS', path: repos.baseos },
    { name: 'AppStream', path: repos.appstream },
  ],
  builder: { type: 'boot-tree', mustBoot: true },
  outDir: join(tmp, name, 'out'),
  workDir: join(tmp, name, 'work'),
  buildTimestamp: TS,
});

const dvdInput = (name: string, boot: BootTreeResult, repoDirs: { baseos: string; appstream: string }, extra: string): ExtraIsoInput => ({
  release: rel,
  arch: 'x86_64',
  image: 'dvd',
  bootIso: boot.iso.path,
  bootTree: boot.tree,
  repos: [
    { name: 'BaseOS', path: repoDirs.baseos },
    { name: 'AppStream', path: repoDirs.appstream },
  ],
  mainVariant: 'AppStream',
  extraFiles: [extra],
  outFile: join(tmp, name, 'isos', 'Rocky-9.7-x86_64-dvd.iso'),
  workDir: join(tmp, name, 'work'),
  buildTimestamp: TS,
});

/** Paths whose sha256 differs between two builds' tree listings. */
const differing = (a: BootTreeResult, b: BootTreeResult) => {
  const other = new Map(b.treeFiles.map((f) => [f.path, f.sha256]));
  return a.treeFiles.filter((f) => other.get(f.path) !== f.sha256).map((f) => f.path);
};

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'iso-repro-'));
  repos = await buildTestRepos(join(tmp, 'repos'));
  firstStarted = Date.now();
  first = await buildBootTree(bootInput('first'));
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('reproducible builds', () => {
  it('the boot tree and boot ISO: the same bytes from another work dir, at another time, with other input mtimes', async () => {
    restamp(repos.baseos, TS - 86_400);
    restamp(repos.appstream, TS + 86_400);
    await clockPast(firstStarted + 2500);
    const again = await buildBootTree(bootInput('again'));
    expect(first.bootloaders).toEqual(['bios-isolinux', 'uefi-grub']); // every part that carries dates or ids is there
    expect(again.treeFiles.map((f) => f.path)).toEqual(first.treeFiles.map((f) => f.path));
    expect(differing(first, again), 'tree files that differ').toEqual([]);
    expect(again.iso.sha256).toBe(first.iso.sha256);
  });

  it('the DVD: the same bytes from another work dir, at another time, from inputs with other mtimes, owner and modes', async () => {
    const extra = join(tmp, 'RPM-GPG-KEY-Rocky-9');
    writeFileSync(extra, 'not a real key\n');
    const started = Date.now();
    const dvd = await buildExtraIso(dvdInput('dvd-first', first, repos, extra));

    // Copies of every input, owned by another user, group-writable and dated otherwise.
    const inputs = join(tmp, 'dvd-inputs');
    cpSync(join(tmp, 'first', 'out'), join(inputs, 'boot'), { recursive: true });
    cpSync(repos.baseos, join(inputs, 'BaseOS'), { recursive: true });
    cpSync(repos.appstream, join(inputs, 'AppStream'), { recursive: true });
    cpSync(extra, join(inputs, 'extra', 'RPM-GPG-KEY-Rocky-9'));
    restamp(inputs, TS + 7 * 86_400, 4321);
    const boot: BootTreeResult = { ...first, tree: join(inputs, 'boot', 'lorax'), iso: { ...first.iso, path: join(inputs, 'boot', 'Rocky-9.7-x86_64-boot.iso') } };
    await clockPast(started + 2500);
    const again = await buildExtraIso(
      dvdInput('dvd-again', boot, { baseos: join(inputs, 'BaseOS'), appstream: join(inputs, 'AppStream') }, join(inputs, 'extra', 'RPM-GPG-KEY-Rocky-9')),
    );
    expect(again.manifest).toEqual(dvd.manifest);
    expect(again.iso.sha256).toBe(dvd.iso.sha256);
    expect(again.implantMd5).toBe(dvd.implantMd5);
  });
});
