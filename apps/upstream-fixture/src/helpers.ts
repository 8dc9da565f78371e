// Test helpers that change the upstream the way real life does: one package rebuilt in one
// repo/arch, a repo that does not close, repodata pointing outside the repo. Files may be
// hardlinked into other trees and the cache, so nothing is modified in place: new files are
// written and renamed over old names.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { XMLBuilder, XMLParser } from 'fast-xml-parser';
import { readJson, sha256, writeFileAtomic } from '@rocky/exec';
import { createrepo, modifyrepo, parseModules, readRepodata, renderModules, rpmSignatureSpans, xmlDecoding } from '@rocky/rpm-repo';
import { FixtureLayout, packageHref } from './paths';
import { RELEASE_SPEC, withRootLock, swapDir, type FixtureState } from './fixture';
import { readSpecManifest, rpmbuild } from './rpmbuild';
import { createrepoOptions, link } from './repo';
import { detachSign, killAgent, type SigningKey } from './gpg';
import { readPrimary, readRepomd } from './repodata';
import type { PkgDef, SpecDef } from './model';

/** `1.el9` → `2.el9`, `0.beta1.el9` → `1.beta1.el9`. */
export function bumpRelease(release: string): string {
  const m = /^(\d+)(.*)$/.exec(release);
  if (!m) throw new Error(`cannot bump release ${release}`);
  return `${Number(m[1]) + 1}${m[2]}`;
}

/** Gives `tree/repodata` files of its own (they may be hardlinks shared with other trees). */
function privateRepodata(tree: string): void {
  const dir = join(tree, 'repodata');
  if (!existsSync(dir)) return;
  const copy = join(tree, `.repodata-copy-${process.pid}`);
  rmSync(copy, { recursive: true, force: true });
  mkdirSync(copy);
  for (const f of readdirSync(dir)) copyFileSync(join(dir, f), join(copy, f));
  swapDir(copy, dir);
}

/** createrepo_c --update of a tree, keeping its comps, then a fresh repomd signature. */
async function refreshRepodata(tree: string, key: SigningKey | undefined): Promise<void> {
  privateRepodata(tree);
  const update = existsSync(join(tree, 'repodata', 'repomd.xml'));
  await createrepo({ ...createrepoOptions(tree), update, keepAllMetadata: update });
  if (key) await detachSign(key, join(tree, 'repodata', 'repomd.xml'));
}

/** The key a fixture project's packages and repodata are signed with (its own, or the main one). */
function projectKey(layout: FixtureLayout, project: string): SigningKey {
  return layout.key(readJson<FixtureState>(layout.state).releases[project]?.key ?? 'main');
}

function withFixtureLock<T>(layout: FixtureLayout, fn: () => Promise<T>): Promise<T> {
  return withRootLock(layout, () => undefined, async () => {
    try {
      return await fn();
    } finally {
      await killAgent(layout.gnupgHome);
      await killAgent(layout.key('sig').home);
    }
  });
}

/**
 * Rebuilds one package with a bumped Release in one repo/arch only (e.g. aarch64 BaseOS),
 * signs it, updates that tree's repodata and re-signs its repomd.xml.
 */
export async function updatePackage(opts: { root: string; project: string; repo: string; arch: string; name: string; advisory?: { id: string; type: 'security' | 'bugfix' | 'enhancement' } }): Promise<{ oldHref: string; newHref: string }> {
  const layout = new FixtureLayout(resolve(opts.root));
  if (opts.arch === 'src' || opts.arch.endsWith('-debug')) throw new Error(`updatePackage: ${opts.arch} is not a binary tree`);
  const tree = layout.tree(opts.project, opts.repo, opts.arch);
  return withFixtureLock(layout, async () => {
    const state = readJson<FixtureState>(layout.state);
    const rs = state.releases[opts.project];
    if (!rs || !rs.specs[opts.repo]) throw new Error(`updatePackage: no repo ${opts.repo} in fixture project ${opts.project}`);
    const old = readPrimary(tree).find((p) => p.name === opts.name && (p.arch === opts.arch || p.arch === 'noarch'));
    if (!old) throw new Error(`updatePackage: no package ${opts.name} in ${tree}`);
    const key = layout.key(rs.key ?? 'main');
    const hashes = [rs.specs[opts.repo], ...(opts.repo === rs.baseRepo ? [rs.specs[RELEASE_SPEC]] : [])];
    let found: { spec: SpecDef; pkg: PkgDef } | undefined;
    for (const h of hashes) {
      const { spec } = readSpecManifest(layout, h);
      const pkg = spec.packages.find((p) => p.name === opts.name);
      if (pkg) found = { spec, pkg };
    }
    if (!found) throw new Error(`updatePackage: ${opts.name} is not defined by the fixture's specs`);
    const release = bumpRelease(old.release);
    const pkg: PkgDef = { ...found.pkg, release, debuginfo: false };
    const spec: SpecDef = {
      ...found.spec,
      release: found.spec.name === pkg.name ? release : found.spec.release,
      packages: [pkg],
      targets: pkg.noarch ? [] : [opts.arch],
    };
    const work = join(layout.internal, 'update', `${process.pid}`);
    try {
      const built = await rpmbuild(spec, work, key, { srpm: false });
      const rpm = built.rpms[0];
      const newHref = packageHref(rpm.file);
      if (newHref === old.href) throw new Error(`updatePackage: ${rpm.file} is already in ${tree}`);
      link(join(built.dir, rpm.rel), join(tree, newHref));
      unlinkSync(join(tree, old.href));
      await refreshRepodata(tree, key);
      if (opts.advisory) await addAdvisory(tree, key, { ...opts.advisory, pkg: { name: pkg.name, epoch: '0', version: pkg.version, release, arch: pkg.noarch ? 'noarch' : opts.arch, file: newHref.split('/').pop()! } });
      return { oldHref: old.href, newHref };
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
}

/** One package (by name) of one repo/arch of a fixture project. */
interface PackageIn {
  root: string;
  project: string;
  repo: string;
  arch: string;
  name: string;
}

/**
 * Changes one package's file in its tree (`change`, under the fixture's lock), then refreshes and
 * re-signs that tree's repodata with the project's key. `who` names the helper in its errors.
 */
function changePackage(who: string, opts: PackageIn, change: (file: string) => void): Promise<{ href: string }> {
  const layout = new FixtureLayout(resolve(opts.root));
  const tree = layout.tree(opts.project, opts.repo, opts.arch);
  return withFixtureLock(layout, async () => {
    const p = readPrimary(tree).find((x) => x.name === opts.name);
    if (!p) throw new Error(`${who}: no package ${opts.name} in ${tree}`);
    change(join(tree, p.href));
    await refreshRepodata(tree, projectKey(layout, opts.project));
    return { href: p.href };
  });
}

/**
 * Removes one package from one repo/arch of a fixture project (upstream dropped it), then
 * refreshes and re-signs that tree's repodata.
 */
export function removePackage(opts: PackageIn): Promise<{ href: string }> {
  return changePackage('removePackage', opts, (file) => unlinkSync(file));
}

/**
 * Replaces one package of one repo/arch with a copy whose signatures do not verify (the last byte
 * of each signature in its signature header changed: the signer's key id still reads as the
 * fixture key's), then refreshes and re-signs that tree's repodata: what a faulty signing service
 * would publish, in metadata the upstream key signs. Other trees' hardlinks keep the good bytes.
 */
export function damageSignature(opts: PackageIn): Promise<{ href: string }> {
  return changePackage('damageSignature', opts, (file) => {
    const bytes = Buffer.from(readFileSync(file));
    if (!damageSignatures(bytes)) throw new Error(`damageSignature: ${file} is not signed`);
    writeFileSync(`${file}.damaged`, bytes);
    renameSync(`${file}.damaged`, file);
  });
}

/** Changes the last byte (in the signature's MPI) of every OpenPGP signature in an RPM's signature header, in place; returns how many. */
export function damageSignatures(rpm: Buffer): number {
  const spans = rpmSignatureSpans(rpm, 'damageSignatures');
  for (const { end } of spans) rpm[end - 1] ^= 0xff;
  return spans.length;
}

/**
 * Drops a module stream from a repo of a fixture project, as koji does when its builds are
 * untagged (the stream went EOL): its packages leave every tree of the repo (sources included)
 * and its modulemd documents the module metadata; the repodata is refreshed and re-signed.
 * Returns the hrefs removed, per tree (`<upstream arch>/<href>`).
 */
export async function dropModuleStream(opts: { root: string; project: string; repo: string; module: string; stream: string }): Promise<string[]> {
  const layout = new FixtureLayout(resolve(opts.root));
  const repoDir = dirname(layout.tree(opts.project, opts.repo, 'src'));
  return withFixtureLock(layout, async () => {
    const arches = readdirSync(repoDir).filter((a) => existsSync(join(repoDir, a, 'repodata', 'repomd.xml')));
    const artifacts = new Set<string>();
    const modules = new Map<string, string>();
    for (const a of arches) {
      const rec = readRepomd(join(repoDir, a)).find((r) => r.type === 'modules');
      if (!rec) continue;
      const docs = parseModules((await readRepodata(join(repoDir, a, rec.href), rec.href)).toString('utf8'), `${a} modules`);
      const gone = docs.filter((d) => d.document === 'modulemd' && d.module === opts.module && d.stream === opts.stream);
      if (!gone.length) continue;
      for (const d of gone) for (const r of [...d.artifacts, ...d.sources]) artifacts.add(r);
      modules.set(a, renderModules(docs.filter((d) => !gone.includes(d))));
    }
    if (!modules.size) throw new Error(`dropModuleStream: no stream ${opts.module}:${opts.stream} in ${repoDir}`);
    const removed: string[] = [];
    for (const a of arches) {
      const tree = join(repoDir, a);
      const drop = readPrimary(tree).filter((p) => artifacts.has(`${p.name}-0:${p.version}-${p.release}.${p.arch}`));
      if (!drop.length && !modules.has(a)) continue;
      for (const p of drop) {
        unlinkSync(join(tree, p.href));
        removed.push(`${a}/${p.href}`);
      }
      privateRepodata(tree);
      await createrepo({ ...createrepoOptions(tree), update: true, keepAllMetadata: true });
      const yaml = modules.get(a);
      if (yaml !== undefined) {
        const work = mkdtempSync(join(tmpdir(), 'modules-'));
        try {
          writeFileAtomic(join(work, 'modules.yaml'), yaml);
          await modifyrepo({ mdtype: 'modules', file: join(work, 'modules.yaml'), repodata: join(tree, 'repodata') });
        } finally {
          rmSync(work, { recursive: true, force: true });
        }
      }
      await detachSign(projectKey(layout, opts.project), join(tree, 'repodata', 'repomd.xml'));
    }
    return removed;
  });
}

/**
 * One advisory more in a tree's updateinfo.xml (as the errata service publishes them), its
 * repomd.xml signed again. The advisories already there stay.
 */
async function addAdvisory(tree: string, key: SigningKey, a: { id: string; type: string; pkg: { name: string; epoch: string; version: string; release: string; arch: string; file: string } }) {
  const repomd = readRepomd(tree);
  const rec = repomd.find((r) => r.type === 'updateinfo');
  const before = rec ? gunzipSync(readFileSync(join(tree, rec.href))).toString('utf8') : '<?xml version="1.0" encoding="UTF-8"?>\n<updates>\n</updates>\n';
  const x = (v: string) => v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');
  const p = a.pkg;
  const update =
    `  <update from="releng@rockylinux.invalid" status="final" type="${x(a.type)}" version="2">\n` +
    `    <id>${x(a.id)}</id>\n    <title>${x(p.name)} update</title>\n    <issued date="2026-12-06 00:00:00"/>\n    <description>${x(p.name)} ${x(p.version)}-${x(p.release)}</description>\n` +
    `    <pkglist><collection short="fixture"><name>fixture</name><package name="${x(p.name)}" epoch="${x(p.epoch)}" version="${x(p.version)}" release="${x(p.release)}" arch="${x(p.arch)}" src=""><filename>${x(p.file)}</filename></package></collection></pkglist>\n  </update>\n`;
  const work = mkdtempSync(join(tmpdir(), 'advisory-'));
  try {
    const file = join(work, 'updateinfo.xml');
    writeFileAtomic(file, before.replace(/<\/updates>\s*$/, `${update}</updates>\n`));
    privateRepodata(tree);
    await modifyrepo({ mdtype: 'updateinfo', file, repodata: join(tree, 'repodata') });
    await detachSign(key, join(tree, 'repodata', 'repomd.xml'));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The fixture root `dir` lives in, if any (its key then signs what the helpers write). */
function findFixtureRoot(dir: string): FixtureLayout | undefined {
  for (let d = resolve(dir); ; d = dirname(d)) {
    const l = new FixtureLayout(d);
    if (existsSync(l.keyFile) && existsSync(l.gnupgHome) && existsSync(l.internal)) return l;
    if (dirname(d) === d) return undefined;
  }
}

/**
 * Builds `pkg` with the fixture's rpmbuild path and adds it to the repo `dir` under `href`
 * (default: the hashed layout of its file name; a real repo may name files as it likes), then
 * refreshes the repodata with createrepo_c. Packages already in `dir` stay; inside a fixture
 * root the package and repomd.xml are signed with the fixture key. Returns the href.
 */
export async function addPackage(dir: string, pkg: PkgDef, href?: string): Promise<string> {
  const fixture = findFixtureRoot(dir);
  const spec: SpecDef = { name: pkg.name, version: pkg.version, release: pkg.release, summary: pkg.summary, packages: [pkg], targets: [] };
  if (!pkg.noarch) throw new Error(`addPackage: ${pkg.name} must be noarch`);
  const work = mkdtempSync(join(tmpdir(), 'add-package-'));
  try {
    const built = await rpmbuild(spec, join(work, 'b'), fixture?.key('main'), { srpm: false });
    const rpm = built.rpms[0];
    const rel = href ?? packageHref(rpm.file);
    const dest = join(dir, rel);
    rmSync(dest, { force: true });
    link(join(built.dir, rpm.rel), dest);
    await refreshRepodata(dir, fixture?.key('main'));
    return rel;
  } finally {
    rmSync(work, { recursive: true, force: true });
    if (fixture) await killAgent(fixture.gnupgHome);
  }
}

/**
 * Makes `dir` a repo whose package `broken-fixture` requires `does-not-exist-fixture`, which
 * nothing provides. Packages already in `dir` stay, so this also breaks an existing tree; inside
 * a fixture root the package and repomd.xml are signed with the fixture key.
 */
export async function writeBrokenRepo(dir: string): Promise<void> {
  await addPackage(dir, {
    name: 'broken-fixture',
    version: '1.0',
    release: '1.fixture',
    noarch: true,
    summary: 'A package whose dependency nothing provides',
    requires: ['does-not-exist-fixture >= 1.0'],
    provides: [],
    files: [{ path: '/usr/share/broken-fixture/README', text: 'broken on purpose' }],
    debuginfo: false,
  });
}

// preserveOrder keeps documents as they were, apart from the one value changed.
const orderedOpts = { preserveOrder: true, ignoreAttributes: false, attributeNamePrefix: '@_', parseTagValue: false, trimValues: false } as const;
// Read as XML says (character references decoded), written back escaped by the builder.
const orderedParser = () => new XMLParser({ ...orderedOpts, ...xmlDecoding() });
type Node = Record<string, any>;
const children = (nodes: Node[], tag: string): Node[] => nodes.filter((n) => tag in n);
const text = (nodes: Node[]) => String(nodes.find((n) => '#text' in n)?.['#text'] ?? '');
const setText = (node: Node, tag: string, value: string) => {
  node[tag] = [{ '#text': value }];
};

/** What editPrimary changes in one package of a tree's primary.xml (and in its repomd.xml). */
export interface PrimaryEdit {
  /** The package to change (default: the first). */
  name?: string;
  /** A new location href. */
  href?: string;
  /** A new `<size package>`. */
  size?: number;
  /** An `xml:base` on the package's location (its bytes are then fetched from there). */
  xmlBase?: string;
  /** An `xml:base` on repomd.xml's location of primary.xml. */
  repomdXmlBase?: string;
}

/**
 * Changes one package's entry in a tree's primary.xml, then rewrites repomd.xml's checksums for
 * it and re-signs it (inside a fixture root, with the fixture key): repodata that lies, signed
 * by the upstream key, as a compromised or buggy build system would publish it.
 */
export async function editPrimary(tree: string, edit: PrimaryEdit): Promise<void> {
  const fixture = findFixtureRoot(tree);
  const go = () => rewritePrimary(tree, edit, fixture?.key('main'));
  await (fixture ? withFixtureLock(fixture, go) : go());
}

/** Rewrites the location href of one package (the first, or `name`): repodata that points outside the repo. */
export async function injectHref(opts: { root: string; project: string; repo: string; arch: string; href: string; name?: string }): Promise<void> {
  await editPrimary(new FixtureLayout(resolve(opts.root)).tree(opts.project, opts.repo, opts.arch), { name: opts.name, href: opts.href });
}

async function rewritePrimary(tree: string, edit: PrimaryEdit, key: SigningKey | undefined): Promise<void> {
  privateRepodata(tree);
  const prim = readRepomd(tree).find((d) => d.type === 'primary');
  if (!prim) throw new Error(`editPrimary: ${tree} has no primary metadata`);
  const parser = orderedParser();
  const builder = new XMLBuilder({ ...orderedOpts, suppressEmptyNode: true });

  const doc: Node[] = parser.parse(gunzipSync(readFileSync(join(tree, prim.href))).toString('utf8'));
  const metadata = children(doc, 'metadata')[0].metadata as Node[];
  const pkgs = children(metadata, 'package');
  const pkg = edit.name ? pkgs.find((p) => text(children(p.package, 'name')[0].name) === edit.name) : pkgs[0];
  if (!pkg) throw new Error(`editPrimary: no package ${edit.name ?? ''} in ${tree}`);
  const location = children(pkg.package, 'location')[0][':@'];
  if (edit.href !== undefined) location['@_href'] = edit.href;
  if (edit.xmlBase !== undefined) location['@_xml:base'] = edit.xmlBase;
  if (edit.size !== undefined) children(pkg.package, 'size')[0][':@']['@_package'] = String(edit.size);
  const xml = Buffer.from(builder.build(doc));
  const gz = gzipSync(xml);
  const newHref = `repodata/${sha256(gz)}-primary.xml.gz`;
  writeFileAtomic(join(tree, newHref), gz);

  const repomdFile = join(tree, 'repodata', 'repomd.xml');
  const md: Node[] = parser.parse(readFileSync(repomdFile, 'utf8'));
  const repomd = children(md, 'repomd')[0].repomd as Node[];
  const data = children(repomd, 'data').find((d) => d[':@']['@_type'] === 'primary')!;
  const d = data.data as Node[];
  setText(children(d, 'checksum')[0], 'checksum', sha256(gz));
  setText(children(d, 'open-checksum')[0], 'open-checksum', sha256(xml));
  setText(children(d, 'size')[0], 'size', String(gz.length));
  setText(children(d, 'open-size')[0], 'open-size', String(xml.length));
  const mdLocation = children(d, 'location')[0][':@'];
  mdLocation['@_href'] = newHref;
  if (edit.repomdXmlBase !== undefined) mdLocation['@_xml:base'] = edit.repomdXmlBase;
  writeFileAtomic(repomdFile, builder.build(md));
  if (newHref !== prim.href) unlinkSync(join(tree, prim.href));
  if (key) await detachSign(key, repomdFile);
}
