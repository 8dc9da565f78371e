// Issues 3–5 end to end: `nx run rocky-9:finalize` in a temporary copy of the workspace on the
// local site (fixture upstream served on demand), then again with nothing changed (all cache
// hits), then with one aarch64 package changed upstream (only aarch64 work reruns).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, readFileSync, readlinkSync, readdirSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { updatePackage } from '@rocky/upstream-fixture';
import { tempWorkspace, type TempWorkspace } from '../helpers/workspace';
import { sharedFixture } from '../helpers/fixture';

const statusOf = (ws: TempWorkspace) => Object.fromEntries(ws.runJson().tasks.map((t) => [t.taskId, t.cacheStatus]));

describe('nx run rocky-9:finalize on the local site', () => {
  let ws: TempWorkspace;
  const times: Record<string, number> = {};
  beforeAll(async () => {
    ws = tempWorkspace({ fixtureFrom: await sharedFixture() });
  });
  afterAll(() => {
    console.log(`pipeline times (s): ${JSON.stringify(times)}`);
    ws.cleanup();
  });

  it('runs the whole pipeline green and produces a finished, verifiable compose', () => {
    const t0 = Date.now();
    ws.nx(['run', 'rocky-9:finalize', '--outputStyle=static']);
    times.cold = (Date.now() - t0) / 1000;
    const st = statusOf(ws);
    expect(Object.keys(st).sort()).toEqual(
      ['rocky-9:cloud', 'rocky-9:finalize', 'rocky-9:iso-aarch64', 'rocky-9:iso-extra', 'rocky-9:iso-ppc64le', 'rocky-9:iso-s390x', 'rocky-9:iso-x86_64', 'rocky-9:sync'].sort(),
    );
    const latest = join(ws.dir, '.releng/compose/9/latest-Rocky-9');
    const compose = join(readlinkSync(latest), 'compose');
    expect(readFileSync(join(readlinkSync(latest), 'STATUS'), 'utf8').trim()).toMatch(/^FINISHED/);
    for (const arch of ['x86_64', 'aarch64', 'ppc64le', 's390x']) {
      const dir = join(compose, 'isos', arch);
      const names = readdirSync(dir);
      expect(names).toContain(`Rocky-9.7-${arch}-boot.iso`);
      expect(names).toContain(`Rocky-9.7-${arch}-dvd.iso`);
      expect(lstatSync(join(dir, `Rocky-9-latest-${arch}-dvd.iso`)).isSymbolicLink()).toBe(true);
      // coreutils accepts our CHECKSUM (BSD tag lines), aliases included
      execFileSync('sha256sum', ['-c', '--strict', 'CHECKSUM'], { cwd: dir, stdio: 'pipe' });
      execFileSync('gpg', ['--homedir', join(ws.dir, '.releng/upstream/gnupg'), '--batch', '--verify', 'CHECKSUM.asc'], { cwd: dir, stdio: 'pipe' });
    }
    for (const f of ['COMPOSE_ID', 'composeinfo.json', 'images.json', 'rpms.json', 'upstream.json']) expect(existsSync(join(compose, 'metadata', f)), f).toBe(true);
    // Nx cache entries stay small: manifests, never ISOs.
    const du = execFileSync('du', ['-sb', join(ws.dir, '.nx/cache')], { encoding: 'utf8' });
    expect(Number(du.split('\t')[0])).toBeLessThan(8 << 20);
  });

  it('a second run with nothing changed is all cache hits', () => {
    const t0 = Date.now();
    ws.nx(['run', 'rocky-9:finalize', '--outputStyle=static']);
    times.warm = (Date.now() - t0) / 1000;
    for (const [task, status] of Object.entries(statusOf(ws))) expect(status, task).toMatch(/cache-hit$/);
  });

  it('one package changed upstream in aarch64 BaseOS reruns only the aarch64 work', async () => {
    await updatePackage({ root: join(ws.dir, '.releng/upstream'), project: 'rocky-9', repo: 'BaseOS', arch: 'aarch64', name: 'bash' });
    const t0 = Date.now();
    ws.nx(['run', 'rocky-9:finalize', '--outputStyle=static']);
    times.incremental = (Date.now() - t0) / 1000;
    const st = statusOf(ws);
    expect(st['rocky-9:sync']).toBe('cache-miss');
    expect(st['rocky-9:iso-aarch64']).toBe('cache-miss');
    for (const a of ['x86_64', 'ppc64le', 's390x']) expect(st[`rocky-9:iso-${a}`], a).toMatch(/cache-hit$/);
    expect(st['rocky-9:finalize']).toBe('cache-miss');
  });
});
