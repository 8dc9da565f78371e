// Before a compose starts: the producer's command, checkouts, config files and target dir are
// where the site says, on the host that runs pungi (here, or the compose host over one ssh call).
// A missing one is named by its site field, instead of failing after pungi created a compose dir.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { hasTool, isExecutableFile, run, ToolError } from '@rocky/exec';
import type { PungiProducer } from '@rocky/config';
import { runnerArgv } from './run';

interface Need {
  field: string;
  path: string;
  kind: 'dir' | 'file' | 'exec';
}

function needs(p: PungiProducer): Need[] {
  const out: Need[] = [{ field: 'config.path', path: p.config.path, kind: 'dir' }];
  if (p.comps) out.push({ field: 'comps.path', path: p.comps.path, kind: 'dir' });
  for (const [c, files] of Object.entries(p.composes)) for (const kind of ['produce', 'update'] as const) out.push({ field: `composes.${c}.${kind}`, path: join(p.config.path, files[kind]), kind: 'file' });
  out.push({ field: 'targetDir', path: p.targetDir, kind: 'dir' });
  if (p.notificationScript) out.push({ field: 'notificationScript', path: p.notificationScript, kind: 'exec' });
  return out;
}

const what = { dir: 'a directory', file: 'a file', exec: 'an executable file' };

/** Throws an error listing every missing piece, each by its field under `producers.<release>`. */
export async function checkProducer(p: PungiProducer, release: string, o: { sshConfigFile?: string } = {}): Promise<void> {
  const list = needs(p);
  const cmd = p.command[0];
  const missing: string[] = [];
  if (p.runner.type === 'local') {
    for (const n of list) {
      const ok = n.kind === 'dir' ? existsSync(n.path) && statSync(n.path).isDirectory() : n.kind === 'file' ? existsSync(n.path) && statSync(n.path).isFile() : isExecutableFile(n.path);
      if (!ok) missing.push(`${n.field}: ${n.path} is not ${what[n.kind]}`);
    }
    if (cmd.includes('/') ? !isExecutableFile(cmd) : !hasTool(cmd)) missing.push(`command: ${cmd} is not ${cmd.includes('/') ? 'an executable file' : 'in PATH'}`);
  } else {
    // One round trip: the remote shell prints the index of every check that fails.
    const tests = list.map((n) => (n.kind === 'dir' ? '-d' : n.kind === 'file' ? '-f' : '-x'));
    const script = 'i=0; for t in $TESTS; do i=$((i+1)); eval "f=\\${$i}"; test "$t" "$f" || echo "$i"; done; command -v "$CMD" >/dev/null 2>&1 || echo cmd';
    const argv = runnerArgv(['env', `TESTS=${tests.join(' ')}`, `CMD=${cmd}`, 'sh', '-c', script, 'releng', ...list.map((n) => n.path)], { runner: p.runner, sshConfigFile: o.sshConfigFile });
    let out: string;
    try {
      out = (await run(argv, { timeoutMs: 120_000 })).stdout;
    } catch (e) {
      const detail = e instanceof ToolError ? e.result.stderr.trim().split('\n').slice(-5).join('\n') : (e as Error).message;
      throw new Error(`producers.${release}: cannot check the compose host ${p.runner.host}: ${detail}`, { cause: e });
    }
    for (const line of out.split('\n').filter(Boolean)) {
      if (line === 'cmd') missing.push(`command: ${cmd} is not found on ${p.runner.host}`);
      else {
        const n = list[Number(line) - 1];
        if (n) missing.push(`${n.field}: ${n.path} is not ${what[n.kind]} on ${p.runner.host}`);
      }
    }
  }
  if (missing.length) throw new Error(`producers.${release}: the producer cannot run:\n  ${missing.join('\n  ')}`);
}
