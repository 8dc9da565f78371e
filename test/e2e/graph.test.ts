// Issue 2: the project graph, per-arch inputs, and `nx affected` mapping, with real nx.
// Issue 13: libs and apps as projects in that graph, and each stage hashing only its own code.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync, writeFileSync, appendFileSync, readdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { tempWorkspace, type TempWorkspace } from '../helpers/workspace';
import { sharedFixture } from '../helpers/fixture';

describe('the Nx graph of the releases', () => {
  let ws: TempWorkspace;
  beforeAll(() => {
    ws = tempWorkspace();
  });
  afterAll(() => ws.cleanup());

  it('lists the four releases as projects', () => {
    const projects = JSON.parse(ws.nx(['show', 'projects', '--json']).trim().split('\n').filter((l) => l.startsWith('[')).pop()!);
    expect(projects.filter((p: string) => p.startsWith('rocky-')).sort()).toEqual(['rocky-8', 'rocky-9', 'rocky-9-beta', 'rocky-9-lookahead']);
  });

  it('gives rocky-9 every stage, one iso target per arch with only its own sync manifest as input', () => {
    const out = ws.nx(['show', 'project', 'rocky-9', '--json']);
    const p = JSON.parse(out.slice(out.indexOf('{'), out.lastIndexOf('}') + 1));
    expect(Object.keys(p.targets).sort()).toEqual(
      ['check-site', 'cloud', 'filelist', 'finalize', 'iso-aarch64', 'iso-extra', 'iso-ppc64le', 'iso-s390x', 'iso-x86_64', 'prod', 'rollback', 'staging', 'sync', 'update-filelist', 'update-prod', 'update-staging', 'update-sync'].sort(),
    );
    for (const arch of ['x86_64', 'aarch64', 'ppc64le', 's390x']) {
      const t = p.targets[`iso-${arch}`];
      expect(t.dependsOn).toEqual(['sync']);
      expect(t.inputs).toContainEqual({ dependentTasksOutputFiles: `**/sync/${arch}.json.gz`, transitive: false });
      expect(JSON.stringify(t.inputs)).not.toContain('release.yaml');
      expect(t.inputs).toEqual(expect.arrayContaining(['pipelineSource', 'site']));
    }
    expect(p.targets.sync.inputs).toEqual(expect.arrayContaining(['pipelineSource', 'site', '{projectRoot}/release.yaml']));
    expect(p.targets.finalize.dependsOn).toEqual(expect.arrayContaining(['iso-*', 'iso-extra', 'cloud', 'sync']));
    for (const t of ['staging', 'prod', 'filelist']) expect(p.targets[t].cache).toBe(false);
  });

  it('writes the graph to a file: releases → executors → stages → the libs, lib edges from imports', () => {
    ws.nx(['graph', '--file=graph.json']);
    const g = JSON.parse(readFileSync(join(ws.dir, 'graph.json'), 'utf8'));
    expect(Object.keys(g.graph.nodes)).toEqual(expect.arrayContaining(['rocky-8', 'rocky-9', 'rocky-9-beta', 'rocky-9-lookahead', 'executors']));
    const libs = readdirSync(join(ws.dir, 'libs')).map((d) => `@rocky/${d}`);
    const apps = readdirSync(join(ws.dir, 'apps')).map((d) => `@rocky/${d}`);
    expect(Object.keys(g.graph.nodes)).toEqual(expect.arrayContaining([...libs, ...apps]));
    const deps = (p: string) => [...new Set((g.graph.dependencies[p] as { target: string }[]).map((d) => d.target))].filter((t) => !t.startsWith('npm:')).sort();
    expect(deps('rocky-9')).toEqual(['executors']);
    expect(deps('executors')).toContain('@rocky/stages');
    expect(deps('@rocky/stages')).toEqual(expect.arrayContaining(['@rocky/config', '@rocky/exec', '@rocky/iso', '@rocky/publish', '@rocky/store', '@rocky/rpm-repo', '@rocky/compose', '@rocky/builders']));
    expect(deps('@rocky/builders')).toEqual(['@rocky/config', '@rocky/exec', '@rocky/iso']);
    expect(deps('@rocky/config')).toEqual([]);
  });

  it('adds an iso target when an arch is added to a release file, and nothing else changes', () => {
    const file = join(ws.dir, 'releases/rocky-8/release.yaml');
    const before = readFileSync(file, 'utf8');
    const targets = () => {
      const out = ws.nx(['show', 'project', 'rocky-8', '--json']);
      return JSON.parse(out.slice(out.indexOf('{'), out.lastIndexOf('}') + 1)).targets as Record<string, { inputs: unknown[] }>;
    };
    const old = targets();
    writeFileSync(file, before.replace('arches: [x86_64, aarch64]', 'arches: [x86_64, aarch64, ppc64le]'));
    try {
      const now = targets();
      expect(Object.keys(now).filter((t) => !(t in old))).toEqual(['iso-ppc64le']);
      expect(now['iso-ppc64le'].inputs).toContainEqual({ dependentTasksOutputFiles: '**/sync/ppc64le.json.gz', transitive: false });
      for (const t of Object.keys(old)) expect(now[t], t).toEqual(old[t]);
    } finally {
      writeFileSync(file, before);
    }
  });

  const affected = (change: () => void) => {
    ws.git('checkout', '-q', '-B', 'change', 'main');
    change();
    ws.git('commit', '-qam', 'change');
    const out = ws.nx(['show', 'projects', '--affected', '--base=main', '--head=HEAD', '--json']);
    ws.git('checkout', '-q', 'main');
    return (JSON.parse(out.trim().split('\n').filter((l) => l.startsWith('[')).pop()!) as string[]).filter((p) => p.startsWith('rocky-')).sort();
  };
  const all = ['rocky-8', 'rocky-9', 'rocky-9-beta', 'rocky-9-lookahead'];

  it('affected: a release file change affects only that release', () => {
    expect(affected(() => appendFileSync(join(ws.dir, 'releases/rocky-9/release.yaml'), '# touched\n'))).toEqual(['rocky-9']);
  });
  it('affected: a site file change affects every release', () => {
    expect(affected(() => appendFileSync(join(ws.dir, 'sites/local.yaml'), '# touched\n'))).toEqual(all);
  });
  it('affected: an executor or lib change affects every release', () => {
    expect(affected(() => appendFileSync(join(ws.dir, 'tools/executors/src/stage.ts'), '// touched\n'))).toEqual(all);
    expect(affected(() => appendFileSync(join(ws.dir, 'libs/config/src/names.ts'), '// touched\n'))).toEqual(all);
  });
  it('affected: a README change affects none', () => {
    expect(affected(() => appendFileSync(join(ws.dir, 'README.md'), '\ntouched\n'))).toEqual([]);
  });
});

describe('libs and apps as projects (issue 13)', () => {
  let ws: TempWorkspace;
  beforeAll(() => {
    ws = tempWorkspace({ withTests: true });
  });
  afterAll(() => ws?.cleanup());

  it('gives every lib and app a typecheck target and a test target of its own files', () => {
    const out = ws.nx(['show', 'projects', '--with-target=typecheck', '--json']);
    const withTypecheck = JSON.parse(out.trim().split('\n').filter((l) => l.startsWith('[')).pop()!) as string[];
    const all = ['libs', 'apps'].flatMap((d) => readdirSync(join(ws.dir, d)).map((p) => `@rocky/${p}`));
    expect(withTypecheck).toEqual(expect.arrayContaining([...all, 'executors']));
    const p = JSON.parse(((s: string) => s.slice(s.indexOf('{'), s.lastIndexOf('}') + 1))(ws.nx(['show', 'project', '@rocky/iso', '--json'])));
    expect(p.targets.typecheck.options.command).toMatch(/^tsc --build tsconfig\.json/);
    expect(p.targets.test.options.command).toBe('vitest run libs/iso/');
  });

  it('affected -t test after a change to one lib: that lib and the projects that import it', () => {
    const out = ws.nx(['affected', '-t', 'test', '--files=libs/compose/src/order.ts', '--graph=stdout']);
    const tasks = Object.keys(JSON.parse(out.slice(out.indexOf('{'), out.lastIndexOf('}') + 1)).tasks.tasks).sort();
    // compose and what imports it (directly or not); config, exec, store and rpm-repo do not import it.
    expect(tasks).toEqual(['@rocky/builders:test', '@rocky/compose:test', '@rocky/iso:test', '@rocky/publish:test', '@rocky/pungi:test', '@rocky/stages:test', '@rocky/upstream-fixture:test', 'executors:test']);
  });
});

describe('each stage hashes only the code it runs (issue 13)', () => {
  let ws: TempWorkspace;
  const status = () => Object.fromEntries(ws.runJson().tasks.map((t) => [t.taskId.replace(/^rocky-9:/, ''), t.cacheStatus]));
  const misses = () => Object.entries(status()).filter(([, s]) => s === 'cache-miss').map(([t]) => t).sort();
  /** sha256 of every Nx output of rocky-9 (the manifests under dist/rocky-9). */
  const outputs = () => {
    const dir = join(ws.dir, 'dist/rocky-9');
    return Object.fromEntries(
      readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => join(e.parentPath, e.name))
        .sort()
        .map((f) => [f.slice(dir.length + 1), createHash('sha256').update(readFileSync(f)).digest('hex')]),
    );
  };
  const finalize = () => ws.nx(['run', 'rocky-9:finalize', '--outputStyle=static']);
  beforeAll(async () => {
    ws = tempWorkspace({ fixtureFrom: await sharedFixture() });
    finalize();
  });
  afterAll(() => ws?.cleanup());

  it('a comment in libs/publish: every task of rocky-9:finalize is a cache hit', () => {
    appendFileSync(join(ws.dir, 'libs/publish/src/rsync.ts'), '// touched\n');
    finalize();
    expect(Object.keys(status()).sort()).toEqual(['cloud', 'finalize', 'iso-aarch64', 'iso-extra', 'iso-ppc64le', 'iso-s390x', 'iso-x86_64', 'sync']);
    expect(misses()).toEqual([]);
  });

  it('a comment in libs/iso: only the ISO targets rerun (rebuilt: their store keys hold the ISO code), and every output is byte-identical', () => {
    const before = outputs();
    const isoManifests = () => Object.fromEntries(Object.keys(before).filter((f) => f.startsWith('iso')).map((f) => [f, readFileSync(join(ws.dir, 'dist/rocky-9', f), 'utf8')]));
    const manifestsBefore = isoManifests();
    appendFileSync(join(ws.dir, 'libs/iso/src/files.ts'), '// touched\n');
    finalize();
    expect(isoManifests()).toEqual(manifestsBefore);
    expect(misses()).toEqual(['iso-aarch64', 'iso-extra', 'iso-ppc64le', 'iso-s390x', 'iso-x86_64']);
    // Same bytes (reproducible ISOs), so finalize, which hashes the ISO manifests, is a cache hit.
    expect(status().finalize).toMatch(/cache-hit$/);
    expect(outputs()).toEqual(before);
  });
});
