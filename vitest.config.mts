import { defineConfig } from 'vitest/config';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import LongFirstSequencer from './tools/vitest/long-first-sequencer.mts';

const here = dirname(fileURLToPath(import.meta.url));
// The workspace's aliases have one home, tsconfig.base.json's `paths`; vitest resolves the same.
const { paths } = JSON.parse(readFileSync(resolve(here, 'tsconfig.base.json'), 'utf8')).compilerOptions as { paths: Record<string, string[]> };
const alias = Object.fromEntries(Object.entries(paths).map(([name, [target]]) => [name, resolve(here, target)]));

export default defineConfig({
  resolve: { alias },
  test: {
    include: ['bench/**/*.test.ts', 'libs/**/*.test.ts', 'apps/**/*.test.ts', 'tools/**/*.test.ts', 'tools/**/*.spec.ts', 'test/**/*.test.ts'],
    pool: 'forks',
    // vitest's default on 2 cores is one file at a time; the integration and end-to-end files
    // spend much of their time waiting on the tools and nx processes they start, so three files
    // at once keep both cores busy. Each file has its own temp dirs, ports and workspaces.
    maxWorkers: 3,
    // The slowest files start first, so the suite does not end waiting on one of them.
    sequence: { sequencer: LongFirstSequencer },
    // Integration and end-to-end tests run real tools and nx; they are slow but not timed (these
    // limits only stop a hung test).
    testTimeout: 1_800_000,
    hookTimeout: 1_800_000,
    reporters: ['default', './tools/vitest/summary-reporter.ts'],
    // Removes what the run shared between files (the e2e files' shared workspace).
    globalSetup: ['./tools/vitest/shared-teardown.ts'],
  },
});
