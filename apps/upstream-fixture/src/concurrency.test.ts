// Two builders racing for one root (the Nx fingerprint and a sync do): one builds, the other
// waits for the lock and then finds everything up to date. Nothing is built twice.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { run, ToolError } from '@rocky/exec';
import { ensureFixture, repoUrlPath } from './index';
import { counters } from './rpmbuild';
import { readPrimary } from './repodata';
import { agentPids, killAgent } from './gpg';

const ws = resolve(__dirname, '../../..');

function cli(args: string[]): Promise<{ code: number; out: string }> {
  return run([process.execPath, '-r', '@swc-node/register', join(__dirname, 'main.ts'), ...args], { cwd: ws }).then(
    (r) => ({ code: r.code, out: r.stdout + r.stderr }),
    (e: unknown) => {
      if (!(e instanceof ToolError)) throw e;
      return { code: e.result.code, out: e.result.stdout + e.result.stderr };
    },
  );
}

describe('concurrent ensureFixture on one root', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'fixture-race-'));
  });
  afterAll(async () => {
    for (const d of ['a', 'b']) await killAgent(join(tmp, d, 'gnupg'));
    rmSync(tmp, { recursive: true, force: true });
  });

  it('within one process: calls are queued and the second reuses the first build', async () => {
    const root = join(tmp, 'a');
    const before = counters.rpmbuild;
    const [x, y] = await Promise.all([
      ensureFixture({ workspaceRoot: ws, root, releases: ['rocky-8'] }),
      ensureFixture({ workspaceRoot: ws, root, releases: ['rocky-8'] }),
    ]);
    expect(y).toEqual(x);
    // One rpmbuild per spec: the ten rocky-8 repos, the release package and the two module streams.
    expect(counters.rpmbuild - before).toBe(13);
    expect(readPrimary(join(root, repoUrlPath('rocky-8', 'BaseOS', 'aarch64'))).some((p) => p.name === 'kernel')).toBe(true);
  });

  it('across processes: both succeed, each spec is built once, the result is complete', async () => {
    const root = join(tmp, 'b');
    const args = ['build', '--root', root, '--release', 'rocky-8'];
    const [p, q] = await Promise.all([cli(args), cli(args)]);
    expect(p.code, p.out).toBe(0);
    expect(q.code, q.out).toBe(0);
    const built = (p.out + q.out).split('\n').filter((l) => l.startsWith('built '));
    expect(built).toHaveLength(13);
    // fixturemod's two streams are two builds of one component: 12 names.
    expect(new Set(built.map((l) => l.split(' ')[1])).size).toBe(12);
    const keys = [p.out, q.out].map((o) => /\(key ([0-9A-F]{40})\)/.exec(o)?.[1]);
    expect(keys[0]).toBeDefined();
    expect(keys[1]).toBe(keys[0]);
    expect(readdirSync(join(root, 'v1', 'projects'))).toEqual(['rocky-8']);
    expect(readdirSync(join(root, '.fixture'))).not.toContain('tmp');
    // The builders stopped the gpg-agent their signing started.
    expect(agentPids(join(root, 'gnupg'))).toEqual([]);
  });
});
