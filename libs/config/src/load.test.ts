import { describe, it, expect, beforeAll, afterAll, beforeEach, afterEach } from 'vitest';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, mkdirSync, readdirSync, writeFileSync, rmSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRelease, loadSite, listReleases, siteName, ConfigError } from './load';
import { ComposeLayout, composeRoot, errataLocation, publishLayout, repoTrees, upstreamGpgKey, upstreamKeyFile, upstreamProject, upstreamUrl } from './layout';

const ws = join(__dirname, '../../..');

describe('the workspace release and site files', () => {
  it('all load and follow Rocky', () => {
    expect(listReleases(ws)).toEqual(['rocky-8', 'rocky-9', 'rocky-9-beta', 'rocky-9-lookahead', 'sig-altarch-9', 'sig-cloud-9']);
    const r9 = loadRelease(ws, 'rocky-9');
    expect(r9.arches).toEqual(['x86_64', 'aarch64', 'ppc64le', 's390x']);
    const devel = r9.repos.find((r) => r.name === 'all')!;
    expect(devel.dir).toBe('devel');
    const trees = repoTrees(r9);
    expect(trees.some((t) => t.dir === 'devel' && t.arch === 'i686' && t.kind === 'os')).toBe(true);
    expect(trees.filter((t) => t.dir === 'RT').map((t) => t.arch)).not.toContain('aarch64');
    expect(loadRelease(ws, 'rocky-8').arches).toEqual(['x86_64', 'aarch64']);
    expect(loadSite(ws, 'local').roots.compose).toBe(join(ws, '.releng/compose'));
    expect(loadSite(ws, 'rocky-prod').roots.staging).toBe('/mnt/repos-staging');
    expect(loadSite(ws, 'rocky-prod').cloud?.source).toEqual({ type: 's3', bucket: 'resf-empanadas', prefix: '', region: 'us-east-2' });
    // Errata from Apollo, per product, major, repo and arch (the fixture plays it on the local site).
    const r8 = loadRelease(ws, 'rocky-8');
    const baseos = repoTrees(r8).find((t) => t.dir === 'BaseOS' && t.kind === 'os' && t.arch === 'aarch64')!;
    expect(errataLocation(loadSite(ws, 'rocky-prod').errata!, r8, baseos)).toBe('https://apollo.build.resf.org/api/v3/updateinfo/rocky-linux/8/BaseOS/updateinfo.xml?arch=aarch64');
    expect(errataLocation(loadSite(ws, 'local').errata!, r8, baseos, 'http://127.0.0.1:5')).toBe('http://127.0.0.1:5/api/v3/updateinfo/rocky-linux/8/BaseOS/updateinfo.xml?arch=aarch64');
  });

  it("rocky-prod: each release's upstream key and Peridot project, the defaults where the site names none", () => {
    const prod = loadSite(ws, 'rocky-prod');
    const rel = (name: string) => loadRelease(ws, name);
    const key = (name: string) => upstreamGpgKey(prod, rel(name));
    expect(key('rocky-8')).toEqual({ key: '/etc/pki/rpm-gpg/RPM-GPG-KEY-rockyofficial', field: 'upstream.releases.rocky-8.gpgKey' });
    expect(key('rocky-9')).toEqual({ key: '/etc/pki/rpm-gpg/RPM-GPG-KEY-Rocky-9', field: 'upstream.gpgKey' });
    for (const r of ['rocky-9-beta', 'rocky-9-lookahead']) expect(key(r).key, r).toBe('/etc/pki/rpm-gpg/RPM-GPG-KEY-Rocky-9-Testing');
    const baseos = { repo: 'BaseOS', dir: 'BaseOS', kind: 'os', arch: 'x86_64', group: 'x86_64', path: 'BaseOS/x86_64/os' } as const;
    expect(upstreamUrl(prod, rel('rocky-9'), baseos)).toBe('https://yumrepofs.build.resf.org/v1/projects/ae163d6a-f050-484f-bbaa-100ca673f146/repo/hashed-BaseOS/x86_64');
    expect(upstreamProject(prod, rel('rocky-9-lookahead'))).toBe('6794b5a8-290b-4d0d-ad5a-47164329cbb0');
    // The local site names one key and no projects: every release gets the fixture's key and its own project.
    const local = loadSite(ws, 'local');
    expect(upstreamGpgKey(local, rel('rocky-8'))).toEqual({ key: join(ws, '.releng/upstream/RPM-GPG-KEY-fixture'), field: 'upstream.gpgKey' });
    expect(upstreamProject(local, rel('rocky-9-beta'))).toBe('rocky-9-beta');
  });});

describe('SIG releases', () => {
  const site = loadSite(ws, 'local');
  it('load as SIG composes: stable, no ISOs, trees as empanadas lays them out under <major>/<sig>, published under the SIG category', () => {
    const cloud = loadRelease(ws, 'sig-cloud-9');
    expect(cloud).toMatchObject({ kind: 'sig', sig: { name: 'cloud', gpgKey: 'RPM-GPG-KEY-Rocky-SIG-Cloud' }, type: 'stable', candidate: false, project: '15016370-1410-4459-a1a2-a1576041fd19', cloud: { images: {} } });
    expect(cloud.iso).toBeUndefined();
    const trees = repoTrees(cloud);
    expect(trees.filter((t) => t.repo === 'cloud-kernel').map((t) => t.path)).toEqual(['x86_64/cloud-kernel', 'x86_64/cloud-kernel-debug', 'aarch64/cloud-kernel', 'aarch64/cloud-kernel-debug', 'source/cloud-kernel']);
    expect(trees.filter((t) => t.repo === 'cloud-common' && t.kind === 'os').map((t) => t.path)).toEqual(['x86_64/cloud-common', 'aarch64/cloud-common', 'ppc64le/cloud-common', 's390x/cloud-common']);
    expect(trees.some((t) => t.kind === 'kickstart')).toBe(false);
    const layout = new ComposeLayout('/c/9/SIG-cloud-9.7-20251120.0', cloud);
    expect(layout.trees).toBe('/c/9/SIG-cloud-9.7-20251120.0/compose/9/cloud');
    expect(layout.tree(trees[0])).toBe('/c/9/SIG-cloud-9.7-20251120.0/compose/9/cloud/x86_64/cloud-kernel');
    expect(composeRoot(site, cloud)).toEqual({ base: join(ws, '.releng/compose/9'), latest: join(ws, '.releng/compose/9/latest-SIG-cloud-9'), syncLock: join(ws, '.releng/compose/9/.sync-latest-SIG-cloud-9.lock') });
    const paths = publishLayout(site, cloud);
    expect([paths.stagingCategory, paths.productionCategory]).toEqual([join(ws, '.releng/repos-staging/mirror/pub/sig'), join(ws, '.releng/repos-production/mirror/pub/sig')]);
    expect(paths.gaMarkers).toBe(join(ws, '.releng/state/publish/production-dirs/mirror/pub/sig'));
    expect(upstreamKeyFile(site, cloud)).toBe(join(ws, '.releng/upstream/keys/RPM-GPG-KEY-Rocky-SIG-Cloud'));
    expect(() => upstreamKeyFile({ ...site, upstream: { ...site.upstream, sigKeys: undefined } }, cloud)).toThrow(/sig-cloud-9 is a SIG release signed with RPM-GPG-KEY-Rocky-SIG-Cloud, but site local has no upstream.sigKeys/);
    // The main releases keep their trees, category and lock.
    const r9 = loadRelease(ws, 'rocky-9');
    expect(new ComposeLayout('/c/9/Rocky-9.7-x', r9).tree(repoTrees(r9).find((t) => t.dir === 'BaseOS')!)).toBe('/c/9/Rocky-9.7-x/compose/BaseOS/x86_64/os');
    expect(publishLayout(site, r9).stagingCategory).toBe(join(ws, '.releng/repos-staging/mirror/pub/rocky'));
    expect(composeRoot(site, r9).syncLock).toBe(join(ws, '.releng/compose/9/.sync-9.lock'));
    expect(loadRelease(ws, 'sig-altarch-9')).toMatchObject({ sig: { name: 'altarch', gpgKey: 'RPM-GPG-KEY-Rocky-SIG-AltArch' }, arches: ['aarch64'], project: '6047887d-a395-4bc7-a0bd-fc1873b5d13d' });
  });
});

describe('bad config fails naming the file and the field', () => {
  let dir: string;
  const good = readFileSync(join(ws, 'releases/rocky-9/release.yaml'), 'utf8');
  const goodSite = readFileSync(join(ws, 'sites/local.yaml'), 'utf8');
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    mkdirSync(join(dir, 'sites'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const release = (name: string, text: string | Buffer) => {
    mkdirSync(join(dir, 'releases', name), { recursive: true });
    writeFileSync(join(dir, 'releases', name, 'release.yaml'), text);
    return () => loadRelease(dir, name);
  };
  const site = (name: string, text: string) => {
    writeFileSync(join(dir, 'sites', `${name}.yaml`), text);
    return () => loadSite(dir, name);
  };
  const fails = (fn: () => unknown, file: string, path: string, what: RegExp) => {
    let err: unknown;
    try {
      fn();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const ce = err as ConfigError;
    expect(ce.file).toBe(file);
    const issue = ce.issues.find((i) => i.path === path);
    expect(issue, `issues: ${JSON.stringify(ce.issues)}`).toBeDefined();
    expect(issue!.message).toMatch(what);
    expect(ce.message).toContain(file);
    expect(ce.message).toContain(path);
  };

  it('{mounts} inside another argument of a lorax wrapper', () =>
    fails(
      site('mounts', goodSite.replace('x86_64: { type: boot-tree, mustBoot: true }', 'x86_64: { type: lorax, wrapper: [podman, run, "-v{mounts}", image] }')),
      'sites/mounts.yaml',
      'builders.x86_64.wrapper[2]',
      /\{mounts\} must be an element of its own \(it becomes several arguments\)/,
    ));
  it('an unknown key (misspelt)', () =>
    fails(release('typo', good.replace('type: stable', 'type: stable\ncandidat: true')), 'releases/typo/release.yaml', '', /unknown key "candidat"/));
  it('a wrong type', () => fails(release('type', good.replace('minor: 7', 'minor: seven')), 'releases/type/release.yaml', 'minor', /expected number/));
  it('an unknown arch in a repo', () =>
    fails(release('arch', good.replace('arches: [x86_64, aarch64, ppc64le, s390x]\nrepos', 'arches: [x86_64, aarch64]\nrepos')), 'releases/arch/release.yaml', 'repos[4].arches', /ppc64le is not in the release's arches/));
  it('a closure naming an unknown repo', () =>
    fails(release('closure', good.replace('{ name: CRB, closure: [BaseOS, AppStream] }', '{ name: CRB, closure: [BaseOS, Appstream] }')), 'releases/closure/release.yaml', 'repos[3].closure[1]', /unknown repo Appstream/));
  it('an invalid enum value', () => fails(release('enum', good.replace('type: stable', 'type: final')), 'releases/enum/release.yaml', 'type', /one of "stable", "beta", "lookahead"/));
  it('a beta without an rc level', () =>
    fails(release('beta', good.replace('type: stable\nrc: RC2\n', 'type: beta\n')), 'releases/beta/release.yaml', 'rc', /needs an rc level/));
  it('broken YAML names the line', () => fails(release('yaml', 'major: 9\nminor: 7\nminor: 8\n'), 'releases/yaml/release.yaml', 'line 3', /unique/));
  it('a site missing a root', () =>
    fails(site('noroot', goodSite.replace('  staging: .releng/repos-staging\n', '')), 'sites/noroot.yaml', 'roots.staging', /expected string \(missing\)/));
  it('a site with an unknown builder type', () =>
    fails(site('builder', goodSite.replace('aarch64: { type: boot-tree }', 'aarch64: { type: mock }')), 'sites/builder.yaml', 'builders.aarch64.type', /./));
  it('a site with a bad deletion limit', () =>
    fails(site('limit', goodSite.replace('deletionLimit: 1000', 'deletionLimit: -5')), 'sites/limit.yaml', 'publish.deletionLimit', /./));
  it('a site that does not exist', () => fails(() => loadSite(dir, 'nowhere'), 'sites/nowhere.yaml', '', /no such site file/));

  // Issue 18.12: mistakes that loaded silently and went wrong later.
  it('a repo listed twice', () =>
    fails(release('duprepo', good.replace('  - { name: extras,', '  - { name: BaseOS }\n  - { name: extras,')), 'releases/duprepo/release.yaml', 'repos[10].name', /BaseOS is listed twice \(also repos\[1\]\)/));
  it('two repos with the same dir', () =>
    fails(release('dupdir', good.replace('{ name: plus, closure', '{ name: plus, dir: extras, closure')), 'releases/dupdir/release.yaml', 'repos[11].dir', /extras is also the dir of repos\[10\]/));
  it('an arch listed twice', () =>
    fails(release('duparch', good.replace('arches: [x86_64, aarch64, ppc64le, s390x]\nrepos', 'arches: [x86_64, aarch64, ppc64le, s390x, x86_64]\nrepos')), 'releases/duparch/release.yaml', 'arches[4]', /x86_64 is listed twice/));
  it('an extra ISO for an arch the release does not have', () =>
    fails(release('isoarch', good.replace('dvd: { repos: [BaseOS, AppStream], variant: AppStream }', 'dvd: { repos: [BaseOS, AppStream], variant: AppStream, arches: [x86_64, riscv64] }')), 'releases/isoarch/release.yaml', 'iso.extra.dvd.arches', /riscv64 is not in the release's arches/));
  it('a cloud image for an arch the release does not have', () =>
    fails(release('cloudarch', good.replace('RPI: { format: raw.xz, arches: [aarch64]', 'RPI: { format: raw.xz, arches: [aarch64, riscv64]')), 'releases/cloudarch/release.yaml', 'cloud.images.RPI.arches', /riscv64 is not in the release's arches/));
  it('a file that is not UTF-8 names the line and the byte offset', () => {
    const bytes = Buffer.from(good.replace('fullname: Rocky Linux', 'fullname: Rocky L\u00ffinux'), 'utf8');
    const at = bytes.indexOf(Buffer.from([0xc3, 0xbf]));
    bytes[at] = 0xe9; // Latin-1 é, then a byte that cannot follow it: what an editor in the wrong encoding writes
    fails(release('latin1', bytes), 'releases/latin1/release.yaml', 'line 3', new RegExp(`not UTF-8: byte 0xe9 at offset ${at}\\b`));
  });
  it('a YAML alias bomb names the file', () => {
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x]'];
    for (const l of 'bcdefgh') levels.push(`${l}: &${l} [${Array(9).fill(`*${String.fromCharCode(l.charCodeAt(0) - 1)}`).join(', ')}]`);
    fails(release('bomb', levels.join('\n') + '\n'), 'releases/bomb/release.yaml', '', /aliases/);
  });
  it('a zero build concurrency says what is expected', () =>
    fails(site('builds', goodSite.replace('builds: 2', 'builds: 0')), 'sites/builds.yaml', 'concurrency.builds', /^expected a number > 0$/));
  it('an empty list says what is expected', () =>
    fails(release('noarches', good.replace('arches: [x86_64, aarch64, ppc64le, s390x]\nrepos', 'arches: []\nrepos')), 'releases/noarches/release.yaml', 'arches', /^expected at least 1 item$/));
  // SIG releases: what a SIG compose has and has not, and main releases as before.
  const sigFile = readFileSync(join(ws, 'releases/sig-cloud-9/release.yaml'), 'utf8');
  it('a SIG release with main-release keys', () => {
    fails(release('sigiso', `${sigFile}iso:\n  lorax: { variant: cloud-common, repos: [cloud-common] }\n`), 'releases/sigiso/release.yaml', 'iso', /a SIG release has no iso/);
    fails(release('sigtype', sigFile.replace('minor: 7\n', 'minor: 7\ntype: beta\nrc: BETA1\n')), 'releases/sigtype/release.yaml', 'type', /a SIG release has no type/);
    fails(release('sigsign', `${sigFile}publish: { signRepodata: true }\n`), 'releases/sigsign/release.yaml', 'publish', /published as it is/);
    fails(release('sigrc', `${sigFile}candidate: true\n`), 'releases/sigrc/release.yaml', 'candidate', /a SIG release has no candidate/);
    fails(release('sigextra', `${sigFile}extraFiles: { packages: [cloud-common], files: [EULA] }\n`), 'releases/sigextra/release.yaml', 'extraFiles', /a SIG release has no extraFiles/);
  });
  it('a SIG release without its sig section, or with a name that is not a lowercase directory', () => {
    fails(release('nosig', sigFile.replace(/^sig: .*\n/m, '')), 'releases/nosig/release.yaml', 'sig', /needs sig: \{ name, gpgKey \}/);
    fails(release('sigcase', sigFile.replace('name: cloud,', 'name: Cloud,')), 'releases/sigcase/release.yaml', 'sig.name', /lowercase/);
  });
  it('a SIG repo in the directory of another repo\'s debug tree', () =>
    fails(release('sigdebug', sigFile.replace('{ name: cloud-common, mustClose: false }', '{ name: cloud-common, mustClose: false }\n  - { name: cloud-common-debug }')), 'releases/sigdebug/release.yaml', 'repos[2].name', /where the debug tree of repos\[1\] goes/));
  it('a SIG repo with multilib', () =>
    fails(release('sigml', sigFile.replace('{ name: cloud-common, mustClose: false }', '{ name: cloud-common, mustClose: false, multilib: [i686] }')), 'releases/sigml/release.yaml', 'repos[1].multilib', /no multilib/));
  it('a main release with a sig section, or without type, profile or iso', () => {
    fails(release('mainsig', `${good}sig: { name: cloud, gpgKey: K }\n`), 'releases/mainsig/release.yaml', 'sig', /only a SIG release/);
    fails(release('notype', good.replace('type: stable\n', '')), 'releases/notype/release.yaml', 'type', /one of "stable", "beta", "lookahead" \(missing\)/);
    fails(release('noprofile', good.replace('profile: "9"\n', '')), 'releases/noprofile/release.yaml', 'profile', /missing/);
    fails(release('noiso', good.replace(/^iso:\n(  .*\n)+/m, '')), 'releases/noiso/release.yaml', 'iso', /missing/);
  });
  it('a SIG category inside the main category (a SIG would publish into a release dir)', () =>
    fails(site('sigcat', goodSite.replace('sigCategory: mirror/pub/sig', 'sigCategory: mirror/pub/rocky/sig')), 'sites/sigcat.yaml', 'sigCategory', /must not contain one another/));
  it('per-release upstream settings for a release the workspace does not have (a misspelt name would get the defaults)', () => {
    release('rocky-9', good);
    fails(site('relname', goodSite.replace('  verifySignature: true\n', '  verifySignature: true\n  releases:\n    rocky-9: { project: abc }\n    rocky-09: { gpgKey: /etc/pki/rpm-gpg/RPM-GPG-KEY-Rocky-9 }\n')), 'sites/relname.yaml', 'upstream.releases.rocky-09', /no release rocky-09 in releases\/ \(there are .*rocky-9/);
    fails(site('relkey', goodSite.replace('  verifySignature: true\n', '  verifySignature: true\n  releases:\n    rocky-9: { key: x }\n')), 'sites/relkey.yaml', 'upstream.releases.rocky-9', /unknown key "key"/);
  });  it('a URL template without {repo}', () =>
    fails(site('norepo', goodSite.replace('hashed-{repo}', 'hashed-BaseOS')), 'sites/norepo.yaml', 'upstream.url', /no \{repo\}/));
  it('a URL template with an unknown placeholder', () =>
    fails(site('placeholder', goodSite.replace('{arch}', '{basearch}')), 'sites/placeholder.yaml', 'upstream.url', /unknown placeholder \{basearch\}/));
  it('an errata source that would give every repo or arch the same advisories, or names an unknown placeholder', () => {
    const errata = (v: string) => goodSite.replace(/^errata: .*$/m, `errata: ${v}`);
    fails(site('errnoarch', errata('{ type: url, url: "{base}/api/v3/updateinfo/{product}/{major}/{repo}/updateinfo.xml" }')), 'sites/errnoarch.yaml', 'errata.url', /no \{arch\}: every arch would get the same advisories/);
    fails(site('errnorepo', errata('{ type: dir, path: "/srv/errata/updateinfo-{arch}.xml" }')), 'sites/errnorepo.yaml', 'errata.path', /no \{repo\}/);
    fails(site('errph', errata('{ type: url, url: "{base}/{product}/{version}/{repo}/{arch}.xml" }')), 'sites/errph.yaml', 'errata.url', /unknown placeholder \{version\}/);
    fails(site('errdirbase', errata('{ type: dir, path: "{base}/{repo}/{arch}.xml" }')), 'sites/errdirbase.yaml', 'errata.path', /unknown placeholder \{base\}/);
    fails(site('errscheme', errata('{ type: url, url: "apollo/{repo}/{arch}.xml" }')), 'sites/errscheme.yaml', 'errata.url', /expected an http:\/\/, https:\/\/ or file:\/\/ URL/);
    fails(site('errtype', errata('{ type: apollo, url: "https://a/{repo}/{arch}" }')), 'sites/errtype.yaml', 'errata.type', /./);
    fails(site('errkey', errata('{ type: url, url: "https://a/{repo}/{arch}", product: rocky-linux }')), 'sites/errkey.yaml', 'errata', /unknown key "product"/);
    // {base} is the fixture server's: a site without the fixture has none.
    const real = goodSite.replace('  fixture: { root: .releng/upstream, scale: 1 }\n', '').replace('"{base}/v1/projects', '"https://yumrepofs.example.org/v1/projects');
    fails(site('errbase', real), 'sites/errbase.yaml', 'errata.url', /\{base\} is the fixture server's address/);
    // A directory source is resolved against the workspace, like every site path.
    expect(site('errdir', errata('{ type: dir, path: "errata/{major}/{repo}/{arch}/updateinfo.xml" }'))().errata).toEqual({ type: 'dir', path: join(dir, 'errata/{major}/{repo}/{arch}/updateinfo.xml') });
  });
  it('a bucket cloud source with a path, or without a bucket', () => {
    fails(site('s3path', goodSite.replace('{ type: dir, path: .releng/upstream/images }', '{ type: s3, bucket: resf-empanadas, path: x }')), 'sites/s3path.yaml', 'cloud.source', /path/);
    fails(site('s3nobucket', goodSite.replace('{ type: dir, path: .releng/upstream/images }', '{ type: s3, region: us-east-2 }')), 'sites/s3nobucket.yaml', 'cloud.source.bucket', /./);
    expect(site('s3ok', goodSite.replace('{ type: dir, path: .releng/upstream/images }', '{ type: s3, bucket: b, prefix: images, endpoint: "http://127.0.0.1:9000" }'))().cloud?.source).toEqual({
      type: 's3', bucket: 'b', prefix: 'images', region: 'us-east-2', endpoint: 'http://127.0.0.1:9000',
    });
  });
});

// Issue 18.11: roots that overlap or escape let one stage write into another's tree.
describe('site paths that overlap or escape fail naming the file and both fields', () => {
  let dir: string;
  const goodSite = readFileSync(join(ws, 'sites/local.yaml'), 'utf8');
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cfg-roots-'));
    mkdirSync(join(dir, 'sites'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const site = (name: string, text: string) => {
    writeFileSync(join(dir, 'sites', `${name}.yaml`), text);
    return () => loadSite(dir, name);
  };
  const fails = (name: string, text: string, path: string, what: RegExp) => {
    let err: unknown;
    try {
      site(name, text)();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const ce = err as ConfigError;
    expect(ce.file).toBe(`sites/${name}.yaml`);
    expect(ce.issues.find((i) => i.path === path && what.test(i.message)), `issues: ${JSON.stringify(ce.issues)}`).toBeDefined();
  };
  const root = (field: 'compose' | 'staging' | 'production', value: string) =>
    goodSite.replace(new RegExp(`  ${field}: \\S+`), `  ${field}: ${value}`);

  it('staging and production on one root', () =>
    fails('same', root('production', '.releng/repos-staging'), 'roots.production', /the same directory as roots.staging/));
  it('a compose root inside the production tree', () =>
    fails('nested', root('compose', '.releng/repos-production/compose'), 'roots.compose', /inside roots.production/));
  it('a production tree inside the compose root', () =>
    fails('outer', root('production', '.releng/compose/production'), 'roots.production', /inside roots.compose/));
  it('the store or the state inside staging', () => {
    fails('store', goodSite.replace('path: .releng/store', 'path: .releng/repos-staging/.store'), 'store.path', /inside roots.staging/);
    fails('state', goodSite.replace('state: .releng/state', 'state: .releng/repos-production/.state'), 'state', /inside roots.production/);
  });
  it('the GnuPG home (private keys) inside staging', () =>
    fails('gnupg', goodSite.replace('gnupgHome: .releng/upstream/gnupg', 'gnupgHome: .releng/repos-staging/.gnupg'), 'signing.gnupgHome', /inside roots.staging/));
  it('a root that reaches another through a symlink', () => {
    mkdirSync(join(dir, '.releng/repos-production/x'), { recursive: true });
    symlinkSync('repos-production/x', join(dir, '.releng/compose-link'));
    fails('symlink', root('compose', '.releng/compose-link'), 'roots.compose', /inside roots.production/);
  });
  it('a root that escapes through ..', () => {
    fails('dotdot', root('staging', '.releng/../../elsewhere/staging'), 'roots.staging', /\.\./);
    fails('dotdot-abs', root('production', '/mnt/compose/../repos-production'), 'roots.production', /\.\./);
  });
  it('a category that is absolute or climbs out with ..', () => {
    fails('category', goodSite.replace('category: mirror/pub/rocky', 'category: ../../x'), 'category', /relative path without \.\./);
    fails('category-abs', goodSite.replace('category: mirror/pub/rocky', 'category: /srv/x'), 'category', /relative path without \.\./);
  });
  it('allows what real sites do: the store and the cloud images under the compose root, the fixture key under the fixture', () => {
    expect(site('fleet', goodSite.replace('path: .releng/store', 'path: .releng/compose/.store').replace('path: .releng/upstream/images', 'path: .releng/compose/.cloud-images'))().store).toMatchObject({ path: join(dir, '.releng/compose/.store') });
    expect(loadSite(ws, 'rocky-prod').store).toMatchObject({ path: '/mnt/compose/.store' });
  });
});

describe('choosing the site', () => {
  const host = mkdtempSync(join(tmpdir(), 'compose-host-'));
  afterAll(() => rmSync(host, { recursive: true, force: true }));

  it('refuses the local demo by default on a compose host, saying how to choose', () => {
    const probe = join(host, 'mnt-compose');
    mkdirSync(probe);
    expect(() => siteName({}, probe)).toThrow(`RELENG_SITE is not set, and this host has ${probe}: it looks like a compose host`);
    expect(() => siteName({ RELENG_SITE: '' }, probe)).toThrow(/Say which site to use: RELENG_SITE=rocky-prod \(sites\/rocky-prod\.yaml\), or RELENG_SITE=local for the embedded demo/);
    expect(siteName({ RELENG_SITE: 'local' }, probe)).toBe('local');
    expect(siteName({ RELENG_SITE: 'rocky-prod' }, probe)).toBe('rocky-prod');
  });

  it('is local by default anywhere else', () => {
    expect(siteName({}, join(host, 'absent'))).toBe('local');
  });
});

describe('validated files are kept (.nx/workspace-data/releng-config)', () => {
  const good = readFileSync(join(ws, 'releases/rocky-9/release.yaml'), 'utf8');
  const goodSite = readFileSync(join(ws, 'sites/local.yaml'), 'utf8');
  let dir: string;
  const kept = () => join(dir, '.nx/workspace-data/releng-config');
  const entries = () => readdirSync(kept()).sort();
  const envSite = process.env.RELENG_SITE;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cfg-kept-'));
    mkdirSync(join(dir, 'releases/r'), { recursive: true });
    mkdirSync(join(dir, 'sites'));
    writeFileSync(join(dir, 'releases/r/release.yaml'), good);
    writeFileSync(join(dir, 'sites/local.yaml'), goodSite);
    writeFileSync(join(dir, 'sites/other.yaml'), goodSite.replace(/^description: .*$/m, 'description: the other site'));
    process.env.RELENG_SITE = 'local';
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    if (envSite === undefined) delete process.env.RELENG_SITE;
    else process.env.RELENG_SITE = envSite;
  });
  /** The config as validated with nothing kept. */
  const fresh = () => {
    rmSync(kept(), { recursive: true, force: true });
    return { release: loadRelease(dir, 'r'), site: loadSite(dir) };
  };

  it('a kept file loads as its fresh validation does', () => {
    const first = fresh();
    expect(entries()).toHaveLength(2); // the release file and the site file
    expect({ release: loadRelease(dir, 'r'), site: loadSite(dir) }).toStrictEqual(first);
    expect(entries()).toHaveLength(2);
    expect(first.release).toMatchObject({ name: 'r', major: 9, fullname: 'Rocky Linux' });
  });

  it('a changed byte in the release file or the site file, or another RELENG_SITE, validates anew', () => {
    fresh();
    writeFileSync(join(dir, 'releases/r/release.yaml'), good.replace(/^minor: \d+$/m, 'minor: 42'));
    expect(loadRelease(dir, 'r').minor).toBe(42);
    writeFileSync(join(dir, 'sites/local.yaml'), `${goodSite}\n`);
    expect(loadSite(dir).description).toBe('Local, self-contained site for development and tests');
    process.env.RELENG_SITE = 'other';
    expect(loadSite(dir).description).toBe('the other site');
    expect(entries()).toHaveLength(5);
    expect({ release: loadRelease(dir, 'r'), site: loadSite(dir) }).toStrictEqual(fresh());
  });

  it('a bad file fails naming the file and the field after a good one was kept, and is not kept', () => {
    fresh();
    writeFileSync(join(dir, 'releases/r/release.yaml'), good.replace(/^minor: \d+$/m, 'minor: seven'));
    for (let i = 0; i < 2; i++) expect(() => loadRelease(dir, 'r')).toThrow(/releases\/r\/release\.yaml: invalid configuration\n {2}minor: expected number/);
    writeFileSync(join(dir, 'sites/local.yaml'), goodSite.replace('deletionLimit: 1000', 'deletionLimit: -1'));
    for (let i = 0; i < 2; i++) expect(() => loadSite(dir)).toThrow(/sites\/local\.yaml: invalid configuration\n {2}publish\.deletionLimit: expected a number >= 0/);
    expect(entries()).toHaveLength(2);
  });

  it('a damaged entry is ignored and replaced', () => {
    const first = fresh();
    for (const e of entries()) writeFileSync(join(kept(), e), '{"major": 9,');
    expect({ release: loadRelease(dir, 'r'), site: loadSite(dir) }).toStrictEqual(first);
    for (const e of entries()) expect(() => JSON.parse(readFileSync(join(kept(), e), 'utf8'))).not.toThrow();
  });
});

describe('a task process (the compiled build, as Nx runs it)', () => {
  // A workspace of libs/config alone: its compiled build is what a task process loads.
  const root = mkdtempSync(join(tmpdir(), 'cfg-build-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  beforeAll(() => {
    for (const f of ['package.json', 'tsconfig.base.json', 'tools/executors/build.js', 'libs/config/src', 'sites/local.yaml']) cpSync(join(ws, f), join(root, f), { recursive: true });
    mkdirSync(join(root, 'releases/r'), { recursive: true });
    // No fullname: it comes from the schema's default, changed below.
    writeFileSync(join(root, 'releases/r/release.yaml'), readFileSync(join(ws, 'releases/rocky-9/release.yaml'), 'utf8').replace(/^fullname: .*\n/m, ''));
    symlinkSync(join(ws, 'node_modules'), join(root, 'node_modules'));
  });
  /** Loads the config in a new process as the executors do; says what it got and whether zod or yaml were loaded. */
  const load = () => {
    const script = `const { compiledBuild } = require('./tools/executors/build.js');
      const { loadRelease, loadSite } = require('./' + compiledBuild(process.cwd()) + '/libs/config/src/index.js');
      const release = loadRelease(process.cwd(), 'r'), site = loadSite(process.cwd());
      const parsers = Object.keys(require.cache).filter((m) => /node_modules\\/(zod|yaml)\\//.test(m)).length;
      console.log(JSON.stringify({ fullname: release.fullname, repos: release.repos.length, roots: site.roots, parsers }));`;
    const r = spawnSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8', env: { ...process.env, RELENG_SITE: 'local' } });
    expect(r.status, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as { fullname: string; repos: number; roots: Record<string, string>; parsers: number };
  };

  it('loads neither zod nor yaml once its files were validated, and validates anew when the config code changes', () => {
    const first = load();
    expect(first.parsers).toBeGreaterThan(0);
    const hit = load();
    expect(hit).toStrictEqual({ ...first, parsers: 0 });
    const schema = join(root, 'libs/config/src/schema.ts');
    writeFileSync(schema, readFileSync(schema, 'utf8').replace("default('Rocky Linux')", "default('Rocky Linux, rebuilt')"));
    expect(load()).toStrictEqual({ ...first, fullname: 'Rocky Linux, rebuilt' });
    expect(load()).toStrictEqual({ ...first, fullname: 'Rocky Linux, rebuilt', parsers: 0 });
  });
});
