// Which tools are installed, and at which version: the oldest versions the pipeline relies on
// (the tools of Rocky 8 hosts, research/toolchain.md) and how each tool says its version. Looked
// up in a given PATH, and asked in ways that write nothing (`dnf --version` opens the rpmdb and
// dnf's logs; its Python module does not).
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { run } from './run';

/** The oldest version of each tool the pipeline works with, and why; tools not listed need only be present. */
export const TOOL_MINIMUMS: Record<string, { min: string; below?: string; why: string }> = {
  rsync: { min: '3.1.3', why: "Rocky 8's rsync; publishing uses --delay-updates, --delete-delay and --chown" },
  xorriso: { min: '1.4.6', why: '-boot_image any replay and -report_el_torito as_mkisofs' },
  gpg: { min: '2.2', why: '--pinentry-mode loopback, --show-keys' },
  dnf: { min: '4', below: '5', why: 'dnf 4 with dnf-plugins-core (reposync, repoclosure); dnf5 takes other options' },
};

/** The first `N.N[.N]` in a tool's version output (`rsync  version 3.2.7`, `gpg (GnuPG) 2.2.40`, `Version: 0.17.3`). */
export function parseVersion(text: string): string | undefined {
  return /(\d+)\.(\d+)(?:\.(\d+))?/.exec(text)?.[0];
}

/** Compares dotted versions numerically (`3.1.10` > `3.1.3`; missing parts count as 0). */
export function compareVersions(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d) return Math.sign(d);
  }
  return 0;
}

/** The executable `tool` resolves to in `PATH` (as the shell would find it), or undefined. */
export function findTool(tool: string, PATH = process.env.PATH ?? ''): string | undefined {
  const executable = (p: string) => {
    try {
      accessSync(p, constants.X_OK);
      return statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (tool.includes('/')) return executable(tool) ? tool : undefined;
  for (const dir of PATH.split(delimiter)) if (dir && isAbsolute(dir) && executable(join(dir, tool))) return join(dir, tool);
  return undefined;
}

/** How a tool prints its version, by tool; the rest answer `--version`. */
const VERSION_ARGS: Record<string, string[]> = { xorriso: ['-version'] };

/**
 * The version of the tool at `path` (undefined when it prints none). dnf 4 is a Python script:
 * it is asked through its module, with the script's interpreter, which also shows that
 * dnf-plugins-core is there (dnf5 is a program, and says its version itself).
 */
export async function toolVersion(tool: string, path: string, env: NodeJS.ProcessEnv = process.env): Promise<{ version?: string; output: string }> {
  let argv = [path, ...(VERSION_ARGS[tool] ?? ['--version'])];
  const line = tool === 'dnf' ? readFileSync(path).subarray(0, 200).toString('latin1').split('\n')[0] : '';
  if (/^#!.*python/.test(line)) argv = [...line.slice(2).trim().split(/\s+/), '-B', '-c', 'import dnf.const, dnfpluginscore; print(dnf.const.VERSION)'];
  const r = await run(argv, { env, timeoutMs: 30_000 });
  const output = `${r.stdout}\n${r.stderr}`.trim();
  return { version: parseVersion(output), output };
}
