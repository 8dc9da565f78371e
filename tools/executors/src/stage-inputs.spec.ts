// Which code each stage's targets hash: read from the workspace's imports.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { codeImports, stageCode } from './stage-inputs';
import { releaseTargets } from './plugin';

const root = join(__dirname, '../../..');

describe('codeImports', () => {
  it('follows value imports, re-exports and dynamic imports, not type-only ones', () => {
    const text = [
      "import { a, type B } from './a';",
      "import type { C } from './c';",
      "import { type D, type E } from './d';",
      "export { f } from './f';",
      "export type { G } from './g';",
      "import {\n  h,\n  i,\n} from '@rocky/h';",
      "const j = await import('@rocky/j');",
      "import './side-effect';",
    ].join('\n');
    expect(codeImports(text).sort()).toEqual(['./a', './f', './side-effect', '@rocky/h', '@rocky/j'].sort());
  });
});

describe('stageCode', () => {
  it('sync, cloud and finalize reach neither libs/iso nor libs/publish; the ISO stages reach libs/iso; staging reaches libs/publish', () => {
    for (const s of ['sync', 'cloud', 'finalize']) {
      expect(stageCode(root, s).libs, s).not.toContain('@rocky/iso');
      expect(stageCode(root, s).libs, s).not.toContain('@rocky/publish');
    }
    expect(stageCode(root, 'iso').libs).toEqual(expect.arrayContaining(['@rocky/iso', '@rocky/builders', '@rocky/config', '@rocky/exec']));
    expect(stageCode(root, 'iso-extra').libs).toContain('@rocky/iso');
    expect(stageCode(root, 'staging').libs).toContain('@rocky/publish');
    // A lib's own lib dependencies come with it: @rocky/store imports @rocky/exec and @rocky/config.
    expect(stageCode(root, 'cloud').libs).toEqual(['@rocky/compose', '@rocky/config', '@rocky/exec', '@rocky/store']);
    expect(stageCode(root, 'sync').files).toContain('libs/stages/src/sync.ts');
    expect(stageCode(root, 'sync').files).not.toContain('libs/stages/src/finalize.ts');
    expect(stageCode(root, 'sync').files).not.toContain('libs/stages/src/iso.ts');
  });

  it('names a missing stage module', () => {
    expect(() => stageCode(root, 'nope')).toThrow(/libs\/stages\/src\/nope.ts: no such stage module/);
  });

  it('puts the stage code into the release targets, never all of libs/**', () => {
    const { targets } = releaseTargets(root, 'releases/rocky-9/release.yaml');
    for (const t of ['sync', 'iso-x86_64', 'iso-extra', 'cloud', 'finalize', 'update-sync']) {
      const inputs = targets[t].inputs!;
      expect(inputs, t).toEqual(expect.arrayContaining(['pipelineSource', 'site', { env: 'RELENG_DRY_RUN' }]));
      expect(JSON.stringify(inputs), t).not.toContain('libs/**');
      expect(inputs.find((i) => typeof i === 'object' && 'projects' in i), t).toMatchObject({ input: 'production' });
    }
    expect(targets['iso-x86_64'].inputs).toContainEqual({ input: 'production', projects: stageCode(root, 'iso').libs });
  });
});
