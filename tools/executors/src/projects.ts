// Local Nx plugin: every lib and app (a `project.json` under libs/ or apps/, and the executors)
// gets a `typecheck` target from its `tsconfig.json` and, when it has tests, a `test` target that
// runs its own vitest files with the workspace's vitest config, so `nx affected -t test` runs the
// tests of a changed project and of the projects that import it.
// Both are made here, not by @nx/js/typescript: every nx start, `nx run rocky-9:finalize`
// included, loaded that plugin and @nx/devkit and ran its inference (~0.17 s of a 0.7 s warm run)
// for targets this file states in a few lines. Nothing here loads more than node:fs.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import type { CreateNodesResult, CreateNodesV2, TargetConfiguration } from '@nx/devkit';

/** Stops at the first test file (a project's testdata can be large). */
function hasTests(dir: string): boolean {
  if (!existsSync(dir)) return false;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory() ? e.name !== 'node_modules' && hasTests(join(dir, e.name)) : /\.(test|spec)\.ts$/.test(e.name)) return true;
  }
  return false;
}

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

interface TsConfig {
  include?: string[];
  compilerOptions?: { outDir?: string; tsBuildInfoFile?: string };
}

/**
 * `tsc --build` of the project's tsconfig.json. Its inputs are the files that config includes,
 * the configs, and the sources of the projects it imports: the `@rocky/*` path aliases make tsc
 * read their .ts files, not declarations. Outputs: the declarations and the build info tsc writes
 * (where the config says), so a cache hit restores what the next incremental build reads.
 */
export function typecheckTarget(projectRoot: string, config: TsConfig, file: string): TargetConfiguration {
  const under = (p: string | undefined, what: string) => {
    if (!p) throw new Error(`${file}: compilerOptions.${what} is not set (the typecheck target caches what tsc writes there)`);
    const abs = posix.normalize(posix.join(projectRoot, p));
    if (abs.startsWith('../')) throw new Error(`${file}: compilerOptions.${what} (${p}) leaves the workspace`);
    return `{workspaceRoot}/${abs}`;
  };
  return {
    command: 'tsc --build tsconfig.json --emitDeclarationOnly',
    options: { cwd: projectRoot },
    cache: true,
    dependsOn: ['^typecheck'],
    inputs: [
      '{workspaceRoot}/tsconfig.base.json',
      '{projectRoot}/tsconfig.json',
      ...(config.include ?? ['**/*.ts']).map((g) => `{projectRoot}/${g}`),
      '^production',
      { externalDependencies: ['typescript'] },
    ],
    outputs: [`${under(config.compilerOptions?.outDir, 'outDir')}/**/*.d.ts`, under(config.compilerOptions?.tsBuildInfoFile, 'tsBuildInfoFile')],
    metadata: { technologies: ['typescript'], description: `Type-checks ${projectRoot} (tsc --build)` },
  };
}

function projectNodes(workspaceRoot: string, file: string): CreateNodesResult {
  const root = dirname(file);
  const targets: Record<string, TargetConfiguration> = {};
  const tsconfig = join(root, 'tsconfig.json');
  if (existsSync(join(workspaceRoot, tsconfig))) {
    let config: TsConfig;
    try {
      config = JSON.parse(readFileSync(join(workspaceRoot, tsconfig), 'utf8')) as TsConfig;
    } catch (e) {
      throw new Error(`${tsconfig}: not valid JSON (${(e as Error).message})`);
    }
    targets.typecheck = typecheckTarget(root, config, tsconfig);
  }
  if (hasTests(join(workspaceRoot, root))) targets.test = testTarget(root);
  return Object.keys(targets).length ? { projects: { [root]: { targets } } } : {};
}

export const createNodesV2: CreateNodesV2 = ['{libs,apps,tools}/*/project.json', (files, _options, context) => files.map((f) => [f, projectNodes(context.workspaceRoot, f)] as const)];
