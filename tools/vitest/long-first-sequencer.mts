// Longest files first. On a clean clone (CI) vitest knows no durations and starts the largest
// files first, which put the 10-minute end-to-end files behind dozens of short ones and made the
// suite wait on its tail. The list is the slowest files of a full run, slowest first; a stale
// list costs only speed, never a test. Files not listed follow, ordered as vitest would.
import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

const SLOWEST = [
  'test/e2e/updates.test.ts',
  'test/e2e/publish.test.ts',
  'test/e2e/publish-damage.test.ts',
  'test/faults/faults.test.ts',
  'test/e2e/graph.test.ts',
  'test/e2e/pipeline.test.ts',
  'test/e2e/rocky8.test.ts',
  'test/integration/publish-checksum.test.ts',
  'test/e2e/multi-runner.test.ts',
  'apps/upstream-fixture/src/fixture.test.ts',
  'tools/ci/pipeline.test.ts',
  'libs/iso/src/iso.test.ts',
  'test/integration/sync-faults.test.ts',
  'test/e2e/sig.test.ts',
];

export default class LongFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rest = await super.sort(files);
    const rank = (f: TestSpecification) => {
      const i = SLOWEST.indexOf(relative(this.ctx.config.root, f.moduleId));
      return i < 0 ? SLOWEST.length : i;
    };
    // Array.prototype.sort is stable: unlisted files keep vitest's order.
    return rest.sort((a, b) => rank(a) - rank(b));
  }
}
