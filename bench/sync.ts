// Sync benchmark (issue 3): our sync stage against `dnf reposync --download-metadata` on the
// same repos, served over loopback by the fixture at a scale of thousands of packages; cold
// (empty destination, empty store/cache) and warm (destination already populated, nothing changed).
// Each run of ours is a process of its own, as each run of dnf is and as an Nx task runs the stage
// (sync-child.js); the same stage run in this process, its modules loaded and its code warm from
// the runs before, is in the notes: the difference is what every sync task pays to start.
// A third row times dnf reposync as Rocky's SOP runs it (empanadas' reposync.tmpl: `--gpgcheck`,
// which verifies every package's signature, as ours does with rpmkeys), reported beside the goal's.
// Standalone: node -r @swc-node/register bench/sync.ts [--scale 250] [--reps 3]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadRelease, loadSite, type Site } from '@rocky/config';
import { spawn } from 'node:child_process';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { compiledBuild } = require('../tools/executors/build') as { compiledBuild: (root: string) => string };
import { ensureFixture } from '@rocky/upstream-fixture';
import { runStage, stageContext, syncStage } from '../libs/stages/src';
import { readSyncManifest } from '../libs/stages/src/manifests';
import { dnfArgv, dnfConfig, reposyncArgv } from '@rocky/rpm-repo';
import { run } from '@rocky/exec';
import { cpuSeconds, deferDelete, dotEnv, timeIt, flag, measured, median, standalone, type Emit } from './lib';

const RELEASE = `# Benchmark release: BaseOS and AppStream for two arches, binary trees only.
major: 9
minor: 7
type: stable
profile: bench
project: bench
arches: [x86_64, aarch64]
repos:
  - { name: BaseOS, debug: false, source: false, kickstart: false }
  - { name: AppStream, closure: [BaseOS], debug: false, source: false, kickstart: false }
iso:
  lorax: { variant: BaseOS, repos: [BaseOS, AppStream] }
`;

export async function runSyncBench(opts: { scale?: number; reps?: number }, emit: Emit): Promise<void> {
  const scale = opts.scale ?? 250;
  const reps = opts.reps ?? 3;
  const ws = resolve(__dirname, `../.releng/bench/sync-${scale}`);
  mkdirSync(join(ws, 'releases/bench'), { recursive: true });
  writeFileSync(join(ws, 'releases/bench/release.yaml'), RELEASE);
  const fxRoot = join(ws, 'upstream');
  await ensureFixture({ workspaceRoot: ws, root: fxRoot, scale, log: (m) => console.log(m) });
  // Every cold run, ours and dnf's, writes into directories of its own, and nothing is deleted
  // until every run is measured: deleting one run's files before the next (tens of thousands, on a
  // filesystem mounted with discard, as the bench machine's root is) slowed that next run of either
  // tool by up to 2x (dnf reposync of 20,020 packages: 30, 52, 49 s in a row with deletes between,
  // 32, 23, 25 s without). What a killed bench left is moved aside now; all of it is deleted once
  // every bench of the run is done (deferDelete).
  const runDirs = join(ws, 'runs');
  deferDelete(runDirs);
  const server = await serveElsewhere(fxRoot);
  try {
    const rel = { ...loadRelease(ws, 'bench'), name: 'bench' };
    const local = loadSite(resolve(__dirname, '..'), 'local');
    const siteIn = (out: string): Site => ({
      ...local,
      roots: { compose: join(out, 'compose'), staging: join(out, 'staging'), production: join(out, 'production') },
      upstream: { url: `${server.url}/v1/projects/{project}/repo/hashed-{repo}/{arch}`, verifySignature: true, gpgKey: join(fxRoot, 'RPM-GPG-KEY-fixture') },
      store: { type: 'local', path: join(out, 'store') },
      state: join(out, 'state'),
      concurrency: { downloads: 16, builds: 2 },
    });
    // A context per run: its event log makes the state dir once, and a cold run starts from nothing.
    const context = (out: string) => stageContext({ root: join(out, 'ws'), project: 'bench', target: 'sync', release: rel, site: siteIn(out), dryRun: false });
    const quiet = <T>(fn: () => Promise<T>) => async () => {
      const log = console.log;
      console.log = () => {};
      try {
        return await fn();
      } finally {
        console.log = log;
      }
    };
    /** Our sync into `out`, in a process of its own with the environment Nx gives a task (the workspace's .env). */
    const taskEnv = { ...process.env, ...dotEnv(resolve(__dirname, '../.env')) };
    // The compiled build the children load, made now if the sources changed since the last one:
    // not in a timed run (the first nx run after a change makes it, once).
    compiledBuild(resolve(__dirname, '..'));
    /** CPU seconds of each cold run's own process (sync-child.js reports them), the rest of its CPU being its tools'. */
    const ownCpu: number[] = [];
    const ours = (out: string, own?: number[]) => async () => {
      const r = await run([process.execPath, resolve(__dirname, 'sync-child.js'), JSON.stringify({ root: join(out, 'ws'), rel, site: siteIn(out) })], { env: taskEnv });
      own?.push((JSON.parse(r.stdout.trim().split('\n').pop()!) as { cpuSeconds: number }).cpuSeconds);
    };
    /** The same stage in this process. */
    const inProcess = (out: string) => quiet(() => runStage(syncStage, context(out)));
    // dnf reposync: one call per arch with both repos, metadata included, own config and cache.
    // Async: the fixture server runs in another process and must keep answering while dnf runs.
    const reposync = (dnfDir: string) => async () => {
      for (const arch of ['x86_64', 'aarch64']) {
        const conf = dnfConfig(join(dnfDir, 'conf', arch));
        const repos = ['BaseOS', 'AppStream'].map((r) => ({ id: r, url: `${server.url}/v1/projects/bench/repo/hashed-${r}/${arch}` }));
        await run(reposyncArgv({ config: conf, releasever: 9, forcearch: arch, repos, quiet: true, downloadMetadata: true, arches: [arch, 'noarch'], dest: join(dnfDir, 'out', arch) }));
      }
    };
    // As the SOP syncs (empanadas' reposync.tmpl, one container per repo x arch): the key imported
    // with `rpm --import` (into a root of the run's own, before the clock starts), then per repo,
    // one after the other, every arch at once: `dnf reposync --download-metadata --repoid=<repo>
    // -p <dest> --forcearch <arch> --norepopath --remote-time --gpgcheck`. Its `dnf makecache`
    // first and its repoclosure runs after are left out (ours includes its repoclosure).
    const arches = ['x86_64', 'aarch64'];
    const sopRoot = (dir: string, arch: string) => join(dir, 'root', arch);
    const sopSetup = async (dir: string) => {
      for (const arch of arches) {
        mkdirSync(sopRoot(dir, arch), { recursive: true });
        await run(['rpm', '--root', sopRoot(dir, arch), '--import', join(fxRoot, 'RPM-GPG-KEY-fixture')]);
      }
    };
    const reposyncSop = (dir: string) => async () => {
      for (const repo of ['BaseOS', 'AppStream']) {
        await Promise.all(
          arches.map((arch) => {
            const conf = dnfConfig(join(dir, 'conf', repo, arch));
            const repos = [{ id: repo, url: `${server.url}/v1/projects/bench/repo/hashed-${repo}/${arch}` }];
            const sync = ['reposync', '--download-metadata', `--repoid=${repo}`, '-p', join(dir, 'out', repo, arch), '--norepopath', '--remote-time', '--gpgcheck', `--installroot=${sopRoot(dir, arch)}`];
            // The SOP's repo configs have gpgcheck=1: reposync --gpgcheck skips the check of a repo without it.
            return run(dnfArgv({ config: conf, releasever: 9, forcearch: arch, repos, quiet: true, assumeyes: true, setopt: [['gpgcheck', '1']] }, sync));
          }),
        );
      }
    };
    // Interleaved, so that a change in the machine's load hits both alike.
    const times = { oursCold: [] as number[], dnfCold: [] as number[], sopCold: [] as number[], oursWarm: [] as number[], dnfWarm: [] as number[], inCold: [] as number[], inWarm: [] as number[] };
    // CPU seconds of the cold runs as well (less sensitive to load than wall time): ours is its
    // process and the tools that waited for (gpg, gpgv, dnf), dnf's its processes.
    const cpu = { ours: [] as number[], dnf: [] as number[], sop: [] as number[] };
    const cpuOf = async (xs: number[], fn: () => Promise<number>) => {
      const before = cpuSeconds();
      const wall = await fn();
      xs.push(cpuSeconds() - before);
      return wall;
    };
    const oursDir = (i: number) => join(runDirs, `ours-${i}`);
    const dnfDir = (i: number) => join(runDirs, `dnf-${i}`);
    for (let i = 0; i < reps; i++) {
      times.oursCold.push(await cpuOf(cpu.ours, () => timeIt(1, ours(oursDir(i), ownCpu))));
      times.dnfCold.push(await cpuOf(cpu.dnf, () => timeIt(1, reposync(dnfDir(i)))));
      times.inCold.push(await timeIt(1, inProcess(join(runDirs, `in-process-${i}`))));
      const sop = join(runDirs, `sop-${i}`);
      await sopSetup(sop);
      times.sopCold.push(await cpuOf(cpu.sop, () => timeIt(1, reposyncSop(sop))));
    }
    // Warm: the last cold runs' directories, already populated.
    const last = reps - 1;
    const packages = (['x86_64', 'aarch64'] as const).reduce((n, a) => n + readSyncManifest(join(oursDir(last), 'ws'), 'bench', a).trees.reduce((m, t) => m + t.packages.length, 0), 0);
    const note = `${packages} packages in 4 trees (${scale}x fixture)`;
    const runs = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(' ');
    emit(measured({ name: 'sync cold', ours: median(times.oursCold), theirs: median(times.dnfCold), theirsName: 'dnf reposync', goal: { faster: 1.5 }, notes: `${note}; ours includes signature checks (repomd.xml's with gpgv, every package's with rpmkeys) and dnf repoclosure, dnf reposync checks none; runs ours ${runs(times.oursCold)}, dnf ${runs(times.dnfCold)}; CPU-s ours ${runs(cpu.ours)} (median ${median(cpu.ours).toFixed(2)}; its own process ${runs(ownCpu)}, the rest its tools: dnf repoclosure, rpmkeys, gpgv), dnf ${runs(cpu.dnf)} (median ${median(cpu.dnf).toFixed(2)}); ours in the bench's process, warm: ${runs(times.inCold)} (median ${median(times.inCold).toFixed(2)})` }));
    emit(measured({ name: "sync cold, against the SOP's reposync", ours: median(times.oursCold), theirs: median(times.sopCold), theirsName: 'dnf reposync --gpgcheck (empanadas)', goal: 'report', notes: `${note}; theirs as Rocky's SOP runs it: per repo, each arch at once, --gpgcheck --remote-time --norepopath, the key imported first (untimed), no makecache, no repoclosure (ours includes its repoclosure); runs ours ${runs(times.oursCold)}, theirs ${runs(times.sopCold)}; CPU-s theirs ${runs(cpu.sop)}` }));
    for (let i = 0; i < reps; i++) {
      times.oursWarm.push(await timeIt(1, ours(oursDir(last))));
      times.dnfWarm.push(await timeIt(1, reposync(dnfDir(last))));
      times.inWarm.push(await timeIt(1, inProcess(oursDir(last))));
    }
    emit(measured({ name: 'sync warm (nothing changed)', ours: median(times.oursWarm), theirs: median(times.dnfWarm), theirsName: 'dnf reposync', goal: { faster: 10 }, notes: `${note}; ours: the upstream's repomd.xml files are unchanged, nothing else is read; runs ours ${runs(times.oursWarm)}, dnf ${runs(times.dnfWarm)}; ours in the bench's process, warm: ${runs(times.inWarm)}` }));
  } finally {
    server.close();
    deferDelete(runDirs);
  }
}

/** The fixture server in a child process, so it does not compete with the measured client. */
async function serveElsewhere(root: string): Promise<{ url: string; close(): void }> {
  const child = spawn(process.execPath, ['-r', '@swc-node/register', resolve(__dirname, 'serve-fixture.ts'), root], { cwd: resolve(__dirname, '..'), stdio: ['pipe', 'pipe', 'inherit'] });
  const url = await new Promise<string>((ok, fail) => {
    child.stdout.once('data', (d: Buffer) => ok(d.toString().trim()));
    child.once('exit', (c) => fail(new Error(`fixture server exited ${c}`)));
  });
  return { url, close: () => child.kill('SIGTERM') };
}

if (require.main === module) {
  standalone((emit) => runSyncBench({ scale: flag('scale', 250), reps: flag('reps', 3) }, emit));
}
