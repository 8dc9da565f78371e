// The suite's global teardown: the e2e files' shared workspace (test/helpers/workspace.ts
// `sharedWorkspace`) is named by this vitest process's pid, its workers' parent; it goes when
// the run ends, pass or fail, instead of waiting in the temp dir for the next run to sweep it.
import { readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  return () => {
    const mine = new RegExp(`^rocky-shared-.*-${process.pid}-[0-9a-f]{16}(\\.lock)?$`);
    for (const e of readdirSync(tmpdir())) if (mine.test(e)) rmSync(join(tmpdir(), e), { recursive: true, force: true });
  };
}
