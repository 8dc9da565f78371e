// Local Nx plugin: every lib and app (a `project.json` under libs/ or apps/, and the executors)
// gets a `test` target that runs its own vitest files with the workspace's vitest config, so
// `nx affected -t test` runs the tests of a changed project and of the projects that import it.
// (`typecheck` comes from @nx/js/typescript, from each project's tsconfig.json.)
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createNodesFromFiles, type CreateNodesV2, type TargetConfiguration } from '@nx/devkit';

const hasTests = (dir: string) => existsSync(dir) && readdirSync(dir, { recursive: true, encoding: 'utf8' }).some((f) => /\.(test|spec)\.ts$/.test(f) && !f.includes('node_modules'));

export function testTarget(projectRoot: string): TargetConfiguration {
  return {
    command: `vitest run ${projectRoot}/`,
    options: { cwd: '{workspaceRoot}' },
    cache: true,
    // The project's files, the code it imports (through the project graph), and vitest's config.
    inputs: ['default', '^production', '{workspaceRoot}/vitest.config.mts', '{workspaceRoot}/tsconfig.base.json', { externalDependencies: ['vitest'] }],
    metadata: { technologies: ['vitest'], description: `Runs the vitest files under ${projectRoot}/` },
  };
}

export const createNodesV2: CreateNodesV2 = [
  '{libs,apps,tools}/*/project.json',
  (files, options, context) =>
    createNodesFromFiles(
      (file, _opts, ctx) => {
        const root = dirname(file);
        if (!hasTests(join(ctx.workspaceRoot, root))) return {};
        return { projects: { [root]: { targets: { test: testTarget(root) } } } };
      },
      files,
      options,
      context,
    ),
];
