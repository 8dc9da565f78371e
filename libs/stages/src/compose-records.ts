// The compose's records that finalize (full composes) and sync (update composes) both write:
// productmd's compose record, rpms.json entries and the upstream it came from. Apart from
// finalize, so that sync's code, and so its Nx hash, holds nothing of the ISO stages.
import { basename } from 'node:path';
import { dayStamp, parseComposeId, type Arch } from '@rocky/config';
import { parseNevra, type ComposeRef as PmdCompose, type RpmEntry } from '@rocky/compose';
import type { ArchManifest } from './manifests';
import type { StageContext } from './context';

/** productmd's compose record of a compose id (one id everywhere: directory, COMPOSE_ID, composeinfo). */
export function productmdCompose(composeId: string): PmdCompose {
  const p = parseComposeId(composeId);
  if (!p) throw new Error(`${composeId} is not a compose id`);
  return { id: composeId, date: dayStamp(p.date), respin: p.respin, type: 'production' };
}

/** rpms.json entries from the sync manifests: every package of every tree. */
export function rpmEntries(s: StageContext, sync: Map<Arch | 'source', ArchManifest>): RpmEntry[] {
  const rel = s.release;
  const src = sync.get('source');
  const srpmEpoch = new Map<string, string>();
  for (const t of src?.trees ?? []) for (const p of t.packages) srpmEpoch.set(`${p.name}-${p.version}-${p.release}.src.rpm`, p.epoch);
  const out: RpmEntry[] = [];
  // Keyed by the tree's own arch: devel's i686 multilib tree is listed under i686, as
  // composeinfo lists it, not mixed into x86_64 (its noarch packages would collide).
  const archesOf = new Map<string, string[]>();
  for (const group of rel.arches) {
    for (const t of sync.get(group)!.trees) {
      if (t.kind === 'kickstart') continue;
      const arch = t.arch;
      archesOf.set(t.dir, [...new Set([...(archesOf.get(t.dir) ?? []), arch])]);
      for (const p of t.packages) {
        const srpmFile = p.sourcerpm ?? `${p.name}-${p.version}-${p.release}.src.rpm`;
        const sn = parseNevra(srpmFile.replace(/\.rpm$/, ''));
        out.push({
          variant: t.dir,
          arch,
          rpm: { name: p.name, epoch: p.epoch, version: p.version, release: p.release, arch: p.arch },
          srpm: { ...sn, epoch: srpmEpoch.get(srpmFile) ?? '0' },
          path: `${t.path}/${p.path}`,
          sigkey: p.sigkey,
          category: t.kind === 'debug' ? 'debug' : 'binary',
        });
      }
    }
  }
  // Source packages are listed under every binary arch of their variant, as productmd maps them.
  for (const t of src?.trees ?? []) {
    for (const arch of archesOf.get(t.dir) ?? []) {
      for (const p of t.packages) {
        out.push({ variant: t.dir, arch, rpm: { name: p.name, epoch: p.epoch, version: p.version, release: p.release, arch: p.arch }, path: `${t.path}/${p.path}`, sigkey: p.sigkey, category: 'source' });
      }
    }
  }
  return out;
}

/** The upstream state the compose was built from: every tree's repomd.xml digest. */
export function upstreamRecord(s: StageContext, sync: Map<Arch | 'source', ArchManifest>) {
  const trees: Record<string, string> = {};
  for (const m of sync.values()) {
    for (const t of m.trees) {
      const repomd = t.repodata.find((f) => basename(f.path) === 'repomd.xml');
      if (repomd) trees[t.path] = repomd.sha256;
    }
  }
  return { project: s.release.project, trees };
}
