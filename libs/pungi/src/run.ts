// Running pungi-koji where the site says: on this host, or on the compose host over SSH (the
// compose root is shared storage, so the compose it writes is read here by its path). Its whole
// output goes to a log; pungi keeps its own in the compose's logs/global/pungi.global.log.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatArgv, run, ToolError } from '@rocky/exec';
import { remoteSh, sshArgv, sshTarget } from '@rocky/builders';
import type { PungiProducer } from '@rocky/config';

export type PungiRunner = PungiProducer['runner'];

export interface RunPungiOptions {
  runner: PungiRunner;
  /** Environment for pungi-koji (on the compose host for ssh, applied with env(1)). */
  env?: Record<string, string>;
  /** Every line pungi-koji printed, with its command line first. */
  logFile: string;
  /** ssh_config for the ssh runner (`-F`); tests use /dev/null. */
  sshConfigFile?: string;
}

export interface PungiRunResult {
  /** The compose directory pungi created (`--print-output-dir`). */
  composeDir: string;
  /** The argv that ran here (with the ssh prefix for the ssh runner). */
  argv: string[];
}

/** pungi-koji failed; `composeDir` is set when it got as far as creating one (its STATUS and logs say more). */
export class PungiRunError extends Error {
  constructor(
    message: string,
    readonly composeDir?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PungiRunError';
  }
}

/** `Compose dir: <path>`, printed by --print-output-dir before the compose starts. */
export function parseComposeDir(stdout: string): string | undefined {
  const m = /^Compose dir: (.+)$/m.exec(stdout);
  return m?.[1].trim();
}

/** The argv that runs `argv` through the runner. */
export function runnerArgv(argv: string[], o: Pick<RunPungiOptions, 'runner' | 'env' | 'sshConfigFile'>): string[] {
  if (o.runner.type === 'local') return argv;
  const env = Object.entries(o.env ?? {}).map(([k, v]) => `${k}=${v}`);
  const ssh = sshArgv(o.runner, { knownHosts: o.runner.knownHosts, configFile: o.sshConfigFile });
  return [...ssh, remoteSh('exec "$@"', [...(env.length ? ['env', ...env] : []), ...argv])];
}

const where = (r: PungiRunner) => (r.type === 'ssh' ? ` on ${sshTarget(r)}` : '');

/**
 * Runs pungi-koji (an argv from pungiKojiArgv with printOutputDir) and returns the compose dir it
 * made. A failure names the exit, the compose dir and its STATUS when there is one, and the logs.
 * A compose that ran is not trusted on pungi's word: verifyPungiCompose reads what it wrote.
 */
export async function runPungiKoji(argv: string[], o: RunPungiOptions): Promise<PungiRunResult> {
  if (!argv.includes('--print-output-dir')) throw new Error('runPungiKoji: the argv must have --print-output-dir (that is how the compose dir is found)');
  const full = runnerArgv(argv, o);
  const env = o.runner.type === 'local' ? { ...process.env, ...o.env } : process.env;
  try {
    const r = await run(full, { logFile: o.logFile, env });
    const composeDir = parseComposeDir(r.stdout);
    if (!composeDir) throw new PungiRunError(`pungi-koji${where(o.runner)} exited 0 without printing its compose dir (see ${o.logFile})`);
    return { composeDir, argv: full };
  } catch (e) {
    if (!(e instanceof ToolError)) throw e instanceof PungiRunError ? e : new PungiRunError(`cannot run pungi-koji${where(o.runner)}: ${(e as Error).message}`, undefined, { cause: e });
    const composeDir = parseComposeDir(e.result.stdout);
    const how = e.result.timedOut ? 'timed out' : e.result.signal ? `was killed by ${e.result.signal}` : `exited ${e.result.code}`;
    if (o.runner.type === 'ssh' && e.result.code === 255 && !composeDir) {
      throw new PungiRunError(`cannot reach the compose host ${sshTarget(o.runner)}: ${tail(e.result.stderr)} (see ${o.logFile})`, undefined, { cause: e });
    }
    let status = '';
    if (composeDir && existsSync(join(composeDir, 'STATUS'))) status = `, compose STATUS ${readFileSync(join(composeDir, 'STATUS'), 'utf8').trim()}`;
    const logs = composeDir ? `${join(composeDir, 'logs', 'global', 'pungi.global.log')} and ${o.logFile}` : o.logFile;
    throw new PungiRunError(
      `pungi-koji${where(o.runner)} ${how}${composeDir ? ` (compose ${composeDir}${status})` : ''}: ${formatArgv(argv)}\n${tail(e.result.stderr || e.result.stdout)}\nfull log: ${logs}`,
      composeDir,
      { cause: e },
    );
  }
}

const tail = (text: string, n = 15) => text.trim().split('\n').slice(-n).join('\n');
