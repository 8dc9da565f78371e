import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hostName } from '@rocky/exec';
import { childrenCpuSeconds, deferDelete, dotEnv, emptyTrash, fittedExponent, lastStepGrowth, linearFit } from './lib';

describe('scale fits', () => {
  const sizes = [4_900, 8_500, 16_000, 62_000];

  it('the log-log slope is the exponent of a power law, and fixed costs pull it below 1', () => {
    expect(fittedExponent(sizes.map((n) => ({ packages: n, seconds: 0.002 * n ** 1.3 })))).toBeCloseTo(1.3, 6);
    expect(fittedExponent(sizes.map((n) => ({ packages: n, seconds: 300 + 0.01 * n })))).toBeLessThan(0.8);
  });

  it('the last step against the average: linear with fixed costs passes, faster than linear does not, whatever the smaller sizes do', () => {
    const ok = (ps: { packages: number; seconds: number }[]) => {
      const g = lastStepGrowth(ps);
      return g.marginal <= 1.1 * g.average;
    };
    expect(ok(sizes.map((n) => ({ packages: n, seconds: 110 + 0.001 * n })))).toBe(true);
    // This session's scale run: the smaller sizes' CPU fell with size (noise over fixed costs).
    expect(ok([4_897, 8_516, 15_968, 61_746].map((packages, i) => ({ packages, seconds: [123, 118, 109, 154][i] })))).toBe(true);
    expect(ok(sizes.map((n) => ({ packages: n, seconds: 0.002 * n ** 1.3 })))).toBe(false);
    expect(ok(sizes.map((n) => ({ packages: n, seconds: 50 + 1e-7 * n ** 2 })))).toBe(false);
  });

  it('the line through the points: fixed cost and cost per package', () => {
    const f = linearFit(sizes.map((n) => ({ packages: n, seconds: 200 + 0.004 * n })));
    expect(f.fixed).toBeCloseTo(200, 6);
    expect(f.perPackage).toBeCloseTo(0.004, 9);
  });
});

describe('childrenCpuSeconds', () => {
  it('counts the CPU of a waited-for child and of its own child', () => {
    const before = childrenCpuSeconds();
    // A shell that waits for a busy grandchild: its CPU reaches us through the shell's wait.
    const r = spawnSync('sh', ['-c', `${JSON.stringify(process.execPath)} -e "const t=process.cpuUsage();while(process.cpuUsage(t).user<400000);"`]);
    expect(r.status).toBe(0);
    expect(childrenCpuSeconds() - before).toBeGreaterThanOrEqual(0.39);
  });
});

describe('deferDelete', () => {
  it('moves a tree aside at once and deletes it only at emptyTrash, with what a killed run left beside it; a missing path is no error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rocky-trash-'));
    try {
      mkdirSync(join(dir, 'runs/a'), { recursive: true });
      writeFileSync(join(dir, 'runs/a/f'), 'x');
      // Set aside by a run that was killed (its process is gone), and by a live process: only the first goes.
      const dead = spawnSync('true').pid;
      const killed = `runs.deleted@${hostName()}.${dead}-0`;
      const live = `runs.deleted@${hostName()}.${process.ppid}-0`;
      for (const n of [killed, live]) mkdirSync(join(dir, n));
      deferDelete(join(dir, 'runs'));
      deferDelete(join(dir, 'never-made'));
      expect(existsSync(join(dir, 'runs'))).toBe(false);
      const aside = readdirSync(dir).filter((n) => n !== killed && n !== live);
      expect(aside).toEqual([expect.stringMatching(new RegExp(`^runs\\.deleted@${hostName()}\\.${process.pid}-\\d+$`))]);
      expect(existsSync(join(dir, aside[0], 'a/f'))).toBe(true);
      expect(existsSync(join(dir, killed))).toBe(true);
      emptyTrash();
      expect(readdirSync(dir)).toEqual([live]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('dotEnv', () => {
  it("reads the workspace's .env as Nx gives it to tasks: KEY=VALUE lines, comments and blanks skipped", () => {
    const d = mkdtempSync(join(tmpdir(), 'dotenv-'));
    try {
      writeFileSync(join(d, '.env'), '# a comment\nNX_ISOLATE_PLUGINS=false\n\n  # UV_THREADPOOL_SIZE=4\nUV_THREADPOOL_SIZE = 16 \nnot a line\n');
      expect(dotEnv(join(d, '.env'))).toEqual({ NX_ISOLATE_PLUGINS: 'false', UV_THREADPOOL_SIZE: '16' });
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
  it("the workspace's own sets the thread pool the task processes get", () => {
    expect(dotEnv(join(__dirname, '../.env')).UV_THREADPOOL_SIZE).toBe('16');
  });
});
