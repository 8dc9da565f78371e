// Publishing an UNCHANGED tree (the common case: `nx run-many -t staging` when nothing moved):
// our publishTree (its whole no-op path: the planning dry run over every phase's files, with
// deletions, hardlinks and itemized parsing) against the one command a release engineer would
// otherwise run to see whether anything changed, `rsync -a --delete --dry-run src/ dest/`.
//   node -r @swc-node/register bench/publish.ts [--files 200000] [--runs 3]
// The tree is .releng/bench/publish-tree/src, reused across runs: a hardlinked snapshot of the
// colleague's .releng/bench/filelist-tree when that exists, else a Rocky-shaped tree made here.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { publishTree } from '../libs/publish/src/publish';
import { cpuSeconds, measured, median, standalone, type Emit } from './lib';

export interface PublishBenchOptions {
  workspaceRoot?: string;
  files?: number;
  runs?: number;
  log?: (m: string) => void;
}

function countFiles(dir: string, limit: number): number {
  let n = 0;
  const stack = [dir];
  while (stack.length && n < limit) {
    const d = stack.pop()!;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) stack.push(join(d, e.name));
      else n++;
    }
  }
  return n;
}

/** A Rocky-shaped tree: repos x arches with Packages/<letter>/ dirs, repodata, and some symlinks. */
function makeTree(dir: string, files: number, log: (m: string) => void) {
  log(`creating a ${files}-file tree in ${dir}`);
  const repos = ['BaseOS', 'AppStream', 'CRB', 'extras', 'HighAvailability', 'RT', 'NFV', 'SAP', 'devel', 'plus'];
  const arches = ['x86_64', 'aarch64', 'ppc64le', 's390x'];
  const per = Math.ceil(files / (repos.length * arches.length));
  let made = 0;
  for (const r of repos) {
    for (const a of arches) {
      const os = join(dir, r, a, 'os');
      for (let i = 0; i < per && made < files; i++) {
        const letter = String.fromCharCode(97 + (i % 26));
        const pdir = join(os, 'Packages', letter);
        if (i < 26) mkdirSync(pdir, { recursive: true });
        writeFileSync(join(pdir, `${r.toLowerCase()}-pkg${i}-1.0-1.el9.${a}.rpm`), `${r}:${a}:${i}\n`);
        made++;
      }
      mkdirSync(join(os, 'repodata'), { recursive: true });
      writeFileSync(join(os, 'repodata', 'repomd.xml'), `<repomd>${r}${a}</repomd>\n`);
    }
  }
  execFileSync('ln', ['-sfn', 'NFV', join(dir, 'nfv')]);
}

export async function runPublishBench(opts: PublishBenchOptions, emit: Emit): Promise<void> {
  const root = resolve(opts.workspaceRoot ?? join(__dirname, '..'));
  const files = opts.files ?? 200_000;
  const runs = opts.runs ?? 3;
  const log = opts.log ?? ((m: string) => console.log(m));
  const shared = join(root, '.releng/bench/filelist-tree');
  const own = join(root, '.releng/bench/publish-tree');
  const src = join(own, 'src');
  if (!existsSync(src) || countFiles(src, files) < files) {
    execFileSync('rm', ['-rf', src]);
    // A hardlinked snapshot of the colleague's tree: their bench may change theirs while ours runs.
    if (existsSync(shared) && countFiles(shared, files) >= files) {
      mkdirSync(own, { recursive: true });
      execFileSync('cp', ['-al', shared, src]);
    } else makeTree(src, files, log);
  }
  const dest = join(own, 'dest');
  const workDir = join(own, 'work');
  log(`source ${src}; first publish to ${dest} (copies only what differs)`);
  await publishTree({ source: src, dest, delete: true, deletionGraceMs: 0, workDir });

  const ours: number[] = [];
  const theirs: number[] = [];
  const [oursCpu, theirsCpu]: number[][] = [[], []];
  for (let i = 0; i < runs; i++) {
    // Alternate, so page-cache warmth favours neither.
    let t = process.hrtime.bigint();
    let c = cpuSeconds();
    const r = await publishTree({ source: src, dest, delete: true, workDir });
    ours.push(Number(process.hrtime.bigint() - t) / 1e9);
    oursCpu.push(cpuSeconds() - c);
    if (r.changed) throw new Error('bench: the tree changed between runs');
    t = process.hrtime.bigint();
    c = cpuSeconds();
    execFileSync('rsync', ['-a', '--delete', '--dry-run', `${src}/`, `${dest}/`]);
    theirs.push(Number(process.hrtime.bigint() - t) / 1e9);
    theirsCpu.push(cpuSeconds() - c);
  }
  const [o, r] = [median(ours), median(theirs)];
  const cpu = `CPU-s ours ${median(oursCpu).toFixed(2)}, rsync ${median(theirsCpu).toFixed(2)}`;
  const row = measured({ name: `publish unchanged tree (${countFiles(src, Infinity)} files)`, ours: o, theirs: r, theirsName: 'rsync -a --delete --dry-run', goal: { within: 1.5 }, notes: `median of ${runs}; ${cpu}` });
  log(`${row.name}: ours ${o.toFixed(3)} s (runs ${ours.map((x) => x.toFixed(3)).join(', ')}), rsync -a --delete --dry-run ${r.toFixed(3)} s (runs ${theirs.map((x) => x.toFixed(3)).join(', ')}), ours/rsync ${(o / r).toFixed(2)} (goal <= 1.5); ${cpu}`);
  emit(row);
}

if (require.main === module) {
  const { values } = parseArgs({ options: { files: { type: 'string' }, runs: { type: 'string' } } });
  standalone((emit) => runPublishBench({ files: values.files ? Number(values.files) : undefined, runs: values.runs ? Number(values.runs) : undefined }, emit));
}
