import type { Release, Site } from '@rocky/config';

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
