// Issue 3: faults during sync. Each case uses a fresh store, so packages must really be fetched.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, readFileSync, readlinkSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { ComposeLayout, composeRoot } from '@rocky/config';
import { sha256File } from '@rocky/exec';
import { readSyncManifest, readComposeRef } from '@rocky/stages';
import { injectHref, updatePackage, writeBrokenRepo } from '@rocky/upstream-fixture';
import { privateFixture, testSite, rpmGets } from '../helpers/fixture';
import { repoRoot } from '../helpers/workspace';

const REL = 'rocky-8';
let fx: { root: string; cleanup(): void };
beforeAll(async () => {
  fx = await privateFixture();
});
afterAll(() => fx.cleanup());

/** A package of rocky-8 x86_64 BaseOS as served: its URL path. */
function somePackage(): string {
  const dir = join(fx.root, 'v1/projects/rocky-8/repo/hashed-BaseOS/x86_64/Packages');
  const letter = readdirSync(dir)[0];
  return `/v1/projects/rocky-8/repo/hashed-BaseOS/x86_64/Packages/${letter}/${readdirSync(join(dir, letter))[0]}`;
}

describe('sync faults', () => {
  it('retries 500s and succeeds', async () => {
    const t = await testSite(fx.root);
    try {
      const pkg = somePackage();
      t.server.setFaults([{ match: pkg, kind: 'status500', times: 2 }]);
      t.server.clearRequests();
      await t.run('sync', REL);
      const hits = t.server.requests.filter((r) => r.path === pkg);
      expect(hits.map((r) => r.status)).toEqual([500, 500, 200]);
    } finally {
      await t.close();
    }
  });

  it('a persistent 404 fails naming the package and leaves latest untouched', async () => {
    const own = await privateFixture();
    const t = await testSite(own.root);
    try {
      await t.run('sync', REL);
      const latest = composeRoot(t.site, t.ctx(REL, 'sync').release).latest;
      const before = readlinkSync(latest);
      // Upstream moves on by one package, and that package is not there.
      const { newHref } = await updatePackage({ root: own.root, project: 'rocky-8', repo: 'BaseOS', arch: 'x86_64', name: 'bash' });
      t.server.setFaults([{ match: newHref, kind: 'status404' }]);
      const name = newHref.split('/').pop()!.replace(/[.+]/g, '\\$&');
      await expect(t.run('sync', REL)).rejects.toThrow(new RegExp(`${name}.*404`));
      expect(readlinkSync(latest)).toBe(before);
    } finally {
      await t.close();
      own.cleanup();
    }
  });

  it('a corrupted package body fails on its checksum and nothing lands under a final name', async () => {
    const t = await testSite(fx.root);
    try {
      const pkg = somePackage();
      t.server.setFaults([{ match: pkg, kind: 'corrupt' }]);
      await expect(t.run('sync', REL)).rejects.toThrow(/checksum mismatch/);
      const name = pkg.split('/').pop()!;
      const found: string[] = [];
      const walk = (d: string) => {
        for (const e of readdirSync(d, { withFileTypes: true })) e.isDirectory() ? walk(join(d, e.name)) : e.name === name && found.push(join(d, e.name));
      };
      walk(t.site.roots.compose);
      expect(found).toEqual([]);
      expect(existsSync(composeRoot(t.site, t.ctx(REL, 'sync').release).latest)).toBe(false);
    } finally {
      await t.close();
    }
  });

  it("a repoclosure failure fails the sync naming the package and dnf's log; nothing is recorded done", async () => {
    const own = await privateFixture();
    const t = await testSite(own.root);
    try {
      // plus (aarch64) gains a signed package that requires what nothing provides.
      await writeBrokenRepo(join(own.root, 'v1/projects/rocky-8/repo/hashed-plus/aarch64'));
      const ctx = t.ctx(REL, 'sync');
      const err = await t.run('sync', REL).then(
        () => new Error('the sync passed'),
        (e: Error) => e,
      );
      const m = /plus\/aarch64: broken-fixture-1\.0-1\.fixture\.noarch needs does-not-exist-fixture >= 1\.0 \(dnf's log: (\S+)\)/.exec(err.message);
      expect(err.message).toMatch(/^repoclosure failed \(latest link not moved/);
      expect(m, err.message).not.toBeNull();
      expect(readFileSync(m![1], 'utf8')).toContain('package: broken-fixture-1.0-1.fixture.noarch from plus');
      // Nothing recorded done: no latest link, no sync record, the compose DOOMED, no Nx outputs.
      expect(existsSync(composeRoot(t.site, ctx.release).latest)).toBe(false);
      const composes = readdirSync(join(t.site.roots.compose, '8')).filter((d) => d.startsWith('Rocky-'));
      expect(composes).toHaveLength(1);
      const layout = new ComposeLayout(join(t.site.roots.compose, '8', composes[0]), ctx.release);
      expect(existsSync(layout.syncRecord)).toBe(false);
      expect(readFileSync(layout.status, 'utf8')).toBe('DOOMED\n');
      expect(existsSync(join(ctx.root, 'dist', REL, 'sync'))).toBe(false);
    } finally {
      await t.close();
      own.cleanup();
    }
  });

  it('a malicious ../ href in upstream metadata is rejected', async () => {
    const own = await privateFixture();
    const t = await testSite(own.root);
    try {
      await injectHref({ root: own.root, project: 'rocky-8', repo: 'AppStream', arch: 'aarch64', href: '../../../../../../tmp/escaped.rpm' });
      await expect(t.run('sync', REL)).rejects.toThrow(/unsafe location href/);
      expect(existsSync('/tmp/escaped.rpm')).toBe(false);
    } finally {
      await t.close();
      own.cleanup();
    }
  });

  it('kill -9 mid-download, then a rerun resumes: finished packages are not fetched again, nothing partial is used', async () => {
    const t = await testSite(fx.root);
    try {
      const ctx = t.ctx(REL, 'sync');
      t.server.setFaults([{ match: /\.rpm$/, kind: 'slow', delayMs: 150 }]);
      const child = spawn(process.execPath, ['-r', '@swc-node/register', join(repoRoot, 'test/faults/run-stage.ts'), 'sync', JSON.stringify(ctx)], {
        cwd: repoRoot,
        env: { ...process.env, SWC_NODE_PROJECT: join(repoRoot, 'tsconfig.base.json') },
        stdio: 'ignore',
      });
      // Wait until some packages have been served, then kill it hard.
      while (rpmGets(t.server).filter((r) => r.status === 200).length < 15) {
        if (child.exitCode !== null) throw new Error(`the sync ended (exit ${child.exitCode}) before 15 packages were served`);
        await new Promise((r) => setTimeout(r, 50));
      }
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const servedBeforeKill = new Set(rpmGets(t.server).filter((r) => r.status === 200).map((r) => r.path));
      t.server.setFaults([]);
      t.server.clearRequests();
      await t.run('sync', REL);
      const refetched = rpmGets(t.server).filter((r) => servedBeforeKill.has(r.path));
      // Packages whose download completed before the kill are in the store: at most the few
      // in flight at the moment of the kill are fetched again.
      expect(refetched.length).toBeLessThanOrEqual(t.site.concurrency.downloads);
      expect(rpmGets(t.server).length).toBeGreaterThan(0);
      // Every package in the compose matches its manifest checksum.
      const ref = readComposeRef(ctx.root, REL);
      for (const arch of ['x86_64', 'aarch64'] as const) {
        for (const tree of readSyncManifest(ctx.root, REL, arch).trees.filter((x) => x.kind === 'os')) {
          for (const p of tree.packages) {
            expect(await sha256File(join(t.site.roots.compose, ref.dir, 'compose', tree.path, p.path))).toBe(p.sha256);
          }
        }
      }
    } finally {
      await t.close();
    }
  });

  it('two syncs of one release at once: the second refuses clearly', async () => {
    const t = await testSite(fx.root);
    try {
      t.server.setFaults([{ match: /\.rpm$/, kind: 'slow', delayMs: 100 }]);
      let firstEnded = false;
      const first = t.run('sync', REL).finally(() => (firstEnded = true));
      // The second starts once the first holds its lock.
      const base = join(t.site.roots.compose, '8');
      const locked = () => existsSync(base) && readdirSync(base).some((n) => n.endsWith('.lock'));
      while (!locked() && !firstEnded) await new Promise((r) => setTimeout(r, 10));
      await expect(t.run('sync', REL)).rejects.toThrow(/locked by running process/);
      t.server.setFaults([]);
      await first;
    } finally {
      await t.close();
    }
  });
});
