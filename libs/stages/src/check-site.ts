// The check-site stage: a doctor for the site file on this host, before a release runs on it.
// The plan is the list of checks (from the site and the release); execute runs them, reading
// only: no file, directory, event, lock, container or job is made anywhere, on any site (the
// fixture upstream is read, never built or served). Every problem is reported at once, each
// naming the site file's field and what to do, and the stage fails if there is one.
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, statSync, accessSync, constants } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { basename, dirname, isAbsolute, join, relative, sep } from 'node:path';
import { cloudBucketPrefix, errataLocation, productSlug, pungiProducerOf, repoTrees, stateDir, upstreamArch, upstreamGpgKey, upstreamProject, upstreamUrl, type Arch, type Builder, type RepoTree } from '@rocky/config';
import { bytes, findTool, missingHint, run, TOOL_MINIMUMS, ToolError, compareVersions, toolVersion } from '@rocky/exec';
import { probeKubernetes, probeSsh, type ProbeResult } from '@rocky/builders';
import { hostBootLoaders, loaderInstallHint, wrapperMountProblem } from '@rocky/iso';
import { Bucket } from '@rocky/store';
import { errataTrees, readUpdateinfo } from '@rocky/publish';
import { fetchBuffer, HttpError, parseRepomd, SignatureVerifier } from '@rocky/rpm-repo';
import type { StageContext } from './context';
import type { Stage } from './stage';
import { upstreamTrees } from './upstream';
import { builderFor, isoStage } from './iso';
import { syncStage } from './sync';
import { isoExtraStage } from './iso-extra';
import { cloudStage } from './cloud';
import { finalizeStage } from './finalize';
import { stagingStage } from './staging';
import { prodStage } from './prod';
import { filelistStage } from './filelist';

const GiB = 1024 ** 3;

export type SiteCheck = { field: string; what: string } & (
  | { kind: 'dir'; path: string; minFree: number; /** Inside the workspace: made by the first run. */ mayCreate: boolean }
  | { kind: 'tool'; tool: string; neededBy: string[] }
  | { kind: 'signing'; gnupgHome: string; keyId: string; fixtureRoot?: string }
  | { kind: 'upstream'; tree: RepoTree; /** Fixture sites: the repo's directory; others: its URL. */ fixtureDir?: string; url?: string }
  | { kind: 'errata'; tree: RepoTree; /** The tree's errata document: a URL, or a file (a dir source, the fixture's Apollo). */ url?: string; file?: string; /** The fixture's Apollo dir, when the file is in it. */ fixtureApollo?: string }
  | { kind: 'cloud'; path: string; project: string; arches: Arch[]; fixtureRoot?: string }
  | { kind: 'bucket'; bucket: string; region: string; endpoint?: string; prefixes: string[] }
  | { kind: 'builder'; arch: Arch; builder: Builder }
  | { kind: 'problem'; message: string }
);

export interface Finding {
  field: string;
  message: string;
}

export interface CheckResult {
  check: SiteCheck;
  notes: string[];
  problems: Finding[];
}

export interface SiteCheckPlan {
  site: string;
  file: string;
  checks: SiteCheck[];
}

export interface SiteCheckOptions {
  /** The environment tools are looked up (PATH) and run in. */
  env?: NodeJS.ProcessEnv;
  /** Where a pod's service account token and CA are (the Kubernetes default). */
  serviceAccountDir?: string;
}

/** Free space a root needs before a compose of a real upstream (a full Rocky compose with DVDs is tens of GiB); fixture sites need little. */
function minFree(ctx: StageContext, field: string): number {
  if (ctx.site.upstream.fixture) return 1 * GiB;
  return field === 'state' || field === 'store.cache' ? 5 * GiB : 50 * GiB;
}

const within = (outer: string, inner: string) => {
  const r = relative(outer, inner);
  return r === '' || (r.split(sep)[0] !== '..' && !isAbsolute(r));
};

/** Every target of a release and the tools each stage runs for it, as its pre-flight sees them. */
function toolsByTarget(ctx: StageContext): Map<string, string[]> {
  // A SIG release has sync and the publishing targets only.
  const sig = ctx.release.kind === 'sig';
  const stages = sig ? [syncStage, stagingStage, prodStage, filelistStage] : [syncStage, isoExtraStage, cloudStage, finalizeStage, stagingStage, prodStage, filelistStage];
  const out = new Map<string, string[]>();
  for (const stage of stages) out.set(stage.name, [...new Set(stage.tools({ ...ctx, target: stage.name }))]);
  if (sig) return out;
  for (const arch of ctx.release.arches) {
    const b = builderFor(ctx, arch);
    // The lorax builder's own program is the builder check's (it names the builder's field).
    const own = b.type === 'lorax' ? (b.wrapper[0] ?? 'lorax') : undefined;
    out.set(`iso-${arch}`, isoStage.tools({ ...ctx, target: `iso-${arch}` }).filter((t) => t !== own));
  }
  return out;
}

/** The checks for this site and release (pure: reads the config and what exists, changes nothing). */
export async function planSiteChecks(ctx: StageContext): Promise<SiteCheckPlan> {
  const { site, release: rel } = ctx;
  const checks: SiteCheck[] = [];
  // The directories the pipeline writes: each must exist (or, inside the workspace, be makeable), be writable and have room.
  const dir = (field: string, path: string) => {
    const mayCreate = within(ctx.root, path);
    checks.push({ kind: 'dir', field, path, minFree: minFree(ctx, field), mayCreate, what: `${path} exists${mayCreate ? ' (or can be made)' : ''}, is writable, has ≥ ${bytes(minFree(ctx, field))} free` });
  };
  dir('roots.compose', site.roots.compose);
  dir('roots.staging', site.roots.staging);
  dir('roots.production', site.roots.production);
  dir(site.store.type === 's3' ? 'store.cache' : 'store.path', site.store.type === 's3' ? site.store.cache : site.store.path);
  dir('state', site.state);

  // Tools: what every stage of the release runs, at the versions the pipeline relies on.
  const needs = new Map<string, string[]>();
  for (const [target, tools] of toolsByTarget(ctx)) for (const t of tools) needs.set(t, [...(needs.get(t) ?? []), target]);
  if (site.upstream.fixture) for (const t of ['rpmbuild', 'createrepo_c', 'gpg']) needs.set(t, [...(needs.get(t) ?? []), 'the fixture upstream']);
  for (const [tool, neededBy] of [...needs].sort(([a], [b]) => a.localeCompare(b))) {
    const m = TOOL_MINIMUMS[tool];
    checks.push({ kind: 'tool', field: `tool ${tool}`, tool, neededBy, what: `${tool}${m ? ` ≥ ${m.min}${m.below ? ` (< ${m.below})` : ''}` : ''} on PATH (${neededBy.join(', ')})` });
  }

  if (site.signing) checks.push({ kind: 'signing', field: 'signing', gnupgHome: site.signing.gnupgHome, keyId: site.signing.keyId, fixtureRoot: site.upstream.fixture?.root, what: `GnuPG home ${site.signing.gnupgHome} holds the secret signing key ${site.signing.keyId}` });
  else if (rel.publish.signRepodata) checks.push({ kind: 'problem', field: 'signing', what: 'a signing key', message: `unset, but ${rel.name} signs its repodata (publish.signRepodata): add signing: { gnupgHome, keyId }` });

  // One repo: the boot tree's (BaseOS), which every main release has. A release pungi makes reads no yumrepofs upstream.
  const trees = upstreamTrees(rel);
  const tree = trees.find((t) => t.kind === 'os' && t.dir === rel.iso?.lorax.repos[0]) ?? trees[0];
  const key = upstreamGpgKey(site, rel);
  if (pungiProducerOf(site, rel)) {
    // Its composes come from koji, through pungi (producers.<release>): nothing to GET.
  } else if (site.upstream.fixture) {
    const fx = await import('@rocky/upstream-fixture');
    const fixtureDir = join(site.upstream.fixture.root, fx.repoUrlPath(upstreamProject(site, rel), tree.repo, upstreamArch(tree)));
    checks.push({ kind: 'upstream', field: 'upstream', tree, fixtureDir, what: `the fixture's ${tree.repo} ${upstreamArch(tree)} repomd.xml reads${site.upstream.verifySignature ? ' and its signature verifies' : ''}` });
  } else {
    const url = upstreamUrl(site, rel, tree);
    checks.push({ kind: 'upstream', field: 'upstream', tree, url, what: `GET ${url}/repodata/repomd.xml answers${site.upstream.verifySignature ? ` and its signature verifies with ${key.field}` : ''}` });
  }

  // Errata: staging puts each regenerated tree's advisories from the site's source into its
  // repodata. One document is read: the boot tree's (BaseOS has advisories; Devel may have none).
  const withErrata = rel.publish.regenerateRepodata ? errataTrees(repoTrees(rel)) : [];
  const errataTree = withErrata.find((t) => t.dir === rel.iso?.lorax.repos[0]) ?? withErrata[0];
  if (site.errata && errataTree) {
    const e = site.errata;
    const of = `${errataTree.repo} ${errataTree.arch}`;
    if (e.type === 'dir') {
      const file = errataLocation(e, rel, errataTree);
      checks.push({ kind: 'errata', field: 'errata.path', tree: errataTree, file, what: `${file} (${of}) is an updateinfo document` });
    } else if (e.url.includes('{base}')) {
      // The fixture's Apollo: the file it serves for that URL (the fixture is read, not served).
      const fx = await import('@rocky/upstream-fixture');
      const root = site.upstream.fixture!.root;
      const file = join(root, fx.apolloFilePath(productSlug(rel), rel.major, errataTree.repo, errataTree.arch));
      checks.push({ kind: 'errata', field: 'errata.url', tree: errataTree, file, fixtureApollo: join(root, fx.APOLLO_DIR), what: `the fixture's Apollo serves ${of}'s updateinfo.xml` });
    } else {
      const url = errataLocation(e, rel, errataTree);
      checks.push({ kind: 'errata', field: 'errata.url', tree: errataTree, url, what: `GET ${url} answers ${of}'s updateinfo.xml` });
    }
  }

  const images = Object.values(rel.cloud.images);
  if (site.cloud && images.length) {
    const arches = rel.arches.filter((a) => images.some((d) => !d.arches || d.arches.includes(a)));
    const src = site.cloud.source;
    if (src.type === 'dir') checks.push({ kind: 'cloud', field: 'cloud.source.path', path: src.path, project: rel.project, arches, fixtureRoot: site.upstream.fixture?.root, what: `${join(src.path, rel.project)} is listable` });
    else checks.push({ kind: 'bucket', field: 'cloud.source', bucket: src.bucket, region: src.region, endpoint: src.endpoint, prefixes: arches.map((a) => cloudBucketPrefix(rel, a, src.prefix)), what: `s3://${src.bucket}/ lists ${rel.name}'s builds` });
  } else if (images.length) checks.push({ kind: 'problem', field: 'cloud.source', what: 'a cloud image source', message: `unset, but ${rel.name} lists cloud images: add cloud: { source: { type: dir, path } }` });

  // Builders make ISOs, which a SIG release has none of.
  for (const arch of rel.kind === 'sig' ? [] : rel.arches) {
    const builder = builderFor(ctx, arch);
    const how = { 'boot-tree': builder.type === 'boot-tree' && builder.mustBoot ? 'this host has a boot loader for it' : 'the boot-tree builder (bootable where this host has a loader)', lorax: 'lorax (or its wrapper) runs here and sees the compose and its work dir', ssh: 'the SSH builder answers', kubernetes: 'the Kubernetes API server answers the token' }[builder.type];
    checks.push({ kind: 'builder', field: `builders.${arch}`, arch, builder, what: `${arch}: ${how}` });
    if (builder.type === 'kubernetes') dir(`builders.${arch}.result.localPath`, builder.result.localPath);
  }

  if (site.publish.owner) {
    const uid = Number(site.publish.owner.split(':')[0]);
    const me = process.getuid?.() ?? 0;
    if (me !== 0 && me !== uid)
      checks.push({ kind: 'problem', field: 'publish.owner', what: 'publishing may set the owner', message: `rsync --chown=${site.publish.owner} needs root, and this runs as uid ${me}: run staging and prod as root, or unset publish.owner` });
  }
  return { site: site.name, file: relative(ctx.root, site.file) || site.file, checks };
}

/** Runs the checks (all at once: the slow ones wait on the network), reading only. */
export async function runSiteChecks(ctx: StageContext, plan: SiteCheckPlan, opts: SiteCheckOptions = {}): Promise<CheckResult[]> {
  const env = opts.env ?? process.env;
  const PATH = env.PATH ?? '';
  return Promise.all(
    plan.checks.map(async (check): Promise<CheckResult> => {
      const r: CheckResult = { check, notes: [], problems: [] };
      const problem = (field: string, message: string): void => void r.problems.push({ field, message });
      try {
        switch (check.kind) {
          case 'problem':
            problem(check.field, check.message);
            break;
          case 'dir':
            checkDir(check, r);
            break;
          case 'tool':
            await checkTool(check, r, env);
            break;
          case 'signing':
            await checkSigning(check, r, env);
            break;
          case 'upstream':
            await checkUpstream(ctx, check, r, PATH);
            break;
          case 'errata':
            await checkErrata(ctx, check, r);
            break;
          case 'cloud':
            checkCloud(check, r);
            break;
          case 'bucket':
            await checkBucket(check, r);
            break;
          case 'builder':
            await checkBuilder(ctx, check, r, PATH, opts.serviceAccountDir);
            break;
        }
      } catch (e) {
        problem(check.field, `cannot check: ${(e as Error).message}`);
      }
      return r;
    }),
  );
}

/** Every problem, one line each (`field: what is wrong: what to do`). */
export const siteProblems = (results: CheckResult[]): Finding[] => results.flatMap((r) => r.problems);

const user = () => {
  const u = userInfo();
  return `${u.username} (uid ${u.uid})`;
};

function checkDir(c: Extract<SiteCheck, { kind: 'dir' }>, r: CheckResult) {
  let existing = c.path;
  if (!existsSync(c.path)) {
    if (!c.mayCreate) {
      r.problems.push({ field: c.field, message: `${c.path} does not exist: mount the file system that holds it there, or create it writable by ${user()} (a root outside the workspace must exist before the first run, so that a missing mount is never filled on the local disk)` });
      return;
    }
    while (!existsSync(existing)) existing = dirname(existing);
    r.notes.push(`not made yet: the first run makes it under ${existing}`);
  } else if (!statSync(c.path).isDirectory()) {
    r.problems.push({ field: c.field, message: `${c.path} is not a directory` });
    return;
  }
  const st = statSync(existing);
  try {
    accessSync(existing, constants.R_OK | constants.W_OK | constants.X_OK);
    r.notes.push(`${existing === c.path ? '' : `${existing}: `}owner ${st.uid}:${st.gid}, mode ${(st.mode & 0o7777).toString(8)}, writable`);
  } catch {
    r.problems.push({ field: c.field, message: `${existing} (owner ${st.uid}:${st.gid}, mode ${(st.mode & 0o7777).toString(8)}) is not writable by ${user()}: chown it to that user, or run the pipeline as its owner` });
  }
  const fs = statfsSync(existing);
  const free = fs.bavail * fs.bsize;
  if (free < c.minFree) r.problems.push({ field: c.field, message: `${existing} has ${bytes(free)} free, less than the ${bytes(c.minFree)} a release needs: free space there or mount a larger file system` });
  else r.notes.push(`${bytes(free)} free`);
}

async function checkTool(c: Extract<SiteCheck, { kind: 'tool' }>, r: CheckResult, env: NodeJS.ProcessEnv) {
  const path = findTool(c.tool, env.PATH);
  const who = `needed by ${c.neededBy.join(', ')}`;
  if (!path) {
    r.problems.push({ field: c.field, message: `not installed (${who}): ${missingHint(c.tool)}` });
    return;
  }
  const m = TOOL_MINIMUMS[c.tool];
  if (!m && c.tool !== 'createrepo_c') {
    r.notes.push(path);
    return;
  }
  let v: { version?: string; output: string };
  try {
    v = await toolVersion(c.tool, path, env);
  } catch (e) {
    const out = e instanceof ToolError ? `${e.result.stderr}${e.result.stdout}` : (e as Error).message;
    const hint = /dnfpluginscore/.test(out) ? `dnf-plugins-core is not installed (${who}): ${missingHint('dnf')}` : `cannot tell its version (${who}): ${out.trim().split('\n').pop()}`;
    r.problems.push({ field: c.field, message: hint });
    return;
  }
  if (!m) return void r.notes.push(`${path} ${v.version ?? ''}`.trim());
  const wanted = `${m.below ? `${m.min}.x` : `${m.min} or later`} (${m.why})`;
  if (!v.version) r.problems.push({ field: c.field, message: `${path} does not say its version (${v.output.split('\n')[0]}); the pipeline needs ${wanted}` });
  else if (compareVersions(v.version, m.min) < 0 || (m.below && compareVersions(v.version, m.below) >= 0))
    r.problems.push({ field: c.field, message: `${path} is ${v.version}; the pipeline needs ${wanted}: ${missingHint(c.tool)}` });
  else r.notes.push(`${path} ${v.version}`);
}

/**
 * The GnuPG home signing uses: a private directory this user may write (signing takes a lock
 * there and gpg-agent puts its sockets there), holding a valid signing key whose secret part is
 * present. gpg lists the public key without starting an agent or taking a lock, so nothing in
 * the home changes; the secret key is seen by its file, not read.
 */
async function checkSigning(c: Extract<SiteCheck, { kind: 'signing' }>, r: CheckResult, env: NodeJS.ProcessEnv) {
  const home = c.gnupgHome;
  const problem = (field: string, message: string): void => void r.problems.push({ field, message });
  if (!existsSync(home) && c.fixtureRoot && within(c.fixtureRoot, home)) return void r.notes.push('the fixture has no key yet: the first sync builds it');
  if (!existsSync(home)) return problem('signing.gnupgHome', `${home} does not exist: put the signing key's GnuPG home there (gpg --homedir ${home} --import <key>)`);
  const st = statSync(home);
  try {
    accessSync(home, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch {
    return problem('signing.gnupgHome', `${home} is not writable by ${user()} (signing locks it and gpg-agent opens its sockets there): chown it to that user`);
  }
  const me = process.getuid?.();
  if (me !== undefined && st.uid !== me) problem('signing.gnupgHome', `${home} belongs to uid ${st.uid}, not ${user()}: gpg refuses to trust it (unsafe ownership); chown -R it to that user`);
  if (st.mode & 0o077) problem('signing.gnupgHome', `${home} has mode ${(st.mode & 0o777).toString(8)}: others may read the private keys, and gpg warns on every signature; chmod 700 ${home}`);
  const gpg = findTool('gpg', env.PATH);
  if (!gpg) return void r.notes.push('key not checked: gpg is not installed (see tool gpg)');
  // gpg writes even when it only lists (it compacts a keybox it has not maintained for hours,
  // and opens the trustdb read-write): it reads copies of the keyring, so the home is untouched.
  const copy = mkdtempSync(join(tmpdir(), 'check-site-gnupg-'));
  let listing;
  try {
    for (const f of ['pubring.kbx', 'pubring.gpg', 'trustdb.gpg']) if (existsSync(join(home, f))) copyFileSync(join(home, f), join(copy, f));
    listing = await run([gpg, '--homedir', copy, '--batch', '--no-autostart', '--lock-never', '--no-auto-check-trustdb', '--with-colons', '--with-keygrip', '--list-keys', c.keyId], { env, okCodes: [0, 2], timeoutMs: 30_000 });
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
  // pub/sub records: validity (field 2), capabilities (field 12; lower case: this key's own), then fpr and grp lines.
  const keys: { valid: boolean; sign: boolean; fpr?: string; grip?: string; uid?: string }[] = [];
  for (const line of listing.stdout.split('\n')) {
    const f = line.split(':');
    if (f[0] === 'pub' || f[0] === 'sub') keys.push({ valid: !/[eridn]/.test(f[1]), sign: f[11].includes('s') });
    else if (f[0] === 'fpr' && keys.length && !keys[keys.length - 1].fpr) keys[keys.length - 1].fpr = f[9];
    else if (f[0] === 'grp' && keys.length) keys[keys.length - 1].grip = f[9];
    else if (f[0] === 'uid' && keys.length && !keys[0].uid) keys[0].uid = f[9];
  }
  if (!keys.length) return problem('signing.keyId', `no key ${c.keyId} in ${home}: import the signing key there (gpg --homedir ${home} --import <secret key>), or correct keyId`);
  const signers = keys.filter((k) => k.valid && k.sign);
  if (!signers.length) return problem('signing.keyId', `${c.keyId} in ${home} has no valid signing key (expired, revoked or not for signing): renew it or name another`);
  const secret = signers.find((k) => k.grip && existsSync(join(home, 'private-keys-v1.d', `${k.grip}.key`)));
  if (!secret) return problem('signing.keyId', `${home} has only the public part of ${c.keyId}: import its secret key (gpg --homedir ${home} --import <secret key>)`);
  r.notes.push(`${keys[0].uid ?? c.keyId}: signing key ${secret.fpr}, secret part present`);
}

/** One repo's repomd.xml from upstream (the fixture: read from its root, which is never built here), and its signature. */
async function checkUpstream(ctx: StageContext, c: Extract<SiteCheck, { kind: 'upstream' }>, r: CheckResult, PATH: string) {
  const up = ctx.site.upstream;
  const problem = (field: string, message: string): void => void r.problems.push({ field, message });
  let repomd: Buffer;
  let signature: () => Promise<Buffer>;
  const where = c.fixtureDir ?? c.url!;
  if (c.fixtureDir) {
    const file = join(c.fixtureDir, 'repodata/repomd.xml');
    if (!existsSync(file)) return void r.notes.push(`the fixture has no ${ctx.release.project} repos yet: the first sync builds it`);
    repomd = readFileSync(file);
    signature = async () => readFileSync(`${file}.asc`);
  } else {
    try {
      repomd = await fetchBuffer(`${c.url}/repodata/repomd.xml`, { attempts: 1, download: { ...up.download, deadlineSeconds: 60 } });
    } catch (e) {
      return problem('upstream.url', `${(e as Error).message}: check upstream.url and that this host reaches it (HTTPS_PROXY, NO_PROXY)`);
    }
    signature = () => fetchBuffer(`${c.url}/repodata/repomd.xml.asc`, { attempts: 1, download: { ...up.download, deadlineSeconds: 60 } });
  }
  try {
    const md = parseRepomd(repomd.toString('utf8'), `${where}/repodata/repomd.xml`);
    r.notes.push(`${where}: repomd.xml revision ${md.revision ?? '?'}, ${md.records.length} records`);
  } catch (e) {
    return problem('upstream.url', `${(e as Error).message}: this is not a yum repo; check upstream.url`);
  }
  if (!up.verifySignature) return;
  const { key: gpgKey, field } = upstreamGpgKey(ctx.site, ctx.release);
  if (!gpgKey) return problem(field, `unset, but upstream.verifySignature is true: ${ctx.release.kind === 'sig' ? `set it to the directory holding ${ctx.release.sig?.gpgKey}` : `set it (or upstream.releases.${ctx.release.name}.gpgKey) to the armored key that signs the repos`}`);
  try {
    accessSync(gpgKey, constants.R_OK);
  } catch (e) {
    return problem(field, `cannot read ${gpgKey} (${(e as NodeJS.ErrnoException).code}): put the armored key that signs ${ctx.release.name}'s repos there`);
  }
  let asc: Buffer;
  try {
    asc = await signature();
  } catch (e) {
    return problem('upstream.verifySignature', `${where}/repodata/repomd.xml.asc: ${(e as Error).message}: upstream publishes no signature; sync would refuse every repo`);
  }
  if (!findTool('gpg', PATH) || !findTool('gpgv', PATH)) return void r.notes.push('signature not checked: gpg or gpgv is not installed (see their tool checks)');
  const verifier = new SignatureVerifier(gpgKey);
  try {
    await verifier.verify(repomd, asc, `${where}/repodata/repomd.xml`);
    r.notes.push(`signature good (key ${await verifier.keyId()})`);
  } catch (e) {
    problem(field, `${(e as Error).message.split('\n').slice(0, 4).join(' ')}: is ${gpgKey} the key upstream signs ${ctx.release.name} with?`);
  } finally {
    await verifier.close();
  }
}

async function checkErrata(ctx: StageContext, c: Extract<SiteCheck, { kind: 'errata' }>, r: CheckResult) {
  const problem = (message: string): void => void r.problems.push({ field: c.field, message });
  const fix = `staging of ${ctx.release.name} reads each regenerated tree's errata there; check ${c.field}`;
  let bytes: Buffer;
  if (c.url) {
    try {
      bytes = await fetchBuffer(c.url, { attempts: 1, download: { ...ctx.site.upstream.download, deadlineSeconds: 60 } });
    } catch (e) {
      // Apollo answers 404 for a repo without advisories; BaseOS has them, so a 404 means a wrong template.
      const why = e instanceof HttpError && e.status === 404 ? `${e.message} (${c.tree.repo} has advisories: is the template right?)` : (e as Error).message;
      return problem(`${why}: ${fix}, and that this host reaches it (HTTPS_PROXY, NO_PROXY)`);
    }
  } else {
    const file = c.file!;
    if (!existsSync(file)) {
      if (c.fixtureApollo && !existsSync(c.fixtureApollo)) return void r.notes.push('the fixture has no errata yet: the first sync builds them');
      return problem(`${file} does not exist (${c.tree.repo} ${c.tree.arch} has advisories): ${fix}`);
    }
    bytes = readFileSync(file);
  }
  const where = c.url ?? c.file!;
  try {
    r.notes.push(`${where}: ${readUpdateinfo(bytes.toString('utf8'), where).length} advisories`);
  } catch (e) {
    problem(`${(e as Error).message}: ${fix}`);
  }
}

function checkCloud(c: Extract<SiteCheck, { kind: 'cloud' }>, r: CheckResult) {
  const dir = join(c.path, c.project);
  if (!existsSync(c.path) && c.fixtureRoot && within(c.fixtureRoot, c.path)) return void r.notes.push('the fixture has no cloud images yet: the first sync or cloud run builds them');
  for (const [p, what] of [
    [c.path, 'the directory the producer\'s images are synced into'],
    [dir, `${c.project}'s images, in <arch>/ subdirectories`],
  ] as const) {
    try {
      readdirSync(p);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return void r.problems.push({ field: 'cloud.source.path', message: `${p} (${what}) ${code === 'ENOENT' ? 'does not exist' : `cannot be listed (${code})`}: sync the producer's images into ${dir}/<arch>/` });
    }
  }
  r.notes.push(c.arches.map((a) => `${a}: ${existsSync(join(dir, a)) ? readdirSync(join(dir, a)).length : 0} files`).join(', '));
}

async function checkBucket(c: Extract<SiteCheck, { kind: 'bucket' }>, r: CheckResult) {
  const bucket = Bucket.open(c);
  const counts: string[] = [];
  for (const prefix of c.prefixes) {
    try {
      counts.push(`${prefix}: ${(await bucket.list(prefix)).length} objects`);
    } catch (e) {
      return void r.problems.push({ field: 'cloud.source', message: `${bucket.url(prefix)} cannot be listed (${(e as Error).message}): check bucket, region, endpoint and the AWS credentials of this host` });
    }
  }
  r.notes.push(counts.join(', '));
}

async function checkBuilder(ctx: StageContext, c: Extract<SiteCheck, { kind: 'builder' }>, r: CheckResult, PATH: string, saDir?: string) {
  const { arch, builder: b } = c;
  const problem = (field: string, message: string): void => void r.problems.push({ field: `${c.field}${field ? `.${field}` : ''}`, message });
  const probed = (p: ProbeResult) => {
    for (const x of p.problems) problem(x.field, x.message);
    r.notes.push(...p.notes);
  };
  const host = ({ x64: 'x86_64', arm64: 'aarch64', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[process.arch] ?? process.arch;
  switch (b.type) {
    case 'boot-tree': {
      const loaders = hostBootLoaders(arch);
      const found = [loaders.bios && 'BIOS (isolinux)', loaders.uefi && 'UEFI (grub)'].filter(Boolean);
      if (b.mustBoot && !found.length) problem('mustBoot', `true, but this host has no boot loader for ${arch}: ${loaderInstallHint(arch)}; or set mustBoot: false`);
      else r.notes.push(found.length ? `boot loaders: ${found.join(', ')}` : 'a data-only boot ISO (no boot loader for it here)');
      break;
    }
    case 'lorax': {
      const program = b.wrapper[0] ?? 'lorax';
      if (!findTool(program, PATH)) problem(b.wrapper.length ? 'wrapper' : '', `${program} is not installed: ${missingHint(basename(program))}${b.wrapper.length ? '' : ', or give the builder a wrapper that runs lorax'}`);
      const unseen = wrapperMountProblem(b.wrapper, { readOnly: [ctx.site.roots.compose], readWrite: [stateDir(ctx.site, 'tmp')] });
      if (unseen) problem('wrapper', unseen);
      if (host !== arch) r.notes.push(`lorax builds for the arch it runs on: run iso-${arch} on a ${arch} runner (this host is ${host})`);
      break;
    }
    case 'ssh':
      if (!findTool('ssh', PATH)) problem('', `ssh is not installed: ${missingHint('ssh')}`);
      else probed(await probeSsh(b, arch));
      break;
    case 'kubernetes':
      if (!b.composeVolume) problem('composeVolume', `unset: the pod cannot read the compose (lorax's file:// sources under ${ctx.site.roots.compose}); give the compose's volume, e.g. { nfs: { server, path, readOnly: true } }`);
      probed(await probeKubernetes(b, { saDir }));
      break;
  }
}

export const checkSiteStage: Stage<SiteCheckPlan, CheckResult[]> = {
  name: 'check-site',
  readOnly: true,
  // The checks report missing tools themselves, all at once.
  tools: () => [],

  plan: (ctx) => planSiteChecks(ctx),

  describe: (p, ctx) => ({
    summary: `${p.checks.length} checks of site ${p.site} (${p.file}) for ${ctx.project}, reading only`,
    // A real run lists every check with its result.
    details: ctx.dryRun ? p.checks.map((c) => `${c.field}: ${c.what}`) : [],
  }),

  async execute(ctx, plan) {
    const results = await runSiteChecks(ctx, plan);
    for (const r of results) {
      if (r.problems.length) for (const p of r.problems) ctx.log.info(`✖ ${p.field}: ${p.message}`);
      else ctx.log.info(`✔ ${r.check.field}: ${r.notes.join('; ') || r.check.what}`);
    }
    return results;
  },

  async verify(_ctx, plan, results) {
    const problems = siteProblems(results);
    if (problems.length)
      throw new Error(`site ${plan.site} (${plan.file}): ${problems.length} problem${problems.length === 1 ? '' : 's'} found on this host:\n${problems.map((p) => `  ${p.field}: ${p.message}`).join('\n')}`);
  },

  async record(_ctx, plan, results) {
    return { summary: `site ${plan.site} (${plan.file}): all ${results.length} checks passed` };
  },
};
