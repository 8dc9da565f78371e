import { defineConfig } from 'vitest/config';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const lib = (p: string) => resolve(here, p);

export default defineConfig({
  resolve: {
    alias: {
      '@rocky/executors': lib('tools/executors/src/index.ts'),
      '@rocky/config': lib('libs/config/src/index.ts'),
      '@rocky/exec': lib('libs/exec/src/index.ts'),
      '@rocky/store': lib('libs/store/src/index.ts'),
      '@rocky/rpm-repo': lib('libs/rpm-repo/src/index.ts'),
      '@rocky/compose': lib('libs/compose/src/index.ts'),
      '@rocky/iso': lib('libs/iso/src/index.ts'),
      '@rocky/cloud': lib('libs/cloud/src/index.ts'),
      '@rocky/publish': lib('libs/publish/src/index.ts'),
      '@rocky/stages': lib('libs/stages/src/index.ts'),
      '@rocky/builders': lib('libs/builders/src/index.ts'),
      '@rocky/upstream-fixture': lib('apps/upstream-fixture/src/index.ts'),
      '@rocky/cache-server': lib('apps/cache-server/src/index.ts'),
    },
  },
  test: {
    include: ['libs/**/*.test.ts', 'apps/**/*.test.ts', 'tools/**/*.test.ts', 'test/**/*.test.ts'],
    pool: 'forks',
    // Integration and end-to-end tests run real tools and nx; they are slow but not timed.
    testTimeout: 600_000,
    hookTimeout: 600_000,
    reporters: ['default', './tools/vitest/summary-reporter.ts'],
  },
});
