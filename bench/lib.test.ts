import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { childrenCpuSeconds, deferDelete, emptyTrash, fittedExponent, linearFit } from './lib';

describe('scale fits', () => {
  const sizes = [4_900, 8_500, 16_000, 62_000];

  it('the log-log slope is the exponent of a power law, and fixed costs pull it below 1', () => {
    expect(fittedExponent(sizes.map((n) => ({ packages: n, seconds: 0.002 * n ** 1.3 })))).toBeCloseTo(1.3, 6);
    expect(fittedExponent(sizes.map((n) => ({ packages: n, seconds: 300 + 0.01 * n })))).toBeLessThan(0.8);
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
  it('moves a tree aside at once and deletes it only at emptyTrash; a missing path is no error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rocky-trash-'));
    try {
      mkdirSync(join(dir, 'runs/a'), { recursive: true });
      writeFileSync(join(dir, 'runs/a/f'), 'x');
      deferDelete(join(dir, 'runs'));
      deferDelete(join(dir, 'never-made'));
      expect(existsSync(join(dir, 'runs'))).toBe(false);
      const aside = readdirSync(dir);
      expect(aside).toEqual([expect.stringMatching(/^runs\.deleted-\d+-\d+$/)]);
      expect(existsSync(join(dir, aside[0], 'a/f'))).toBe(true);
      emptyTrash();
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
