// Issue 18.12, across releases: two releases that would write one compose link or one publish
// directory, and a release directory Nx does not see, fail before any stage runs.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { cpSync, mkdtempSync, mkdirSync, writeFileSync, rmSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkReleases, ConfigError } from './load';
import { tempWorkspace } from '../../../test/helpers/workspace';

const ws = join(__dirname, '../../..');
const rocky9 = readFileSync(join(ws, 'releases/rocky-9/release.yaml'), 'utf8');
const beta = readFileSync(join(ws, 'releases/rocky-9-beta/release.yaml'), 'utf8');
const cloud = readFileSync(join(ws, 'releases/sig-cloud-9/release.yaml'), 'utf8');

describe('checkReleases', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cfg-releases-'));
    cpSync(join(ws, 'releases'), join(dir, 'releases'), { recursive: true });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const add = (name: string, text: string) => {
    mkdirSync(join(dir, 'releases', name));
    writeFileSync(join(dir, 'releases', name, 'release.yaml'), text);
  };
  const fails = (file: string, path: string, what: RegExp) => {
    let err: unknown;
    try {
      checkReleases(dir);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const ce = err as ConfigError;
    expect(ce.file).toBe(file);
    expect(ce.issues.find((i) => i.path === path && what.test(i.message)), `issues: ${JSON.stringify(ce.issues)}`).toBeDefined();
  };

  it("accepts the workspace's releases", () => expect(() => checkReleases(ws)).not.toThrow());

  it('refuses two releases that would move one latest link', () => {
    // Another 9.x stable: its own directories, but latest-Rocky-9 (and latest-9, 9) are rocky-9's.
    add('rocky-9-6', rocky9.replace('minor: 7', 'minor: 6'));
    fails('releases/rocky-9-6/release.yaml', 'profile', /<compose>\/9\/latest-Rocky-9 .* also written by releases\/rocky-9\/release.yaml/);
    fails('releases/rocky-9-6/release.yaml', 'major', /<staging>\/<category>\/latest-9 .* also written by releases\/rocky-9\/release.yaml/);
  });

  it('refuses two releases that would publish into one directory', () => {
    add('rocky-9-copy', rocky9.replace('profile: "9"', 'profile: 9-copy'));
    fails('releases/rocky-9-copy/release.yaml', 'minor', /<staging>\/<category>\/9\.7-RC2 .* also written by releases\/rocky-9\/release.yaml/);
    fails('releases/rocky-9-copy/release.yaml', 'minor', /<production>\/<category>\/9\.7 .* also written by releases\/rocky-9\/release.yaml/);
  });

  it('refuses a beta that would publish into the beta of another release', () => {
    add('rocky-9-beta2', beta.replace('profile: 9-beta', 'profile: 9-beta2').replace('rc: BETA1', 'rc: BETA2'));
    fails('releases/rocky-9-beta2/release.yaml', 'minor', /<staging>\/<category>\/9\.8-beta .* also written by releases\/rocky-9-beta\/release.yaml/);
  });

  it('refuses two SIG releases of one SIG and major, and takes the same SIG for another major', () => {
    add('sig-cloud-9-copy', cloud.replace('project: 15016370', 'project: 25016370'));
    fails('releases/sig-cloud-9-copy/release.yaml', 'sig.name', /<compose>\/9\/latest-SIG-cloud-9 \(from major and sig.name\) is also written by releases\/sig-cloud-9\/release.yaml/);
    fails('releases/sig-cloud-9-copy/release.yaml', 'sig.name', /<staging>\/<sigCategory>\/9\/cloud .* also written by releases\/sig-cloud-9\/release.yaml/);
    fails('releases/sig-cloud-9-copy/release.yaml', 'sig.name', /<production>\/<sigCategory>\/9\/cloud .* also written by releases\/sig-cloud-9\/release.yaml/);
    rmSync(join(dir, 'releases/sig-cloud-9-copy'), { recursive: true });
    add('sig-cloud-8', cloud.replace('major: 9', 'major: 8'));
    expect(() => checkReleases(dir)).not.toThrow();
  });

  it('refuses a symlinked release directory, which Nx would silently not see', () => {
    mkdirSync(join(dir, 'elsewhere/rocky-10'), { recursive: true });
    writeFileSync(join(dir, 'elsewhere/rocky-10/release.yaml'), rocky9.replace('major: 9', 'major: 10').replace('profile: "9"', 'profile: "10"'));
    symlinkSync('../elsewhere/rocky-10', join(dir, 'releases/rocky-10'));
    fails('releases/rocky-10', '', /a symlink .*Nx.* does not follow it/);
  });

  it('names the file of a release that does not load', () => {
    add('broken', rocky9.replace('minor: 7', 'minor: seven'));
    fails('releases/broken/release.yaml', 'minor', /expected number/);
  });
});

describe('through nx', () => {
  it('nx show projects fails naming both releases and the field, and names a symlinked release', () => {
    const t = tempWorkspace();
    try {
      mkdirSync(join(t.dir, 'releases/rocky-9-copy'));
      writeFileSync(join(t.dir, 'releases/rocky-9-copy/release.yaml'), rocky9.replace('profile: "9"', 'profile: 9-copy'));
      let r = t.nxResult(['show', 'projects']);
      expect(r.code, r.output).not.toBe(0);
      expect(r.output).toContain('releases/rocky-9-copy/release.yaml: invalid configuration');
      expect(r.output).toMatch(/  minor: <staging>\/<category>\/9\.7-RC2 \(from major, minor, type and rc\) is also written by releases\/rocky-9\/release.yaml/);

      rmSync(join(t.dir, 'releases/rocky-9-copy'), { recursive: true });
      symlinkSync('rocky-9', join(t.dir, 'releases/rocky-9-alias'));
      r = t.nxResult(['show', 'projects']);
      expect(r.code, r.output).not.toBe(0);
      expect(r.output).toMatch(/releases\/rocky-9-alias: invalid configuration\n\s+\(top level\): a symlink \(to rocky-9\)/);
    } finally {
      t.cleanup();
    }
  });
});
