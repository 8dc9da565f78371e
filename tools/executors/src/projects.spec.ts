// The typecheck and test targets of the libs and apps (projects.ts), as Nx would get them.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createNodesV2 } from './projects';

const root = join(__dirname, '../../..');
const nodes = (workspaceRoot: string, files: string[]) => createNodesV2[1](files, undefined, { workspaceRoot, nxJsonConfiguration: {} } as never) as [string, { projects?: Record<string, { targets: Record<string, any> }> }][];

describe('lib and app targets', () => {
  let dir: string | undefined;
  afterEach(() => dir && rmSync(dir, { recursive: true, force: true }));

  it('typecheck from each tsconfig.json: its includes, the imported projects, where tsc writes', () => {
    const [[file, r]] = nodes(root, ['libs/store/project.json']);
    expect(file).toBe('libs/store/project.json');
    const t = r.projects!['libs/store'].targets;
    expect(t.typecheck.command).toBe('tsc --build tsconfig.json --emitDeclarationOnly');
    expect(t.typecheck.options).toEqual({ cwd: 'libs/store' });
    expect(t.typecheck.inputs).toEqual(expect.arrayContaining(['{projectRoot}/src/**/*.ts', '^production', '{workspaceRoot}/tsconfig.base.json']));
    expect(t.typecheck.outputs).toEqual(['{workspaceRoot}/dist/out-tsc/libs/store/**/*.d.ts', '{workspaceRoot}/dist/out-tsc/libs/store/tsconfig.tsbuildinfo']);
    expect(t.test.command).toBe('vitest run libs/store/');
  });

  it('a test file deep under a project gives it a test target; none, no test target', () => {
    dir = mkdtempSync(join(tmpdir(), 'projects-'));
    for (const p of ['libs/a/src/x/y', 'libs/b/src']) mkdirSync(join(dir, p), { recursive: true });
    for (const p of ['libs/a', 'libs/b']) writeFileSync(join(dir, p, 'project.json'), '{}');
    writeFileSync(join(dir, 'libs/a/src/x/y/z.test.ts'), '');
    writeFileSync(join(dir, 'libs/b/src/z.ts'), '');
    const r = Object.fromEntries(nodes(dir, ['libs/a/project.json', 'libs/b/project.json']));
    expect(Object.keys(r['libs/a/project.json'].projects!['libs/a'].targets)).toEqual(['test']);
    expect(r['libs/b/project.json']).toEqual({});
  });

  it('a tsconfig.json without outDir, or not JSON, is an error naming the file', () => {
    dir = mkdtempSync(join(tmpdir(), 'projects-'));
    mkdirSync(join(dir, 'libs/a'), { recursive: true });
    writeFileSync(join(dir, 'libs/a/project.json'), '{}');
    writeFileSync(join(dir, 'libs/a/tsconfig.json'), JSON.stringify({ compilerOptions: { tsBuildInfoFile: 'x' } }));
    expect(() => nodes(dir!, ['libs/a/project.json'])).toThrow('libs/a/tsconfig.json: compilerOptions.outDir is not set');
    writeFileSync(join(dir, 'libs/a/tsconfig.json'), '{ "compilerOptions": ');
    expect(() => nodes(dir!, ['libs/a/project.json'])).toThrow(/libs\/a\/tsconfig\.json: not valid JSON/);
  });

  it('loads nothing but Node itself: no @nx/devkit, no @nx/js', () => {
    const code = "require('./tools/executors/src/projects'); console.log(JSON.stringify(Object.keys(require.cache)))";
    const out = execFileSync(process.execPath, ['-r', '@swc-node/register', '-e', code], { cwd: root, encoding: 'utf8' });
    const loaded = JSON.parse(out.trim().split('\n').pop()!) as string[];
    expect(loaded.filter((f) => !f.includes('/node_modules/')).map((f) => f.slice(root.length + 1))).toEqual(['tools/executors/src/projects.ts']);
    // (The TypeScript register this test runs under loads its own modules.)
    expect(loaded.filter((f) => /\/node_modules\/(nx|@nx)\//.test(f))).toEqual([]);
  });
});
