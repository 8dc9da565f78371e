// The compiled fingerprint script: a plain `node` loads it and everything it imports (a module
// that fails to load would make every fingerprint "unavailable", so every sync a cache miss),
// it prints what the TypeScript script prints, and it is rebuilt only when the sources change.
import { cpSync, mkdtempSync, rmSync, statSync, symlinkSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runSync } from '@rocky/exec';
import { fingerprintScript } from './fingerprint';

const repo = join(__dirname, '../../..');

describe('fingerprintScript', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rocky-fingerprint-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  for (const f of ['libs', 'apps', 'tools', 'tsconfig.base.json', 'package.json']) cpSync(join(repo, f), join(dir, f), { recursive: true, filter: (p) => !p.includes('node_modules') });
  symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'), 'dir');

  it('compiles to CommonJS that plain node loads, with every module the script can import', () => {
    const script = fingerprintScript(dir);
    expect(script).toMatch(/^\.nx\/workspace-data\/releng-fingerprint\/[0-9a-f]{16}\/tools\/scripts\/upstream-fingerprint\.js$/);
    const build = join(dir, script, '../../..');
    // The script's static and lazy imports (the fixture, rpm-repo for real upstreams, the store for buckets).
    const modules = ['libs/stages/src/upstream.js', 'apps/upstream-fixture/src/index.js', 'libs/rpm-repo/src/index.js', 'libs/store/src/index.js'];
    const out = runSync([process.execPath, '-e', `for (const m of ${JSON.stringify(modules)}) require(require('path').join(${JSON.stringify(build)}, m)); console.log('loaded')`], { cwd: dir, env: { ...process.env, NODE_OPTIONS: '' } }).toString();
    expect(out.trim()).toBe('loaded');
  });

  it('reuses a build of the same sources and builds anew when one changes', () => {
    const first = fingerprintScript(dir);
    const mtime = statSync(join(dir, first)).mtimeMs;
    expect(fingerprintScript(dir)).toBe(first);
    expect(statSync(join(dir, first)).mtimeMs).toBe(mtime);
    appendFileSync(join(dir, 'libs/config/src/index.ts'), '\n// changed\n');
    const second = fingerprintScript(dir);
    expect(second).not.toBe(first);
    expect(statSync(join(dir, second)).isFile()).toBe(true);
  });
});
