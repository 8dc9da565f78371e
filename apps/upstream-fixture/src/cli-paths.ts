// Lets `node -r @swc-node/register apps/upstream-fixture/src/main.ts` resolve `@rocky/*`
// imports: swc-node reads ./tsconfig.json only, and the workspace keeps its paths in
// tsconfig.base.json. Imported first by main.ts; does nothing when the paths already resolve.
import Module from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

function workspaceRoot(from: string): string | undefined {
  for (let d = from; ; d = dirname(d)) {
    if (existsSync(join(d, 'tsconfig.base.json'))) return d;
    if (dirname(d) === d) return undefined;
  }
}

function install(): void {
  try {
    require.resolve('@rocky/config');
    return;
  } catch {
    // not resolvable: map the workspace's paths below
  }
  const root = workspaceRoot(__dirname);
  if (!root) return;
  const paths: Record<string, string[]> = JSON.parse(readFileSync(join(root, 'tsconfig.base.json'), 'utf8')).compilerOptions?.paths ?? {};
  const M = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
  const original = M._resolveFilename;
  M._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]) {
    if (request.startsWith('@rocky/')) {
      const [scope, name, ...sub] = request.split('/');
      const target = paths[`${scope}/${name}`]?.[0];
      if (target) request = sub.length ? join(root, dirname(target), ...sub) : join(root, target);
    }
    return original.call(this, request, ...rest);
  };
}

install();
