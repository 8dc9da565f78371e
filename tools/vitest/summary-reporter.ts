// Prints the closing line CI reads: `N passed, N failed` (plus skipped), counted per test.
import type { Reporter, TestModule } from 'vitest/node';

export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>, errors: ReadonlyArray<unknown>) {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const m of modules) {
      let failedHere = 0;
      for (const t of m.children.allTests()) {
        const s = t.result().state;
        if (s === 'passed') passed++;
        else if (s === 'failed') failed++, failedHere++;
        else skipped++;
      }
      // A file that failed to load, or whose beforeAll/afterAll failed, may have no failed test
      // (its tests show as skipped): count it, so the run can never look green.
      if (m.state() === 'failed' && failedHere === 0) failed++;
    }
    failed += errors.length;
    console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  }
}
