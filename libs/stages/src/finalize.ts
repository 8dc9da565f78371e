// The finalize stage (replaces `finalize_compose`, and pull-unpack-tree's placing of the boot
// tree): ISOs and images placed into the compose from the store (hardlinks) with their alias
// links, a `<name>.CHECKSUM` per name and Rocky's BSD-style CHECKSUM per directory (from the
// sha256 the manifests already carry: no file is hashed twice), a clearsigned CHECKSUM.asc; the
// boot tree of each arch in the lorax variant's os and kickstart trees with a .treeinfo naming
// both variants, so they install over the network; the release's extra files; productmd
// metadata under one compose id; and STATUS FINISHED only after every name was checked against
// its file.
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { checksumSignatureKey, composeRoot, releaseIso, repoTrees, revision, fullName, type Arch, type RepoTree } from '@rocky/config';
import { clearsign, mapLimit, sha256, sha256File, symlinkIfChanged, writeFileAtomic, writeFileIfChanged, writeFilesIfChanged, type FileToWrite } from '@rocky/exec';
import { openStore, type Store } from '@rocky/store';
import {
  cloudImageKind,
  composeInfo,
  composeInfoVariants,
  discTreeinfo,
  imagesJson,
  parseChecksum,
  parseTreeinfo,
  renderChecksum,
  renderStatus,
  renderTreeinfo,
  rpmsJson,
  stableJson,
  treeExtraFilesJson,
  treeinfoImagePaths,
  treeinfoProblems,
  treeinfoReferences,
  type ImageEntry,
} from '@rocky/compose';
import { composeTimestamp, readExtraManifest, readIsoManifest, readSyncManifest, syncPending, type ArchManifest, type FileEntry } from './manifests';
import { readCloudManifest } from './cloud';
import { releaseExtraFiles, type ExtraFile } from './extra-files';
import { composeLayout, ensureCompose } from './trees';
import { composesOf, isFinished } from './composes';
import { productmdCompose, rpmEntries, upstreamRecord } from './compose-records';
import type { StageContext } from './context';
import { targetDistDir, type Stage } from './stage';

interface Placed extends FileEntry {
  name: string;
  aliases: string[];
  image: Omit<ImageEntry, 'path' | 'size' | 'sha256' | 'mtime'>;
  listing?: FileEntry;
  /** A published GA file a respin compose carries as it is: in the directory and its CHECKSUM, not in images.json (it is another compose's image). */
  carried?: boolean;
}

export interface FinalizeManifest {
  /** productmd's id of the compose (`Rocky-9.7-20251120.0`), as COMPOSE_ID and every metadata file say. */
  composeId: string;
  status: 'FINISHED' | 'FINISHED_INCOMPLETE';
  checksums: Record<string, string>;
  images: number;
  rpms: number;
}

export interface FinalizePlan {
  /** Directory (relative to `compose/`) → the ISOs and images placed there; empty while earlier stages are to come (dry run). */
  dirs: Map<string, Placed[]>;
  /** productmd's compose id (COMPOSE_ID): the one a previous finalize wrote, else the day's next respin. */
  composeId?: string;
  /** The installable trees (lorax variant's os and kickstart trees) that get their arch's boot tree. */
  bootTrees: BootTree[];
  /** The compose's STATUS before this run: a finished compose is never demoted by a failed run. */
  status?: string;
  missingOptional: string[];
}

interface BootTree {
  arch: Arch;
  kind: 'os' | 'kickstart';
  /** Relative to `compose/`: `BaseOS/x86_64/os`. */
  path: string;
}

/** Boot tree files an installable tree does not take: it has its own .discinfo and media.repo, and gets its own .treeinfo. */
const TREE_METADATA = new Set(['.treeinfo', '.discinfo', 'media.repo']);

const FINISHED = new Set(['FINISHED', 'FINISHED_INCOMPLETE']);
const readStatus = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined);

export interface FinalizeResult {
  manifest: FinalizeManifest;
  /** Every package rpms.json lists, relative to `compose/`. */
  rpmPaths: string[];
}

export const finalizeStage: Stage<FinalizePlan, FinalizeResult> = {
  name: 'finalize',
  tools: (ctx) => [...(ctx.site.signing ? ['gpg', 'gpgconf'] : []), ...(ctx.release.extraFiles.files.length ? ['rpm2cpio'] : [])],
  locks: (ctx) => [{ file: composeLayout(ctx.root, ctx.project, ctx.site, ctx.release).layout.finalizeLock, what: `finalize of ${ctx.project}` }],

  async plan(ctx) {
    const { release: rel } = ctx;
    const dirs = new Map<string, Placed[]>();
    const upstreamDone = !syncPending(ctx) && [`iso-extra`, 'cloud', ...rel.arches.map((a) => `iso-${a}`)].every((t) => existsSync(join(targetDistDir({ ...ctx, target: t }), 'manifest.json')));
    if (!upstreamDone && ctx.dryRun) return { dirs, bootTrees: [], missingOptional: [] };
    const { layout, composeId } = composeLayout(ctx.root, ctx.project, ctx.site, ctx.release);
    const add = (dir: string, p: Placed) => dirs.set(dir, [...(dirs.get(dir) ?? []), p]);
    const rel2 = (dir: string) => relTo(layout.compose, dir);
    for (const arch of rel.arches) {
      const boot = readIsoManifest(ctx.root, ctx.project, arch);
      add(rel2(layout.isos(arch)), {
        ...boot.iso,
        listing: boot.listing,
        image: { variant: releaseIso(rel).lorax.variant, arch, format: 'iso', type: 'boot', bootable: boot.iso.bootable, volumeId: boot.iso.volumeId, implantMd5: boot.iso.implantMd5 ?? null, subvariant: releaseIso(rel).lorax.variant },
      });
    }
    for (const e of readExtraManifest(ctx.root, ctx.project).images) {
      const def = releaseIso(rel).extra[e.image];
      // productmd has no `minimal` type: every extra ISO is a `dvd` (as pungi's createiso records
      // them); the subvariant tells them apart.
      add(rel2(layout.isos(e.arch)), {
        ...e,
        image: { variant: def?.variant ?? e.image, arch: e.arch, format: 'iso', type: 'dvd', bootable: e.bootable, volumeId: e.volumeId, implantMd5: e.implantMd5, subvariant: def?.variant },
      });
    }
    const cloud = readCloudManifest(ctx.root, ctx.project);
    for (const c of cloud.images) {
      const kind = c.variant ? `${c.type}-${c.variant}` : c.type;
      add(rel2(layout.images(c.arch)), {
        ...c,
        image: { variant: releaseIso(rel).lorax.variant, arch: c.arch, ...cloudImageKind(c.format, c.variant), bootable: false, volumeId: null, implantMd5: null, subvariant: kind },
      });
    }
    if (releaseIso(rel).respin) carryGaMedia(ctx, composeId, dirs);
    return { dirs, composeId, bootTrees: bootTrees(rel), status: readStatus(layout.status), missingOptional: cloud.missingOptional };
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
    const pmd = productmdCompose(composeId);
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
        await placeDirectory(store, dir, files, ts);
        const text = renderChecksum(files.flatMap((f) => [f.name, ...f.aliases].map((name) => ({ name, size: f.size, sha256: f.sha256 }))));
        writeFileIfChanged(join(dir, 'CHECKSUM'), text, ts);
        if (site.signing) await placeSignature(store, site.signing, join(dir, 'CHECKSUM'), text);
        checksums[d] = text;
        for (const f of files) if (!f.carried) images.push({ ...f.image, path: `${d}/${f.name}`, size: f.size, sha256: f.sha256, mtime: ts });
      }
      const extraFiles = new Map<Arch, ExtraFile[]>();
      for (const arch of rel.arches) extraFiles.set(arch, await releaseExtraFiles(rel, sync.get(arch)!, arch, store, layout.log(arch, 'extra-files')));
      for (const t of plan.bootTrees) await placeBootTree(ctx, store, layout.compose, t, extraFiles.get(t.arch)!, ts);
      const rpms = rpmEntries(ctx, sync);
      mkdirSync(layout.metadata, { recursive: true });
      // empanadas' metadata/ carries the extra files too, beside its README.
      for (const f of extraFiles.get(rel.arches[0]) ?? []) await store.materialize(f.sha256, join(layout.metadata, f.name));
      writeFileIfChanged(join(layout.metadata, 'README'), metadataReadme(rel), ts);
      writeFileIfChanged(layout.composeIdFile, composeId, ts);
      const relType = rel.type === 'stable' ? 'ga' : 'updates-testing';
      writeFileIfChanged(join(layout.metadata, 'composeinfo.json'), stableJson(composeInfo({ compose: pmd, release: { name: rel.fullname, short: rel.shortname, version: revision(rel), type: relType }, variants: composeInfoVariants(rel) })), ts);
      writeFileIfChanged(join(layout.metadata, 'images.json'), stableJson(imagesJson({ compose: pmd, images })), ts);
      writeFileIfChanged(join(layout.metadata, 'rpms.json'), stableJson(rpmsJson({ compose: pmd, rpms })), ts);
      writeFileIfChanged(join(layout.metadata, 'upstream.json'), stableJson(upstreamRecord(ctx, sync)), ts);
      const status = plan.missingOptional.length ? ('FINISHED_INCOMPLETE' as const) : ('FINISHED' as const);
      return { manifest: { composeId, status, checksums, images: images.length, rpms: rpms.length }, rpmPaths: rpms.map((r) => r.path) };
    } catch (e) {
      if (!wasFinished) writeFileAtomic(layout.status, renderStatus('DOOMED'));
      throw e;
    }
  },

  // Every name agrees with the file it names, every installable tree's .treeinfo loads and names
  // files that are there with their checksums, and every package rpms.json lists is there.
  async verify(ctx, plan, { rpmPaths }) {
    const { layout } = composeLayout(ctx.root, ctx.project, ctx.site, ctx.release);
    try {
      await verifyPlaced(openStore(ctx.site), layout.compose, plan.dirs);
      for (const t of plan.bootTrees) verifyTree(ctx, join(layout.compose, t.path));
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

/**
 * A declared respin publishes new names beside the GA files, which stay as they are: the ISOs of
 * the newest finished produce compose before this one that the respin does not replace by name
 * are placed again (from the store), with their aliases, and listed in CHECKSUM.
 */
function carryGaMedia(ctx: StageContext, composeId: string, dirs: Map<string, Placed[]>) {
  const ga = composesOf(ctx.site, ctx.release, 'produce')
    .filter((c) => isFinished(c) && c.id !== composeId)
    .pop();
  if (!ga) throw new Error(`${ctx.project} declares a respin (iso.respin: ${releaseIso(ctx.release).respin}) but has no finished produce compose to carry the GA media from`);
  for (const [d, files] of dirs) {
    if (!d.startsWith('isos/')) continue;
    const from = join(ga.layout.compose, d);
    const checksum = join(from, 'CHECKSUM');
    if (!existsSync(checksum)) continue;
    const taken = new Set(files.flatMap((f) => [f.name, ...f.aliases]));
    const entries = parseChecksum(readFileSync(checksum, 'utf8'));
    const isLink = (name: string) => !!lstatSync(join(from, name), { throwIfNoEntry: false })?.isSymbolicLink();
    // Aliases go with the file they point at.
    const aliasesOf = new Map<string, string[]>();
    for (const e of entries.filter((x) => isLink(x.name))) {
      const target = readlinkSync(join(from, e.name));
      aliasesOf.set(target, [...(aliasesOf.get(target) ?? []), e.name]);
    }
    for (const e of entries) {
      if (taken.has(e.name) || isLink(e.name)) continue;
      const aliases = (aliasesOf.get(e.name) ?? []).filter((a) => !taken.has(a));
      // Its file listing goes with it (the same bytes, which the store holds since the GA finalize placed them).
      const manifest = join(from, `${e.name}.manifest`);
      const text = existsSync(manifest) ? readFileSync(manifest) : undefined;
      const listing = text && { path: `${e.name}.manifest`, sha256: sha256(text), size: text.length };
      files.push({ path: e.name, name: e.name, sha256: e.sha256, size: e.size, aliases, carried: true, ...(listing ? { listing } : {}), image: { variant: releaseIso(ctx.release).lorax.variant, arch: d.slice('isos/'.length), format: 'iso', type: 'iso', bootable: false } });
    }
  }
}

/** The lorax variant's os and kickstart trees of every release arch (the installable trees). */
function bootTrees(rel: StageContext['release']): BootTree[] {
  const trees = repoTrees(rel);
  const path = (t: Pick<RepoTree, 'dir' | 'arch' | 'kind'>) => posix.join(t.dir, t.arch, t.kind);
  const out: BootTree[] = [];
  for (const t of trees) {
    if (t.dir !== releaseIso(rel).lorax.variant || (t.kind !== 'os' && t.kind !== 'kickstart') || !rel.arches.includes(t.arch as Arch)) continue;
    const kind = t.kind;
    // The .treeinfo names the other lorax repos' trees of the same kind (../../../AppStream/<arch>/kickstart).
    for (const dir of releaseIso(rel).lorax.repos) {
      if (!trees.some((x) => x.dir === dir && x.arch === t.arch && x.kind === kind)) throw new Error(`${path(t)}: its .treeinfo would name ${dir}/${t.arch}/${kind}, which the release does not have (iso.lorax.repos)`);
    }
    out.push({ arch: t.arch as Arch, kind, path: path(t) });
  }
  return out;
}

/**
 * pull-unpack-tree's step 7: the arch's boot tree (images/, EFI/, isolinux/… as lorax made it)
 * into an installable tree, with the release's extra files and pungi's extra_files.json at its
 * root and a .treeinfo naming the tree's own repo, the other lorax repos (AppStream), the
 * kernel, initrd, stage2 and their checksums, so `inst.repo=<url of the tree>` and PXE work.
 */
async function placeBootTree(ctx: StageContext, store: Store, compose: string, t: BootTree, extra: ExtraFile[], ts: number) {
  const rel = ctx.release;
  const boot = readIsoManifest(ctx.root, ctx.project, t.arch);
  const dir = join(compose, t.path);
  const files = boot.tree.filter((f) => !TREE_METADATA.has(f.path));
  // Boot tree directories are the boot tree's alone: what an earlier boot tree left there goes.
  const own = new Set(files.map((f) => f.path));
  for (const top of new Set(files.filter((f) => f.path.includes('/')).map((f) => f.path.split('/')[0]))) {
    if (top === 'Packages' || top === 'repodata') throw new Error(`${t.arch}: the boot tree has a ${top}/ directory, which would mix with the repo's`);
    const d = join(dir, top);
    if (!existsSync(d)) continue;
    for (const e of readdirSync(d, { recursive: true, withFileTypes: true })) {
      const p = join(e.parentPath, e.name).slice(dir.length + 1);
      if (!e.isDirectory() && !own.has(p)) rmSync(join(dir, p), { force: true });
    }
  }
  await mapLimit(files, 8, (f) => store.materialize(f.sha256, join(dir, f.path)));
  for (const f of extra) await store.materialize(f.sha256, join(dir, f.name));
  // Written with the compose's time, as all its metadata: a compose rebuilt from the store is the same files.
  if (extra.length) writeFileIfChanged(join(dir, 'extra_files.json'), stableJson(treeExtraFilesJson(extra.map((f) => ({ file: f.name, size: f.size, sha256: f.sha256 })))), ts);

  const base = boot.tree.find((f) => f.path === '.treeinfo');
  if (!base) throw new Error(`${t.arch}: the boot tree of ${boot.iso.name} has no .treeinfo`);
  const lorax = parseTreeinfo(readFileSync(await store.localPath(base.sha256), 'utf8'));
  // Every file the .treeinfo names gets its [checksums] line, from the sha256 the iso manifest has.
  const named = new Set(treeinfoImagePaths(lorax));
  const ti = discTreeinfo(lorax, {
    repos: releaseIso(rel).lorax.repos,
    mainVariant: releaseIso(rel).lorax.variant,
    disc: false,
    arch: t.arch,
    checksums: Object.fromEntries(files.filter((f) => named.has(f.path)).map((f) => [f.path, `sha256:${f.sha256}`])),
    dropBootIso: false,
    release: { name: rel.fullname, short: rel.shortname, version: revision(rel) },
    kind: t.kind,
  });
  writeFileIfChanged(join(dir, '.treeinfo'), renderTreeinfo(ti), ts);
}

/** An installable tree's .treeinfo loads as productmd reads it, and every path it names is there (files with their checksums). */
function verifyTree(ctx: StageContext, dir: string) {
  const file = join(dir, '.treeinfo');
  const text = readFileSync(file, 'utf8');
  const problems = treeinfoProblems(text).map((p) => `${file}: ${p}`);
  const sums = new Map<string, string>();
  for (const f of readIsoManifest(ctx.root, ctx.project, parseTreeinfo(text).tree.arch as Arch).tree) sums.set(f.path, `sha256:${f.sha256}`);
  const refs = treeinfoReferences(parseTreeinfo(text));
  for (const f of refs.files) {
    const st = statSync(join(dir, f.path), { throwIfNoEntry: false });
    if (!st?.isFile()) problems.push(`${file} names ${f.path}, which is missing`);
    else if (!f.checksum) problems.push(`${file} has no checksum for ${f.path}`);
    else if (f.checksum !== sums.get(f.path)) problems.push(`${file}: ${f.path} is listed as ${f.checksum}, the boot tree has ${sums.get(f.path)}`);
  }
  for (const d of refs.dirs) if (!statSync(join(dir, d), { throwIfNoEntry: false })?.isDirectory()) problems.push(`${file} names ${d}, which is not a directory of the compose`);
  if (problems.length) throw new Error(`installable tree check failed:\n  ${problems.join('\n  ')}`);
}

/** metadata/README: what the directories hold, how files are named, how to verify them. */
function metadataReadme(rel: StageContext['release']): string {
  const name = fullName(rel);
  return [
    `${name}`,
    '',
    `This directory describes the ${name} compose:`,
    '',
    '- COMPOSE_ID: the compose id, <short>-<version>-<YYYYMMDD>.<respin>, the one every file below names.',
    '- composeinfo.json, images.json, rpms.json: productmd 1.2 metadata (variants and their paths,',
    '  every ISO and image with its checksum, every package with its signing key).',
    '- upstream.json: the repomd.xml digest of every tree the compose was made from.',
    `- ${rel.extraFiles.files.join(', ') || 'no extra files'}: the files the release ships beside its packages.`,
    '',
    `ISOs are named <short>-<version>-<arch>-<image>.iso (${rel.shortname}-${revision(rel)}-x86_64-dvd.iso); the`,
    `names ${rel.shortname}-<arch>-<image>.iso and ${rel.shortname}-${rel.major}-latest-<arch>-<image>.iso are links to the newest one.`,
    'Cloud images carry their build date; their *.latest.* names are links to the newest build.',
    '',
    'Every ISO and image has a <name>.CHECKSUM (one name per file, links included), and each directory',
    'a CHECKSUM with all of them, in the format of `sha256sum --tag` with a size comment. Where',
    'CHECKSUM.asc is present it is CHECKSUM, clearsigned by release engineering; check it with',
    '`gpg --verify CHECKSUM.asc`, then the files with `sha256sum -c CHECKSUM`.',
    '',
  ].join('\n');
}

/** Hardlinks the files in, points the aliases at them, writes listings and one `<name>.CHECKSUM` per name, removes strays. */
async function placeDirectory(store: Store, dir: string, files: Placed[], ts: number) {
  mkdirSync(dir, { recursive: true });
  const keep = new Set(['CHECKSUM', 'CHECKSUM.asc']);
  const checksums: FileToWrite[] = [];
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
    // The toolkit's per-name CHECKSUM: an alias gets its own, naming the alias (empanadas §2.4).
    for (const name of [f.name, ...f.aliases]) {
      checksums.push({ file: join(dir, `${name}.CHECKSUM`), data: renderChecksum([{ name, size: f.size, sha256: f.sha256 }]), mtime: ts });
      keep.add(`${name}.CHECKSUM`);
    }
  }
  await writeFilesIfChanged(checksums);
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
        const own = parseChecksum(readFileSync(join(dir, `${name}.CHECKSUM`), 'utf8'));
        if (own.length !== 1 || own[0].name !== name || own[0].sha256 !== f.sha256 || own[0].size !== f.size) problems.push(`${dir}/${name}.CHECKSUM: not the entry of ${name}`);
      }
      for (const a of f.aliases) {
        const p = join(dir, a);
        if (!lstatSync(p).isSymbolicLink() || readlinkSync(p) !== f.name) problems.push(`${p}: alias does not point at ${f.name}`);
      }
    }
  }
  if (problems.length) throw new Error(`finalize consistency check failed:\n  ${problems.join('\n  ')}`);
}


