// Shared plumbing of the publishing tests: compose trees (from the fixture's real signed repos, or
// synthetic rpm-md repos of many small packages), a concurrent reader process, tree snapshots,
// an rsync daemon on loopback, and the old rsync receiver most hosts run.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { composeId as makeComposeId, composeBase, distDir, isoNames, repoTrees, treeId, upstreamArch, type Release, type RepoTree } from '@rocky/config';
import { readRepoPackages } from '@rocky/rpm-repo';
import type { TreeManifest } from '@rocky/stages';
import { renderChecksum } from '@rocky/compose';
import { acquireLockWaiting, hasTool, sha256, writeJsonAtomic } from '@rocky/exec';
import { repoRoot } from '../helpers/workspace';

// --- compose trees from the fixture ----------------------------------------------------------

/** A copy of `from` with packages hardlinked and repodata copied (the fixture may rewrite its repodata). */
function copyRepo(from: string, to: string) {
  mkdirSync(to, { recursive: true });
  for (const e of readdirSync(from, { withFileTypes: true })) {
    const a = join(from, e.name);
    const b = join(to, e.name);
    if (e.isDirectory()) copyRepo(a, b);
    else if (e.isSymbolicLink()) symlinkSync(readlinkSync(a), b);
    else if (from.endsWith('/repodata')) copyFileSync(a, b);
    else linkSync(a, b);
  }
}

export interface FakeCompose {
  composeId: string;
  dir: string;
  compose: string;
}

/**
 * A finished compose for `rel` built from the fixture's repos (what sync + finalize would leave):
 * every repo tree that the fixture serves, ISOs (random bytes) with alias links and CHECKSUM,
 * STATUS FINISHED, and the sync manifest that points composeLayout at it.
 */
export function fakeCompose(opts: {
  fixtureRoot: string;
  rel: Release;
  site: { roots: { compose: string } };
  wsRoot: string;
  date: Date;
  isoBytes?: number;
  isoSeed?: string;
  /** Changes to the trees (module metadata, say) before the manifests record them, as a producer would make them. */
  trees?: (compose: string) => void;
}): FakeCompose {
  const { rel } = opts;
  const composeId = makeComposeId(rel, 'produce', opts.date, 0);
  const dirRel = join(composeBase(rel), composeId);
  const dir = join(opts.site.roots.compose, dirRel);
  const compose = join(dir, 'compose');
  const trees = repoTrees(rel).filter((t) => existsSync(join(upstreamDir(opts.fixtureRoot, rel, t), 'repodata', 'repomd.xml')));
  for (const t of trees) copyRepo(upstreamDir(opts.fixtureRoot, rel, t), join(compose, t.path));
  opts.trees?.(compose);
  const groups = new Map<string, TreeManifest[]>();
  for (const t of trees) groups.set(t.group, [...(groups.get(t.group) ?? []), treeManifestOf(t, join(compose, t.path))]);
  // The sync manifests, as sync writes them (the staging stage checks the compose against them).
  for (const [group, trees] of groups) writeJsonAtomic(join(distDir(opts.wsRoot, rel.name, 'sync'), `${group}.json.gz`), { release: {}, trees });
  for (const arch of rel.arches) {
    const isoDir = join(compose, 'isos', arch);
    mkdirSync(isoDir, { recursive: true });
    const names = isoNames(rel, arch, 'dvd');
    const data = opts.isoSeed ? seeded(`${opts.isoSeed}:${arch}`, opts.isoBytes ?? 1 << 20) : randomBytes(opts.isoBytes ?? 1 << 20);
    writeFileSync(join(isoDir, names.file), data);
    for (const a of names.aliases) symlinkSync(names.file, join(isoDir, a));
    const sum = createHash('sha256').update(data).digest('hex');
    writeFileSync(join(isoDir, 'CHECKSUM'), renderChecksum([names.file, ...names.aliases].map((name) => ({ name, size: data.length, sha256: sum }))));
  }
  mkdirSync(join(compose, 'metadata'), { recursive: true });
  writeFileSync(join(compose, 'metadata', 'COMPOSE_ID'), composeId);
  for (const f of ['composeinfo.json', 'images.json', 'rpms.json']) writeFileSync(join(compose, 'metadata', f), '{}\n');
  const checksums = Object.fromEntries(rel.arches.map((a) => [`isos/${a}`, readFileSync(join(compose, 'isos', a, 'CHECKSUM'), 'utf8')]));
  writeJsonAtomic(join(distDir(opts.wsRoot, rel.name, 'finalize'), 'manifest.json'), { composeId, status: 'FINISHED', checksums, images: rel.arches.length, rpms: 0 });
  writeFileSync(join(dir, 'STATUS'), 'FINISHED\n');
  writeJsonAtomic(join(distDir(opts.wsRoot, rel.name, 'sync'), 'compose.json'), { composeId, dir: dirRel });
  return { composeId, dir, compose };
}

const upstreamDir = (fixtureRoot: string, rel: Release, t: RepoTree) => join(fixtureRoot, 'v1/projects', rel.project, 'repo', `hashed-${t.repo}`, upstreamArch(t));

/** A tree's manifest entry: every package and repodata file with its sha256 and size. */
function treeManifestOf(t: RepoTree, dir: string): TreeManifest {
  const files = (sub: string): string[] =>
    readdirSync(join(dir, sub), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(sub, e.name)) : e.isFile() ? [join(sub, e.name)] : []));
  const entry = (path: string) => {
    const data = readFileSync(join(dir, path));
    return { path, sha256: sha256(data), size: data.length };
  };
  const all = files('');
  const packages = (readRepoPackages(dir) ?? []).map((p) => ({ ...entry(p.href), name: p.name, arch: p.arch, epoch: p.epoch, version: p.version, release: p.release, sigkey: null }));
  return { id: treeId(t), repo: t.repo, dir: t.dir, kind: t.kind, arch: t.arch, path: t.path, repodata: all.filter((f) => f.startsWith('repodata/')).map(entry), packages };
}

function seeded(seed: string, n: number): Buffer {
  const out = Buffer.alloc(n);
  let h = createHash('sha256').update(seed).digest();
  for (let o = 0; o < n; o += 32) {
    h.copy(out, o, 0, Math.min(32, n - o));
    h = createHash('sha256').update(h).digest();
  }
  return out;
}

/** A smaller release (fewer arches and repos), so repoclosure and vetting stay quick. */
export function trimRelease(rel: Release, arches: Release['arches'], repos: string[]): Release {
  return { ...rel, arches, repos: rel.repos.filter((r) => repos.includes(r.dir ?? r.name)).map((r) => ({ ...r, arches: r.arches?.filter((a) => arches.includes(a)) })) };
}


// --- synthetic rpm-md repos -------------------------------------------------------------------

export interface SynthPackage {
  name: string;
  version: string;
  size: number;
}

const xmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * A repo of fake packages with real rpm-md repodata naming them by href (primary, filelists,
 * other, checksum-prefixed names; repomd.xml with sizes and sha256), as createrepo_c lays it out.
 * createrepo_c itself skips files that are not RPMs, so the metadata is written here.
 */
export function synthRepo(dir: string, pkgs: SynthPackage[], opts: { arch?: string; mtime?: number; revision?: string } = {}) {
  const arch = opts.arch ?? 'x86_64';
  const mtime = opts.mtime ?? 1_763_596_800;
  const entries: string[] = [];
  for (const p of pkgs) {
    const file = `${p.name}-${p.version}-1.el9.${arch}.rpm`;
    const href = `Packages/${file[0]}/${file}`;
    const abs = join(dir, href);
    let data: Buffer;
    if (existsSync(abs)) data = readFileSync(abs);
    else {
      data = seeded(file, p.size);
      mkdirSync(dirname(abs), { recursive: true });
      writeFileSync(abs, data);
      utimesSync(abs, mtime, mtime);
    }
    entries.push(
      `<package type="rpm"><name>${xmlEscape(p.name)}</name><arch>${arch}</arch><version epoch="0" ver="${p.version}" rel="1.el9"/>` +
        `<checksum type="sha256" pkgid="YES">${sha256(data)}</checksum><summary>${p.name}</summary><description>${p.name}</description>` +
        `<packager/><url/><time file="${mtime}" build="${mtime}"/><size package="${data.length}" installed="${data.length}" archive="${data.length}"/>` +
        `<location href="${href}"/><format><rpm:license>MIT</rpm:license><rpm:sourcerpm>${p.name}-${p.version}-1.el9.src.rpm</rpm:sourcerpm></format></package>`,
    );
  }
  const primary = `<?xml version="1.0" encoding="UTF-8"?>\n<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="${pkgs.length}">\n${entries.join('\n')}\n</metadata>\n`;
  const filelists = `<?xml version="1.0" encoding="UTF-8"?>\n<filelists xmlns="http://linux.duke.edu/metadata/filelists" packages="${pkgs.length}">\n</filelists>\n`;
  const other = `<?xml version="1.0" encoding="UTF-8"?>\n<otherdata xmlns="http://linux.duke.edu/metadata/other" packages="${pkgs.length}">\n</otherdata>\n`;
  const repodata = join(dir, 'repodata');
  mkdirSync(repodata, { recursive: true });
  const records: string[] = [];
  for (const [type, text] of [['primary', primary], ['filelists', filelists], ['other', other]] as const) {
    const gz = gzipSync(Buffer.from(text), { level: 1 });
    const h = sha256(gz);
    const href = `repodata/${h}-${type}.xml.gz`;
    writeFileSync(join(dir, href), gz);
    utimesSync(join(dir, href), mtime, mtime);
    records.push(
      `<data type="${type}"><checksum type="sha256">${h}</checksum><open-checksum type="sha256">${sha256(text)}</open-checksum><location href="${href}"/><timestamp>${mtime}</timestamp><size>${gz.length}</size><open-size>${Buffer.byteLength(text)}</open-size></data>`,
    );
  }
  const repomd = `<?xml version="1.0" encoding="UTF-8"?>\n<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm"><revision>${opts.revision ?? mtime}</revision>\n${records.join('\n')}\n</repomd>\n`;
  writeFileSync(join(repodata, 'repomd.xml'), repomd);
  utimesSync(join(repodata, 'repomd.xml'), mtime, mtime);
}

// --- the concurrent reader --------------------------------------------------------------------

export interface ReaderStats {
  iterations: number;
  /** repomd.xml files read and checked. */
  reads: number;
  /** References checked (repodata records + package hrefs). */
  refs: number;
  dangling: number;
  torn: number;
  samples: string[];
  /** Distinct (repomd.xml path, its sha256, sha256 of the .asc read right after it). */
  pairs: { path: string; repomd: string; asc: string | null }[];
  /** Checksum lists run through `sha256sum -c`. */
  checksumLists: number;
  /** Files `sha256sum -c` failed (wrong bytes, or missing). */
  mismatches: number;
  /** rsync temp names seen (`.~tmp~`, `.<name>.XXXXXX`). */
  temps: number;
  /** Samples of mismatches and temps. */
  otherSamples: string[];
}

export interface Reader {
  pid: number;
  /** Ends the reader after its current pass and returns what it saw. */
  stop(): Promise<ReaderStats>;
  /** Ends it now, whatever it was doing (idempotent). */
  kill(): Promise<void>;
}

/** Starts the reader process (publish-reader.mjs) over `roots` and waits for its first full pass. Prefer withReader. */
export async function startReader(roots: string[], outFile: string): Promise<Reader> {
  // stdin is a pipe the reader watches: if this process dies, so does the reader.
  const child: ChildProcess = spawn(process.execPath, [join(__dirname, 'publish-reader.mjs'), outFile, ...roots], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  try {
    await new Promise<void>((resolve, reject) => {
      let buf = '';
      child.stdout!.on('data', (d: Buffer) => {
        if (buf.length < 100) buf += d.toString();
        if (buf.includes('ready')) resolve();
      });
      void exited.then((code) => reject(new Error(`reader exited ${code} before it was ready`)));
    });
  } catch (e) {
    await kill();
    throw e;
  }
  return {
    pid: child.pid!,
    kill,
    stop: async () => {
      // A reader that already ended (it failed) has nothing more to report.
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const code = await exited;
      if (code !== 0) throw new Error(`reader exited ${code}`);
      return JSON.parse(readFileSync(outFile, 'utf8')) as ReaderStats;
    },
  };
}

/**
 * Runs `fn` while a reader watches `roots`, and returns what it saw. The reader is stopped
 * whatever happens: when `fn` throws (a failed assertion), it is killed before the error goes on.
 */
export async function withReader<T>(roots: string[], outFile: string, fn: (reader: Reader) => Promise<T>): Promise<{ value: T; stats: ReaderStats }> {
  const reader = await startReader(roots, outFile);
  try {
    const value = await fn(reader);
    return { value, stats: await reader.stop() };
  } finally {
    await reader.kill();
  }
}

// --- snapshots ------------------------------------------------------------------------------

/**
 * path -> type:size:mtime:inode:sha256 (files) / link target, for "byte-identical before and
 * after". `{ contentOnly: true }`: sizes, bytes and link targets only (dirs `d`), to compare a copy
 * with its source (another file, another time, maybe another host).
 */
export function snapshotTree(dir: string, o: { contentOnly?: boolean } = {}): Record<string, string> {
  const out: Record<string, string> = {};
  if (!existsSync(dir)) return out;
  const walk = (rel: string) => {
    for (const n of readdirSync(rel ? join(dir, rel) : dir).sort()) {
      const p = rel ? `${rel}/${n}` : n;
      const st = lstatSync(join(dir, p));
      if (st.isSymbolicLink()) out[p] = `l:${readlinkSync(join(dir, p))}`;
      else if (st.isDirectory()) {
        out[p] = o.contentOnly ? 'd' : `d:${st.mode}`;
        walk(p);
      } else {
        const sum = createHash('sha256').update(readFileSync(join(dir, p))).digest('hex');
        out[p] = o.contentOnly ? `f:${st.size}:${sum}` : `f:${st.size}:${st.mtimeMs}:${st.ino}:${sum}`;
      }
    }
  };
  walk('');
  return out;
}


// --- rsync daemon -----------------------------------------------------------------------------

export interface Daemon {
  port: number;
  pid: number;
  url(path: string): string;
  /** Kills the daemon and every connection it forked (its process group), by pid. */
  kill(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/** An rsync daemon (the `rsync` binary given, default the system's) serving `path` read-write as `module`. */
export async function startRsyncDaemon(work: string, module: string, path: string, rsync = 'rsync'): Promise<Daemon> {
  mkdirSync(path, { recursive: true });
  const port = await freePort();
  const conf = join(work, `rsyncd-${port}.conf`);
  writeFileSync(conf, ['use chroot = no', 'munge symlinks = no', `[${module}]`, `  path = ${path}`, '  read only = no', '  uid = root', '  gid = root', ''].join('\n'));
  const child = spawn(rsync, ['--daemon', '--no-detach', `--config=${conf}`, '--address=127.0.0.1', `--port=${port}`, `--log-file=${join(work, `rsyncd-${port}.log`)}`], { detached: true, stdio: 'ignore' });
  const pid = child.pid!;
  let dead = false;
  child.on('exit', () => (dead = true));
  const kill = async () => {
    if (dead) return;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    for (let i = 0; i < 100 && !dead; i++) await new Promise((r) => setTimeout(r, 20));
  };
  for (let i = 0; ; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => (s.end(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (ok) break;
    if (dead || i > 100) {
      await kill();
      throw new Error(`${rsync} --daemon did not start (see ${join(work, `rsyncd-${port}.log`)})`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, pid, url: (p) => `rsync://127.0.0.1:${port}/${module}/${p}`, kill };
}

// --- the old receiver -------------------------------------------------------------------------

/** Debian 12's rsync with the 2025 security fixes backported: the receiver most hosts run, which refuses --delete-missing-args with --files-from. */
export const OLD_RSYNC_DEB = 'rsync=3.2.7-1+deb12u6';

/**
 * That rsync's binary, fetched with `apt-get download` and unpacked with `dpkg -x` into a
 * git-ignored cache (.cache/, once; nothing is installed), or `skip` saying why it cannot be
 * had: only where apt-get is missing (a Rocky host). Anything else that goes wrong throws.
 */
export async function oldRsync(): Promise<{ bin: string; skip?: undefined } | { bin?: undefined; skip: string }> {
  const dir = join(repoRoot, '.cache', OLD_RSYNC_DEB.replace('=', '_'));
  const bin = join(dir, 'usr/bin/rsync');
  if (existsSync(bin)) return { bin };
  if (!hasTool('apt-get') || !hasTool('dpkg')) return { skip: `apt-get/dpkg not available (not a Debian host): cannot fetch ${OLD_RSYNC_DEB} to test against an old receiver` };
  mkdirSync(dirname(dir), { recursive: true });
  // Test files fetching at once would fight over apt's lock: one fetches, the others wait for it.
  const unlock = await acquireLockWaiting(join(dirname(dir), '.fetch.lock'), `fetching ${OLD_RSYNC_DEB}`);
  if (existsSync(bin)) {
    unlock();
    return { bin };
  }
  const tmp = mkdtempSync(join(dirname(dir), '.fetch-'));
  try {
    const download = () => spawnSync('apt-get', ['download', '-q', OLD_RSYNC_DEB], { cwd: tmp, encoding: 'utf8' });
    let r = download();
    // A fresh host has no package lists yet.
    if (r.status !== 0) {
      const u = spawnSync('apt-get', ['update', '-qq'], { encoding: 'utf8' });
      if (u.status !== 0) throw new Error(`apt-get update failed (exit ${u.status}): ${u.stderr.trim()}`);
      r = download();
    }
    if (r.status !== 0) throw new Error(`apt-get download ${OLD_RSYNC_DEB} failed (exit ${r.status}): ${(r.stderr || r.stdout).trim()}`);
    const deb = readdirSync(tmp).find((n) => n.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${OLD_RSYNC_DEB} left no .deb in ${tmp}`);
    const x = spawnSync('dpkg', ['-x', join(tmp, deb), join(tmp, 'root')], { encoding: 'utf8' });
    if (x.status !== 0) throw new Error(`dpkg -x ${deb} failed: ${x.stderr.trim()}`);
    renameSync(join(tmp, 'root'), dir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    unlock();
  }
  const v = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  if (v.status !== 0) throw new Error(`${bin} does not run: ${v.stderr.trim()}`);
  return { bin };
}

/** `rsync --version`'s first line, e.g. `rsync  version 3.2.7  protocol version 32`. */
export const rsyncVersion = (bin: string) => spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0].replace(/\s+/g, ' ');

