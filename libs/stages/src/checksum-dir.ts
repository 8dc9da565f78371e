// CHECKSUM for an arbitrary directory of files (ISOs, images) when no manifest knows their
// digests: every file hashed once, in parallel across cores with Node's SHA-256 (several times
// faster than coreutils' sha256sum here), rendered in Rocky's BSD style.
import { availableParallelism } from 'node:os';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { mapLimit, sha256File, writeFileAtomic } from '@rocky/exec';
import { renderChecksum, type ChecksumEntry } from '@rocky/compose';

export async function checksumDirectory(dir: string, opts: { files?: string[]; write?: boolean } = {}): Promise<ChecksumEntry[]> {
  const names = opts.files ?? readdirSync(dir).filter((n) => !n.startsWith('CHECKSUM') && statSync(join(dir, n)).isFile());
  const entries = await mapLimit(names, availableParallelism(), async (name) => ({ name, size: statSync(join(dir, name)).size, sha256: await sha256File(join(dir, name)) }));
  if (opts.write !== false) writeFileAtomic(join(dir, 'CHECKSUM'), renderChecksum(entries));
  return entries;
}
