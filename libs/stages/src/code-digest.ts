// A digest of the code that builds an artifact, so a change to how ISOs are made rebuilds them
// while a change elsewhere (a comment in a publishing stage) does not: part of the store keys
// under which built ISOs are found again.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The sources directly in each dir (tests excepted), in name order: a missing dir adds nothing. */
export function codeDigest(root: string, dirs: string[]): string {
  const h = createHash('sha256');
  for (const dir of dirs) {
    // A directory listing, not a glob library: loading one cost an ISO task ~80 ms at start.
    const abs = join(root, dir);
    const names = existsSync(abs) ? readdirSync(abs, { withFileTypes: true }).filter((e) => e.isFile() && !e.name.startsWith('.') && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) : [];
    for (const f of names.map((e) => e.name).sort()) h.update(`${dir}/${f}\0`).update(readFileSync(join(abs, f)));
  }
  return h.digest('hex');
}

/** The ISO builders: boot trees, boot ISOs and DVDs, and the native builders they dispatch to. */
export const ISO_CODE = ['libs/iso/src', 'libs/builders/src'];
