// CHECKSUM generation over large files: ours (Node SHA-256 on worker threads, a file each, a thread per
// core) against `sha256sum --tag` on the same files, and `openssl dgst -sha256` (the primitive) both
// with the same parallelism as ours (xargs -P <cores> -n 1, as a user would spread it) and as one
// process (for reference), measured interleaved.
// Standalone: node -r @swc-node/register bench/checksum.ts [--files 4] [--mib 512] [--reps 3]
import { mkdirSync, existsSync, statSync, openSync, writeSync, writeFileSync, closeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import { randomBytes } from 'node:crypto';
import { checksumDirectory } from '../libs/stages/src/checksum-dir';
import { timeIt, sh, flag, measured, median, standalone, type Emit } from './lib';

export async function runChecksumBench(opts: { files?: number; mib?: number; reps?: number }, emit: Emit): Promise<void> {
  const files = opts.files ?? 4;
  const mib = opts.mib ?? 512;
  const reps = opts.reps ?? 3;
  const dir = resolve(__dirname, '../.releng/bench/checksum');
  mkdirSync(dir, { recursive: true });
  const names = Array.from({ length: files }, (_, i) => `Rocky-9.7-bench${i}-dvd.iso`);
  for (const n of names) {
    const f = join(dir, n);
    if (existsSync(f) && statSync(f).size === mib << 20) continue;
    const fd = openSync(f, 'w');
    for (let i = 0; i < mib; i++) writeSync(fd, randomBytes(1 << 20));
    closeSync(fd);
  }
  const listFile = join(dir, 'names.txt');
  writeFileSync(listFile, names.map((n) => `${n}\n`).join(''));
  const cat = () => sh(['cat', ...names.map((n) => join(dir, n))], {}); // warm the page cache
  cat();
  // Interleaved, so that a change in the machine's load hits all three alike.
  const cores = availableParallelism(); // hashFiles' default: ours hashes on this many threads
  const times = { ours: [] as number[], sha256sum: [] as number[], openssl: [] as number[], opensslP: [] as number[] };
  for (let i = 0; i < reps; i++) {
    times.ours.push(await timeIt(1, () => checksumDirectory(dir, { files: names, write: false })));
    times.sha256sum.push(await timeIt(1, () => sh(['sha256sum', '--tag', ...names], { cwd: dir })));
    times.openssl.push(await timeIt(1, () => sh(['openssl', 'dgst', '-sha256', ...names], { cwd: dir })));
    times.opensslP.push(await timeIt(1, () => sh(['xargs', '-a', listFile, '-d', '\\n', '-P', String(cores), '-n', '1', 'openssl', 'dgst', '-sha256'], { cwd: dir })));
  }
  const [ours, theirs, openssl, opensslP] = [median(times.ours), median(times.sha256sum), median(times.openssl), median(times.opensslP)];
  const runs = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(' ');
  const gb = (files * mib) / 1024;
  const name = `CHECKSUM of ${files} x ${mib} MiB`;
  emit(measured({ name, ours, theirs, theirsName: 'sha256sum --tag', goal: { faster: 3 }, notes: `ours ${(gb / ours).toFixed(2)} GiB/s` }));
  emit(measured({ name, ours, theirs: opensslP, theirsName: `openssl dgst -sha256, ${cores} at once`, goal: { within: 1.1 }, notes: `same parallelism: ours ${cores} worker threads, a file each; openssl through xargs -P ${cores} -n 1, ${(gb / opensslP).toFixed(2)} GiB/s; ours ${runs(times.ours)}; openssl ${runs(times.opensslP)}` }));
  emit(measured({ name, ours, theirs: openssl, theirsName: 'openssl dgst -sha256, one process', goal: 'report', notes: `openssl as one process (one core), ${(gb / openssl).toFixed(2)} GiB/s; ${runs(times.openssl)}` }));
}

if (require.main === module) {
  standalone((emit) => runChecksumBench({ files: flag('files', 4), mib: flag('mib', 512), reps: flag('reps', 3) }, emit));
}
