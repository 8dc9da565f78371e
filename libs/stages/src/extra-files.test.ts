// The release's extra files out of its noarch packages: finalize asks once per arch, and the
// same packages are read once.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRelease, type Arch } from '@rocky/config';
import { Store } from '@rocky/store';
import { sharedFixture } from '../../../test/helpers/fixture';
import { repoRoot } from '../../../test/helpers/workspace';
import { releaseExtraFiles } from './extra-files';
import type { ArchManifest } from './manifests';

let dir: string;
let fixture: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rocky-extra-'));
  fixture = await sharedFixture();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('releaseExtraFiles', () => {
  it('reads each package once for every arch whose tree holds the same bytes, with the same files for each', async () => {
    const rel = loadRelease(repoRoot, 'rocky-9');
    const store = new Store(join(dir, 'store'));
    const tree = (arch: Arch) => join(fixture, 'v1/projects/rocky-9/repo/hashed-BaseOS', arch);
    // The packages' bytes go into a store of the test's (read, so that the shared fixture's files are left as they are).
    const manifest = async (arch: Arch): Promise<ArchManifest> => {
      const packages = [];
      for (const name of rel.extraFiles.packages) {
        const path = `Packages/r/${name}-9.7-1.el9.noarch.rpm`;
        packages.push({ name, arch: 'noarch', epoch: '0', version: '9.7', release: '1.el9', path, sigkey: null, ...(await store.putStream(Readable.from([readFileSync(join(tree(arch), path))]), { what: path })) });
      }
      return { release: {} as ArchManifest['release'], trees: [{ id: `BaseOS-${arch}-os`, repo: 'BaseOS', dir: 'BaseOS', kind: 'os', arch, path: `BaseOS/${arch}/os`, repodata: [], packages }] };
    };
    const log = join(dir, 'extra-files.log');
    const arches: Arch[] = ['x86_64', 'aarch64', 'ppc64le', 's390x'];
    const files = [];
    for (const arch of arches) files.push(await releaseExtraFiles(rel, await manifest(arch), arch, store, log));
    // The fixture's noarch packages are the same bytes in every arch's tree: two packages, two runs.
    expect(readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('$ rpm2cpio'))).toHaveLength(rel.extraFiles.packages.length);
    expect(files[0].map((f) => f.name)).toEqual(rel.extraFiles.files);
    for (const f of files.slice(1)) expect(f).toEqual(files[0]);
    for (const f of files[0]) expect(await store.has(f.sha256)).toBe(true);

    // Another process (another Store of the same directory: iso-extra, then finalize) takes them
    // from the store, running no rpm2cpio; one whose bytes the store lost reads them again.
    const runs = () => readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('$ rpm2cpio')).length;
    const again = new Store(join(dir, 'store'));
    expect(await releaseExtraFiles(rel, await manifest('aarch64'), 'aarch64', again, log)).toEqual(files[0]);
    expect(runs()).toBe(rel.extraFiles.packages.length);
    rmSync(again.pathOf(files[0][1].sha256));
    const third = new Store(join(dir, 'store'));
    expect(await releaseExtraFiles(rel, await manifest('aarch64'), 'aarch64', third, log)).toEqual(files[0]);
    expect(runs()).toBe(2 * rel.extraFiles.packages.length);
    expect(await third.has(files[0][1].sha256)).toBe(true);
  });
});
