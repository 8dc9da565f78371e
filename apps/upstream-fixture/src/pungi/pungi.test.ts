// The fixture's pungi-koji (bin/pungi-koji, the real command line) writing Rocky 8's five composes
// in pungi's layout from the fixture's signed packages, and @rocky/pungi verifying them: real
// createrepo_c, xorriso, implantisomd5, dnf repoclosure and dnf repoquery on what it wrote.
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRelease, treePath, type PungiProducer } from '@rocky/config';
import { run, runSync } from '@rocky/exec';
import { dnfArgv, dnfConfig } from '@rocky/rpm-repo';
import { checkProducer, parseComposeDir, producerArgv, pungiTrees, PungiRunError, runPungiKoji, toRepoTrees, verifyPungiCompose, type VerifiedCompose } from '@rocky/pungi';
import { bootloadersOf, elTorito } from '@rocky/iso';
import { startSshd, type TestSshd } from '../../../../libs/builders/src/testing/standin';
import { ensureFixture } from '../fixture';

const repoRoot = resolve(__dirname, '../../../..');
const launcher = join(repoRoot, 'apps/upstream-fixture/bin/pungi-koji');
const confDir = join(repoRoot, 'apps/upstream-fixture/pungi');
const conf = (f: string) => join(confDir, f);
const DATE = '20240520';
const r8 = loadRelease(repoRoot, 'rocky-8');

let dir: string;
let koji: string;
let target: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pungi-fixture-'));
  // The fixture built once per machine (as test/helpers' sharedFixture), hardlinked: koji is read-only here.
  const shared = join(tmpdir(), 'rocky-fixture-shared');
  await ensureFixture({ workspaceRoot: repoRoot, root: shared, log: () => {} });
  koji = join(dir, 'koji');
  runSync(['cp', '-al', shared, koji]);
  target = join(dir, 'compose', '8');
  mkdirSync(target, { recursive: true });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the launcher as a site would: another cwd, the fixture's koji and a fixed date in the environment. */
function pungi(args: string[], env: NodeJS.ProcessEnv = {}) {
  // Raw: the exit code and both streams are what the tests assert, failure or not, synchronously.
  const r = spawnSync(launcher, args, { cwd: dir, encoding: 'utf8', env: { ...process.env, PUNGI_FIXTURE_KOJI_ROOT: koji, PUNGI_FIXTURE_DATE: DATE, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const produce = (file: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}) =>
  pungi(['--config', conf(file), '--target-dir', target, '--production', '--label', 'RC-8.10', '--print-output-dir', ...extra], env);
const update = (file: string, extra: string[] = []) => pungi(['--config', conf(file), '--target-dir', target, '--production', '--label', 'Update-8.10', '--print-output-dir', ...extra]);
const link = (name: string) => (lstatSync(join(target, name), { throwIfNoEntry: false })?.isSymbolicLink() ? readlinkSync(join(target, name)) : undefined);
const treeOf = (v: VerifiedCompose, path: string) => v.trees.find((t) => t.path === path)!;

describe("the fixture's pungi-koji", () => {
  let rocky: string;
  let rockyVerified: VerifiedCompose;

  it('produce: the Rocky compose in pungi layout, with boot ISOs and DVDs, verified, and its own relative latest link', async () => {
    const r = produce('r8.conf');
    expect(r.code, r.stderr).toBe(0);
    rocky = parseComposeDir(r.stdout)!;
    expect(rocky).toBe(join(target, `Rocky-8-${DATE}.0`));
    expect(link('latest-Rocky-8')).toBe(`Rocky-8-${DATE}.0`);
    expect(readFileSync(join(rocky, 'STATUS'), 'utf8')).toBe('FINISHED\n');
    expect(readFileSync(join(rocky, 'COMPOSE_ID'), 'utf8')).toBe(`Rocky-8-${DATE}.0`);
    for (const f of ['logs/global/pungi.global.log', 'logs/global/config-dump.global.log', 'logs/global/config-copy/r8.conf', 'work/global/variants.xml', 'work/global/composeinfo-base.json', 'work/x86_64/comps/comps-BaseOS.x86_64.xml', 'work/x86_64/comps/comps-RT.x86_64.xml', 'compose/BaseOS/x86_64/os/.treeinfo', 'compose/BaseOS/x86_64/os/media.repo', 'compose/BaseOS/x86_64/iso/CHECKSUM'])
      expect(existsSync(join(rocky, f)), f).toBe(true);
    expect(existsSync(join(rocky, 'work/aarch64/comps/comps-RT.aarch64.xml'))).toBe(false); // RT is x86_64 only
    expect(readFileSync(join(rocky, 'logs/global/pungi.global.log'), 'utf8')).toMatch(/\[INFO    \] Compose finished: /);

    rockyVerified = await verifyPungiCompose(rocky, { repoclosure: { workDir: join(dir, 'closure-rocky') } });
    const v = rockyVerified;
    expect(v.status).toBe('FINISHED');
    expect(v.composeInfo.compose).toMatchObject({ id: `Rocky-8-${DATE}.0`, label: 'RC-8.10', type: 'production', respin: 0 });
    expect(v.composeInfo.variants.map((x) => x.uid).sort()).toEqual(['AppStream', 'BaseOS', 'HighAvailability', 'Minimal', 'PowerTools', 'RT', 'ResilientStorage']);
    expect(v.trees.map((t) => t.path)).toEqual(expect.arrayContaining(['BaseOS/x86_64/os', 'BaseOS/aarch64/debug/tree', 'BaseOS/source/tree', 'RT/x86_64/os', 'ResilientStorage/source/tree']));
    expect(v.trees.map((t) => t.path)).not.toContain('RT/aarch64/os');
    expect(v.closure.length).toBe(v.trees.filter((t) => t.kind === 'os').length);
    expect(v.closure.every((c) => c.ok)).toBe(true);
    // Packages are the fixture's signed ones, hashed into Packages/<letter>/, sigkey the fixture key's short id.
    const bash = v.rpms.find((p) => p.nevra.startsWith('bash-0:') && p.arch === 'x86_64' && p.category === 'binary')!;
    expect(bash.path).toMatch(/^BaseOS\/x86_64\/os\/Packages\/b\/bash-.*\.x86_64\.rpm$/);
    expect(bash.sigkey).toMatch(/^[0-9a-f]{8}$/);
    expect(v.rpms.some((p) => p.category === 'source' && p.path.startsWith('BaseOS/source/tree/Packages/'))).toBe(true);
    // Per arch: buildinstall's boot ISO and BaseOS's DVD, and the Minimal variant's DVD, named as
    // the config says (Rocky 8's published names), implanted, one volume id.
    expect(v.images.map((i) => i.path).sort()).toEqual([
      'BaseOS/aarch64/iso/Rocky-8.10-aarch64-boot.iso',
      'BaseOS/aarch64/iso/Rocky-8.10-aarch64-dvd1.iso',
      'BaseOS/x86_64/iso/Rocky-8.10-x86_64-boot.iso',
      'BaseOS/x86_64/iso/Rocky-8.10-x86_64-dvd1.iso',
      'Minimal/aarch64/iso/Rocky-8.10-aarch64-minimal.iso',
      'Minimal/x86_64/iso/Rocky-8.10-x86_64-minimal.iso',
    ]);
    const img = (name: string) => v.images.find((i) => i.path.endsWith(name))!;
    expect(img('x86_64-boot.iso')).toMatchObject({ type: 'boot', format: 'iso', volumeId: 'Rocky-8-10-x86_64-dvd' });
    expect(img('x86_64-dvd1.iso')).toMatchObject({ type: 'dvd', format: 'iso', volumeId: 'Rocky-8-10-x86_64-dvd' });
    expect(img('x86_64-minimal.iso')).toMatchObject({ type: 'dvd', subvariant: 'Minimal' });
    for (const i of v.images) expect(i.implantMd5).toMatch(/^[0-9a-f]{32}$/);
    // Bootable where this host has the boot loaders (as the local site's boot-tree builder makes them): El Torito and all.
    const x86Boot = img('x86_64-boot.iso');
    expect(img('x86_64-dvd1.iso').bootable).toBe(x86Boot.bootable);
    if (x86Boot.bootable) expect(bootloadersOf(await elTorito(join(rocky, 'compose', x86Boot.path))).length).toBeGreaterThan(0);
    // buildinstall's tree is in BaseOS's os tree, its .treeinfo naming lorax's images with their checksums.
    const ti = readFileSync(join(rocky, 'compose/BaseOS/x86_64/os/.treeinfo'), 'utf8');
    expect(ti).toMatch(/^\[images-x86_64\][\s\S]*kernel = images\/pxeboot\/vmlinuz/m);
    expect(ti).toMatch(/^mainimage = images\/install\.img$/m);
    expect(ti).toMatch(/^version = 8\.10$/m);
    expect(readFileSync(join(rocky, 'compose/BaseOS/x86_64/os/images/boot.iso')).equals(readFileSync(join(rocky, 'compose', x86Boot.path)))).toBe(true);
    expect(readFileSync(join(rocky, 'compose/BaseOS/x86_64/iso/CHECKSUM'), 'utf8')).toContain(`SHA256 (Rocky-8.10-x86_64-dvd1.iso) = ${img('x86_64-dvd1.iso').sha256}`);
    // Minimal takes what comps core names, from the tag's repos.
    expect(treeOf(v, 'Minimal/x86_64/os').packages.map((p) => p.name).sort()).toEqual(expect.arrayContaining(['bash', 'kernel']));
  });

  it("maps onto the release's repo trees: same paths as treePath, only the ISO-only variant left over", () => {
    const trees = pungiTrees(rocky);
    const { trees: mapped, unmapped } = toRepoTrees(r8, trees);
    expect(unmapped.map((t) => t.path)).toEqual(['Minimal/aarch64/os', 'Minimal/aarch64/debug/tree', 'Minimal/x86_64/os', 'Minimal/x86_64/debug/tree', 'Minimal/source/tree']);
    const published = trees.filter((t) => t.variant !== 'Minimal');
    expect(mapped.length).toBe(published.length);
    for (const [i, t] of mapped.entries()) expect(treePath(t, 'main')).toBe(published[i].path);
    expect(mapped.find((t) => t.dir === 'BaseOS' && t.kind === 'source')).toMatchObject({ repo: 'BaseOS', arch: 'src', group: 'source' });
  });

  it('real dnf reads it: repoquery lists what the repodata holds, the comps groups are there', async () => {
    const work = join(dir, 'dnf');
    const repos = [
      { id: 'baseos', path: join(rocky, 'compose/BaseOS/x86_64/os') },
      { id: 'appstream', path: join(rocky, 'compose/AppStream/x86_64/os') },
    ];
    const o = { config: dnfConfig(work), releasever: 8, repos, quiet: true, setopt: [['cachedir', join(work, 'cache')]] as [string, string][] };
    const q = await run(dnfArgv(o, ['repoquery', '--forcearch=x86_64', '--qf', '%{name}.%{arch}']));
    const listed = [...new Set(q.stdout.trim().split('\n'))].sort();
    const expected = [...treeOf(rockyVerified, 'BaseOS/x86_64/os').packages, ...treeOf(rockyVerified, 'AppStream/x86_64/os').packages].map((p) => `${p.name}.${p.arch}`).sort();
    expect(listed).toEqual([...new Set(expected)]);
    expect(listed).toContain('kernel.x86_64');
    const groups = await run(dnfArgv(o, ['group', 'list']));
    expect(groups.stdout).toMatch(/Minimal Install/);
    expect(groups.stdout).toMatch(/Server/);
  });

  it('update: Rocky-8-updates-<date>.0, packages only, pungi moves its latest link (no -updates in its name)', async () => {
    const r = update('r8-updates.conf');
    expect(r.code, r.stderr).toBe(0);
    const dirU = parseComposeDir(r.stdout)!;
    expect(basename(dirU)).toBe(`Rocky-8-updates-${DATE}.0`);
    expect(link('latest-Rocky-8')).toBe(`Rocky-8-updates-${DATE}.0`);
    expect(existsSync(join(dirU, 'compose/BaseOS/x86_64/iso'))).toBe(false);
    expect(existsSync(join(dirU, 'compose/metadata/images.json'))).toBe(false);
    const v = await verifyPungiCompose(dirU);
    expect(v.composeInfo.release).toMatchObject({ short: 'Rocky', version: '8', type: 'updates' });
    expect(v.images).toEqual([]);
    expect(v.trees.length).toBe(rockyVerified.trees.length);
  });

  it('five composes, each in its own directory with its own latest link; an Extras-only update touches nothing else', async () => {
    const composes: [string, string, string[], string[]][] = [
      ['extras-8.conf', 'Extras', ['extras'], ['x86_64', 'aarch64']],
      ['plus-8.conf', 'Plus', ['plus'], ['x86_64', 'aarch64']],
      ['devel-8.conf', 'Rocky-devel', ['Devel'], ['x86_64', 'aarch64']],
      ['nfv-8.conf', 'NFV', ['NFV'], ['x86_64']],
    ];
    // Without PUNGI_FIXTURE_KOJI_ROOT, the koji is the fixture root of the site RELENG_SITE names.
    const siteFile = join(dir, 'site.yaml');
    writeFileSync(siteFile, readFileSync(join(repoRoot, 'sites/local.yaml'), 'utf8').replace(/fixture: \{ root: [^,]+,/, `fixture: { root: ${koji},`));
    for (const [file, short, variants, arches] of composes) {
      const r = produce(file, [], short === 'NFV' ? { PUNGI_FIXTURE_KOJI_ROOT: '', RELENG_SITE: siteFile } : {});
      expect(r.code, r.stderr).toBe(0);
      const d = parseComposeDir(r.stdout)!;
      expect(basename(d)).toBe(`${short}-8-${DATE}.0`);
      expect(link(`latest-${short}-8`)).toBe(`${short}-8-${DATE}.0`);
      const v = await verifyPungiCompose(d);
      expect(v.composeInfo.variants.map((x) => x.uid)).toEqual(variants);
      expect(v.composeInfo.variants[0].arches.sort()).toEqual([...arches].sort());
      expect(v.images).toEqual([]);
      expect(toRepoTrees(r8, v.trees).unmapped).toEqual([]);
    }
    // Extras closes against the Rocky compose's BaseOS and AppStream (its closure in release.yaml).
    const extras = join(target, `Extras-8-${DATE}.0`);
    const v = await verifyPungiCompose(extras, {
      repoclosure: {
        workDir: join(dir, 'closure-extras'),
        deps: (t) => ({ required: true, repos: ['BaseOS', 'AppStream'].map((x) => ({ id: `${x}-${t.arch}`, path: join(rocky, 'compose', x, t.arch, 'os') })) }),
      },
    });
    expect(v.closure.map((c) => [c.tree, c.ok])).toEqual([['extras/aarch64/os', true], ['extras/x86_64/os', true]]);
    // Without its lookaside it does not close: the check is real.
    await expect(verifyPungiCompose(extras, { repoclosure: { workDir: join(dir, 'closure-extras-alone') } })).rejects.toThrow(/extras\/x86_64\/os does not close: .*fixture-abi\(BaseOS\)/);

    const before = new Map(readdirSync(target).map((n) => [n, lstatSync(join(target, n)).mtimeMs]));
    const r = update('extras-8-updates.conf');
    expect(r.code, r.stderr).toBe(0);
    expect(basename(parseComposeDir(r.stdout)!)).toBe(`Extras-8-updates-${DATE}.0`);
    const after = readdirSync(target);
    expect(after.filter((n) => !before.has(n))).toEqual([`Extras-8-updates-${DATE}.0`]);
    for (const [n, m] of before) if (n !== 'latest-Extras-8') expect(lstatSync(join(target, n)).mtimeMs, n).toBe(m);
    expect(link('latest-Extras-8')).toBe(`Extras-8-updates-${DATE}.0`);
  });

  it('a second compose of the same day is the next respin; --no-latest-link leaves the link alone', () => {
    const r = produce('plus-8.conf', ['--no-latest-link']);
    expect(r.code, r.stderr).toBe(0);
    expect(basename(parseComposeDir(r.stdout)!)).toBe(`Plus-8-${DATE}.1`);
    expect(link('latest-Plus-8')).toBe(`Plus-8-${DATE}.0`);
  });

  it('DOOMED: exits 1, never linked, refused by verify with the error pungi logged', async () => {
    const producer = localProducer();
    const argv = producerArgv(producer, r8, { compose: 'Rocky', kind: 'produce' });
    const err = await runPungiKoji(argv, { runner: producer.runner, env: { ...producer.env, PUNGI_FIXTURE_FAULT: 'doomed' }, logFile: join(dir, 'doomed.log') }).catch((e) => e);
    expect(err).toBeInstanceOf(PungiRunError);
    expect(err.composeDir).toBe(join(target, `Rocky-8-${DATE}.1`));
    expect(err.message).toMatch(/pungi-koji exited 1 \(compose .*Rocky-8-20240520\.1, compose STATUS DOOMED\)/);
    expect(err.message).toContain(join(err.composeDir, 'logs/global/pungi.global.log'));
    expect(readFileSync(join(err.composeDir, 'STATUS'), 'utf8')).toBe('DOOMED\n');
    expect(existsSync(join(err.composeDir, 'logs/global/traceback.global.log'))).toBe(true);
    expect(link('latest-Rocky-8')).toBe(`Rocky-8-updates-${DATE}.0`);
    await expect(verifyPungiCompose(err.composeDir)).rejects.toThrow(/STATUS is DOOMED: pungi failed: Compose run failed: fixture fault: the compose is doomed after the gather phase .*a doomed compose is never staged/);
  });

  it('FINISHED_INCOMPLETE: the failed deliverable is named where pungi names it, the rest verifies', async () => {
    const r = produce('r8.conf', [], { PUNGI_FIXTURE_FAULT: 'incomplete' });
    expect(r.code, r.stderr).toBe(0);
    const d = parseComposeDir(r.stdout)!;
    expect(readFileSync(join(d, 'STATUS'), 'utf8')).toBe('FINISHED_INCOMPLETE\n');
    expect(JSON.parse(readFileSync(join(d, 'logs/global/deliverables.json'), 'utf8')).failed).toEqual({ iso: [['BaseOS', 'x86_64', 'BaseOS']] });
    expect(readFileSync(join(d, 'logs/global/pungi.global.log'), 'utf8')).toContain('Failed iso on variant <BaseOS>, arch <x86_64>, subvariant <BaseOS>.');
    const v = await verifyPungiCompose(d);
    expect(v.status).toBe('FINISHED_INCOMPLETE');
    expect(v.failed).toEqual([{ kind: 'iso', variant: 'BaseOS', arch: 'x86_64', subvariant: 'BaseOS' }]);
    expect(v.images.map((i) => i.path.split('/').pop()).sort()).toEqual(['Rocky-8.10-aarch64-boot.iso', 'Rocky-8.10-aarch64-dvd1.iso', 'Rocky-8.10-aarch64-minimal.iso', 'Rocky-8.10-x86_64-boot.iso', 'Rocky-8.10-x86_64-minimal.iso']);
  });

  it('refuses what argparse refuses (exit 2) and creates nothing', () => {
    const before = readdirSync(target).sort();
    // The parser's every rule is unit-tested (args.test.ts); here, through the launcher, as a site runs it.
    const cases: [string[], RegExp][] = [
      [['--config', conf('r8.conf'), '--target-dir', target, '--production', '--label', 'RC-8.10', '--frobnicate'], /pungi-koji: error: unrecognized arguments: --frobnicate/],
      [['--config', conf('r8.conf'), '--target-dir', target, '--production', '--label', 'RC8.10'], /error: Label in unknown format: RC8.10/],
    ];
    for (const [args, msg] of cases) {
      const r = pungi(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^usage: pungi-koji/);
      expect(r.stderr).toMatch(msg);
    }
    // An option pungi's config schema does not have in the fixture's config: exit 1, naming it.
    const bad = join(dir, 'conf-bad');
    cpSync(confDir, bad, { recursive: true });
    writeFileSync(join(bad, 'bad.conf'), 'from r8 import *\ngather_methd = "deps"\n');
    const r = pungi(['--config', join(bad, 'bad.conf'), '--target-dir', target, '--production', '--label', 'RC-8.10']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad\.conf: unrecognized option gather_methd/);
    // No koji: a site without a fixture upstream (the production one) gives the fixture's pungi none.
    const noKoji = pungi(['--config', conf('plus-8.conf'), '--target-dir', target, '--production', '--label', 'RC-8.10'], { PUNGI_FIXTURE_KOJI_ROOT: '', RELENG_SITE: 'rocky-prod' });
    expect(noKoji.code).toBe(1);
    expect(noKoji.stderr).toMatch(/site rocky-prod has no upstream\.fixture: the fixture's pungi-koji has no koji to read/);
    expect(readdirSync(target).sort()).toEqual(before);
  });

  it('verify checks the bytes, not pungi\'s word: changed, missing and unlisted packages, a wrong image, unfinished states', async () => {
    const copy = join(dir, 'tampered', basename(rocky));
    mkdirSync(join(dir, 'tampered'));
    runSync(['cp', '-a', rocky, copy]);
    const pkgs = treeOf(rockyVerified, 'AppStream/x86_64/os').packages;
    // Same size, other bytes (a new file renamed over the name: the bytes may be shared).
    const changed = join(copy, 'compose/AppStream/x86_64/os', pkgs[0].href);
    const bytes = readFileSync(changed);
    bytes[bytes.length - 1] ^= 0xff;
    writeFileSync(`${changed}.new`, bytes);
    renameSync(`${changed}.new`, changed);
    unlinkSync(join(copy, 'compose/AppStream/x86_64/os', pkgs[1].href));
    const rpmsFile = join(copy, 'compose/metadata/rpms.json');
    const rpms = JSON.parse(readFileSync(rpmsFile, 'utf8'));
    const bySrpm = rpms.payload.rpms.PowerTools.aarch64;
    const srpm = Object.keys(bySrpm)[0];
    const dropped = Object.keys(bySrpm[srpm]).find((k) => bySrpm[srpm][k].category === 'binary')!;
    delete bySrpm[srpm][dropped];
    writeFileSync(rpmsFile, JSON.stringify(rpms));
    const imagesFile = join(copy, 'compose/metadata/images.json');
    writeFileSync(imagesFile, readFileSync(imagesFile, 'utf8').replace(rockyVerified.images[0].sha256, '0'.repeat(64)));
    writeFileSync(join(copy, 'COMPOSE_ID'), `Rocky-8-${DATE}.7`);
    const err = await verifyPungiCompose(copy).catch((e) => e);
    expect(err.message).toMatch(/the compose does not verify \(8 problems\)/);
    expect(err.message).toContain(`COMPOSE_ID Rocky-8-${DATE}.7 is not the id of composeinfo.json's Rocky-8 (ga) compose of ${DATE}, production, respin 0`);
    expect(err.message).toContain(`composeinfo.json: compose id Rocky-8-${DATE}.0, COMPOSE_ID says Rocky-8-${DATE}.7`);
    expect(err.message).toContain(`AppStream/x86_64/os/${pkgs[0].href}: sha256`);
    expect(err.message).toContain(`AppStream/x86_64/os/${pkgs[1].href}: missing (its repodata lists it)`);
    expect(err.message).toMatch(/PowerTools\/aarch64\/os's repodata lists PowerTools\/aarch64\/os\/Packages\/.*, which rpms.json does not/);
    expect(err.message).toContain(`${rockyVerified.images[0].path}: sha256`);

    for (const [status, msg] of [['STARTED', /STATUS is STARTED: pungi is still running/], ['TERMINATED', /STATUS is TERMINATED: pungi was stopped/], ['FINISHED_INCOMPLETE', /names no failed deliverable/], ['DONE', /unknown compose status "DONE"/]] as const) {
      writeFileSync(join(copy, 'STATUS'), `${status}\n`);
      writeFileSync(join(copy, 'logs/global/deliverables.json'), '{"failed": {}}');
      await expect(verifyPungiCompose(copy)).rejects.toThrow(msg);
    }
  });

  it('the ssh runner: pungi-koji on the compose host over a real sshd, notifications sent, the compose verified here', async () => {
    let sshd: TestSshd | undefined;
    try {
      sshd = await startSshd(join(dir, 'sshd'));
      const remoteTarget = join(dir, 'remote', '8');
      mkdirSync(remoteTarget, { recursive: true });
      const notes = join(dir, 'notifications');
      const script = join(dir, 'notify.sh');
      writeFileSync(script, `#!/bin/sh\n{ printf '%s ' "$1"; cat; echo; } >> ${notes}\n`);
      chmodSync(script, 0o755);
      const producer: PungiProducer = {
        ...localProducer(),
        targetDir: remoteTarget,
        oldComposes: [remoteTarget],
        notificationScript: script,
        runner: { type: 'ssh', host: '127.0.0.1', user: 'root', port: sshd.port, identityFile: sshd.identityFile, knownHosts: sshd.knownHosts },
      };
      // Pre-flight on the compose host, one ssh call: everything there, then a config that is not.
      await checkProducer(producer, 'rocky-8', { sshConfigFile: '/dev/null' });
      const broken = { ...producer, composes: { ...producer.composes, Plus: { produce: 'plus-8.conf', update: 'plus-9-updates.conf' } } };
      await expect(checkProducer(broken, 'rocky-8', { sshConfigFile: '/dev/null' })).rejects.toThrow(`composes.Plus.update: ${conf('plus-9-updates.conf')} is not a file on 127.0.0.1`);
      const argv = producerArgv(producer, r8, { compose: 'Plus', kind: 'update' });
      const res = await runPungiKoji(argv, { runner: producer.runner, env: { ...producer.env, PATH: process.env.PATH! }, logFile: join(dir, 'ssh-run.log'), sshConfigFile: '/dev/null' });
      expect(res.argv[0]).toBe('ssh');
      expect(res.composeDir).toBe(join(remoteTarget, `Plus-8-updates-${DATE}.0`));
      expect(readdirSync(remoteTarget).sort()).toEqual([`Plus-8-updates-${DATE}.0`, 'latest-Plus-8']); // pungi owns its latest link (--latest-link-status)
      const v = await verifyPungiCompose(res.composeDir);
      expect(v.composeInfo.compose.label).toBe('Update-8.10');
      const sent = readFileSync(notes, 'utf8').trim().split('\n');
      expect(sent.map((l) => l.split(' ')[0])).toEqual(expect.arrayContaining(['status-change', 'phase-start', 'phase-stop']));
      const statuses = sent.filter((l) => l.startsWith('status-change ')).map((l) => JSON.parse(l.slice('status-change '.length)));
      expect(statuses.map((s) => s.status)).toEqual(['STARTED', 'FINISHED']);
      expect(statuses[1]).toMatchObject({ compose_id: `Plus-8-updates-${DATE}.0`, release_short: 'Plus', compose_label: 'Update-8.10' });
    } finally {
      await sshd?.stop();
    }
  });
});

/** The local site's producer for rocky-8: the fixture's launcher and pungi config checkout. */
function localProducer(): PungiProducer {
  return {
    type: 'pungi',
    command: [launcher],
    config: { path: confDir },
    composes: {
      Rocky: { produce: 'r8.conf', update: 'r8-updates.conf' },
      Extras: { produce: 'extras-8.conf', update: 'extras-8-updates.conf' },
      Plus: { produce: 'plus-8.conf', update: 'plus-8-updates.conf' },
      'Rocky-devel': { produce: 'devel-8.conf', update: 'devel-8-updates.conf' },
      NFV: { produce: 'nfv-8.conf', update: 'nfv-8-updates.conf' },
    },
    targetDir: target,
    oldComposes: [target],
    composeType: 'production',
    env: { PUNGI_FIXTURE_KOJI_ROOT: koji, PUNGI_FIXTURE_DATE: DATE },
    runner: { type: 'local' },
  };
}
