import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { childrenCpuSeconds, fittedExponent, fittedGrowth } from './lib';

describe('scale fits', () => {
  const sizes = [4_900, 8_500, 16_000, 62_000];

  it('finds a linear growth under a large fixed cost, which the log-log slope understates', () => {
    const points = sizes.map((n) => ({ packages: n, seconds: 300 + 0.01 * n }));
    const g = fittedGrowth(points);
    expect(g.k).toBeCloseTo(1, 2);
    expect(g.fixed).toBeCloseTo(300, 0);
    expect(fittedExponent(points)).toBeLessThan(0.8);
  });

  it('finds a quadratic growth', () => {
    const g = fittedGrowth(sizes.map((n) => ({ packages: n, seconds: 100 + 1e-7 * n * n })));
    expect(g.k).toBeCloseTo(2, 1);
  });

  it('gives the plain power law with no fixed cost', () => {
    const points = sizes.map((n) => ({ packages: n, seconds: 0.002 * n ** 1.3 }));
    expect(fittedGrowth(points).k).toBeCloseTo(1.3, 2);
    expect(fittedExponent(points)).toBeCloseTo(1.3, 6);
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
