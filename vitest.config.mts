import { defineConfig } from 'vitest/config';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// The workspace's aliases have one home, tsconfig.base.json's `paths`; vitest resolves the same.
const { paths } = JSON.parse(readFileSync(resolve(here, 'tsconfig.base.json'), 'utf8')).compilerOptions as { paths: Record<string, string[]> };
const alias = Object.fromEntries(Object.entries(paths).map(([name, [target]]) => [name, resolve(here, target)]));

export default defineConfig({
  resolve: { alias },
  test: {
    include: ['libs/**/*.test.ts', 'apps/**/*.test.ts', 'tools/**/*.test.ts', 'tools/**/*.spec.ts', 'test/**/*.test.ts'],
    pool: 'forks',
    // Integration and end-to-end tests run real tools and nx; they are slow but not timed.
    testTimeout: 600_000,
    hookTimeout: 600_000,
    reporters: ['default', './tools/vitest/summary-reporter.ts'],
  },
});
