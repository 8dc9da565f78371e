// Issue 19.7: the publishing tests' reader process never outlives its test. withReader stops it
// when the code it wraps fails (an assertion inside the helper's scope), and the reader exits
// by itself when the process that started it is gone (a killed test worker).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/workspace';
import { withReader } from './publish-helpers';

let tmp: string;
let orphan = 0;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'publish-reader-'));
  mkdirSync(join(tmp, 'tree'));
});
afterAll(() => {
  if (orphan && alive(orphan)) process.kill(orphan, 'SIGKILL'); // the test failed: still ours to stop
  rmSync(tmp, { recursive: true, force: true });
});

/** Whether process `pid` still exists (a zombie counts as gone). */
function alive(pid: number): boolean {
  const r = spawnSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' });
  return r.status === 0 && !r.stdout.trim().startsWith('Z');
}

describe('the concurrent reader', () => {
  it('is stopped when an assertion fails inside withReader', async () => {
    let pid = 0;
    const failing = withReader([join(tmp, 'tree')], join(tmp, 'r1.json'), async (reader) => {
      pid = reader.pid;
      expect(alive(pid)).toBe(true);
      expect('the published tree').toBe('something else'); // the failing assertion
    });
    await expect(failing).rejects.toThrow(/expected 'the published tree' to be 'something else'/);
    expect(pid).toBeGreaterThan(0);
    expect(alive(pid)).toBe(false);
  });

  it('returns what it saw when the wrapped code succeeds', async () => {
    const { value, stats } = await withReader([join(tmp, 'tree')], join(tmp, 'r2.json'), async () => 42);
    expect(value).toBe(42);
    expect(stats.iterations).toBeGreaterThan(0);
  });

  it('exits by itself when the process that started it dies without stopping it', async () => {
    // A test process that starts a reader and exits at once, as a crashed worker would.
    const out = join(tmp, 'r3.json');
    const script = `require('./test/integration/publish-helpers').startReader([${JSON.stringify(join(tmp, 'tree'))}], ${JSON.stringify(out)}).then(() => process.exit(0));`;
    // (Its stderr is not a pipe: the reader inherits it, and a pipe would keep spawnSync waiting for the reader.)
    const r = spawnSync(process.execPath, ['-r', '@swc-node/register', '-e', script], { cwd: repoRoot, env: { ...process.env, SWC_NODE_PROJECT: join(repoRoot, 'tsconfig.base.json') }, stdio: ['ignore', 'pipe', 'ignore'] });
    expect(r.status).toBe(0);
    // The reader is the process whose arguments name this test's own output file.
    const pid = Number(spawnSync('pgrep', ['-f', `publish-reader.mjs ${out}`], { encoding: 'utf8' }).stdout.trim().split('\n')[0]);
    if (pid) orphan = pid;
    // Its stdin (a pipe from the dead parent) is closed, so it ends: wait for that, with no clock
    // (a reader that never ends fails this test at vitest's timeout, and afterAll kills it).
    while (alive(pid)) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(alive(pid)).toBe(false);
  });
});
