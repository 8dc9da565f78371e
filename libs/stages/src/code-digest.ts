// A digest of the code that builds an artifact, so a change to how ISOs are made rebuilds them
// while a change elsewhere (a comment in a publishing stage) does not: part of the store keys
// under which built ISOs are found again.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export function codeDigest(root: string, dirs: string[]): string {
  const h = createHash('sha256');
  for (const dir of dirs) {
    const abs = join(root, dir);
    if (!existsSync(abs)) continue;
    for (const f of readdirSync(abs).filter((n) => n.endsWith('.ts') && !n.endsWith('.test.ts')).sort()) h.update(`${dir}/${f}\0`).update(readFileSync(join(abs, f)));
  }
  return h.digest('hex');
}

/** The ISO builders: boot trees, boot ISOs and DVDs, and the native builders they dispatch to. */
export const ISO_CODE = ['libs/iso/src', 'libs/builders/src'];
