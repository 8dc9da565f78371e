// The suite's global teardown: the e2e files' shared workspace (test/helpers/workspace.ts
// `sharedWorkspace`) is named by this vitest process's pid, its workers' parent; it goes when
// the run ends, pass or fail, instead of waiting in the temp dir for the next run to sweep it.
import { removeSharedWorkspaces } from '../../test/helpers/shared-names';

export default function setup(): () => void {
  return () => removeSharedWorkspaces((pid) => pid === process.pid);
}
