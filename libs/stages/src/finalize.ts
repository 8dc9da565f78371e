// The finalize stage (replaces `finalize_compose`): ISOs and images placed into the compose from
// the store (hardlinks) with their alias links, Rocky's BSD-style CHECKSUM per directory (from
// the sha256 the manifests already carry: no file is hashed twice), a clearsigned CHECKSUM.asc,
// productmd metadata, and STATUS FINISHED only after every name was checked against its file.
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { checksumSignatureKey, dayStamp, composeDate, composeRoot, productmdComposeId, releaseIso, revision, type Arch } from '@rocky/config';
import { sha256, sha256File, symlinkIfChanged, writeFileAtomic, writeFileIfChanged } from '@rocky/exec';
import { openStore, type Store } from '@rocky/store';
import { clearsign } from '@rocky/publish';
import {
  composeInfo,
  composeInfoVariants,
  imagesJson,
  parseChecksum,
  parseNevra,
  renderChecksum,
  renderStatus,
  rpmsJson,
  stableJson,
  type ComposeRef as PmdCompose,
  type ImageEntry,
  type RpmEntry,
} from '@rocky/compose';
import { composeTimestamp, readSyncManifest, syncPending, type ArchManifest, type FileEntry } from './manifests';
import { readIsoManifest } from './iso';
import { readExtraManifest } from './iso-extra';
import { readCloudManifest } from './cloud';
import { composeLayout, ensureCompose } from './trees';
import type { StageContext } from './context';
import { targetDistDir, type Stage } from './stage';

interface Placed extends FileEntry {
  name: string;
  aliases: string[];
  image: Omit<ImageEntry, 'path' | 'size' | 'sha256' | 'mtime'>;
  listing?: FileEntry;
}

export interface FinalizeManifest {
  composeId: string;
  status: 'FINISHED' | 'FINISHED_INCOMPLETE';
  checksums: Record<string, string>;
  images: number;
  rpms: number;
}

export interface FinalizePlan {
  /** Directory (relative to `compose/`) → the ISOs and images placed there; empty while earlier stages are to come (dry run). */
  dirs: Map<string, Placed[]>;
  composeId?: string;
  /** The compose's STATUS before this run: a finished compose is never demoted by a failed run. */
  status?: string;
  missingOptional: string[];
}

const FINISHED = new Set(['FINISHED', 'FINISHED_INCOMPLETE']);
const readStatus = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined);

interface FinalizeResult {
  manifest: FinalizeManifest;
  /** Every package rpms.json lists, relative to `compose/`. */
  rpmPaths: string[];
}

export const finalizeStage: Stage<FinalizePlan, FinalizeResult> = {
  name: 'finalize',
  tools: (ctx) => (ctx.site.signing ? ['gpg', 'gpgconf'] : []),
  locks: (ctx) => [{ file: composeLayout(ctx.root, ctx.project, ctx.site, ctx.release).layout.finalizeLock, what: `finalize of ${ctx.project}` }],

  async plan(ctx) {
    const { release: rel } = ctx;
    if (rel.composeType === 'updates') {
      throw new Error(`${ctx.project} is an updates compose: finalize does not run during incremental updates (it would rewrite a published compose's ISOs and metadata)`);
    }
    const dirs = new Map<string, Placed[]>();
    const upstreamDone = !syncPending(ctx) && [`iso-extra`, 'cloud', ...rel.arches.map((a) => `iso-${a}`)].every((t) => existsSync(join(targetDistDir({ ...ctx, target: t }), 'manifest.json')));
    if (!upstreamDone && ctx.dryRun) return { dirs, missingOptional: [] };
    const { layout, composeId } = composeLayout(ctx.root, ctx.project, ctx.site, ctx.release);
    const add = (dir: string, p: Placed) => dirs.set(dir, [...(dirs.get(dir) ?? []), p]);
    const rel2 = (dir: string) => relTo(layout.compose, dir);
    for (const arch of rel.arches) {
      const boot = readIsoManifest(ctx.root, ctx.project, arch);
      add(rel2(layout.isos(arch)), {
        ...boot.iso,
        listing: boot.listing,
        image: { variant: releaseIso(rel).lorax.variant, arch, format: 'iso', type: 'boot', bootable: boot.iso.bootable, volumeId: boot.iso.volumeId, implantMd5: null, subvariant: releaseIso(rel).lorax.variant },
      });
    }
    for (const e of readExtraManifest(ctx.root, ctx.project).images) {
      const def = releaseIso(rel).extra[e.image];
      add(rel2(layout.isos(e.arch)), {
        ...e,
        image: { variant: def?.variant ?? e.image, arch: e.arch, format: 'iso', type: e.image, bootable: e.bootable, volumeId: e.volumeId, implantMd5: e.implantMd5, subvariant: def?.variant },
      });
    }
    const cloud = readCloudManifest(ctx.root, ctx.project);
    for (const c of cloud.images) {
      const kind = c.variant ? `${c.type}-${c.variant}` : c.type;
      add(rel2(layout.images(c.arch)), {
        ...c,
        image: { variant: releaseIso(rel).lorax.variant, arch: c.arch, format: c.format, type: cloudType(c.format), bootable: false, volumeId: null, implantMd5: null, subvariant: kind },
      });
    }
    return { dirs, composeId, status: readStatus(layout.status), missingOptional: cloud.missingOptional };
  },

  describe: (p) => ({
    summary: p.composeId
      ? `${[...p.dirs.values()].flat().length} ISOs and images into ${p.dirs.size} directories of ${p.composeId}, CHECKSUM files, productmd metadata`
      : 'ISOs and images of the stages above into the compose, CHECKSUM files, productmd metadata',
    details: [...p.dirs].flatMap(([d, files]) => files.map((f) => `${d}/${f.name}${f.aliases.length ? ` (+ ${f.aliases.join(', ')})` : ''}`)),
  }),

  async execute(ctx, plan) {
    const { release: rel, site } = ctx;
    const store = openStore(site);
    const { layout, composeId } = composeLayout(ctx.root, ctx.project, site, ctx.release);
    const ts = composeTimestamp(composeId);
    const date = composeDate(composeId)!;
    const pmd: PmdCompose = { id: productmdComposeId(rel, date), date: dayStamp(date), respin: 0, type: 'production' };
    const wasFinished = FINISHED.has(plan.status ?? '');
    // Each sync manifest is read once: they are the largest files a finalize reads.
    const groups = [...rel.arches, ...(rel.repos.some((r) => r.source) ? (['source'] as const) : [])];
    const sync = new Map<Arch | 'source', ArchManifest>(groups.map((g) => [g, readSyncManifest(ctx.root, ctx.project, g)]));
    try {
      // On a runner that got sync from the remote cache the compose is rebuilt from the store.
      await ensureCompose(store, layout, rel, [...sync.values()].flatMap((m) => m.trees), ctx.log.info);
      if (!wasFinished) writeFileAtomic(layout.status, renderStatus('STARTED'));
      const checksums: Record<string, string> = {};
      const images: ImageEntry[] = [];
      for (const [d, files] of plan.dirs) {
        const dir = join(layout.compose, d);
        await placeDirectory(store, dir, files);
        const text = renderChecksum(files.flatMap((f) => [f.name, ...f.aliases].map((name) => ({ name, size: f.size, sha256: f.sha256 }))));
        writeFileIfChanged(join(dir, 'CHECKSUM'), text);
        if (site.signing) await placeSignature(store, site.signing, join(dir, 'CHECKSUM'), text);
        checksums[d] = text;
        for (const f of files) images.push({ ...f.image, path: `${d}/${f.name}`, size: f.size, sha256: f.sha256, mtime: ts });
      }
      const rpms = rpmEntries(ctx, sync);
      mkdirSync(layout.metadata, { recursive: true });
      writeFileIfChanged(layout.composeIdFile, composeId);
      const relType = rel.type === 'stable' ? 'ga' : 'updates-testing';
      writeFileIfChanged(join(layout.metadata, 'composeinfo.json'), stableJson(composeInfo({ compose: pmd, release: { name: rel.fullname, short: rel.shortname, version: revision(rel), type: relType }, variants: composeInfoVariants(rel) })));
      writeFileIfChanged(join(layout.metadata, 'images.json'), stableJson(imagesJson({ compose: pmd, images })));
      writeFileIfChanged(join(layout.metadata, 'rpms.json'), stableJson(rpmsJson({ compose: pmd, rpms })));
      writeFileIfChanged(join(layout.metadata, 'upstream.json'), stableJson(upstreamRecord(ctx, sync)));
      const status = plan.missingOptional.length ? ('FINISHED_INCOMPLETE' as const) : ('FINISHED' as const);
      return { manifest: { composeId, status, checksums, images: images.length, rpms: rpms.length }, rpmPaths: rpms.map((r) => r.path) };
    } catch (e) {
      if (!wasFinished) writeFileAtomic(layout.status, renderStatus('DOOMED'));
      throw e;
    }
  },

  // Every name agrees with the file it names, and every package rpms.json lists is there.
  async verify(ctx, plan, { rpmPaths }) {
    const { layout } = composeLayout(ctx.root, ctx.project, ctx.site, ctx.release);
    try {
      await verifyPlaced(openStore(ctx.site), layout.compose, plan.dirs);
      const missing = rpmPaths.filter((p) => !existsSync(join(layout.compose, p)));
      if (missing.length) throw new Error(`rpms.json names ${missing.length} packages missing from the compose of ${ctx.project}, e.g. ${missing.slice(0, 5).join(', ')}`);
    } catch (e) {
      if (!FINISHED.has(plan.status ?? '')) writeFileAtomic(layout.status, renderStatus('DOOMED'));
      throw e;
    }
  },

  async record(ctx, _plan, { manifest: m }) {
    const { layout } = composeLayout(ctx.root, ctx.project, ctx.site, ctx.release);
    writeFileIfChanged(layout.status, renderStatus(m.status));
    return {
      summary: `${m.composeId}: ${m.status}; ${m.images} images, ${m.rpms} rpms in metadata; compose at ${layout.dir} (latest: ${composeRoot(ctx.site, ctx.release).latest})`,
      manifests: { 'manifest.json': m },
    };
  },
};

const relTo = (base: string, dir: string) => dir.slice(base.length + 1);

/**
 * CHECKSUM.asc: one signature per CHECKSUM text and key, kept in the store, so a rerun (or a
 * compose restored on another host) places the very same bytes instead of a new signature that
 * every mirror would fetch again.
 */
async function placeSignature(store: Store, signing: NonNullable<StageContext['site']['signing']>, checksum: string, text: string) {
  const key = checksumSignatureKey(sha256(text), signing.keyId);
  const kept = await store.getKey(key);
  const asc = `${checksum}.asc`;
  if (kept && (await store.has(kept.sha256))) {
    await store.materialize(kept.sha256, asc);
    return;
  }
  await clearsign(signing, checksum, asc);
  await store.setKey(key, await store.putFile(asc), { checksum: sha256(text) });
}

function cloudType(format: string): string {
  return ({ qcow2: 'qcow2', 'raw.xz': 'raw-xz', 'tar.xz': 'docker', vhd: 'vhd', box: 'vagrant-libvirt', wsl: 'wsl2' } as Record<string, string>)[format] ?? format;
}

/** Hardlinks the files in, points the aliases at them, writes listings, removes strays. */
async function placeDirectory(store: Store, dir: string, files: Placed[]) {
  mkdirSync(dir, { recursive: true });
  const keep = new Set(['CHECKSUM', 'CHECKSUM.asc']);
  for (const f of files) {
    await store.materialize(f.sha256, join(dir, f.name));
    keep.add(f.name);
    if (f.listing) {
      await store.materialize(f.listing.sha256, join(dir, `${f.name}.manifest`));
      keep.add(`${f.name}.manifest`);
    }
    for (const a of f.aliases) {
      symlinkIfChanged(f.name, join(dir, a));
      keep.add(a);
    }
  }
  for (const n of readdirSync(dir)) if (!keep.has(n)) rmSync(join(dir, n), { recursive: true, force: true });
}

async function verifyPlaced(store: Store, compose: string, dirs: Map<string, Placed[]>) {
  const problems: string[] = [];
  for (const [d, files] of dirs) {
    const dir = join(compose, d);
    const listed = new Map(parseChecksum(readFileSync(join(dir, 'CHECKSUM'), 'utf8')).map((e) => [e.name, e]));
    for (const f of files) {
      const file = join(dir, f.name);
      const st = statSync(file);
      const obj = statSync(await store.localPath(f.sha256));
      // The placed file is the store object itself (same inode, named by its sha256); a copy
      // (store on another filesystem) is hashed once to prove it.
      const same = st.ino === obj.ino && st.dev === obj.dev;
      if (st.size !== f.size || (!same && (await sha256File(file)) !== f.sha256)) problems.push(`${file}: not the stored object ${f.sha256}`);
      for (const name of [f.name, ...f.aliases]) {
        const e = listed.get(name);
        if (!e || e.sha256 !== f.sha256 || e.size !== f.size) problems.push(`${dir}/CHECKSUM: wrong or missing entry for ${name}`);
      }
      for (const a of f.aliases) {
        const p = join(dir, a);
        if (!lstatSync(p).isSymbolicLink() || readlinkSync(p) !== f.name) problems.push(`${p}: alias does not point at ${f.name}`);
      }
    }
  }
  if (problems.length) throw new Error(`finalize consistency check failed:\n  ${problems.join('\n  ')}`);
}

/** rpms.json entries from the sync manifests: every package of every tree. */
function rpmEntries(s: StageContext, sync: Map<Arch | 'source', ArchManifest>): RpmEntry[] {
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
function upstreamRecord(s: StageContext, sync: Map<Arch | 'source', ArchManifest>) {
  const trees: Record<string, string> = {};
  for (const m of sync.values()) {
    for (const t of m.trees) {
      const repomd = t.repodata.find((f) => basename(f.path) === 'repomd.xml');
      if (repomd) trees[t.path] = repomd.sha256;
    }
  }
  return { project: s.release.project, trees };
}
