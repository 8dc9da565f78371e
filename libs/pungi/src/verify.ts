// Verifying a compose pungi wrote, before anything of it is staged: its STATUS (FINISHED, or
// FINISHED_INCOMPLETE with the failed deliverables named; STARTED, DOOMED and TERMINATED are
// refused), COMPOSE_ID, compose/metadata/{composeinfo,rpms,images}.json as productmd defines them,
// every repodata file and every package each repodata names (present, its size, its sha256),
// rpms.json and the repodata agreeing package for package, every image with its checksums, and
// optionally dnf repoclosure of every os tree.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseComposeInfo, parseImagesJson, parseRpmsJson, parseStatus, type ComposeInfoRead, type ComposeStatus, type ImagesJsonEntry, type RpmsJsonEntry } from '@rocky/compose';
import { parsePungiComposeId, PungiComposeLayout } from '@rocky/config';
import { hashFile, HashCache, mapLimit } from '@rocky/exec';
import { parsePrimary, parseRepomd, readRepodata, repoclosure, type LocalRepo, type RepomdRecord, type RpmPackage } from '@rocky/rpm-repo';
import { treesOf, type PungiTree } from './trees';

/** A deliverable pungi recorded as failed (logs/global/deliverables.json `failed`: kind -> [variant, arch, subvariant][]). */
export interface FailedDeliverable {
  /** `iso`, `buildinstall`, `image-build`, `live-media`, `ostree`... */
  kind: string;
  variant: string;
  arch: string;
  subvariant: string | null;
}

/** A compose that cannot be used; `status` is its STATUS word when it has one. */
export class PungiComposeError extends Error {
  constructor(
    message: string,
    readonly dir: string,
    readonly status?: ComposeStatus,
  ) {
    super(message);
    this.name = 'PungiComposeError';
  }
}

export interface VerifiedTree extends PungiTree {
  /** The packages its repodata lists (hrefs relative to the tree). */
  packages: RpmPackage[];
  /** repomd.xml's records (hrefs relative to the tree). */
  repodata: RepomdRecord[];
}

export interface VerifiedCompose {
  dir: string;
  id: string;
  status: 'FINISHED' | 'FINISHED_INCOMPLETE';
  /** Empty for FINISHED. */
  failed: FailedDeliverable[];
  composeInfo: ComposeInfoRead;
  trees: VerifiedTree[];
  rpms: RpmsJsonEntry[];
  /** Empty when the compose made no images (pungi then writes no images.json). */
  images: (ImagesJsonEntry & { sha256: string })[];
  /** Files hashed (packages, repodata, images). */
  checked: number;
  closure: { tree: string; ok: boolean; required: boolean; broken: { package: string; unresolved: string[] }[] }[];
}

export interface VerifyOptions {
  /** Hashes kept between runs (a rerun reads only what changed). */
  hashCache?: HashCache;
  /**
   * Run `dnf repoclosure` of every os tree. `deps` gives the trees a tree's dependencies resolve
   * against (default: every os tree of its arch in this compose) and whether it must close
   * (default true); another compose's trees may be given (Extras against Rocky's BaseOS).
   */
  repoclosure?: {
    workDir: string;
    deps?: (tree: PungiTree, trees: PungiTree[]) => { repos: LocalRepo[]; required: boolean };
  };
  /** Problems listed in the error before "and N more" (default 20). */
  maxProblems?: number;
}

/** The compose's STATUS; a missing or unknown one is an error naming the file. */
export function readPungiStatus(dir: string): ComposeStatus {
  const file = new PungiComposeLayout(dir).status;
  if (!existsSync(file)) throw new PungiComposeError(`${file}: missing (not a pungi compose, or pungi died before it started)`, dir);
  try {
    return parseStatus(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new PungiComposeError(`${file}: ${(e as Error).message}`, dir);
  }
}

/** The failed deliverables pungi recorded in logs/global/deliverables.json (none when the file is absent). */
export function failedDeliverables(dir: string): FailedDeliverable[] {
  const file = new PungiComposeLayout(dir).deliverables;
  if (!existsSync(file)) return [];
  let doc: { failed?: Record<string, unknown> };
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new PungiComposeError(`${file}: not valid JSON: ${(e as Error).message}`, dir);
  }
  const out: FailedDeliverable[] = [];
  for (const [kind, list] of Object.entries(doc.failed ?? {})) {
    if (!Array.isArray(list)) throw new PungiComposeError(`${file}: failed.${kind} must be a list of [variant, arch, subvariant]`, dir);
    for (const entry of list) {
      if (!Array.isArray(entry) || entry.length !== 3) throw new PungiComposeError(`${file}: failed.${kind} has an entry that is not [variant, arch, subvariant]: ${JSON.stringify(entry)}`, dir);
      const [variant, arch, subvariant] = entry as [string, string, string | null];
      out.push({ kind, variant: variant ?? '', arch: arch ?? '', subvariant: subvariant ?? null });
    }
  }
  return out;
}

export const describeDeliverable = (d: FailedDeliverable) =>
  `${d.kind} of ${d.variant || '(no variant)'}${d.arch ? `.${d.arch}` : ''}${d.subvariant ? ` (${d.subvariant})` : ''}`;

/** The last error pungi logged, to put in the message of a failed compose. */
function lastError(layout: PungiComposeLayout): string | undefined {
  const log = layout.log(undefined, 'pungi');
  if (!existsSync(log)) return undefined;
  const lines = readFileSync(log, 'utf8').split('\n').filter((l) => /\[(ERROR|CRITICAL)/.test(l));
  return lines.find((l) => /Compose run failed/.test(l)) ?? lines.at(-1);
}

/** STATUS says whether the compose may be used at all: refuses STARTED, DOOMED and TERMINATED with why and where the logs are. */
export function checkPungiStatus(dir: string): { status: 'FINISHED' | 'FINISHED_INCOMPLETE'; failed: FailedDeliverable[] } {
  const layout = new PungiComposeLayout(dir);
  const status = readPungiStatus(dir);
  const logs = `${layout.log(undefined, 'pungi')}${existsSync(layout.log(undefined, 'traceback')) ? ` and ${layout.log(undefined, 'traceback')}` : ''}`;
  const err = lastError(layout);
  switch (status) {
    case 'STARTED':
      throw new PungiComposeError(`${dir}: STATUS is STARTED: pungi is still running or died without recording an end; it is not a finished compose (see ${logs})`, dir, status);
    case 'DOOMED':
      throw new PungiComposeError(`${dir}: STATUS is DOOMED: pungi failed${err ? `: ${err.replace(/^.*?\] /, '')}` : ''} (see ${logs}); a doomed compose is never staged`, dir, status);
    case 'TERMINATED':
      throw new PungiComposeError(`${dir}: STATUS is TERMINATED: pungi was stopped by a signal (see ${logs}); it is not a finished compose`, dir, status);
    case 'FINISHED':
      return { status, failed: [] };
    case 'FINISHED_INCOMPLETE': {
      const failed = failedDeliverables(dir);
      if (!failed.length) throw new PungiComposeError(`${dir}: STATUS is FINISHED_INCOMPLETE but ${layout.deliverables} names no failed deliverable`, dir, status);
      return { status, failed };
    }
  }
}

function readMetadata<T>(layout: PungiComposeLayout, name: string, parse: (text: string, file: string) => T, optional: true): T | undefined;
function readMetadata<T>(layout: PungiComposeLayout, name: string, parse: (text: string, file: string) => T): T;
function readMetadata<T>(layout: PungiComposeLayout, name: string, parse: (text: string, file: string) => T, optional = false): T | undefined {
  const file = layout.metadata(name);
  if (!existsSync(file)) {
    if (optional) return undefined;
    throw new PungiComposeError(`${file}: missing`, layout.dir);
  }
  try {
    return parse(readFileSync(file, 'utf8'), file);
  } catch (e) {
    throw new PungiComposeError((e as Error).message, layout.dir);
  }
}

/** The size of `file`, or undefined when it is missing. */
const sizeOf = (file: string) => {
  try {
    return statSync(file).size;
  } catch {
    return undefined;
  }
};

/**
 * Verifies the pungi compose in `dir` and returns what it holds. Throws a PungiComposeError that
 * lists every problem found (up to maxProblems); refuses STARTED, DOOMED and TERMINATED composes
 * before reading anything else.
 */
export async function verifyPungiCompose(dir: string, opts: VerifyOptions = {}): Promise<VerifiedCompose> {
  const layout = new PungiComposeLayout(dir);
  const { status, failed } = checkPungiStatus(dir);
  const problems: string[] = [];

  if (!existsSync(layout.composeIdFile)) throw new PungiComposeError(`${layout.composeIdFile}: missing`, dir, status);
  const id = readFileSync(layout.composeIdFile, 'utf8').trim();
  const composeInfo = readMetadata(layout, 'composeinfo.json', parseComposeInfo);
  const rpms = readMetadata(layout, 'rpms.json', parseRpmsJson);
  const imagesJson = readMetadata(layout, 'images.json', parseImagesJson, true);
  for (const [file, c] of [['composeinfo.json', composeInfo.compose], ['rpms.json', rpms.compose], ...(imagesJson ? [['images.json', imagesJson.compose] as const] : [])] as const) {
    if (c.id !== id) problems.push(`${layout.metadata(file)}: compose id ${c.id}, COMPOSE_ID says ${id}`);
  }
  // The id is made of the release and the compose: they must say the same thing.
  const { release: rel, compose: c } = composeInfo;
  const parts = parsePungiComposeId(id, rel.short, rel.version);
  if (!parts || parts.releaseType !== rel.type || parts.date !== c.date || parts.composeType !== c.type || parts.respin !== c.respin)
    problems.push(`COMPOSE_ID ${id} is not the id of composeinfo.json's ${rel.short}-${rel.version} (${rel.type}) compose of ${c.date}, ${c.type}, respin ${c.respin}`);

  let trees: PungiTree[];
  try {
    trees = treesOf(composeInfo, layout.metadata('composeinfo.json'));
  } catch (e) {
    throw new PungiComposeError((e as Error).message, dir, status);
  }
  const cache = opts.hashCache ?? new HashCache();
  const toHash: { file: string; sha256: string; what: string }[] = [];

  // Every tree's repodata, and every package it names.
  const verified: VerifiedTree[] = [];
  const inRepodata = new Map<string, string>(); // path relative to compose/ -> tree
  for (const t of trees) {
    const treeDir = layout.tree(t);
    const repomdFile = join(treeDir, 'repodata', 'repomd.xml');
    if (!existsSync(repomdFile)) {
      problems.push(`${t.path}: no repodata/repomd.xml`);
      continue;
    }
    let repodata: RepomdRecord[];
    let packages: RpmPackage[];
    try {
      repodata = parseRepomd(readFileSync(repomdFile, 'utf8'), repomdFile).records;
      const primary = repodata.find((r) => r.type === 'primary');
      if (!primary) throw new Error(`${repomdFile}: no primary record`);
      for (const r of repodata) {
        const file = join(treeDir, r.href);
        const size = sizeOf(file);
        if (size === undefined) throw new Error(`${t.path}/${r.href}: missing (repomd.xml lists it)`);
        if (r.size !== undefined && size !== r.size) throw new Error(`${t.path}/${r.href}: ${size} bytes, repomd.xml says ${r.size}`);
        toHash.push({ file, sha256: r.sha256, what: `${t.path}/${r.href}` });
      }
      const primaryFile = join(treeDir, primary.href);
      packages = parsePrimary((await readRepodata(primaryFile, primary.href)).toString('utf8'), primaryFile);
    } catch (e) {
      problems.push((e as Error).message);
      continue;
    }
    for (const p of packages) {
      const rel = `${t.path}/${p.href}`;
      inRepodata.set(rel, t.path);
      const size = sizeOf(join(treeDir, p.href));
      if (size === undefined) problems.push(`${rel}: missing (its repodata lists it)`);
      else if (size !== p.size) problems.push(`${rel}: ${size} bytes, its repodata says ${p.size}`);
      else toHash.push({ file: join(treeDir, p.href), sha256: p.sha256, what: rel });
    }
    verified.push({ ...t, packages, repodata });
  }

  // rpms.json and the repodata must agree: pungi's createrepo takes its package lists from rpms.json.
  const inRpms = new Set(rpms.rpms.map((r) => r.path));
  for (const p of inRpms) if (!inRepodata.has(p)) problems.push(`rpms.json lists ${p}, which no repodata of the compose lists`);
  for (const [p, tree] of inRepodata) if (!inRpms.has(p)) problems.push(`${tree}'s repodata lists ${p}, which rpms.json does not`);

  // Images: present, their size, every checksum images.json gives.
  const images: VerifiedCompose['images'] = [];
  const otherSums: { file: string; alg: string; want: string; what: string }[] = [];
  const seenImage = new Set<string>();
  for (const img of imagesJson?.images ?? []) {
    const file = join(layout.compose, img.path);
    const size = sizeOf(file);
    if (size === undefined) {
      problems.push(`${img.path}: missing (images.json lists it)`);
      continue;
    }
    if (size !== img.size) problems.push(`${img.path}: ${size} bytes, images.json says ${img.size}`);
    if (!img.checksums.sha256) problems.push(`${img.path}: images.json gives no sha256`);
    else {
      images.push({ ...img, sha256: img.checksums.sha256 });
      if (!seenImage.has(img.path)) toHash.push({ file, sha256: img.checksums.sha256, what: img.path });
    }
    if (!seenImage.has(img.path)) for (const [alg, want] of Object.entries(img.checksums)) if (alg !== 'sha256') otherSums.push({ file, alg, want, what: img.path });
    seenImage.add(img.path);
  }

  const sums = await cache.sha256(toHash.map((h) => h.file));
  toHash.forEach((h, i) => {
    if (sums[i] !== h.sha256) problems.push(`${h.what}: sha256 ${sums[i]}, expected ${h.sha256}`);
  });
  await mapLimit(otherSums, 2, async (s) => {
    let got: string;
    try {
      got = await hashFile(s.file, s.alg);
    } catch (e) {
      problems.push(`${s.what}: cannot compute its ${s.alg}: ${(e as Error).message}`);
      return;
    }
    if (got !== s.want) problems.push(`${s.what}: ${s.alg} ${got}, images.json says ${s.want}`);
  });

  // Repoclosure of every os tree (only of a compose whose files are all there).
  const closure: VerifiedCompose['closure'] = [];
  if (opts.repoclosure && !problems.length) {
    const rc = opts.repoclosure;
    const releasever = composeInfo.release.version.split('.')[0];
    for (const t of trees.filter((x) => x.kind === 'os')) {
      const { repos, required } = rc.deps?.(t, trees) ?? {
        repos: trees.filter((o) => o.kind === 'os' && o.arch === t.arch && o !== t).map((o) => ({ id: `${o.variant}-${o.arch}`, path: layout.tree(o) })),
        required: true,
      };
      const r = await repoclosure({
        check: { id: `${t.variant}-${t.arch}`, path: layout.tree(t) },
        deps: repos,
        arch: t.arch,
        releasever,
        workDir: join(rc.workDir, `${t.variant}-${t.arch}`),
        logFile: join(rc.workDir, `repoclosure-${t.variant}.${t.arch}.log`),
      });
      closure.push({ tree: t.path, ok: r.ok, required, broken: r.broken.map((b) => ({ package: b.package, unresolved: b.unresolved })) });
      if (!r.ok && required) problems.push(`${t.path} does not close: ${r.broken.map((b) => `${b.package} needs ${b.unresolved.join(', ')}`).join('; ')}`);
    }
  }

  if (problems.length) {
    const max = opts.maxProblems ?? 20;
    const more = problems.length > max ? `\n  … and ${problems.length - max} more` : '';
    throw new PungiComposeError(`${dir}: the compose does not verify (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n  ${problems.slice(0, max).join('\n  ')}${more}`, dir, status);
  }
  return { dir, id, status, failed, composeInfo, trees: verified, rpms: rpms.rpms, images, checked: toHash.length, closure };
}
