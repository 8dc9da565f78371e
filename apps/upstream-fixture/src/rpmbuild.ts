// Builds one spec with one rpmbuild call (every --target at once), signs the results and keeps
// them in the root's cache keyed by the spec's hash, so an unchanged spec is never rebuilt and
// releases sharing a spec share the very same files (hardlinks).
import { createCipheriv, createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, sha256, writeJsonAtomic } from '@rocky/exec';
import { debugName, rpmFile, srpmFile, SOURCE_DATE_EPOCH, type SpecDef } from './model';
import { renderSpec } from './spec';
import { rpmSign, type SigningKey } from './gpg';
import type { FixtureLayout } from './paths';

export type RpmKind = 'bin' | 'debug' | 'src';
export interface BuiltRpm {
  /** Path relative to the build directory: `<arch>/<file>`. */
  rel: string;
  file: string;
  name: string;
  arch: string;
  kind: RpmKind;
}
export interface SpecBuild {
  dir: string;
  rpms: BuiltRpm[];
}

/** How many rpmbuild processes this process has run (tests check that reuse really reuses). */
export const counters = { rpmbuild: 0 };

/** Flags outside the spec text that shape the RPMs; part of every cache key. */
const BUILD_FLAGS = 'rpmbuild -ba; rpmsign; mtime=SDE; v1';

/** The cache key of a spec: its text, targets, the signing key and the build flags. */
export const specHash = (spec: SpecDef, keyId: string) =>
  sha256([BUILD_FLAGS, keyId, spec.targets.join(','), renderSpec(spec)].join('\0')).slice(0, 32);

/** Deterministic pseudo-random bytes (AES-CTR keystream): incompressible, like real kernel images. */
export function blob(seed: string, size: number): Buffer {
  const key = createHash('sha256').update(seed).digest();
  const c = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  return Buffer.concat([c.update(Buffer.alloc(size)), c.final()]);
}

/** The files rpmbuild must produce for a spec (the check that nothing went missing). */
export function expectedRpms(spec: SpecDef, withSrpm = true): BuiltRpm[] {
  const out: BuiltRpm[] = [];
  const add = (arch: string, file: string, name: string, kind: RpmKind) => out.push({ rel: `${arch}/${file}`, file, name, arch, kind });
  for (const p of spec.packages) {
    if (p.noarch) add('noarch', rpmFile(p, 'noarch'), p.name, 'bin');
    else
      for (const t of spec.targets) {
        add(t, rpmFile(p, t), p.name, 'bin');
        if (p.debuginfo) add(t, rpmFile({ ...p, name: debugName(p.name) }, t), debugName(p.name), 'debug');
      }
  }
  if (withSrpm) add('src', srpmFile(spec), spec.name, 'src');
  return out;
}

/**
 * Builds `spec` in `work` (created fresh) with one rpmbuild call and signs every result with
 * `key` (unless none is given).
 * Returns the RPMs under `<work>/out/<arch>/`.
 */
export async function rpmbuild(spec: SpecDef, work: string, key: SigningKey | undefined, opts: { srpm?: boolean } = {}): Promise<SpecBuild> {
  const withSrpm = opts.srpm ?? true;
  rmSync(work, { recursive: true, force: true });
  const top = join(work, 'top');
  for (const d of ['SPECS', 'SOURCES', 'BUILD', 'RPMS', 'SRPMS', 'tmp', 'home']) mkdirSync(join(top, d), { recursive: true });
  const specFile = join(top, 'SPECS', `${spec.name}.spec`);
  writeFileSync(specFile, renderSpec(spec));
  const blobs = join(work, 'blobs');
  if (spec.packages.some((p) => p.files.some((f) => f.blob))) {
    for (const t of spec.targets) {
      mkdirSync(join(blobs, t), { recursive: true });
      writeFileSync(join(blobs, t, 'vmlinuz'), blob(`${spec.name}:${t}:vmlinuz`, 1 << 20));
      writeFileSync(join(blobs, t, 'initramfs'), blob(`${spec.name}:${t}:initramfs`, (1 << 20) + 4096));
    }
  }
  if (spec.packages.some((p) => p.files.some((f) => f.key))) {
    // The public key the packages are signed with (specHash covers it through the key id).
    if (!key) throw new Error(`${spec.name} ships the signing key, but it is built unsigned`);
    mkdirSync(blobs, { recursive: true });
    writeFileSync(join(blobs, 'RPM-GPG-KEY'), readFileSync(key.keyFile));
  }
  const argv = ['rpmbuild', '--quiet', '--define', `_topdir ${top}`, '--define', `_tmppath ${join(top, 'tmp')}`, '--define', `blobdir ${blobs}`];
  if (spec.targets.length) argv.push('--target', spec.targets.join(','));
  argv.push(withSrpm ? '-ba' : '-bb', specFile);
  counters.rpmbuild++;
  // HOME isolates the build from a user's ~/.rpmmacros; the epoch fixes build times.
  await run(argv, { env: { ...process.env, HOME: join(top, 'home'), LC_ALL: 'C', SOURCE_DATE_EPOCH: String(SOURCE_DATE_EPOCH) } });

  const out = join(work, 'out');
  const rpms = expectedRpms(spec, withSrpm);
  for (const r of rpms) {
    const from = r.kind === 'src' ? join(top, 'SRPMS', r.file) : join(top, 'RPMS', r.arch, r.file);
    if (!existsSync(from)) throw new Error(`rpmbuild of ${spec.name} did not produce ${r.rel}`);
    mkdirSync(join(out, r.arch), { recursive: true });
    renameSync(from, join(out, r.rel));
  }
  if (key) await rpmSign(key, rpms.map((r) => join(out, r.rel)));
  // A fixed mtime keeps createrepo_c's <time file> (and so repodata) stable across rebuilds.
  for (const r of rpms) utimesSync(join(out, r.rel), SOURCE_DATE_EPOCH, SOURCE_DATE_EPOCH);
  rmSync(top, { recursive: true, force: true });
  rmSync(blobs, { recursive: true, force: true });
  return { dir: out, rpms };
}

/** The signed RPMs of `spec`, from the cache or built now (into a temp dir, renamed into the cache). */
export async function cachedBuild(layout: FixtureLayout, spec: SpecDef, hash: string, key: SigningKey, log: (m: string) => void): Promise<SpecBuild> {
  const dir = layout.rpmCache(hash);
  const manifest = join(dir, 'manifest.json');
  if (existsSync(manifest)) return { dir, rpms: JSON.parse(readFileSync(manifest, 'utf8')).rpms as BuiltRpm[] };
  const work = join(layout.tmp, `rpm-${hash}`);
  const t0 = Date.now();
  const built = await rpmbuild(spec, work, key);
  // The spec definition goes beside the RPMs: updatePackage rebuilds single packages from it.
  writeJsonAtomic(join(built.dir, 'manifest.json'), { spec, rpms: built.rpms });
  mkdirSync(join(dir, '..'), { recursive: true });
  rmSync(dir, { recursive: true, force: true });
  renameSync(built.dir, dir);
  rmSync(work, { recursive: true, force: true });
  log(`built ${spec.name} (${built.rpms.length} rpms${spec.targets.length ? `, ${spec.targets.join(',')}` : ''}) in ${Date.now() - t0} ms`);
  return { dir, rpms: built.rpms };
}

export function readSpecManifest(layout: FixtureLayout, hash: string): { spec: SpecDef; rpms: BuiltRpm[] } {
  return JSON.parse(readFileSync(join(layout.rpmCache(hash), 'manifest.json'), 'utf8'));
}
