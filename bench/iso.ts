// DVD benchmark (issue 4): our buildExtraIso (xorriso replay + implantisomd5, the implant verified,
// El Torito check, listing, sha256) against the floor: a bare `xorriso` run with the same boot
// replay and grafts plus `implantisomd5`, on the same inputs (a boot ISO, BaseOS and AppStream
// padded to about 1 GiB); and against the same done by hand with checkisomd5 and sha256sum.
// Standalone: node -r @swc-node/register bench/iso.ts [--mib 1024] [--reps 3]
import { existsSync, mkdirSync, openSync, writeSync, closeSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { run } from '@rocky/exec';
import { buildBootTree, buildExtraIso, checkisomd5Argv, dialogScript, dialogWord, implantisomd5Argv, xorrisoDialogArgv } from '@rocky/iso';
import { buildTestRepos, testRelease } from '../libs/iso/src/testing/repos';
import { flag, measured, median, standalone, type Emit } from './lib';

export async function runIsoBench(opts: { mib?: number; reps?: number }, emit: Emit): Promise<void> {
  const mib = opts.mib ?? 1024;
  const reps = opts.reps ?? 3;
  const dir = join(process.env.RELENG_BENCH_DIR ?? tmpdir(), `rocky-bench-iso-${mib}`);
  const rel = testRelease();
  if (!existsSync(join(dir, 'ready'))) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const repos = await buildTestRepos(join(dir, 'repos'));
    await buildBootTree({
      release: rel,
      arch: 'x86_64',
      repos: [{ name: 'BaseOS', path: repos.baseos }, { name: 'AppStream', path: repos.appstream }],
      builder: { type: 'boot-tree', mustBoot: false },
      outDir: join(dir, 'boot'),
      workDir: join(dir, 'boot-work'),
      buildTimestamp: 1763650000,
    });
    // Then pad AppStream (after the boot tree: dnf must see a consistent repo) to DVD-like volume with package-sized files.
    const pad = join(repos.appstream, 'Packages/p');
    mkdirSync(pad, { recursive: true });
    for (let i = 0; i < mib / 32; i++) {
      const fd = openSync(join(pad, `padding-${i}-1.0-1.el9.noarch.rpm`), 'w');
      for (let k = 0; k < 32; k++) writeSync(fd, randomBytes(1 << 20));
      closeSync(fd);
    }
    writeFileSync(join(dir, 'ready'), JSON.stringify([{ name: 'BaseOS', path: repos.baseos }, { name: 'AppStream', path: repos.appstream }]));
  }
  const repos = JSON.parse(readFileSync(join(dir, 'ready'), 'utf8')) as { name: string; path: string }[];
  const bootIso = join(dir, 'boot', 'Rocky-9.7-x86_64-boot.iso');
  const out = join(dir, 'out');
  const clean = () => rmSync(out, { recursive: true, force: true });
  const ours = () =>
    buildExtraIso({ release: rel, arch: 'x86_64', image: 'dvd', bootIso, bootTree: join(dir, 'boot/lorax'), repos, mainVariant: 'AppStream', outFile: join(out, 'dvd.iso'), workDir: join(out, 'work'), buildTimestamp: 1763650000 });
  const floorIso = join(out, 'floor.iso');
  // The bare tools, through the same argv builders as ours, with the boot replay and grafts only.
  const floor = async () => {
    mkdirSync(out, { recursive: true });
    const dialog = dialogScript([
      ['-indev', dialogWord(bootIso)],
      ['-outdev', dialogWord(floorIso)],
      ['-boot_image', 'any', 'replay'],
      ['-joliet', 'on'],
      ['-volid', 'Rocky-9-7-x86_64-dvd'],
      ...repos.map((r) => ['-map', dialogWord(r.path), dialogWord(`/${r.name}`)]),
      ['-end'],
    ]);
    await run(xorrisoDialogArgv(), { input: dialog });
    await run(implantisomd5Argv(floorIso, { supported: true }));
  };
  // What a release engineer runs to get the same verified, checksummed DVD by hand.
  const byHand = async () => {
    await floor();
    await run(checkisomd5Argv(floorIso));
    await run(['sha256sum', floorIso]);
  };
  // One untimed build first: it reads the 1 GiB of inputs from disk, which every timed run after
  // it then finds in the page cache (it was always ours that paid for it, as the first run).
  clean();
  await ours();
  // Interleaved, so that a change in the machine's load hits all three alike.
  const times: Record<'ours' | 'floor' | 'byHand', number[]> = { ours: [], floor: [], byHand: [] };
  for (let i = 0; i < reps; i++) {
    for (const [k, fn] of [['ours', ours], ['floor', floor], ['byHand', byHand]] as const) {
      clean();
      const t0 = process.hrtime.bigint();
      await fn();
      times[k].push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
  }
  clean();
  const [o, f, h] = [median(times.ours), median(times.floor), median(times.byHand)];
  emit(measured({ name: `DVD build (${mib} MiB of packages)`, ours: o, theirs: f, theirsName: 'xorriso + implantisomd5', goal: { within: 1.2 }, notes: `ours also verifies the implant, checks the boot records, lists the disc and takes its sha256; runs alternated, ours ${times.ours.map((x) => x.toFixed(2)).join(' ')}, floor ${times.floor.map((x) => x.toFixed(2)).join(' ')}` }));
  emit(measured({ name: `DVD build, verified and checksummed (${mib} MiB)`, ours: o, theirs: h, theirsName: 'xorriso + implantisomd5 + checkisomd5 + sha256sum', goal: 'report' }));
}

if (require.main === module) {
  standalone((emit) => runIsoBench({ mib: flag('mib', 1024), reps: flag('reps', 3) }, emit));
}
