// Issue 7: the same graph on a fleet. Three separate clones of the workspace — an x86_64 runner,
// an aarch64 runner and a coordinator — share only the Nx cache server on loopback and a
// shared-filesystem artifact store (as Rocky's compose hosts share an NFS mount).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync, readdirSync, statSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { spawn, type ChildProcess } from 'node:child_process';
import { tempWorkspace, repoRoot, type TempWorkspace } from '../helpers/workspace';
import { sharedFixture } from '../helpers/fixture';

describe('per-arch runners sharing a remote cache and an artifact store', () => {
  let dir: string;
  let server: { url: string; child: ChildProcess };
  let runners: TempWorkspace[];
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rocky-fleet-'));
    // The cache server runs as it is deployed: its own process (nx is run synchronously here).
    writeFileSync(join(dir, 'cache.yaml'), `port: 0\nhost: 127.0.0.1\nstorage: ${join(dir, 'cache')}\nmaxSize: 2GB\ntokens: { readWrite: [rw-secret-0123456789], readOnly: [ro-secret-0123456789] }\n`);
    const child = spawn(process.execPath, ['-r', '@swc-node/register', 'apps/cache-server/src/main.ts', '--config', join(dir, 'cache.yaml')], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
    const url = await new Promise<string>((ok, fail) => {
      let buf = '';
      child.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        const m = /"event":"listening".*?"url":"([^"]+)"/.exec(buf);
        if (m) ok(m[1]);
      });
      child.once('exit', (c) => fail(new Error(`cache server exited ${c}`)));
    });
    child.stdout!.resume();
    server = { url, child };
    // One site file, identical on every runner (it is part of every hash): the store is the shared path.
    const site = readFileSync(join(repoRoot, 'sites/local.yaml'), 'utf8').replace('store: { type: local, path: .releng/store }', `store: { type: shared-fs, path: ${join(dir, 'shared-store')} }`);
    const fixture = await sharedFixture();
    runners = [0, 1, 2].map(() => {
      const ws = tempWorkspace({ fixtureFrom: fixture });
      writeFileSync(join(ws.dir, 'sites/fleet.yaml'), site);
      return ws;
    });
  });
  afterAll(async () => {
    server?.child.kill('SIGTERM');
    runners?.forEach((r) => r.cleanup());
    rmSync(dir, { recursive: true, force: true });
  });

  const env = (token = 'rw-secret-0123456789') => ({ RELENG_SITE: 'fleet', NX_SELF_HOSTED_REMOTE_CACHE_SERVER: server.url, NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN: token });
  const status = (ws: TempWorkspace) => Object.fromEntries(ws.runJson().tasks.map((t) => [t.taskId, t.cacheStatus]));

  it('runner 1 builds x86_64, runner 2 aarch64, the coordinator finalizes from remote cache hits', () => {
    const [x86, arm, coord] = runners;
    x86.nx(['run', 'rocky-9:iso-x86_64', '--outputStyle=static'], env());
    expect(status(x86)).toEqual({ 'rocky-9:sync': 'cache-miss', 'rocky-9:iso-x86_64': 'cache-miss' });

    arm.nx(['run', 'rocky-9:iso-aarch64', '--outputStyle=static'], env());
    // sync comes from the remote cache (manifests only); the aarch64 trees come from the store.
    expect(status(arm)).toEqual({ 'rocky-9:sync': 'remote-cache-hit', 'rocky-9:iso-aarch64': 'cache-miss' });

    coord.nx(['run', 'rocky-9:finalize', '--outputStyle=static'], env());
    const st = status(coord);
    expect(st['rocky-9:iso-x86_64']).toBe('remote-cache-hit');
    expect(st['rocky-9:iso-aarch64']).toBe('remote-cache-hit');
    expect(st['rocky-9:sync']).toBe('remote-cache-hit');
    expect(st['rocky-9:finalize']).toBe('cache-miss');

    // The coordinator's compose has both ISOs with verified checksums.
    // sync ran elsewhere (no latest link here): the restored compose.json names the compose.
    const ref = JSON.parse(readFileSync(join(coord.dir, 'dist/rocky-9/sync/compose.json'), 'utf8'));
    const compose = join(coord.dir, '.releng/compose', ref.dir, 'compose');
    expect(readFileSync(join(coord.dir, '.releng/compose', ref.dir, 'STATUS'), 'utf8').trim()).toBe('FINISHED');
    for (const arch of ['x86_64', 'aarch64']) {
      execFileSync('sha256sum', ['-c', '--strict', 'CHECKSUM'], { cwd: join(compose, 'isos', arch), stdio: 'pipe' });
      expect(readdirSync(join(compose, 'isos', arch))).toContain(`Rocky-9.7-${arch}-boot.iso`);
    }
    // No remote cache entry is bigger than 1 MiB: ISOs never travel through Nx.
    const entries = readdirSync(join(dir, 'cache'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    expect(entries.length).toBeGreaterThan(0);
    for (const e of entries) expect(statSync(join(e.parentPath, e.name)).size, e.name).toBeLessThan(1 << 20);
  });

  it('a read-only token (pull request) still runs, and writes nothing to the cache', () => {
    const before = readdirSync(join(dir, 'cache'), { recursive: true }).length;
    const pr = runners[0];
    pr.nx(['reset']);
    // A pull request's change: cloud misses the cache, so it runs and has a result to upload.
    const releaseFile = join(pr.dir, 'releases/rocky-9/release.yaml');
    writeFileSync(releaseFile, `${readFileSync(releaseFile, 'utf8')}# pull request\n`);
    const r = pr.nxResult(['run', 'rocky-9:cloud', '--outputStyle=static'], env('ro-secret-0123456789'));
    expect(r.code, r.output).toBe(0);
    expect(status(pr)['rocky-9:cloud']).toBe('cache-miss');
    expect(readdirSync(join(dir, 'cache'), { recursive: true }).length).toBe(before);
  });

  it('a wrong token fails with a clear error', () => {
    const r = runners[1].nxResult(['run', 'rocky-9:cloud', '--outputStyle=static'], env('wrong-token-0123456789'));
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/Unauthorized|bad token/i);
  });
});
