// CHECKSUM for an arbitrary directory of files (ISOs, images) when no manifest knows their
// digests: every file hashed once, on worker threads across cores with Node's SHA-256 (several
// times faster than coreutils' sha256sum here), rendered in Rocky's BSD style.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { hashFiles, writeFileAtomic } from '@rocky/exec';
import { renderChecksum, type ChecksumEntry } from '@rocky/compose';

export async function checksumDirectory(dir: string, opts: { files?: string[]; write?: boolean } = {}): Promise<ChecksumEntry[]> {
  const names = opts.files ?? readdirSync(dir).filter((n) => !n.startsWith('CHECKSUM') && statSync(join(dir, n)).isFile());
  const sums = await hashFiles(names.map((n) => join(dir, n)));
  const entries = names.map((name, i) => ({ name, size: statSync(join(dir, name)).size, sha256: sums[i] }));
  if (opts.write !== false) writeFileAtomic(join(dir, 'CHECKSUM'), renderChecksum(entries));
  return entries;
}
