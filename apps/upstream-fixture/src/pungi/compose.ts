// The fixture's pungi-koji: writes a compose in pungi's real layout (pungi/paths.py, compose.py,
// scripts/pungi_koji.py) from the fixture's signed packages, playing koji with the fixture root:
// its project `<tag>` is the koji tag, its repo `hashed-<repo>` the packages of the variant of
// that name (an ISO-only variant, Minimal, takes what its comps groups name). Phases as pungi
// runs them (init, pkgset, gather, createrepo, buildinstall, .treeinfo/.discinfo/media.repo,
// createiso, image_checksum, metadata, test), STATUS STARTED → FINISHED /
// FINISHED_INCOMPLETE (failed deliverables in logs/global/deliverables.json) or DOOMED
// (traceback in logs/global/traceback.global.log), TERMINATED on SIGTERM/SIGINT, and its own
// relative latest link. buildinstall (lorax) is played by @rocky/iso's boot-tree builder; image
// builds, which pungi delegates to koji, are not played: skipped as pungi skips an unconfigured phase.
import { createHash } from 'node:crypto';
import { appendFileSync, copyFileSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { composeInfo, discTimestamp, imagesJson, parseTreeinfo, renderChecksum, renderDiscinfo, renderMediaRepo, renderTreeinfo, repoTreeinfo, rpmsJson, stableJson, type ComposeRef, type ImageEntry, type RpmEntry } from '@rocky/compose';
import { PungiComposeLayout, pungiComposeId, pungiLatestLink, schemas, type Arch, type PungiComposeType, type Release } from '@rocky/config';
import { formatArgv, hashFile, mapLimit, run, runSync, symlinkAtomic, writeFileAtomic } from '@rocky/exec';
import { buildBootTree, buildExtraIso, implantedMd5, implantisomd5Argv, mkisofsArgv, type BootTreeResult } from '@rocky/iso';
import { createrepo, modifyrepo, nevraOf, parseModules, parsePrimary, parseRepomd, readRepodata, renderModules, rpmSignerKeyId, type RpmPackage } from '@rocky/rpm-repo';
import type { PungiArgs } from './args';
import { archVariantData, imageNameFormatOf, loadPungiConfig, variantComps, type PungiConfig, type Variant } from './config';

export const FIXTURE_PUNGI_VERSION = '4.3.2 (upstream fixture)';

/** Environment of the fixture's pungi-koji. */
export interface FixtureEnv {
  /** The fixture root that plays koji (its `v1/projects/<tag>/repo/hashed-<repo>/…` trees). */
  kojiRoot: string;
  /** `doomed`: fail after gather; `incomplete`: the first ISO deliverable fails. */
  fault?: 'doomed' | 'incomplete';
  /** `YYYYMMDD` instead of today (local time, as pungi takes it). */
  date?: string;
  stdout: (line: string) => void;
  stderr: (line: string) => void;
}

/** What makes argparse's parser.error: the caller prints usage and exits 2. */
export class AbortError extends Error {}

type Deliverable = [variant: string, arch: string, subvariant: string | null];

const pad = (n: number) => String(n).padStart(2, '0');
const stamp = (d = new Date()) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
const today = () => {
  const d = new Date();
  return `${d.getFullYear()}${pad(d.getMonth() + 1)}${pad(d.getDate())}`;
};

/** `str.format`-style `{name}` substitution, as pungi fills image names and volume ids. */
function format(fmt: string, values: Record<string, string | number | null | undefined>, what: string): string {
  return fmt.replace(/\{([a-z_]+)\}/g, (_, k: string) => {
    if (!(k in values)) throw new Error(`Failed to create ${what}: unknown format element: '${k}'`);
    return String(values[k] ?? '');
  });
}

/** productmd's label check (composeinfo.verify_label). */
const LABEL_RE = /^(EA|DevelPhaseExit|InternalAlpha|Alpha|InternalSnapshot|Beta|Snapshot|RC|Update|SecurityFix)-\d+\.\d+$/;

/** pungi's find_old_compose: the newest FINISHED/FINISHED_INCOMPLETE/DOOMED compose of the same release in `dirs`. */
function findOldCompose(dirs: string[], prefix: string): string | undefined {
  const found: [string, number, string][] = [];
  for (const d of dirs) {
    if (!existsSync(d) || !statSync(d).isDirectory()) continue;
    for (const name of readdirSync(d)) {
      if (!name.startsWith(prefix)) continue;
      const rest = name.slice(prefix.length);
      if (rest.length < 2 || !/\d/.test(rest[1])) continue;
      const status = join(d, name, 'STATUS');
      if (!existsSync(status) || !['FINISHED', 'FINISHED_INCOMPLETE', 'DOOMED'].includes(readFileSync(status, 'utf8').trim())) continue;
      const dot = name.lastIndexOf('.');
      found.push([name.slice(0, dot), Number(name.slice(dot + 1)), join(d, name)]);
    }
  }
  found.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]));
  return found.at(-1)?.[2];
}

/** One tree of the fixture's "koji": a repo of the fixture project, read from its repodata. */
interface KojiTree {
  dir: string;
  packages: RpmPackage[];
  /** The module builds tagged there (modules.yaml), if any. */
  modules?: string;
}

/** Where a variant's packages come from: a repo of the tag, all of it or only the packages named in `only`. */
interface VariantSource {
  repo: string;
  only?: Set<string>;
}

class Koji {
  private cache = new Map<string, KojiTree | undefined>();
  readonly repos: string[];
  constructor(
    readonly root: string,
    readonly tag: string,
  ) {
    const dir = join(root, 'v1', 'projects', tag, 'repo');
    if (!existsSync(dir)) throw new Error(`koji tag ${tag} not found: no ${dir} (build the fixture for ${tag} first: apps/upstream-fixture/src/main.ts build --root ${root})`);
    this.repos = readdirSync(dir)
      .filter((n) => n.startsWith('hashed-'))
      .map((n) => n.slice('hashed-'.length))
      .sort();
  }
  /** The repo of the same name as the variant (case aside): the fixture's tag keeps one per variant. */
  private ownRepo(v: Variant): string | undefined {
    if (this.repos.includes(v.uid)) return v.uid;
    const m = this.repos.filter((r) => r.toLowerCase() === v.uid.toLowerCase());
    if (m.length > 1) throw new Error(`variant ${v.uid}: koji tag ${this.tag} has several repos for it (${m.join(', ')})`);
    return m[0];
  }

  /**
   * The packages of a variant: its own repo; a variant with none (an ISO-only variant such as
   * Minimal) takes the packages its comps groups name from the repos of the compose's other
   * variants (the compose's package set: the fixture's one tag serves every compose), as pungi's
   * comps gather does.
   */
  sourcesOf(v: Variant, conf: Pick<PungiConfig, 'comps' | 'variants'>): VariantSource[] {
    const own = this.ownRepo(v);
    if (own) return [{ repo: own }];
    if (!conf.comps || !v.groups.length) throw new Error(`variant ${v.uid}: koji tag ${this.tag} has no packages for it (repos: ${this.repos.join(', ')}) and it names no comps groups`);
    const only = new Set(conf.comps.groups.filter((g) => v.groups.includes(g.id)).flatMap((g) => g.packages.map((p) => p.name)));
    return [...new Set(conf.variants.map((x) => this.ownRepo(x)).filter((r): r is string => !!r))].map((repo) => ({ repo, only }));
  }
  dir(repo: string, upstreamArch: string): string {
    return join(this.root, 'v1', 'projects', this.tag, 'repo', `hashed-${repo}`, upstreamArch);
  }
  async tree(repo: string, upstreamArch: string): Promise<KojiTree | undefined> {
    const key = `${repo}/${upstreamArch}`;
    if (this.cache.has(key)) return this.cache.get(key);
    const dir = this.dir(repo, upstreamArch);
    let t: KojiTree | undefined;
    const repomdFile = join(dir, 'repodata', 'repomd.xml');
    if (existsSync(repomdFile)) {
      const records = parseRepomd(readFileSync(repomdFile, 'utf8'), repomdFile).records;
      const primary = records.find((r) => r.type === 'primary');
      if (!primary) throw new Error(`${repomdFile}: no primary record`);
      const modules = records.find((r) => r.type === 'modules');
      t = {
        dir,
        packages: parsePrimary((await readRepodata(join(dir, primary.href), primary.href)).toString('utf8'), join(dir, primary.href)),
        modules: modules && (await readRepodata(join(dir, modules.href), modules.href)).toString('utf8'),
      };
    }
    this.cache.set(key, t);
    return t;
  }
}

/**
 * What the fixture's koji holds for a compose of `config`, as `koji list-tagged` tells for a real
 * tag: every repomd.xml of the repos and arches the compose's variants read (none: `-`). The
 * compose tasks' Nx hash takes it (libs/stages pungi-inputs.ts), so a change to the Extras repo
 * reruns the Extras compose only.
 */
export function kojiState(kojiRoot: string, config: string): string {
  const conf = loadPungiConfig(config);
  const koji = new Koji(kojiRoot, conf.kojiTag);
  const lines: string[] = [];
  for (const v of conf.variants) {
    for (const src of koji.sourcesOf(v, conf)) {
      for (const a of [...v.arches, ...v.arches.map((x) => `${x}-debug`), 'src']) {
        const repomd = join(koji.dir(src.repo, a), 'repodata', 'repomd.xml');
        lines.push(`${v.uid} ${src.repo} ${a} ${existsSync(repomd) ? createHash('sha256').update(readFileSync(repomd)).digest('hex') : '-'}`);
      }
    }
  }
  return `koji tag ${conf.kojiTag}\n${lines.join('\n')}\n`;
}

/** Hardlinks (or copies across file systems: pungi's hardlink-or-copy) `src` to a new `dest`. */
function linkOrCopy(src: string, dest: string): void {
  mkdirSync(dirname(dest), { recursive: true });
  try {
    linkSync(src, dest);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return;
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    copyFileSync(src, dest);
  }
}

function walk(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(`/${relative(base, p)}`, ...walk(p, base));
    else out.push(`/${relative(base, p)}`);
  }
  return out;
}

export class FixtureCompose {
  readonly layout: PungiComposeLayout;
  private status: string | undefined;
  private deliverables = { required: {} as Record<string, Deliverable[]>, failed: {} as Record<string, Deliverable[]>, attempted: {} as Record<string, Deliverable[]> };
  private images: ImageEntry[] = [];
  /** The boot tree buildinstall made for each arch, which every bootable ISO of that arch is made with. */
  private bootTrees = new Map<string, Promise<BootTreeResult>>();
  /** The os trees (`<variant>.<arch>`) buildinstall put a boot tree into: their .treeinfo names its images. */
  private bootable = new Map<string, BootTreeResult>();
  private rpms: RpmEntry[] = [];
  private readonly started = Math.floor(Date.now() / 1000);

  constructor(
    readonly conf: PungiConfig,
    readonly args: PungiArgs,
    readonly env: FixtureEnv,
    readonly dir: string,
    readonly ref: ComposeRef,
    readonly composeType: PungiComposeType,
  ) {
    this.layout = new PungiComposeLayout(dir);
  }

  log(level: 'INFO' | 'WARNING' | 'ERROR' | 'CRITICAL' | 'DEBUG', msg: string): void {
    const line = `${stamp()} [${level.padEnd(8)}] ${msg}`;
    const file = this.layout.log(undefined, 'pungi');
    mkdirSync(dirname(file), { recursive: true });
    appendFileSync(file, `${line}\n`);
    if (!this.args.quiet) this.env.stderr(line);
  }

  /** Runs every --notification-script with `msg` and the compose's data on stdin (pungi's PungiNotifier). */
  notify(msg: string, data: Record<string, unknown> = {}): void {
    if (!this.args.notificationScript.length) return;
    const body = JSON.stringify({
      compose_id: this.ref.id,
      location: this.layout.compose,
      compose_date: this.ref.date,
      compose_type: this.ref.type,
      compose_respin: this.ref.respin,
      compose_label: this.ref.label ?? null,
      compose_path: this.dir,
      release_short: this.conf.releaseShort,
      release_name: this.conf.releaseName,
      release_version: this.conf.releaseVersion,
      release_type: this.conf.releaseType,
      release_is_layered: false,
      ...data,
    });
    for (const script of this.args.notificationScript) {
      const logFile = join(this.dir, 'logs', 'global', 'notifications', `notification-${msg}.log`);
      try {
        runSync([script, msg], { input: body, cwd: existsSync(this.layout.compose) ? this.layout.compose : this.dir, logFile });
      } catch {
        this.log('WARNING', 'Failed to invoke notification script.');
      }
    }
  }

  /** pungi's write_status: a FINISHED compose is final; FINISHED with failed deliverables is FINISHED_INCOMPLETE. */
  writeStatus(word: 'STARTED' | 'FINISHED' | 'DOOMED' | 'TERMINATED'): void {
    let s: string = word;
    if (s === this.status) return;
    if (this.status === 'FINISHED' || this.status === 'FINISHED_INCOMPLETE') throw new Error(`Could not modify a FINISHED compose: ${this.dir}`);
    if (s === 'FINISHED' && Object.keys(this.deliverables.failed).length) s = 'FINISHED_INCOMPLETE';
    for (const [kind, list] of Object.entries(this.deliverables.failed)) for (const [v, a, sv] of list) this.log('INFO', `Failed ${kind} on variant <${v}>, arch <${a}>, subvariant <${sv ?? 'None'}>.`);
    writeFileAtomic(this.layout.deliverables, `${JSON.stringify(this.deliverables, null, 4)}\n`);
    writeFileAtomic(this.layout.status, `${s}\n`);
    this.status = s;
    this.notify('status-change', { status: s });
  }

  private phaseRuns(name: string): boolean {
    const skip = [...this.args.skipPhase, ...this.conf.skipPhases];
    if (skip.includes(name)) return false;
    return !this.args.justPhase.length || this.args.justPhase.includes(name);
  }

  private async phase(name: string, fn: () => Promise<void> | void, configured = true): Promise<void> {
    if (!configured || !this.phaseRuns(name)) {
      this.log('INFO', `[SKIP ] Phase ${name}`);
      return;
    }
    const t0 = Date.now();
    this.notify('phase-start', { phase_name: name });
    this.log('INFO', `[BEGIN] Phase ${name}`);
    await fn();
    this.log('INFO', `[DONE ] Phase ${name}`);
    this.log('INFO', `PHASE ${name.toUpperCase()} took ${Math.round((Date.now() - t0) / 1000)} seconds`);
    this.notify('phase-stop', { phase_name: name });
  }

  private attempt(kind: string, v: string, arch: string, sub: string | null): { failable: boolean } {
    (this.deliverables.attempted[kind] ??= []).push([v, arch, sub]);
    const failable = archVariantData<string>(this.conf.failableDeliverables, arch, v).includes(kind);
    if (!failable) (this.deliverables.required[kind] ??= []).push([v, arch, sub]);
    return { failable };
  }

  async run(): Promise<void> {
    const conf = this.conf;
    this.writeStatus('STARTED');
    this.log('INFO', `Host: ${hostname()}`);
    this.log('INFO', `Pungi version: ${FIXTURE_PUNGI_VERSION}`);
    this.log('INFO', `User name: ${userInfo().username}`);
    this.log('INFO', `Working directory: ${process.cwd()}`);
    this.log('INFO', `Command line: ${formatArgv(['pungi-koji', ...process.argv.slice(2)])}`);
    this.log('INFO', `Compose top directory: ${this.dir}`);
    this.log('INFO', `COMPOSE_ID=${this.ref.id}`);

    // read_variants and the config dump/copy, as run_compose does before the phases.
    writeFileAtomic(this.layout.variantsFile, readFileSync(join(dirname(conf.file), String(conf.raw.variants_file)), 'utf8'));
    const copyDir = join(this.dir, 'logs', 'global', 'config-copy');
    mkdirSync(copyDir, { recursive: true });
    copyFileSync(conf.file, join(copyDir, basename(conf.file)));
    writeFileAtomic(this.layout.log(undefined, 'config-dump'), `${JSON.stringify(sortKeys(conf.raw), null, 4)}\n`);

    const oldPrefix = `${conf.releaseShort}-${conf.releaseVersion}${conf.releaseType === 'ga' ? '' : `-${conf.releaseType}`}`;
    if (this.args.oldComposes.length) {
      const old = findOldCompose(this.args.oldComposes, oldPrefix);
      this.log('INFO', old ? `Old compose found: ${old}` : `No old compose found in ${this.args.oldComposes.join(', ')}`);
    }
    if (this.args.kojiEvent) this.log('INFO', `Koji event: ${this.args.kojiEvent}`);

    await this.phase('init', () => {
      if (!conf.comps) return;
      for (const v of conf.variants) for (const arch of v.arches) writeFileAtomic(this.layout.comps(v.uid, arch), variantComps(conf.comps, v, arch, conf.file));
    });

    const koji = new Koji(this.env.kojiRoot, conf.kojiTag);
    await this.phase('pkgset', async () => {
      this.log('INFO', `Populating package set from koji tag ${conf.kojiTag} (${this.env.kojiRoot})`);
      for (const v of conf.variants) koji.sourcesOf(v, conf);
    });

    await this.phase('gather', () => this.gather(koji));
    writeFileAtomic(this.layout.metadata('rpms.json'), stableJson(rpmsJson({ compose: this.ref, rpms: this.rpms })));
    if (this.env.fault === 'doomed') throw new Error('fixture fault: the compose is doomed after the gather phase (PUNGI_FIXTURE_FAULT=doomed)');

    await this.phase('createrepo', () => this.createrepo(koji));
    await this.phase('buildinstall', () => this.buildinstall(koji), !!conf.buildinstallMethod);
    this.writeTreeMetadata();
    const isos = this.phaseRuns('createiso');
    await this.phase('createiso', () => this.createiso());
    await this.phase('image_checksum', () => this.imageChecksums(), isos);
    await this.phase('repoclosure', () => undefined, false);

    writeFileAtomic(this.layout.metadata('composeinfo.json'), stableJson(this.composeInfo()));
    if (isos) writeFileAtomic(this.layout.metadata('images.json'), stableJson(imagesJson({ compose: this.ref, images: this.images })));
    await this.phase('test', () => undefined);

    this.writeStatus('FINISHED');
    this.latestLink();
    this.log('INFO', `Compose finished: ${this.dir}`);
  }

  private packagesDir(tree: string): string {
    return join(tree, 'Packages');
  }
  private pkgPath(treeRel: string, file: string): string {
    return `${treeRel}/Packages/${this.conf.hashedDirectories ? `${file[0].toLowerCase()}/` : ''}${file}`;
  }

  private async gather(koji: Koji): Promise<void> {
    const sigkeys = new Map<string, string | null>();
    const sigkey = async (file: string) => {
      if (!sigkeys.has(file)) sigkeys.set(file, (await rpmSignerKeyId(file))?.slice(-8).toLowerCase() ?? null);
      return sigkeys.get(file)!;
    };
    for (const v of this.conf.variants) {
      const sources = new Set<string>();
      const own = koji.sourcesOf(v, this.conf);
      for (const arch of v.arches) {
        const msg = `Linking packages (arch: ${arch}, variant: ${v.uid})`;
        this.log('INFO', `[BEGIN] ${msg}`);
        let found = 0;
        for (const { repo, only } of own) {
          const src = await koji.tree(repo, 'src');
          const srpmByFile = new Map((src?.packages ?? []).map((p) => [basename(p.href), p]));
          const bin = await koji.tree(repo, arch);
          // Debuginfo goes with a variant's own repo; a comps-gathered variant takes binaries only.
          const debug = only ? undefined : await koji.tree(repo, `${arch}-debug`);
          const archSources = new Map<string, RpmPackage>();
          for (const [tree, kind, category] of [
            [bin, 'os', 'binary'],
            [debug, 'debug', 'debug'],
          ] as const) {
            for (const p of tree?.packages ?? []) {
              if (only && !only.has(p.name)) continue;
              found++;
              const file = basename(p.href);
              const treeRel = kind === 'os' ? `${v.uid}/${arch}/os` : `${v.uid}/${arch}/debug/tree`;
              const path = this.pkgPath(treeRel, file);
              linkOrCopy(join(tree!.dir, p.href), join(this.layout.compose, path));
              let srpm = p.sourcerpm ? srpmByFile.get(p.sourcerpm) : undefined;
              if (!srpm) {
                this.log('WARNING', `Package ${p.name} has no SRPM available, guessing epoch: ${p.epoch}`);
                const [name, version, release] = /^(.+)-([^-]+)-([^-]+)\.src\.rpm$/.exec(p.sourcerpm ?? '')?.slice(1) ?? [p.name, p.version, p.release];
                srpm = { ...p, name, version, release, arch: 'src' };
              } else archSources.set(basename(srpm.href), srpm);
              this.rpms.push({
                variant: v.uid,
                arch,
                rpm: p,
                srpm: { name: srpm.name, epoch: srpm.epoch, version: srpm.version, release: srpm.release, arch: 'src' },
                path,
                sigkey: await sigkey(join(tree!.dir, p.href)),
                category,
              });
            }
          }
          for (const [file, s] of archSources) {
            const path = this.pkgPath(`${v.uid}/source/tree`, file);
            if (!sources.has(file)) linkOrCopy(join(src!.dir, s.href), join(this.layout.compose, path));
            sources.add(file);
            this.rpms.push({ variant: v.uid, arch, rpm: s, path, sigkey: await sigkey(join(src!.dir, s.href)), category: 'source' });
          }
        }
        if (!found) throw new Error(`variant ${v.uid}: koji tag ${this.conf.kojiTag} has no ${arch} packages for it in ${own.map((x) => x.repo).join(', ')}`);
        mkdirSync(this.packagesDir(this.layout.tree({ variant: v.uid, kind: 'os', arch })), { recursive: true });
        this.log('INFO', `[DONE ] ${msg}`);
      }
      // Every variant has its debug and source trees, even when empty: createrepo makes their repodata.
      for (const arch of v.arches) mkdirSync(this.packagesDir(this.layout.tree({ variant: v.uid, kind: 'debug', arch })), { recursive: true });
      mkdirSync(this.packagesDir(this.layout.tree({ variant: v.uid, kind: 'source', arch: 'src' })), { recursive: true });
    }
  }

  private async createrepo(koji: Koji): Promise<void> {
    const trees: [Variant, string, string, 'rpm' | 'debuginfo' | 'srpm', string | undefined][] = [];
    for (const v of this.conf.variants) {
      for (const arch of v.arches) {
        trees.push([v, this.layout.tree({ variant: v.uid, kind: 'os', arch }), arch, 'rpm', this.conf.comps ? this.layout.comps(v.uid, arch) : undefined]);
        trees.push([v, this.layout.tree({ variant: v.uid, kind: 'debug', arch }), arch, 'debuginfo', undefined]);
      }
      trees.push([v, this.layout.tree({ variant: v.uid, kind: 'source', arch: 'src' }), 'global', 'srpm', undefined]);
    }
    // A few at a time, as pungi's thread pool (createrepo_num_threads) runs them.
    await mapLimit(trees, 2, async ([v, dir, arch, type, groupfile]) => {
      const msg = `Creating repo (arch: ${arch}, variant: ${v.uid}): ${dir}`;
      this.log('INFO', `[BEGIN] ${msg}`);
      await createrepo({ dir, database: false, checksum: 'sha256', workers: 1, groupfile }, { logFile: this.layout.log(arch, `createrepo-${v.uid}.${type}`) });
      if (type === 'rpm') await this.addModules(koji, v, arch, dir);
      this.log('INFO', `[DONE ] ${msg}`);
    });
  }

  /**
   * The variant's module metadata (pungi's createrepo phase, `modifyrepo --mdtype=modules`): the
   * streams koji has whose packages the variant gathered for `arch`, with their defaults.
   */
  private async addModules(koji: Koji, v: Variant, arch: string, dir: string): Promise<void> {
    // A variant's own repo carries its modules; an ISO-only variant (Minimal) gathers none.
    const own = koji.sourcesOf(v, this.conf).find((x) => !x.only);
    const yaml = own && (await koji.tree(own.repo, arch))?.modules;
    if (!yaml) return;
    const gathered = new Set(this.rpms.filter((r) => r.variant === v.uid && r.arch === arch && r.category === 'binary').map((r) => nevraOf(r.rpm)));
    const docs = parseModules(yaml, `koji tag ${this.conf.kojiTag} ${v.uid}.${arch} modules`);
    const streams = docs.filter((d) => d.document === 'modulemd' && d.artifacts.some((a) => gathered.has(a)));
    const names = new Set(streams.map((d) => d.module));
    const keep = [...streams, ...docs.filter((d) => d.document !== 'modulemd' && names.has(d.module))];
    if (!keep.length) return;
    const file = join(this.layout.work(arch), 'modules', `modules-${v.uid}.${arch}.yaml`);
    mkdirSync(dirname(file), { recursive: true });
    writeFileAtomic(file, renderModules(keep));
    await modifyrepo({ mdtype: 'modules', file, repodata: join(dir, 'repodata') }, { logFile: this.layout.log(arch, `createrepo-${v.uid}.rpm`) });
    this.log('INFO', `Added module metadata to ${v.uid}.${arch}: ${streams.map((d) => `${d.module}:${d.stream}`).join(', ')}`);
  }

  /** .treeinfo of every os and source tree, .discinfo and media.repo of every os tree (before the ISOs, as run_compose does). */
  private writeTreeMetadata(): void {
    const c = this.conf;
    const description = `${c.releaseName} ${c.releaseVersion}`;
    for (const v of this.conf.variants) {
      for (const arch of [...v.arches, 'src']) {
        const tree = arch === 'src' ? this.layout.tree({ variant: v.uid, kind: 'source', arch }) : this.layout.tree({ variant: v.uid, kind: 'os', arch });
        const ti = repoTreeinfo({ fullname: c.releaseName, short: c.releaseShort, version: c.treeinfoVersion, arch, variant: v.uid, timestamp: this.started });
        // A tree buildinstall made bootable names lorax's images, stage2 and their checksums (pungi's write_tree_info).
        const boot = this.bootable.get(`${v.uid}.${arch}`);
        if (boot) {
          const lorax = parseTreeinfo(readFileSync(join(boot.tree, '.treeinfo'), 'utf8'));
          Object.assign(ti, { images: lorax.images, stage2: lorax.stage2, checksums: lorax.checksums });
        }
        writeFileAtomic(join(tree, '.treeinfo'), renderTreeinfo(ti));
        if (arch === 'src') continue;
        writeFileAtomic(join(tree, '.discinfo'), renderDiscinfo({ timestamp: this.started, fullname: description, arch }));
        writeFileAtomic(join(tree, 'media.repo'), renderMediaRepo({ name: description, mediaid: discTimestamp(this.started) }));
      }
    }
  }

  private substs(v: Variant, arch: string): Record<string, string | number | null> {
    return {
      compose_id: this.ref.id,
      release_short: this.conf.releaseShort,
      version: this.conf.releaseVersion,
      date: this.ref.date,
      respin: this.ref.respin,
      type: this.ref.type,
      type_suffix: { production: '', nightly: '.n', test: '.t', ci: '.ci', development: '.d' }[this.composeType],
      label: this.ref.label ?? null,
      label_major_version: this.ref.label ? this.ref.label.replace(/\.[^.]*$/, '') : null,
      variant: v.uid,
      arch,
    };
  }

  /** The DVD of every variant.arch createiso_skip leaves, from its os tree (not bootable: the fixture has no buildinstall). */
  /**
   * The release as @rocky/iso's builders take it, from the config: names, the version of
   * treeinfo_version (`8.10`: the boot media's volume id `Rocky-8-10-x86_64-dvd`), the variant
   * and repos of the boot tree.
   */
  private isoRelease(variant: string, repos: string[], arch: string): Release {
    const c = this.conf;
    const [major, minor] = c.treeinfoVersion.split('.').map(Number);
    const rel = schemas().releaseSchema.parse({
      shortname: c.releaseShort,
      fullname: c.releaseName,
      major,
      minor: minor || 0,
      type: 'stable',
      profile: String(major),
      project: c.kojiTag,
      arches: [arch],
      repos: repos.map((name) => ({ name })),
      iso: { lorax: { variant, repos } },
    });
    return { ...rel, name: c.releaseShort };
  }

  /**
   * buildinstall (buildinstall_method lorax): the boot tree and boot.iso of each arch, made by the
   * boot-tree builder of @rocky/iso (what the local site builds Rocky 9's boot media with) from the
   * koji repos of the compose's variants, the variant's own first. pungi copies the tree into the
   * variant's os tree and links boot.iso into its iso directory as `<image name>-boot.iso`.
   */
  private async buildinstall(koji: Koji): Promise<void> {
    for (const v of this.conf.variants) {
      for (const arch of v.arches) {
        if (archVariantData<boolean>(this.conf.buildinstallSkip, arch, v.uid).some(Boolean)) continue;
        const { failable } = this.attempt('buildinstall', v.uid, arch, null);
        try {
          const boot = await this.bootTree(koji, v, arch);
          const os = this.layout.tree({ variant: v.uid, kind: 'os', arch });
          for (const f of boot.treeFiles) if (!['.treeinfo', '.discinfo', 'media.repo'].includes(f.path)) linkOrCopy(join(boot.tree, f.path), join(os, f.path));
          this.bootable.set(`${v.uid}.${arch}`, boot);
          const name = format(imageNameFormatOf(this.conf, v.uid), { ...this.substs(v, arch), disc_type: 'boot', disc_num: '', suffix: '.iso' }, 'image name');
          const file = join(this.layout.isoDir(v.uid, arch), name);
          linkOrCopy(boot.iso.path, file);
          this.images.push({
            variant: v.uid,
            arch,
            path: relative(this.layout.compose, file),
            size: boot.iso.size,
            sha256: boot.iso.sha256,
            mtime: Math.floor(statSync(file).mtimeMs / 1000),
            format: 'iso',
            type: 'boot',
            bootable: boot.bootable,
            volumeId: boot.volumeId,
            implantMd5: boot.implantMd5 ?? null,
            subvariant: v.uid,
          });
        } catch (e) {
          if (!failable) throw e;
          this.log('ERROR', `[FAIL] Buildinstall (variant ${v.uid}, arch ${arch}) failed, but going on anyway.`);
          this.log('ERROR', (e as Error).message);
          (this.deliverables.failed.buildinstall ??= []).push([v.uid, arch, null]);
        }
      }
    }
  }

  /** The arch's boot tree, built once (work/<arch>/buildinstall/). */
  private bootTree(koji: Koji, v: Variant, arch: string): Promise<BootTreeResult> {
    let p = this.bootTrees.get(arch);
    if (!p) {
      const own = (x: Variant) => koji.sourcesOf(x, this.conf).filter((src) => !src.only).map((src) => src.repo);
      const repos = [...new Set([...own(v), ...this.conf.variants.filter((x) => x.arches.includes(arch)).flatMap(own)])].filter((r) => existsSync(join(koji.dir(r, arch), 'repodata', 'repomd.xml')));
      const work = join(this.layout.work(arch), 'buildinstall');
      const scratch = join(work, 'tmp');
      this.log('INFO', `[BEGIN] Running lorax for arch ${arch} (variant ${v.uid}, repos ${repos.join(', ')})`);
      p = buildBootTree({
        release: this.isoRelease(v.uid, repos, arch),
        arch: arch as Arch,
        repos: repos.map((name) => ({ name, path: koji.dir(name, arch) })),
        builder: { type: 'boot-tree', mustBoot: false },
        outDir: join(work, v.uid),
        workDir: scratch,
        buildTimestamp: this.started,
        logFile: this.layout.log(arch, `buildinstall-${v.uid}`),
        log: (m) => this.log('INFO', `buildinstall ${arch}: ${m}`),
      }).then(
        (r) => {
          rmSync(scratch, { recursive: true, force: true });
          this.log('INFO', `[DONE ] Running lorax for arch ${arch}: ${basename(r.iso.path)}`);
          return r;
        },
        (e: Error) => {
          rmSync(scratch, { recursive: true, force: true });
          throw e;
        },
      );
      this.bootTrees.set(arch, p);
    }
    return p;
  }

  private async createiso(): Promise<void> {
    let faulted = false;
    for (const v of this.conf.variants) {
      for (const arch of v.arches) {
        if (archVariantData<boolean>(this.conf.createisoSkip, arch, v.uid).some(Boolean)) continue;
        const { failable } = this.attempt('iso', v.uid, arch, v.uid);
        try {
          if (this.env.fault === 'incomplete' && !faulted) {
            faulted = true;
            throw new Error(`fixture fault: createiso of ${v.uid}.${arch} failed (PUNGI_FIXTURE_FAULT=incomplete)`);
          }
          await this.buildIso(v, arch);
        } catch (e) {
          if (!failable) throw e;
          this.log('ERROR', `[FAIL] Iso (variant ${v.uid}, arch ${arch}) failed, but going on anyway.`);
          this.log('ERROR', (e as Error).message);
          (this.deliverables.failed.iso ??= []).push([v.uid, arch, v.uid]);
        }
      }
    }
  }

  private async buildIso(v: Variant, arch: string): Promise<void> {
    const s = { ...this.substs(v, arch), disc_type: 'dvd', disc_num: 1, suffix: '.iso' };
    const name = format(imageNameFormatOf(this.conf, v.uid), s, 'image name');
    const volid = this.conf.imageVolidFormats.map((f) => format(f, s, 'volume id')).find((x) => x.length <= 32);
    if (!volid) throw new Error(`Could not create volume ID longer than 32 bytes: ${this.conf.imageVolidFormats.join(', ')}`);
    const osDir = this.layout.tree({ variant: v.uid, kind: 'os', arch });
    const isoDir = this.layout.isoDir(v.uid, arch);
    mkdirSync(isoDir, { recursive: true });
    const tmp = join(this.layout.work(arch), 'iso', name);
    mkdirSync(dirname(tmp), { recursive: true });
    rmSync(tmp, { force: true });
    const logFile = this.layout.log(arch, `createiso-${name}`);
    this.log('INFO', `[BEGIN] Creating ISO (arch: ${arch}, variant: ${v.uid}): ${name}`);
    // Bootable when buildinstall made the arch's boot tree: its boot setup replayed with the tree's packages and repodata.
    const boot = this.bootTrees.has(arch) ? await this.bootTrees.get(arch) : undefined;
    let implant: string | undefined;
    let bootable = false;
    if (boot) {
      const res = await buildExtraIso({
        release: this.isoRelease(v.uid, [v.uid], arch),
        arch: arch as Arch,
        image: 'dvd',
        bootIso: boot.iso.path,
        bootTree: boot.tree,
        repos: [{ name: v.uid, path: osDir }],
        mainVariant: v.uid,
        outFile: tmp,
        workDir: `${tmp}.work`,
        buildTimestamp: this.started,
        logFile,
      });
      rmSync(`${tmp}.work`, { recursive: true, force: true });
      if (res.volumeId !== volid) throw new Error(`${name}: the boot media's volume id is ${res.volumeId}, image_volid_formats gives ${volid}`);
      implant = res.implantMd5;
      bootable = res.bootable;
      writeFileAtomic(join(isoDir, `${name}.manifest`), `${res.manifest.join('\n')}\n`);
    } else {
      await run(mkisofsArgv({ out: tmp, tree: osDir, volid, arch: arch as Arch, date: this.started }), { logFile });
      await run(implantisomd5Argv(tmp, { supported: this.ref.final === true }), { logFile });
      implant = await implantedMd5(tmp, logFile);
      writeFileAtomic(join(isoDir, `${name}.manifest`), `${walk(osDir).sort().join('\n')}\n`);
    }
    renameSync(tmp, join(isoDir, name));
    const file = join(isoDir, name);
    const st = statSync(file);
    this.images.push({
      variant: v.uid,
      arch,
      path: relative(this.layout.compose, file),
      size: st.size,
      sha256: await hashFile(file, 'sha256'),
      mtime: Math.floor(st.mtimeMs / 1000),
      format: 'iso',
      type: 'dvd',
      bootable,
      volumeId: volid,
      implantMd5: implant ?? null,
      subvariant: v.uid,
    });
    this.log('INFO', `[DONE ] Creating ISO (arch: ${arch}, variant: ${v.uid}): ${name}`);
  }

  /** pungi's image_checksum: one CHECKSUM per image directory (media_checksum_one_file) or one <ALG>SUM per algorithm. */
  private async imageChecksums(): Promise<void> {
    const byDir = new Map<string, ImageEntry[]>();
    for (const img of this.images) {
      const d = dirname(join(this.layout.compose, img.path));
      byDir.set(d, [...(byDir.get(d) ?? []), img]);
    }
    for (const [dir, imgs] of byDir) {
      if (this.conf.mediaChecksumOneFile) {
        writeFileAtomic(join(dir, 'CHECKSUM'), renderChecksum(imgs.map((i) => ({ name: basename(i.path), size: i.size, sha256: i.sha256 }))));
        continue;
      }
      for (const alg of this.conf.mediaChecksums) {
        const lines: string[] = [];
        for (const i of [...imgs].sort((a, b) => (a.path < b.path ? -1 : 1))) {
          const sum = alg === 'sha256' ? i.sha256 : await hashFile(join(this.layout.compose, i.path), alg);
          lines.push(`# ${basename(i.path)}: ${i.size} bytes`, `${alg.toUpperCase()} (${basename(i.path)}) = ${sum}`);
        }
        writeFileAtomic(join(dir, `${alg.toUpperCase()}SUM`), `${lines.join('\n')}\n`);
      }
    }
  }

  private composeInfo(): object {
    const isoDirs = new Set(this.images.map((i) => `${i.variant}/${i.arch}`));
    return composeInfo({
      compose: this.ref,
      release: { name: this.conf.releaseName, short: this.conf.releaseShort, version: this.conf.releaseVersion, type: this.conf.releaseType as 'ga' },
      variants: this.conf.variants.map((v) => ({
        dir: v.uid,
        name: v.name,
        arches: v.arches,
        debug: true,
        source: true,
        isos: Object.fromEntries(v.arches.filter((a) => isoDirs.has(`${v.uid}/${a}`)).map((a) => [a, `${v.uid}/${a}/iso`])),
      })),
    });
  }

  /** `../latest-<short>-<version>` → this compose, relative, unless --no-latest-link or a --latest-link-status that does not match. */
  private latestLink(): void {
    if (this.args.noLatestLink) return;
    const wanted = this.args.latestLinkStatus.map((s) => s.toUpperCase());
    if (wanted.length && !wanted.includes(this.status!)) {
      this.log('WARNING', `Compose status (${this.status}) doesn't match with specified latest-link-status (${wanted.join(', ')}), not create latest link.`);
      return;
    }
    symlinkAtomic(basename(this.dir), join(dirname(this.dir), pungiLatestLink(this.conf.releaseShort, this.conf.releaseVersion, this.args.latestLinkComponents)));
  }

  /** pungi's handling of a failed run: the error and a traceback logged, STATUS DOOMED. */
  doomed(e: Error): void {
    this.log('ERROR', `Compose run failed: ${e.message}`);
    const tb = this.layout.log(undefined, 'traceback');
    writeFileAtomic(tb, `${e.stack ?? e.message}\n`);
    this.log('ERROR', `Extended traceback in: ${tb}`);
    this.log('CRITICAL', `Compose failed: ${this.dir}`);
    this.writeStatus('DOOMED');
  }

  terminated(signal: string): void {
    this.log('ERROR', `Compose run failed: signal ${signal}`);
    this.log('CRITICAL', `Compose failed: ${this.dir}`);
    this.writeStatus('TERMINATED');
  }
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  return v;
}

/**
 * What pungi_koji.main does before the compose: the label, the compose type, the target dir, the
 * config; then the compose dir (`<target>/<compose id>`, the first free respin) with COMPOSE_ID and
 * work/global/composeinfo-base.json. Throws AbortError for what pungi reports with parser.error.
 */
export function prepareCompose(args: PungiArgs, env: FixtureEnv): FixtureCompose {
  if (args.label && !LABEL_RE.test(args.label)) throw new AbortError(`Label in unknown format: ${args.label}`);
  if (args.targetDir !== undefined && !(existsSync(args.targetDir) && statSync(args.targetDir).isDirectory()))
    throw new AbortError(`The target directory does not exist or is not a directory: ${args.targetDir}`);
  if (args.composeDir !== undefined && existsSync(args.composeDir) && !statSync(args.composeDir).isDirectory()) throw new AbortError(`The compose directory is not a directory: ${args.composeDir}`);
  const conf = loadPungiConfig(args.config);
  const composeType = args.composeType ?? conf.composeType ?? 'production';
  if (composeType === 'production' && !args.label && !args.noLabel) throw new AbortError('must specify label for a production compose');
  // pungi's check_skip_phases.
  const skip = [...args.skipPhase, ...conf.skipPhases];
  for (const [k, by] of [['pkgset', 'gather'], ['gather', 'createrepo']]) {
    if ((skip.includes(k) && !skip.includes(by)) || (args.justPhase.includes(by) && !args.justPhase.includes(k))) throw new Error(`${k} phase is skipped but it's needed by ${by} phase`);
  }
  const date = env.date ?? today();
  const label = args.label;
  const supported = args.supported || (!!label && ['RC', 'Update', 'SecurityFix'].includes(label.split('-')[0]));
  const ref = (respin: number): ComposeRef => ({
    id: pungiComposeId({ short: conf.releaseShort, version: conf.releaseVersion, releaseType: conf.releaseType, date, composeType, respin }),
    date,
    respin,
    type: composeType,
    ...(label ? { label, final: supported } : {}),
  });
  let dir: string;
  let r: ComposeRef;
  if (args.targetDir !== undefined) {
    for (let respin = 0; ; respin++) {
      r = ref(respin);
      dir = join(args.targetDir, r.id);
      try {
        mkdirSync(dir);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    }
  } else {
    dir = args.composeDir!;
    mkdirSync(dir, { recursive: true });
    const base = join(dir, 'work', 'global', 'composeinfo-base.json');
    r = existsSync(base) ? (JSON.parse(readFileSync(base, 'utf8')).payload.compose as ComposeRef) : ref(0);
  }
  const c = new FixtureCompose(conf, args, env, dir!, r!, composeType);
  writeFileSync(c.layout.composeIdFile, r!.id);
  writeFileAtomic(c.layout.composeInfoBase, stableJson(composeInfo({ compose: r!, release: { name: conf.releaseName, short: conf.releaseShort, version: conf.releaseVersion, type: conf.releaseType as 'ga' }, variants: [] })));
  return c;
}
