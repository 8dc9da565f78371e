// CHECKSUM generation over large files: ours (Node SHA-256 on worker threads, a file each) against
// `sha256sum --tag` on the same files, and `openssl dgst -sha256` for reference.
// Standalone: node -r @swc-node/register bench/checksum.ts [--files 4] [--mib 512] [--reps 3]
import { mkdirSync, existsSync, statSync, openSync, writeSync, closeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { checksumDirectory } from '../libs/stages/src/checksum-dir';
import { timeIt, sh, flag, type BenchRow } from './lib';

export async function runChecksumBench(opts: { files?: number; mib?: number; reps?: number } = {}): Promise<BenchRow[]> {
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
  const ours = await timeIt(reps, () => checksumDirectory(dir, { files: names, write: false }));
  const theirs = await timeIt(reps, () => sh(['sha256sum', '--tag', ...names], { cwd: dir }));
  const openssl = await timeIt(reps, () => sh(['openssl', 'dgst', '-sha256', ...names], { cwd: dir }));
  const gb = (files * mib) / 1024;
  return [
    {
      name: `CHECKSUM of ${files} x ${mib} MiB`,
      ours,
      theirs,
      theirsName: 'sha256sum --tag',
      ratio: theirs / ours,
      goal: '>= 3x faster',
      met: theirs / ours >= 3,
      notes: `ours ${(gb / ours).toFixed(2)} GiB/s; openssl dgst -sha256 ${openssl.toFixed(2)} s (ours/openssl ${(ours / openssl).toFixed(2)})`,
    },
  ];
}

if (require.main === module) {
  runChecksumBench({ files: flag('files', 4), mib: flag('mib', 512), reps: flag('reps', 3) }).then((rows) => console.table(rows));
}
