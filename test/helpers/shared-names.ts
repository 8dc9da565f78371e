// Where the e2e files' shared workspaces live and how they are named: `rocky-shared-<name>-<vitest
// pid>-<digest>` in the temp dir. workspace.ts makes them; the suite's teardown
// (tools/vitest/shared-teardown.ts) removes its run's. Node built-ins only: the teardown loads it
// outside the test workers.
import { readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PREFIX = 'rocky-shared-';
const NAME = new RegExp(`^${PREFIX}.*-(\\d+)-[0-9a-f]{16}(\\.lock)?$`);

/** The shared workspace `name` of the vitest run `pid`, built from inputs with `digest` (16 hex). */
export const sharedWorkspacePath = (name: string, pid: number, digest: string) => join(tmpdir(), `${PREFIX}${name}-${pid}-${digest}`);

/** Removes the shared workspaces (and their locks) of the vitest runs `gone` says are over. */
export function removeSharedWorkspaces(gone: (pid: number) => boolean): void {
  for (const e of readdirSync(tmpdir())) {
    const m = NAME.exec(e);
    if (m && gone(Number(m[1]))) rmSync(join(tmpdir(), e), { recursive: true, force: true });
  }
}
