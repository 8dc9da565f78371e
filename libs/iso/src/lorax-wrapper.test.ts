// The lorax builder behind a container wrapper: "{mounts}" becomes the bind mounts lorax needs
// (the compose read-only, its work dir writable, at the same paths), and a container run that
// would not see them is refused before anything runs.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRelease, type Release } from '@rocky/config';
import { buildBootTree } from './boot-tree';
import { loraxArgv, wrapperArgv, wrapperMountProblem } from './lorax';

const IMAGE = 'ghcr.io/rocky-linux/sig-core-toolkit:latest';
let tmp: string;
let rel: Release;
let compose: string;
let repos: { name: string; path: string }[];

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'lorax-wrapper-'));
  rel = loadRelease(resolve(__dirname, '../../..'), 'rocky-9');
  compose = join(tmp, 'compose');
  repos = ['BaseOS', 'AppStream'].map((name) => ({ name, path: join(compose, '9/Rocky-9.7-20251120.0/compose', name, 'x86_64/os') }));
  for (const r of repos) {
    mkdirSync(join(r.path, 'repodata'), { recursive: true });
    writeFileSync(join(r.path, 'repodata/repomd.xml'), '<repomd/>');
  }
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('a container wrapper', () => {
  const mounts = { readOnly: ['/mnt/compose'], readWrite: ['/var/lib/releng/tmp/iso-rocky-9-x86_64@h.1'] };

  it('gets "{mounts}" replaced by same-path bind mounts, the compose read-only', () => {
    expect(wrapperArgv(['podman', 'run', '--rm', '--privileged', '{mounts}', IMAGE], mounts)).toEqual([
      'podman', 'run', '--rm', '--privileged',
      '-v', '/mnt/compose:/mnt/compose:ro',
      '-v', '/var/lib/releng/tmp/iso-rocky-9-x86_64@h.1:/var/lib/releng/tmp/iso-rocky-9-x86_64@h.1',
      IMAGE,
    ]);
    expect(wrapperArgv(['mock', '-r', 'rocky-9-x86_64', '--'], mounts)).toEqual(['mock', '-r', 'rocky-9-x86_64', '--']);
  });

  it('without mounts is a problem naming what lorax would not see; mock, sudo and volumes that cover both are not', () => {
    expect(wrapperMountProblem(['podman', 'run', '--rm', '--privileged', IMAGE], mounts)).toBe(
      `podman runs lorax in a container that does not see /mnt/compose (its sources) nor ${mounts.readWrite[0]} (its output, writable): put "{mounts}" in the wrapper before the image (it becomes -v <path>:<path>:ro for the compose and -v <path>:<path> for lorax's work dir)`,
    );
    expect(wrapperMountProblem(['/usr/bin/docker', 'run', '-v', '/mnt/compose:/mnt/compose:ro', IMAGE], mounts)).toMatch(/^docker runs lorax in a container that does not see \/var\/lib\/releng\/tmp\/\S+ \(its output, writable\)/);
    // Mounted, but at another path inside: lorax's argv names the host's paths.
    expect(wrapperMountProblem(['podman', 'run', '-v', '/mnt/compose:/compose:ro', '-v', '/var/lib/releng:/var/lib/releng', IMAGE], mounts)).toMatch(/does not see \/mnt\/compose \(its sources\): put/);
    expect(wrapperMountProblem(['podman', 'run', '-v', '/mnt/compose:/mnt/compose:ro', '--volume=/var/lib/releng:/var/lib/releng:z', IMAGE], mounts)).toBeUndefined();
    expect(wrapperMountProblem(['podman', 'run', '{mounts}', IMAGE], mounts)).toBeUndefined();
    expect(wrapperMountProblem(['mock', '-r', 'rocky-9-x86_64', '--'], mounts)).toBeUndefined();
    expect(wrapperMountProblem(['sudo', '-n'], mounts)).toBeUndefined();
    expect(wrapperMountProblem([], mounts)).toBeUndefined();
  });
});

describe('buildBootTree with a lorax builder in a container', () => {
  it('refuses a container wrapper without mounts before running anything', async () => {
    const work = join(tmp, 'refused-work');
    const err = (await buildBootTree({
      release: rel,
      arch: 'x86_64',
      repos,
      builder: { type: 'lorax', wrapper: [join(tmp, 'bin/podman'), 'run', '--rm', '--privileged', IMAGE], mustBoot: true },
      outDir: join(tmp, 'refused-out'),
      workDir: work,
      composeRoot: compose,
      buildTimestamp: 1763596800,
    }).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(new RegExp(`^x86_64: lorax builder: builders\\.x86_64\\.wrapper: podman runs lorax in a container that does not see ${compose} \\(its sources\\) nor ${work} \\(its output, writable\\)`));
    expect(existsSync(work)).toBe(false);
  });

  it('passes the compose and the work dir to the container at the same paths', async () => {
    // A podman that records its argv and fails (no image here): the command line is what matters.
    const bin = join(tmp, 'bin');
    mkdirSync(bin, { recursive: true });
    const podman = join(bin, 'podman');
    writeFileSync(podman, `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done > "${join(tmp, 'podman.argv')}"\necho "Error: ${IMAGE}: image not known" >&2\nexit 125\n`);
    chmodSync(podman, 0o755);
    const work = join(tmp, 'work');
    const err = (await buildBootTree({
      release: rel,
      arch: 'x86_64',
      repos,
      builder: { type: 'lorax', wrapper: [podman, 'run', '--rm', '--privileged', '{mounts}', IMAGE], mustBoot: true },
      outDir: join(tmp, 'out'),
      workDir: work,
      composeRoot: compose,
      buildTimestamp: 1763596800,
    }).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/^x86_64: lorax failed: \S+\/podman exited 125/);
    const argv = readFileSync(join(tmp, 'podman.argv'), 'utf8').trimEnd().split('\n');
    expect(argv).toEqual([
      'run', '--rm', '--privileged',
      '-v', `${compose}:${compose}:ro`,
      '-v', `${work}:${work}`,
      IMAGE,
      ...loraxArgv(rel, 'x86_64', repos.map((r) => `file://${r.path}`), join(work, 'lorax'), join(work, 'lorax-x86_64.log')),
    ]);
  });
});
