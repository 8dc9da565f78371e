// One served repo tree: packages hardlinked into the hashed layout, repodata by createrepo_c
// (after signing), and a detached signature of repomd.xml. Repodata is cached by the exact
// package set, so trees that releases share (all but the base repo of rocky-9/-beta/-lookahead)
// run createrepo_c once.
import { existsSync, linkSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { sha256 } from '@rocky/exec';
import { createrepo, createrepoArgv, modifyrepo, type CreaterepoOptions } from '@rocky/rpm-repo';
import { SOURCE_DATE_EPOCH } from './model';
import { packageHref, type FixtureLayout } from './paths';
import { detachSign, type SigningKey } from './gpg';

/** createrepo_c options: no sqlite (dnf reads XML), and timestamps pinned for stable repodata. */
export const createrepoOptions = (dir: string, comps?: string): CreaterepoOptions => ({
  dir,
  quiet: true,
  database: false,
  workers: 1,
  revision: SOURCE_DATE_EPOCH,
  setTimestampToRevision: true,
  groupfile: comps,
});

/** Hardlinks `src` to `dest` (replacing nothing: dest must not exist). */
export function link(src: string, dest: string): void {
  mkdirSync(dirname(dest), { recursive: true });
  linkSync(src, dest);
}

/** Hardlinks every file of directory `from` into a new directory `to`. */
export function linkDir(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const f of readdirSync(from)) linkSync(join(from, f), join(to, f));
}

/**
 * Creates the repo tree `dest` from `pkgs` (absolute paths of signed RPMs in the cache), with
 * `modules` as its module metadata, and returns the key of its repodata in the cache.
 */
export async function assembleTree(layout: FixtureLayout, dest: string, pkgs: string[], comps: string | undefined, signer: SigningKey, modules?: string): Promise<string> {
  const files = pkgs.map((p) => ({ src: p, href: packageHref(p.slice(p.lastIndexOf('/') + 1)) })).sort((a, b) => a.href.localeCompare(b.href));
  for (const f of files) link(f.src, join(dest, f.href));
  // Cache entries are content-keyed, so the cache paths name the bytes.
  const key = sha256(JSON.stringify({ args: createrepoArgv(createrepoOptions('', 'comps')), comps: comps ?? null, modules: modules ?? null, pkgs: files.map((f) => [f.href, relative(layout.internal, f.src)]) })).slice(0, 32);
  const cached = layout.repodataCache(key);
  if (existsSync(join(cached, 'repodata', 'repomd.xml.asc'))) {
    linkDir(join(cached, 'repodata'), join(dest, 'repodata'));
    return key;
  }
  // createrepo_c names the group file after its source: keep that `comps.xml`.
  const compsDir = join(dirname(dest), `.comps-${key}`);
  if (comps) {
    mkdirSync(compsDir, { recursive: true });
    writeFileSync(join(compsDir, 'comps.xml'), comps);
  }
  if (modules) {
    mkdirSync(compsDir, { recursive: true });
    writeFileSync(join(compsDir, 'modules.yaml'), modules);
  }
  try {
    await createrepo(createrepoOptions(dest, comps ? join(compsDir, 'comps.xml') : undefined));
    if (modules) await modifyrepo({ mdtype: 'modules', file: join(compsDir, 'modules.yaml'), repodata: join(dest, 'repodata') });
  } finally {
    rmSync(compsDir, { recursive: true, force: true });
  }
  await detachSign(signer, join(dest, 'repodata', 'repomd.xml'));
  const tmp = `${cached}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  linkDir(join(dest, 'repodata'), join(tmp, 'repodata'));
  if (existsSync(cached)) rmSync(tmp, { recursive: true, force: true });
  else renameSync(tmp, cached);
  return key;
}
