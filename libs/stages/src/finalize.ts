// The finalize stage (replaces `finalize_compose`): ISOs and images placed into the compose from
// the store (hardlinks) with their alias links, Rocky's BSD-style CHECKSUM per directory (from
// the sha256 the manifests already carry: no file is hashed twice), a clearsigned CHECKSUM.asc,
// productmd metadata, and STATUS FINISHED only after every name was checked against its file.
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { dayStamp, composeDate, composeRoot, distDir, revision, type Arch } from '@rocky/config';
import { acquireLock, sha256File, symlinkAtomic, writeFileAtomic, writeJsonAtomic } from '@rocky/exec';
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
import { composeTimestamp, readSyncManifest, type ArchManifest, type FileEntry } from './manifests';
import { readIsoManifest } from './iso';
import { readExtraManifest } from './iso-extra';
import { readCloudManifest } from './cloud';
import { composeLayout, ensureCompose } from './trees';
import type { StageContext } from './context';

interface Placed extends FileEntry {
  name: string;
  aliases: string[];
  image: Omit<ImageEntry, 'path' | 'size' | 'sha256' | 'mtime'>;
  listing?: FileEntry;
}

export interface FinalizeManifest {
  composeId: string;
  status: string;
  checksums: Record<string, string>;
  images: number;
  rpms: number;
}

export async function finalizeStage(s: StageContext): Promise<FinalizeManifest | undefined> {
  const { release: rel, site } = s;
  if (rel.composeType === 'updates') {
    throw new Error(`${s.project} is an updates compose: finalize does not run during incremental updates (it would rewrite a published compose's ISOs and metadata)`);
  }
  const store = openStore(site);
  const { layout, composeId } = composeLayout(s.root, s.project, site);
  const ts = composeTimestamp(composeId);
  const date = composeDate(composeId)!;
  const pmd: PmdCompose = { id: `${rel.shortname}-${revision(rel)}-${dayStamp(date)}.0`, date: dayStamp(date), respin: 0, type: 'production' };

  // Plan: what goes where.
  const extra = readExtraManifest(s.root, s.project);
  const cloud = readCloudManifest(s.root, s.project);
  const dirs = new Map<string, Placed[]>();
  const add = (dir: string, p: Placed) => dirs.set(dir, [...(dirs.get(dir) ?? []), p]);
  for (const arch of rel.arches) {
    const boot = readIsoManifest(s.root, s.project, arch);
    add(layout.isos(arch), {
      ...boot.iso,
      listing: boot.listing,
      image: { variant: rel.iso.lorax.variant, arch, format: 'iso', type: 'boot', bootable: boot.iso.bootable, volumeId: boot.iso.volumeId, implantMd5: null, subvariant: rel.iso.lorax.variant },
    });
  }
  for (const e of extra.images) {
    const def = rel.iso.extra[e.image];
    add(layout.isos(e.arch), {
      ...e,
      image: { variant: def?.variant ?? e.image, arch: e.arch, format: 'iso', type: e.image, bootable: e.bootable, volumeId: e.volumeId, implantMd5: e.implantMd5, subvariant: def?.variant },
    });
  }
  for (const c of cloud.images) {
    const kind = c.variant ? `${c.type}-${c.variant}` : c.type;
    add(layout.images(c.arch), {
      ...c,
      image: { variant: rel.iso.lorax.variant, arch: c.arch, format: c.format, type: cloudType(c.format), bootable: false, volumeId: null, implantMd5: null, subvariant: kind },
    });
  }
  console.log(`finalize ${composeId}: ${[...dirs.values()].flat().length} ISOs and images into ${dirs.size} directories`);
  if (s.dryRun) return undefined;

  mkdirSync(layout.work, { recursive: true });
  // Each sync manifest is read once: they are the largest files a finalize reads.
  const groups = [...rel.arches, ...(rel.repos.some((r) => r.source) ? (['source'] as const) : [])];
  const sync = new Map<Arch | 'source', ArchManifest>(groups.map((g) => [g, readSyncManifest(s.root, s.project, g)]));
  const unlock = acquireLock(join(layout.work, '.finalize.lock'), `finalize of ${composeId}`);
  try {
    // On a runner that got sync from the remote cache the compose is rebuilt from the store.
    await ensureCompose(store, layout, rel, [...sync.values()].flatMap((m) => m.trees));
    writeFileAtomic(layout.status, renderStatus('STARTED'));
    const checksums: Record<string, string> = {};
    const images: ImageEntry[] = [];
    for (const [dir, files] of dirs) {
      await placeDirectory(store, dir, files);
      const text = renderChecksum(files.flatMap((f) => [f.name, ...f.aliases].map((name) => ({ name, size: f.size, sha256: f.sha256 }))));
      writeFileAtomic(join(dir, 'CHECKSUM'), text);
      if (site.signing) await clearsign(site.signing, join(dir, 'CHECKSUM'), join(dir, 'CHECKSUM.asc'));
      checksums[relTo(layout.compose, dir)] = text;
      for (const f of files) images.push({ ...f.image, path: `${relTo(layout.compose, dir)}/${f.name}`, size: f.size, sha256: f.sha256, mtime: ts });
    }

    // Metadata.
    const rpms = rpmEntries(s, sync);
    mkdirSync(layout.metadata, { recursive: true });
    writeFileAtomic(layout.composeIdFile, composeId);
    const relType = rel.type === 'stable' ? 'ga' : 'updates-testing';
    writeFileAtomic(join(layout.metadata, 'composeinfo.json'), stableJson(composeInfo({ compose: pmd, release: { name: rel.fullname, short: rel.shortname, version: revision(rel), type: relType }, variants: composeInfoVariants(rel) })));
    writeFileAtomic(join(layout.metadata, 'images.json'), stableJson(imagesJson({ compose: pmd, images })));
    writeFileAtomic(join(layout.metadata, 'rpms.json'), stableJson(rpmsJson({ compose: pmd, rpms })));
    writeFileAtomic(join(layout.metadata, 'upstream.json'), stableJson(upstreamRecord(s, sync)));

    // Verify before declaring FINISHED: every name agrees with the file it names.
    await verifyPlaced(store, dirs);
    verifyRpms(layout.compose, rpms, s);
    const status = cloud.missingOptional.length ? 'FINISHED_INCOMPLETE' : 'FINISHED';
    writeFileAtomic(layout.status, renderStatus(status));
    const manifest: FinalizeManifest = { composeId, status, checksums, images: images.length, rpms: rpms.length };
    writeJsonAtomic(join(distDir(s.root, s.project, 'finalize'), 'manifest.json'), manifest);
    console.log(`finalize ${composeId}: ${status}; ${images.length} images, ${rpms.length} rpms in metadata; compose at ${layout.dir} (latest: ${composeRoot(site, rel).latest})`);
    return manifest;
  } catch (e) {
    writeFileAtomic(layout.status, renderStatus('DOOMED'));
    throw e;
  } finally {
    unlock();
  }
}

const relTo = (base: string, dir: string) => dir.slice(base.length + 1);

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
      symlinkAtomic(f.name, join(dir, a));
      keep.add(a);
    }
  }
  for (const n of readdirSync(dir)) if (!keep.has(n)) rmSync(join(dir, n), { recursive: true, force: true });
}

async function verifyPlaced(store: Store, dirs: Map<string, Placed[]>) {
  const problems: string[] = [];
  for (const [dir, files] of dirs) {
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

function verifyRpms(composeDir: string, rpms: RpmEntry[], s: StageContext) {
  const missing = rpms.filter((r) => !existsSync(join(composeDir, r.path))).map((r) => r.path);
  if (missing.length) throw new Error(`rpms.json names ${missing.length} packages missing from the compose of ${s.project}, e.g. ${missing.slice(0, 5).join(', ')}`);
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
