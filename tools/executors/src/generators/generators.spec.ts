// The release generators on Nx's virtual tree, from the real release files: what they write
// loads with the release schema, and a bad request is refused before anything is written.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTreeWithEmptyWorkspace } from '@nx/devkit/testing';
import type { Tree } from '@nx/devkit';
import { parse } from 'yaml';
import { schemas } from '@rocky/config';
import releaseGenerator from './release/generator';
import bumpGenerator from './bump/generator';

const root = join(__dirname, '../../../..');
const withReleases = (...names: string[]): Tree => {
  const tree = createTreeWithEmptyWorkspace();
  for (const n of names) tree.write(`releases/${n}/release.yaml`, readFileSync(join(root, 'releases', n, 'release.yaml'), 'utf8'));
  return tree;
};
const read = (tree: Tree, name: string) => tree.read(`releases/${name}/release.yaml`, 'utf-8')!;

describe('release generator', () => {
  it('makes rocky-10 from rocky-9: major, minor, profile, project and key files follow, RC restarts, the rest is copied', async () => {
    const tree = withReleases('rocky-9');
    await releaseGenerator(tree, { name: 'rocky-10', from: 'rocky-9', major: 10, minor: 0 });
    const text = read(tree, 'rocky-10');
    const r = schemas().releaseSchema.parse(parse(text));
    const src = schemas().releaseSchema.parse(parse(read(tree, 'rocky-9')));
    expect(r).toMatchObject({ major: 10, minor: 0, profile: '10', project: 'rocky-10', rc: 'RC1', type: 'stable' });
    expect(r.extraFiles.files).toContain('RPM-GPG-KEY-Rocky-10');
    expect(r.extraFiles.files).not.toContain('RPM-GPG-KEY-Rocky-9');
    expect(r.repos).toEqual(src.repos);
    expect(r.arches).toEqual(src.arches);
    expect(text).toMatch(/^# rocky-10: made by `nx g @rocky\/executors:release rocky-10 --from=rocky-9 --major=10 --minor=0`/);
    expect(text).not.toContain("Rocky Linux 9, stable");
    expect(text).toContain("# `all` is served upstream and renamed `devel`"); // rocky-9's comments are kept
  });

  it('names the beta profile after the new major', async () => {
    const tree = withReleases('rocky-9-beta');
    await releaseGenerator(tree, { name: 'rocky-10-beta', from: 'rocky-9-beta', major: 10, minor: 1 });
    expect(schemas().releaseSchema.parse(parse(read(tree, 'rocky-10-beta')))).toMatchObject({ major: 10, minor: 1, profile: '10-beta', rc: 'BETA1' });
  });

  it('refuses an existing release, a missing source and a bad version, writing nothing', async () => {
    const tree = withReleases('rocky-9', 'rocky-8');
    await expect(releaseGenerator(tree, { name: 'rocky-8', from: 'rocky-9', major: 10, minor: 0 })).rejects.toThrow(/releases\/rocky-8\/release.yaml already exists/);
    await expect(releaseGenerator(tree, { name: 'rocky-11', from: 'rocky-7', major: 11, minor: 0 })).rejects.toThrow(/releases\/rocky-7\/release.yaml does not exist/);
    await expect(releaseGenerator(tree, { name: 'rocky-11', from: 'rocky-9', major: 11, minor: -1 })).rejects.toThrow(/--minor: expected a whole number/);
    expect(tree.exists('releases/rocky-11/release.yaml')).toBe(false);
  });

  it('validates with the config schema before writing: an invalid result names the file and field, and nothing is written', async () => {
    const tree = withReleases('rocky-9');
    // A source that already lists the next major's key: renamed, the list would name it twice.
    tree.write('releases/rocky-9/release.yaml', read(tree, 'rocky-9').replace('RPM-GPG-KEY-Rocky-9-Testing]', 'RPM-GPG-KEY-Rocky-9-Testing, RPM-GPG-KEY-Rocky-10]'));
    await expect(releaseGenerator(tree, { name: 'rocky-10', from: 'rocky-9', major: 10, minor: 0 })).rejects.toThrow(
      /^releases\/rocky-10\/release.yaml: invalid configuration\n {2}extraFiles\.files\[6\]: RPM-GPG-KEY-Rocky-10 is listed twice \(first at index 4\)$/,
    );
    expect(tree.exists('releases/rocky-10/release.yaml')).toBe(false);
  });

  it('refuses an invalid source file, naming it and the field', async () => {
    const tree = withReleases('rocky-9');
    tree.write('releases/rocky-9/release.yaml', read(tree, 'rocky-9').replace('- { name: AppStream, closure: [BaseOS] }', '- { name: AppStream, closure: [Base] }'));
    await expect(releaseGenerator(tree, { name: 'rocky-10', from: 'rocky-9', major: 10, minor: 0 })).rejects.toThrow(/releases\/rocky-9\/release.yaml: invalid configuration\n {2}repos\[2\]\.closure\[0\]: unknown repo Base/);
    expect(tree.exists('releases/rocky-10/release.yaml')).toBe(false);
  });
});

describe('bump generator', () => {
  it('moves rocky-9 to 9.8: RC back to RC1, nothing else changes', async () => {
    const tree = withReleases('rocky-9');
    const before = read(tree, 'rocky-9');
    await bumpGenerator(tree, { name: 'rocky-9', minor: 8 });
    const after = read(tree, 'rocky-9');
    expect(schemas().releaseSchema.parse(parse(after))).toMatchObject({ major: 9, minor: 8, rc: 'RC1' });
    expect(after.replace('minor: 8', 'minor: 7').replace('rc: RC1', 'rc: RC2')).toBe(before); // comments and layout kept
  });

  it('drops a declared media respin (the next compose is a full one) and defaults to the next minor', async () => {
    const tree = withReleases('rocky-9');
    tree.write('releases/rocky-9/release.yaml', read(tree, 'rocky-9').replace('iso:\n', 'iso:\n  respin: 2\n'));
    await bumpGenerator(tree, { name: 'rocky-9' });
    const r = schemas().releaseSchema.parse(parse(read(tree, 'rocky-9')));
    expect(r.minor).toBe(8);
    expect(r.iso?.respin).toBeUndefined();
  });

  it('refuses to go backwards or stand still', async () => {
    const tree = withReleases('rocky-9');
    await expect(bumpGenerator(tree, { name: 'rocky-9', minor: 7 })).rejects.toThrow(/--minor=7: rocky-9 is at minor 7 already/);
    expect(read(tree, 'rocky-9')).toContain('minor: 7');
  });
});
