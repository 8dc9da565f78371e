// What a task's process loads: the executor adapter and its own stage, not every stage.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stageForTarget } from '../../../libs/stages/src/registry';

const root = join(__dirname, '../../..');

describe('executor start', () => {
  it('an iso task loads the iso stage and its libraries only: no other stage, no publishing, no pungi', () => {
    // A fresh process, as Nx forks one per task; every module it loaded is in require.cache.
    const code = [
      "require('./tools/executors/src/stage');",
      "require('./libs/stages/src/registry').stageForTarget('iso-x86_64').then((s) => {",
      '  console.log(JSON.stringify({ name: s.name, loaded: Object.keys(require.cache) }));',
      '});',
    ].join('\n');
    const out = execFileSync(process.execPath, ['-r', '@swc-node/register', '-e', code], { cwd: root, encoding: 'utf8' });
    const { name, loaded } = JSON.parse(out.trim().split('\n').pop()!) as { name: string; loaded: string[] };
    const rel = loaded.map((f) => f.slice(root.length + 1));
    expect(name).toBe('iso');
    expect(rel).toContain('libs/stages/src/iso.ts');
    expect(rel).toContain('libs/iso/src/boot-tree.ts');
    const others = ['sync', 'iso-extra', 'cloud', 'finalize', 'staging', 'prod', 'filelist', 'rollback', 'check-site', 'pungi', 'pungi-compose', 'pungi-media', 'sign-repos'];
    expect(rel.filter((f) => others.some((s) => f === `libs/stages/src/${s}.ts`))).toEqual([]);
    expect(rel.filter((f) => /^libs\/(publish|pungi)\//.test(f))).toEqual([]);
    // Nor a glob library (the ISO code's digest lists its directories itself).
    expect(rel.filter((f) => /node_modules\/(globby|fast-glob)\//.test(f))).toEqual([]);
  });

  it('finds the stage of every kind of target, and names the stages for one it does not know', async () => {
    expect((await stageForTarget('iso-aarch64')).name).toBe('iso');
    expect((await stageForTarget('iso-extra')).name).toBe('iso-extra');
    expect((await stageForTarget('update-staging')).name).toBe('staging');
    expect((await stageForTarget('staging-Extras')).name).toBe('staging');
    expect((await stageForTarget('update-sync')).name).toBe('sync');
    await expect(stageForTarget('nope')).rejects.toThrow(/no stage runs the target nope; stages: sync, iso, iso-extra/);
  });
});
