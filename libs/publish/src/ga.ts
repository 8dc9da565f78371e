// What production holds as GA content, so a pre-release never lands on it. Every promoted
// production dir gets a marker `<markers>/<dir>.json` ({release, type, digest, time}); type
// stable marks GA content.
import { existsSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import type { Release } from '@rocky/config';
import { readJson } from '@rocky/exec';

export interface GaMarker {
  release: string;
  type: Release['type'];
  dir: string;
  digest: string;
  time: string;
}

/** Names stable releases get in production: `9.7` (dir) and `9` (link). */
export const isGaName = (name: string) => /^\d+(\.\d+)?$/.test(name);

export const gaMarkerFile = (markersDir: string, dir: string) => join(markersDir, `${dir}.json`);

/**
 * Why a pre-release's production names would overwrite GA content, or undefined. Checks every
 * name it would write (the dir and its links): GA-shaped names, dirs marked GA, and links that
 * would replace a real directory.
 */
export function gaCollision(rel: Pick<Release, 'name' | 'type'>, names: { dir: string; links: Record<string, string> }, markersDir: string, productionCategory: string): string | undefined {
  if (rel.type === 'stable') return undefined;
  for (const n of [names.dir, ...Object.keys(names.links)]) {
    if (isGaName(n)) return `${rel.name} is a ${rel.type} release but would write ${n}, a name stable releases own`;
    const marker = gaMarkerFile(markersDir, n);
    if (existsSync(marker)) {
      const m = readJson<GaMarker>(marker);
      if (m.type === 'stable') return `${join(productionCategory, n)} holds GA content of ${m.release} (published ${m.time}); ${rel.name} (${rel.type}) must not overwrite it`;
    }
  }
  for (const n of Object.keys(names.links)) {
    const st = lstatSync(join(productionCategory, n), { throwIfNoEntry: false });
    if (st && !st.isSymbolicLink()) return `${join(productionCategory, n)} is a real directory; ${rel.name} would replace it with a link`;
  }
  return undefined;
}
