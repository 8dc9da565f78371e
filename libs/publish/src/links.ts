// The symlinks publishing places beside a release dir (`9.7 -> 9.7-RC2`, `latest-9`) and in it
// (repoLinks): relative targets, replaced atomically, only where they differ.
import { lstatSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { symlinkAtomic, type EventLog } from '@rocky/exec';

/** Points each `name -> target` link in `dir` (relative targets), replacing only what differs. Returns the names changed. */
export function placeLinks(dir: string, links: Record<string, string>, log?: EventLog): string[] {
  const changed: string[] = [];
  for (const [name, target] of Object.entries(links)) {
    const p = join(dir, name);
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (st && !st.isSymbolicLink()) throw new Error(`${p} exists and is not a symlink: refusing to replace it with a link to ${target}; move it away first`);
    if (st && readlinkSync(p) === target) continue;
    symlinkAtomic(target, p);
    changed.push(name);
    log?.event('link', { link: p, target });
  }
  return changed;
}

export const linksMatch = (dir: string, links: Record<string, string>) =>
  Object.entries(links).every(([name, target]) => {
    const st = lstatSync(join(dir, name), { throwIfNoEntry: false });
    return !!st?.isSymbolicLink() && readlinkSync(join(dir, name)) === target;
  });
