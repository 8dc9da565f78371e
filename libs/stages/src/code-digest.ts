// A digest of the code that builds an artifact, so a change to how ISOs are made rebuilds them
// while a change elsewhere (a comment in a publishing stage) does not: part of the store keys
// under which built ISOs are found again.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { globbySync } from 'globby';

/** The sources directly in each dir (tests excepted), in name order: a missing dir adds nothing. */
export function codeDigest(root: string, dirs: string[]): string {
  const h = createHash('sha256');
  for (const dir of dirs) {
    for (const f of globbySync(['*.ts', '!*.test.ts'], { cwd: join(root, dir) }).sort()) h.update(`${dir}/${f}\0`).update(readFileSync(join(root, dir, f)));
  }
  return h.digest('hex');
}

/** The ISO builders: boot trees, boot ISOs and DVDs, and the native builders they dispatch to. */
export const ISO_CODE = ['libs/iso/src', 'libs/builders/src'];
