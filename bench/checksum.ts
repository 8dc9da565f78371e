// CHECKSUM generation over large files: ours (Node SHA-256 on worker threads, a file each) against
// `sha256sum --tag` on the same files, and `openssl dgst -sha256` (the primitive, one process), measured interleaved.
// Standalone: node -r @swc-node/register bench/checksum.ts [--files 4] [--mib 512] [--reps 3]
import { mkdirSync, existsSync, statSync, openSync, writeSync, closeSync } from 'node:fs';
import { join, resolve } from 'node:path';
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
  const cat = () => sh(['cat', ...names.map((n) => join(dir, n))], {}); // warm the page cache
  cat();
  // Interleaved, so that a change in the machine's load hits all three alike.
  const times = { ours: [] as number[], sha256sum: [] as number[], openssl: [] as number[] };
  for (let i = 0; i < reps; i++) {
    times.ours.push(await timeIt(1, () => checksumDirectory(dir, { files: names, write: false })));
    times.sha256sum.push(await timeIt(1, () => sh(['sha256sum', '--tag', ...names], { cwd: dir })));
    times.openssl.push(await timeIt(1, () => sh(['openssl', 'dgst', '-sha256', ...names], { cwd: dir })));
  }
  const [ours, theirs, openssl] = [median(times.ours), median(times.sha256sum), median(times.openssl)];
  const gb = (files * mib) / 1024;
  const name = `CHECKSUM of ${files} x ${mib} MiB`;
  emit(measured({ name, ours, theirs, theirsName: 'sha256sum --tag', goal: { faster: 3 }, notes: `ours ${(gb / ours).toFixed(2)} GiB/s` }));
  emit(measured({ name, ours, theirs: openssl, theirsName: 'openssl dgst -sha256', goal: { within: 1.1 }, notes: `openssl ${(gb / openssl).toFixed(2)} GiB/s (one process, one core); ours hashes a file per worker thread, a thread per core` }));
}

if (require.main === module) {
  standalone((emit) => runChecksumBench({ files: flag('files', 4), mib: flag('mib', 512), reps: flag('reps', 3) }, emit));
}
