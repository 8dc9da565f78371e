// Glue from a release definition to the productmd inputs, so callers cannot drift from the
// layout @rocky/config defines (repoTrees is the one list of trees a compose has).
import { releaseIso, repoTrees, type ComposeKind, type Release } from '@rocky/config';
import type { ComposeInfoVariant } from './productmd';

/**
 * composeinfo variants of a release, keyed by compose directory (`devel`, not `all`). The lorax
 * variant owns `isos/<arch>` and `images/<arch>` for every release arch (empanadas meant to give
 * them to BaseOS only; its always-true condition gave them to every variant); update composes
 * carry the produce compose's media unchanged.
 */
export function composeInfoVariants(rel: Pick<Release, 'kind' | 'repos' | 'arches' | 'iso'>, kind: ComposeKind = 'produce'): ComposeInfoVariant[] {
  const byDir = new Map<string, ComposeInfoVariant>();
  for (const t of repoTrees(rel, kind)) {
    const v = byDir.get(t.dir) ?? { dir: t.dir, arches: [], debug: false, source: false };
    byDir.set(t.dir, v);
    if (t.kind === 'os' && !v.arches.includes(t.arch)) v.arches.push(t.arch);
    if (t.kind === 'debug') v.debug = true;
    if (t.kind === 'source') v.source = true;
  }
  const boot = byDir.get(releaseIso(rel).lorax.variant);
  if (boot) boot.media = rel.arches.filter((a) => boot.arches.includes(a));
  return [...byDir.values()];
}
