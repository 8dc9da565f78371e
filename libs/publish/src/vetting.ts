// The vetting report a person reads before approving a staged tree for production: what
// changed (packages per repo tree, ISOs and images, bytes), whether the tree closes
// (repoclosure), whether every CHECKSUM file and every changed package verifies, and the
// digest that `prod` wants approved.
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { diffPackages, parseChecksum, type PackageDiff } from '@rocky/compose';
import { repoDir, type Release, type RepoTree } from '@rocky/config';
import { HashCache, mapLimit, writeFileAtomic, writeJsonAtomic } from '@rocky/exec';
import { decompress, parseRepomd, parseUpdateinfo, readRepoPackages, repoclosure, type RpmPackage } from '@rocky/rpm-repo';
import { treeDigest } from './digest';
import type { PublishResult } from './publish';

export interface ChecksumVerification {
  /** CHECKSUM files checked (relative paths). */
  files: string[];
  entries: number;
  failures: string[];
}

/** Every `CHECKSUM` / `*.CHECKSUM` under `root` verifies against the files it names (sha256 in Node). */
export async function verifyChecksumFiles(root: string, cache = new HashCache()): Promise<ChecksumVerification> {
  const lists: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(rel ? join(root, rel) : root, { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && (e.name === 'CHECKSUM' || e.name.endsWith('.CHECKSUM'))) lists.push(p);
    }
  };
  walk('');
  lists.sort();
  const jobs: { list: string; name: string; file: string; size: number; sha256: string }[] = [];
  const failures: string[] = [];
  for (const list of lists) {
    const dir = join(root, list, '..');
    try {
      for (const e of parseChecksum(readFileSync(join(root, list), 'utf8'))) jobs.push({ list, name: e.name, file: join(dir, e.name), size: e.size, sha256: e.sha256 });
    } catch (e) {
      failures.push(`${list}: ${(e as Error).message}`);
    }
  }
  // Aliases (symlinks) name the same file as the ISO: hash each inode once, on worker threads.
  const byInode = new Map<string, string>();
  const checked: { job: (typeof jobs)[number]; key: string }[] = [];
  for (const j of jobs) {
    let st;
    try {
      st = statSync(j.file);
    } catch {
      failures.push(`${j.list}: ${j.name} is missing`);
      continue;
    }
    if (j.size >= 0 && st.size !== j.size) {
      failures.push(`${j.list}: ${j.name} is ${st.size} bytes, CHECKSUM says ${j.size}`);
      continue;
    }
    const key = `${st.dev}:${st.ino}`;
    if (!byInode.has(key)) byInode.set(key, j.file);
    checked.push({ job: j, key });
  }
  const keys = [...byInode.keys()];
  const sums = await cache.sha256(keys.map((k) => byInode.get(k)!));
  const sumOf = new Map(keys.map((k, i) => [k, sums[i]]));
  for (const { job: j, key } of checked) {
    const got = sumOf.get(key)!;
    if (got !== j.sha256) failures.push(`${j.list}: ${j.name} has sha256 ${got}, CHECKSUM says ${j.sha256}`);
  }
  return { files: lists, entries: jobs.length, failures: failures.sort() };
}

export interface PackageVerification {
  /** Packages whose existence and size were checked. */
  checked: number;
  /** Packages also hashed against their repodata sha256. */
  hashed: number;
  failures: string[];
}

/** Every package the repodata lists exists with its size; those in `hash` (hrefs) also match their sha256 (hashed on worker threads). */
export async function verifyRepoPackages(treeDir: string, pkgs: RpmPackage[], hash: Set<string>, cache = new HashCache()): Promise<PackageVerification> {
  const failures: string[] = [];
  const toHash: RpmPackage[] = [];
  for (const p of pkgs) {
    let size: number;
    try {
      size = statSync(join(treeDir, p.href)).size;
    } catch {
      failures.push(`${p.href}: missing`);
      continue;
    }
    if (size !== p.size) failures.push(`${p.href}: ${size} bytes, repodata says ${p.size}`);
    else if (hash.has(p.href)) toHash.push(p);
  }
  const sums = await cache.sha256(toHash.map((p) => join(treeDir, p.href)));
  toHash.forEach((p, i) => {
    if (sums[i] !== p.sha256) failures.push(`${p.href}: sha256 ${sums[i]}, repodata says ${p.sha256}`);
  });
  return { checked: pkgs.length, hashed: toHash.length, failures: failures.sort() };
}

export interface RepoReport extends PackageDiff {
  /** Tree path in the release dir, e.g. `BaseOS/x86_64/os`. */
  tree: string;
  repo: string;
  arch: string;
  kind: string;
  before: number;
  after: number;
  verification?: PackageVerification;
  /** Advisories of the tree's updateinfo that name packages added or updated here. */
  errata?: { id: string; type: string; packages: string[] }[];
}

export interface ClosureReport {
  repo: string;
  arch: string;
  required: boolean;
  ok: boolean;
  broken: { package: string; unresolved: string[] }[];
}

export interface VettingReport {
  release: string;
  composeId: string;
  time: string;
  /** The staged release directory. */
  stagingDir: string;
  digest: string;
  entries: number;
  files: number;
  bytes: number;
  /** No check failed (repoclosure of required repos, checksums, packages). */
  ok: boolean;
  problems: string[];
  publish: {
    changed: boolean;
    adds: number;
    updates: number;
    deletes: number;
    bytes: { add: number; update: number; delete: number };
    phases: string[];
  };
  repos: RepoReport[];
  images: { added: string[]; updated: string[]; removed: string[] };
  repoclosure: ClosureReport[];
  checksums: ChecksumVerification;
  /** Trees whose repodata was regenerated (createrepo_c) or re-signed in this publish. */
  regenerated: string[];
  signed: string[];
  torrents: { created: string[]; skipped: string[] };
}

const IMAGE_RE = /\.(iso|qcow2|raw|raw\.xz|tar\.xz|vhd|vhdx|box|wsl|img)$/;
/** ISOs and images among published paths. */
export const isImagePath = (p: string) => IMAGE_RE.test(p);

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

export function renderVettingMarkdown(r: VettingReport): string {
  const l: string[] = [];
  l.push(`# Vetting report: ${r.release}`, '');
  l.push(`- compose: \`${r.composeId}\``, `- staged tree: \`${r.stagingDir}\``, `- time: ${r.time}`);
  l.push(`- **digest: \`${r.digest}\`** (${r.entries} entries, ${r.files} files, ${mib(r.bytes)})`);
  l.push(`- result: ${r.ok ? '**all checks passed**' : `**${r.problems.length} problem(s)**`}`, '');
  if (r.problems.length) l.push('## Problems', '', ...r.problems.map((p) => `- ${p}`), '');
  l.push('## Publish', '');
  l.push(
    r.publish.changed
      ? `${r.publish.adds} added (${mib(r.publish.bytes.add)}), ${r.publish.updates} updated (${mib(r.publish.bytes.update)}), ${r.publish.deletes} deleted (${mib(r.publish.bytes.delete)}); phases: ${r.publish.phases.join(' → ')}`
      : 'No change: staging already matched the compose.',
    '',
  );
  if (r.regenerated.length) l.push(`Repodata regenerated: ${r.regenerated.join(', ')}`, '');
  if (r.signed.length) l.push(`repomd.xml signed: ${r.signed.join(', ')}`, '');
  l.push('## Packages', '', '| tree | before | after | added | removed | updated | verified |', '|---|---:|---:|---:|---:|---:|---|');
  for (const t of r.repos) {
    const v = t.verification ? (t.verification.failures.length ? `${t.verification.failures.length} failures` : `ok (${t.verification.hashed} hashed)`) : '-';
    l.push(`| ${t.tree} | ${t.before} | ${t.after} | ${t.added.length} | ${t.removed.length} | ${t.updated.length} | ${v} |`);
  }
  l.push('');
  for (const t of r.repos.filter((x) => x.added.length || x.removed.length || x.updated.length)) {
    l.push(`### ${t.tree}`, '');
    for (const n of t.added.slice(0, 200)) l.push(`- added \`${n}\``);
    for (const u of t.updated.slice(0, 200)) l.push(`- updated \`${u.name}.${u.arch}\`: ${u.from.join(', ') || '(kept)'} → ${u.to.join(', ')}`);
    for (const n of t.removed.slice(0, 200)) l.push(`- removed \`${n}\``);
    for (const e of t.errata ?? []) l.push(`- errata \`${e.id}\` (${e.type}): ${e.packages.join(', ')}`);
    const more = Math.max(0, t.added.length - 200) + Math.max(0, t.updated.length - 200) + Math.max(0, t.removed.length - 200);
    if (more) l.push(`- … ${more} more (see report.json)`);
    l.push('');
  }
  l.push('## ISOs and images', '');
  const img = [...r.images.added.map((p) => `- added \`${p}\``), ...r.images.updated.map((p) => `- updated \`${p}\``), ...r.images.removed.map((p) => `- removed \`${p}\``)];
  l.push(...(img.length ? img : ['Media unchanged: every ISO and image is published as it was.']), '');
  l.push('## Repoclosure', '', '| repo | arch | required | result |', '|---|---|---|---|');
  for (const c of r.repoclosure) l.push(`| ${c.repo} | ${c.arch} | ${c.required ? 'yes' : 'no'} | ${c.ok ? 'ok' : `${c.broken.length} broken: ${c.broken.slice(0, 5).map((b) => `${b.package} needs ${b.unresolved.join(', ')}`).join('; ')}`} |`);
  l.push('', '## Checksums', '');
  l.push(`${r.checksums.files.length} CHECKSUM files, ${r.checksums.entries} entries: ${r.checksums.failures.length ? `${r.checksums.failures.length} failures` : 'all verify'}`);
  for (const f of r.checksums.failures) l.push(`- ${f}`);
  if (r.torrents.created.length || r.torrents.skipped.length) l.push('', '## Torrents', '', `${r.torrents.created.length} created, ${r.torrents.skipped.length} unchanged`);
  l.push('', '## Approve', '', `After review: \`nx run ${r.release}:prod --approve=${r.digest}\`, or write the approval file (see libs/publish/src/approval.ts).`, '');
  return l.join('\n');
}

/**
 * report.json and report.md, each written atomically into `dir`, and `digest` (what prod wants
 * approved) only for a tree that passed: a failed tree has no digest anyone could approve.
 */
export function writeVettingReport(dir: string, r: VettingReport): void {
  writeJsonAtomic(join(dir, 'report.json'), r);
  writeFileAtomic(join(dir, 'report.md'), renderVettingMarkdown(r));
  if (r.ok) writeFileAtomic(join(dir, 'digest'), `${r.digest}\n`);
  else rmSync(join(dir, 'digest'), { force: true });
}

/** The packages of a staged tree's repodata, or none when it has none or it cannot be read (everything then counts as new). */
export function stagedPackages(treeDir: string): RpmPackage[] {
  try {
    return readRepoPackages(treeDir) ?? [];
  } catch {
    return [];
  }
}

export interface VetInput {
  release: Release;
  composeId: string;
  releaseDir: string;
  trees: RepoTree[];
  /** Each tree's packages before this publish (tree path → packages). */
  before: Map<string, RpmPackage[]>;
  result: PublishResult;
  /** Hashes of the staged files (shared with the digest, kept between runs). */
  cache: HashCache;
  regenerated: string[];
  signed: string[];
  torrents: { created: string[]; skipped: string[] };
  /** Scratch for repoclosure. */
  work: string;
}

/** Vets a staged tree: packages per tree (changed ones hashed), repoclosure with the release's closure map, every CHECKSUM. */
export async function vetStagedTree(a: VetInput): Promise<VettingReport> {
  const rel = a.release;
  const problems: string[] = [];
  const changedPaths = new Set([...a.result.adds, ...a.result.updates].map((e) => e.path));
  const repos: RepoReport[] = [];
  for (const t of a.trees) {
    const tp = t.path;
    const dir = join(a.releaseDir, tp);
    let after: RpmPackage[];
    try {
      after = readRepoPackages(dir) ?? [];
    } catch (e) {
      problems.push(`${tp}: staged repodata unreadable: ${(e as Error).message}`);
      continue;
    }
    const hash = new Set(after.filter((p) => changedPaths.has(`${tp}/${p.href}`)).map((p) => p.href));
    const verification = await verifyRepoPackages(dir, after, hash, a.cache);
    problems.push(...verification.failures.map((f) => `${tp}: ${f}`));
    const before = a.before.get(tp) ?? [];
    const diff = diffPackages(before, after);
    repos.push({ tree: tp, repo: t.dir, arch: t.arch, kind: t.kind, before: before.length, after: after.length, ...diff, errata: treeErrata(dir, diff), verification });
  }

  const closure = await closeStagedTree(rel, a.releaseDir, a.trees, join(a.work, 'repoclosure'));
  for (const c of closure.filter((x) => x.required && !x.ok)) problems.push(`repoclosure ${c.repo}/${c.arch}: ${c.broken.map((b) => `${b.package} needs ${b.unresolved.join(', ')}`).join('; ')}`);

  const checksums = await verifyChecksumFiles(a.releaseDir, a.cache);
  // The digest last: every file is then in the cache (hashed above, or unchanged since an earlier run).
  const digest = await treeDigest(a.releaseDir, a.cache);
  problems.push(...checksums.failures.map((f) => `checksum: ${f}`));

  const r = a.result;
  const images = (list: PublishResult['adds']) => list.filter((e) => isImagePath(e.path) && e.type === 'file').map((e) => e.path);
  return {
    release: rel.name,
    composeId: a.composeId,
    time: new Date().toISOString(),
    stagingDir: a.releaseDir,
    digest: digest.digest,
    entries: digest.entries,
    files: digest.files,
    bytes: digest.bytes,
    ok: problems.length === 0,
    problems,
    publish: { changed: r.changed, adds: r.adds.length, updates: r.updates.length, deletes: r.deletes.length, bytes: r.bytes, phases: r.phases.map((p) => p.name) },
    repos,
    images: { added: images(r.adds), updated: images(r.updates), removed: images(r.deletes) },
    repoclosure: closure,
    checksums,
    regenerated: a.regenerated,
    signed: a.signed,
    torrents: a.torrents,
  };
}

/** The advisories of a tree's updateinfo (if it has one) that name a package this publish added or updated there. */
function treeErrata(treeDir: string, diff: PackageDiff): RepoReport['errata'] {
  const file = join(treeDir, 'repodata', 'repomd.xml');
  if (!existsSync(file)) return undefined;
  const rec = parseRepomd(readFileSync(file, 'utf8'), file).records.find((r) => r.type === 'updateinfo');
  if (!rec) return undefined;
  const changed = new Set([...diff.added, ...diff.updated.flatMap((u) => u.to)]);
  const advisories = parseUpdateinfo(decompress(readFileSync(join(treeDir, rec.href)), rec.href).toString('utf8'), join(treeDir, rec.href));
  return advisories.filter((a) => a.packages.some((p) => changed.has(p))).map((a) => ({ id: a.id, type: a.type, packages: a.packages.filter((p) => changed.has(p)) }));
}

/** dnf repoclosure of every staged os tree with the release's closure map (required ones must pass). */
async function closeStagedTree(rel: Release, releaseDir: string, trees: RepoTree[], work: string): Promise<ClosureReport[]> {
  const byDir = new Map(rel.repos.map((r) => [repoDir(r), r]));
  const checks = trees.filter((t) => t.kind === 'os' && t.arch === t.group);
  return mapLimit(checks, 2, async (t) => {
    const repo = byDir.get(t.dir)!;
    const deps = repo.closure
      .map((d) => trees.find((x) => x.kind === 'os' && x.dir === d && x.arch === t.arch))
      .filter((x): x is RepoTree => !!x)
      .map((x) => ({ id: x.dir, path: join(releaseDir, x.path) }));
    const res = await repoclosure({ check: { id: t.dir, path: join(releaseDir, t.path) }, deps, arch: t.arch, releasever: rel.major, workDir: join(work, `${t.dir}-${t.arch}`) });
    return { repo: t.dir, arch: t.arch, required: repo.mustClose, ok: res.ok, broken: res.broken.map((b) => ({ package: b.package, unresolved: b.unresolved })) };
  });
}
