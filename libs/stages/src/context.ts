import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { stateDir, type Release, type Site } from '@rocky/config';
import { scratchName, sweepScratch } from '@rocky/exec';

/** What a stage needs to know, independent of Nx (executors build it from their context). */
export interface StageContext {
  /** Workspace root: dist/ manifests are written under it. */
  root: string;
  /** Nx project (release) name. */
  project: string;
  release: Release;
  site: Site;
  dryRun: boolean;
  /** Nx task hash, when run by Nx: a key for artifacts kept outside Nx. */
  taskHash?: string;
}

/**
 * A work directory of this process under the site's `state/tmp` (created), after removing what
 * killed runs on this host left there.
 */
export function scratchDir(site: Pick<Site, 'state'>, prefix: string): string {
  const tmp = stateDir(site, 'tmp');
  const removed = sweepScratch(tmp);
  if (removed.length) console.log(`removed ${removed.length} work dir(s) of killed runs from ${tmp}: ${removed.join(', ')}`);
  const dir = join(tmp, scratchName(prefix));
  mkdirSync(dir, { recursive: true });
  return dir;
}
