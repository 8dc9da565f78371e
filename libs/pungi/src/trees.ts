// The repo trees of a pungi compose, from its composeinfo.json, and how they map onto this
// project's RepoTree naming. pungi's paths (pungi/paths.py) are the ones treePath gives a repo
// dir of the variant's name: `<Variant>/<arch>/os`, `<Variant>/<arch>/debug/tree`,
// `<Variant>/source/tree`. Where Rocky 8's compose and the pipeline's trees differ:
// - a variant is a compose directory (`Devel`, `NFV`, `extras`); the release's repo of that dir
//   may have another upstream name (`devel`), and the lowercase aliases (`devel`, `nfv`) are
//   links staging makes (publish.repoLinks), not trees;
// - pungi puts multilib (i686) packages into the x86_64 tree: there is no `<Variant>/i686`;
// - pungi makes no kickstart trees: Rocky 8's staging copies os to kickstart;
// - ISO-only variants (`Minimal`) have trees the release does not publish: they are `unmapped`.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseComposeInfo, type ComposeInfoRead } from '@rocky/compose';
import { PungiComposeLayout, pungiTreePath, repoDir, treePath, type Arch, type Release, type RepoTree, type PungiTreeRef } from '@rocky/config';

export interface PungiTree extends PungiTreeRef {
  /** Relative to `compose/`. */
  path: string;
}

/** The os, debug and source trees composeinfo.json lists (one source tree per variant), in a stable order. */
export function treesOf(ci: ComposeInfoRead, file = 'composeinfo.json'): PungiTree[] {
  const out: PungiTree[] = [];
  const add = (t: PungiTreeRef, listed: string) => {
    const path = pungiTreePath(t);
    // A config with another layout (a custom paths scheme) would put trees where nothing reads them.
    if (listed !== path) throw new Error(`${file}: variant ${t.variant} lists its ${t.kind} tree${t.kind === 'source' ? '' : ` for ${t.arch}`} at ${listed}, not at pungi's ${path}`);
    if (!out.some((o) => o.path === path)) out.push({ ...t, path });
  };
  for (const v of [...ci.variants].sort((a, b) => (a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0))) {
    // Addons live inside their parent's tree; their packages are in the parent's repodata.
    if (v.type === 'addon') continue;
    for (const arch of [...v.arches].sort()) {
      const os = v.paths.repository?.[arch] ?? v.paths.os_tree?.[arch];
      if (os) add({ variant: v.uid, kind: 'os', arch }, os);
      const debug = v.paths.debug_repository?.[arch] ?? v.paths.debug_tree?.[arch];
      if (debug) add({ variant: v.uid, kind: 'debug', arch }, debug);
    }
    const source = Object.values(v.paths.source_repository ?? v.paths.source_tree ?? {})[0];
    if (source) add({ variant: v.uid, kind: 'source', arch: 'src' }, source);
  }
  return out;
}

/** The trees of the compose in `composeDir` (read from its composeinfo.json; each must have its repodata). */
export function pungiTrees(composeDir: string): PungiTree[] {
  const layout = new PungiComposeLayout(composeDir);
  const file = layout.metadata('composeinfo.json');
  if (!existsSync(file)) throw new Error(`${file}: missing (pungi writes it when a compose finishes)`);
  const trees = treesOf(parseComposeInfo(readFileSync(file, 'utf8'), file), file);
  for (const t of trees) {
    const repomd = join(layout.tree(t), 'repodata', 'repomd.xml');
    if (!existsSync(repomd)) throw new Error(`${repomd}: missing (composeinfo.json lists the tree ${t.path})`);
  }
  return trees;
}

/**
 * The compose's trees as the release's RepoTrees (by compose dir: variant `Devel` is repo
 * `devel`, dir `Devel`). Trees of variants the release has no repo for, or of arches the repo
 * does not have, are `unmapped` (the caller decides whether that is an error).
 */
export function toRepoTrees(rel: Pick<Release, 'repos' | 'arches'>, trees: PungiTree[]): { trees: RepoTree[]; unmapped: PungiTree[] } {
  const byDir = new Map(rel.repos.map((r) => [repoDir(r), r]));
  const out: RepoTree[] = [];
  const unmapped: PungiTree[] = [];
  for (const t of trees) {
    const repo = byDir.get(t.variant);
    const arches = repo?.arches ?? rel.arches;
    const wanted = repo && (t.kind === 'source' ? repo.source : (t.kind === 'os' || repo.debug) && (arches as string[]).includes(t.arch));
    if (!repo || !wanted) {
      unmapped.push(t);
      continue;
    }
    const tree: Omit<RepoTree, 'path'> =
      t.kind === 'source'
        ? { repo: repo.name, dir: t.variant, kind: 'source', arch: 'src', group: 'source' }
        : { repo: repo.name, dir: t.variant, kind: t.kind, arch: t.arch as Arch, group: t.arch as Arch };
    out.push({ ...tree, path: treePath(tree, 'main') });
  }
  return { trees: out, unmapped };
}
