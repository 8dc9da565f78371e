import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRelease, loadSite, listReleases, ConfigError } from './load';
import { repoTrees } from './layout';

const ws = join(__dirname, '../../..');

describe('the workspace release and site files', () => {
  it('all load and follow Rocky', () => {
    expect(listReleases(ws)).toEqual(['rocky-8', 'rocky-9', 'rocky-9-beta', 'rocky-9-lookahead']);
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

  const release = (name: string, text: string) => {
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

  it('an unknown key (misspelt)', () =>
    fails(release('typo', good.replace('composeType: full', 'composType: full')), 'releases/typo/release.yaml', '', /unknown key "composType"/));
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
});
