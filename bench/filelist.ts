// Benchmark for libs/publish file lists against the shell floor, on a Rocky-shaped tree.
//   node -r @swc-node/register bench/filelist.ts [--files 200000] [--reps 3]
// The tree is built once under .releng/bench/filelist-tree (git-ignored) and reused.
// Floor: what sync-file-list-parallel.sh gets without create-filelist's Python overhead, the same
// information as ours in one walk: `find . -fprint fullfilelist -fprintf timelist '%T@ %C@ %s %y %p\n'`
// (which lstats every entry) and `sha1sum` of each repomd.xml (-exec … +).
// Rows: ours cold (no cache, no lists yet) and warm (nothing changed), median of --reps runs,
// each repetition timing floor, cold and warm back to back so machine load hits all three.
import { spawnSync } from 'node:child_process';
import { existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { FileListOptions, FileListResult, FileListModule } from '../libs/publish/src/filelist';
import { measured, median, standalone, type Emit } from './lib';

export interface FileListBenchOptions {
  /** Minimum number of files in the tree (default 200,000). */
  files?: number;
  reps?: number;
  /** Workspace root (default: the parent of bench/). */
  root?: string;
  log?: (line: string) => void;
}

const RELEASES = ['8.10', '9.6', '9.7', '10.1'];
const REPOS = ['BaseOS', 'AppStream', 'CRB', 'HighAvailability', 'ResilientStorage', 'RT', 'NFV', 'SAP', 'SAPHANA', 'extras', 'devel', 'plus'];
const ARCHES = ['x86_64', 'aarch64', 'ppc64le', 's390x'];

export async function runFileListBench(opts: FileListBenchOptions, emit: Emit): Promise<void> {
  const root = opts.root ?? resolve(__dirname, '..');
  const files = opts.files ?? 200_000;
  const reps = opts.reps ?? 3;
  const log = opts.log ?? ((l: string) => console.log(l));
  registerWorkspaceAliases(root);
  // Loaded only now: the module imports @rocky/exec, resolvable only after the line above.
  const { generateFileLists } = (await import('../libs/publish/src/filelist')) as typeof import('../libs/publish/src/filelist');

  const base = join(root, '.releng', 'bench');
  const treeRoot = join(base, 'filelist-tree');
  const dir = join(treeRoot, 'pub', 'rocky');
  const work = join(base, 'filelist-work');
  const t0 = performance.now();
  const made = ensureTree(treeRoot, dir, files);
  log(`tree: ${dir}: ${made.files} files, ${made.repomds} repomd.xml (${made.reused ? 'reused' : `built in ${((performance.now() - t0) / 1000).toFixed(1)} s`})`);
  log(`machine: ${availableParallelism()} cores, node ${process.version}, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);

  mkdirSync(work, { recursive: true });
  const modules: FileListModule[] = [{ name: 'rocky', dir }];
  const listOpts: FileListOptions = {
    lockFile: join(work, 'filelist.lock'),
    cacheFile: join(work, 'sha1-cache.json'),
    aliases: { rocky: ['fullfiletimelist', 'fullfiletimelist-rocky-linux'] },
  };
  // One walk giving what the lists hold of every entry (path; type, size, mtime and ctime from its
  // lstat) and the SHA1 of each repomd.xml, the way a shell script would get them.
  const floorCmd = `find . -fprint '${work}/fullfilelist' -fprintf '${work}/timelist' '%T@ %C@ %s %y %p\\n' -name repomd.xml -exec sha1sum {} + > '${work}/sha1'`;

  const floor: number[] = [];
  const cold: number[] = [];
  const warm: number[] = [];
  for (let i = 0; i < reps; i++) {
    floor.push(time(() => {
      const r = spawnSync('sh', ['-c', floorCmd], { cwd: dir, stdio: 'inherit' });
      if (r.status !== 0) throw new Error(`floor command failed: ${floorCmd}`);
    }));

    for (const name of readdirSync(dir)) if (/^(fullfilelist|fullfiletimelist|imagelist)/.test(name)) rmSync(join(dir, name));
    rmSync(listOpts.cacheFile!, { force: true });
    let r!: FileListResult;
    cold.push(await timeAsync(async () => (r = await generateFileLists(modules, listOpts))));
    check(r.written.length === 5 && r.hashed === made.repomds && r.files >= made.files, 'cold run', r);

    warm.push(await timeAsync(async () => (r = await generateFileLists(modules, listOpts))));
    check(r.written.length === 0 && r.hashed === 0 && r.reusedHashes === made.repomds, 'warm run', r);
  }

  const f = median(floor);
  const runs = (xs: number[]) => xs.map((x) => x.toFixed(3)).join(' ');
  const row = (name: string, ours: number[]) => measured({ name, ours: median(ours), theirs: f, theirsName: 'find + stat (floor)', goal: { within: 1.5 }, notes: `median of ${reps}; ours ${runs(ours)}; floor ${runs(floor)}` });
  emit(row(`filelist cold (${made.files} files, no cache, no lists)`, cold));
  emit(row(`filelist warm (${made.files} files, nothing changed)`, warm));
}

/**
 * The file-list walker (find -printf, parsed as it streams) against globby and fdir on the same
 * tree, in the same run: each must give what the lists need of every entry, its path, type,
 * size and times (globby's `stats`, which lstats each entry; fdir's paths, lstat'ed). The walker
 * stays hand-written only while it is faster than both (issue 13). fdir is not a dependency of
 * ours (tinyglobby's, through @nx/js): its row is skipped, and says so, when it is not installed.
 */
export async function runWalkBench(opts: FileListBenchOptions, emit: Emit): Promise<void> {
  const root = opts.root ?? resolve(__dirname, '..');
  const reps = opts.reps ?? 3;
  const log = opts.log ?? ((l: string) => console.log(l));
  registerWorkspaceAliases(root);
  const { walkTree } = (await import('../libs/publish/src/filelist-walk')) as typeof import('../libs/publish/src/filelist-walk');
  const { DEFAULT_CHECKSUM_NAMES, DEFAULT_IMAGE_EXTENSIONS } = (await import('../libs/publish/src/filelist')) as typeof import('../libs/publish/src/filelist');
  const { globby } = await import('globby');
  let Fdir: (new () => FdirBuilder) | undefined;
  try {
    Fdir = (require('fdir') as { fdir: new () => FdirBuilder }).fdir;
  } catch {
    Fdir = undefined;
  }

  const treeRoot = join(root, '.releng', 'bench', 'filelist-tree');
  const dir = join(treeRoot, 'pub', 'rocky');
  const made = ensureTree(treeRoot, dir, opts.files ?? 200_000);
  log(`tree: ${dir}: ${made.files} files (${made.reused ? 'reused' : 'built'})`);
  // The list files a filelist run leaves at the top are not content, for any of the three.
  const lists = ['fullfilelist*', 'fullfiletimelist*', 'imagelist*'];
  const rules = { topExact: ['fullfilelist'], topPrefixes: ['fullfiletimelist', 'imagelist'], checksumNames: DEFAULT_CHECKSUM_NAMES, imageExtensions: DEFAULT_IMAGE_EXTENSIONS };

  const ours = async () => (await walkTree(dir, rules)).reduce((n, c) => n + c.paths.length, 0);
  const viaGlobby = async () => {
    const entries = await globby('**', { cwd: dir, dot: true, onlyFiles: false, followSymbolicLinks: false, stats: true, ignore: lists });
    for (const e of entries) if (!e.stats) throw new Error(`globby gave no stats for ${e.path}`);
    return entries.length;
  };
  const viaFdir = async () => {
    const top = new Set(readdirSync(dir).filter((n) => /^(fullfilelist|fullfiletimelist|imagelist)/.test(n)));
    const paths = await new Fdir!().withRelativePaths().withDirs().exclude((name, path) => top.has(name) && resolve(path, '..') === dir).crawl(dir).withPromise();
    const entries = paths.filter((p) => p !== '' && p !== '.' && p !== './' && !top.has(p));
    let n = 0;
    for (const p of entries) if (lstatSync(join(dir, p))) n++;
    return n;
  };

  const times: Record<'ours' | 'globby' | 'fdir', number[]> = { ours: [], globby: [], fdir: [] };
  const counts: Record<string, number> = {};
  for (let i = 0; i < reps; i++) {
    // Back to back in each repetition, so machine load hits all three alike.
    for (const [name, fn] of [['ours', ours], ['globby', viaGlobby], ['fdir', Fdir ? viaFdir : undefined]] as const) {
      if (!fn) continue;
      const t = performance.now();
      counts[name] = await fn();
      times[name].push((performance.now() - t) / 1000);
    }
  }
  for (const n of Object.values(counts)) if (n !== counts.ours) throw new Error(`entries differ: ${JSON.stringify(counts)} (the walks must list the same tree)`);
  const runs = (xs: number[]) => xs.map((x) => x.toFixed(3)).join(' ');
  const row = (against: 'globby' | 'fdir', theirsName: string) =>
    measured({ name: `file-list walk vs ${against} (${counts.ours} entries)`, ours: median(times.ours), theirs: median(times[against]), theirsName, goal: { faster: 1 }, notes: `median of ${reps}; ours ${runs(times.ours)}; ${against} ${runs(times[against])}` });
  emit(row('globby', 'globby **, stats (lstat)'));
  if (Fdir) emit(row('fdir', 'fdir + lstat'));
  else emit({ name: 'file-list walk vs fdir', ours: median(times.ours), theirs: NaN, theirsName: 'fdir + lstat', ratio: NaN, goal: '>= 1x faster', met: false, notes: 'fdir is not installed (not a dependency of ours): not measured' });
}

/** What runWalkBench uses of fdir's builder (typed here: fdir is not a dependency of ours). */
interface FdirBuilder {
  withRelativePaths(): FdirBuilder;
  withDirs(): FdirBuilder;
  exclude(fn: (name: string, path: string) => boolean): FdirBuilder;
  crawl(dir: string): { withPromise(): Promise<string[]> };
}

/** Builds the Rocky-shaped tree unless a complete one of at least `files` files is there. */
function ensureTree(treeRoot: string, dir: string, files: number): { files: number; repomds: number; reused: boolean } {
  const stamp = join(treeRoot, 'tree.json'); // beside the module dir, so never listed
  if (existsSync(stamp)) {
    const s = JSON.parse(readFileSync(stamp, 'utf8')) as { files: number; repomds: number };
    if (s.files >= files) return { ...s, reused: true };
  }
  rmSync(treeRoot, { recursive: true, force: true });
  const repos = RELEASES.length * REPOS.length * ARCHES.length;
  const perRepo = Math.ceil(files / repos);
  let n = 0;
  let repomds = 0;
  const put = (file: string, data: string) => {
    writeFileSync(file, data);
    n++;
  };
  for (const rel of RELEASES) {
    for (const repo of REPOS) {
      for (const arch of ARCHES) {
        const os = join(dir, rel, repo, arch, 'os');
        mkdirSync(join(os, 'repodata'), { recursive: true });
        for (let i = 0; i < perRepo; i++) {
          const letter = String.fromCharCode(97 + (i % 26));
          const pkgs = join(os, 'Packages', letter);
          if (i < 26) mkdirSync(pkgs, { recursive: true });
          put(join(pkgs, `${letter}pkg${i}-1.0-1.el${rel[0]}.${arch}.rpm`), 'x'.repeat(i % 512));
        }
        put(join(os, 'repodata', 'repomd.xml'), `<repomd><revision>${rel}-${repo}-${arch}</revision></repomd>\n`);
        put(join(os, 'repodata', `${rel}-${repo}-${arch}-primary.xml.gz`), 'primary');
        put(join(os, 'repodata', `${rel}-${repo}-${arch}-comps.xml`), 'comps');
        repomds++;
      }
    }
    for (const arch of ARCHES) {
      const isos = join(dir, rel, 'isos', arch);
      mkdirSync(isos, { recursive: true });
      put(join(isos, `Rocky-${rel}-${arch}-dvd.iso`), 'iso');
      put(join(isos, 'CHECKSUM'), 'sums');
      symlinkSync(`Rocky-${rel}-${arch}-dvd.iso`, join(isos, `Rocky-${rel[0]}-latest-${arch}-dvd.iso`));
      const images = join(dir, rel, 'images', arch);
      mkdirSync(images, { recursive: true });
      put(join(images, `Rocky-${rel[0]}-GenericCloud-${rel}.${arch}.qcow2`), 'qcow2');
    }
  }
  // Major-version symlinks and a hardlinked package, as in the real tree.
  symlinkSync('9.7', join(dir, '9'));
  symlinkSync('8.10', join(dir, '8'));
  linkSync(join(dir, '9.7', 'BaseOS', 'x86_64', 'os', 'Packages', 'a', `apkg0-1.0-1.el9.x86_64.rpm`), join(dir, '9.7', 'AppStream', 'x86_64', 'os', 'Packages', 'a', 'apkg0-hardlink.rpm'));
  n++;
  writeFileSync(stamp, JSON.stringify({ files: n, repomds }) + '\n');
  return { files: n, repomds, reused: false };
}

/**
 * The workspace maps @rocky/* in tsconfig.base.json, but there is no tsconfig.json for
 * @swc-node/register to find, so map them here for this process (CommonJS resolution).
 */
function registerWorkspaceAliases(root: string): void {
  if (typeof require !== 'function') return;
  try {
    require.resolve('@rocky/exec');
    return;
  } catch {
    /* not mapped: map below */
  }
  const paths = (JSON.parse(readFileSync(join(root, 'tsconfig.base.json'), 'utf8')) as { compilerOptions: { paths: Record<string, string[]> } }).compilerOptions.paths;
  const Module = require('node:module') as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
  const original = Module._resolveFilename;
  Module._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]) {
    const target = paths[request];
    return original.call(this, target ? join(root, target[0]) : request, ...rest);
  };
}

function check(ok: boolean, what: string, r: FileListResult): void {
  if (!ok) throw new Error(`${what}: unexpected result ${JSON.stringify({ ...r, written: r.written.length, unchanged: r.unchanged.length })}`);
}

function time(fn: () => void): number {
  const t = performance.now();
  fn();
  return (performance.now() - t) / 1000;
}

async function timeAsync(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

if (require.main === module) {
  const { values } = parseArgs({ options: { files: { type: 'string', default: '200000' }, reps: { type: 'string', default: '3' } } });
  standalone((emit) => runFileListBench({ files: Number(values.files), reps: Number(values.reps) }, emit));
}
