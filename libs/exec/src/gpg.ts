// gpg, gpgv and gpgconf: their command lines (pure argv builders) and the functions that run
// them, for everything that signs or verifies: publishing (CHECKSUM.asc, repomd.xml.asc), sync
// (upstream's repomd.xml signature) and the fixture upstream (its key, its signatures). It lives
// here, beside the runner, because those three are in different libs and none should depend on
// another for a tool.
//
// Facts this relies on (gpg 2.2): every call names its homedir, so nothing reads or writes the
// user's ~/.gnupg; `--batch --pinentry-mode loopback --passphrase ''` signs with a key without a
// passphrase and never asks; signing starts a gpg-agent for the homedir that outlives gpg, so
// whoever signs stops it (killGpgAgent); gpgv wants a binary keyring (`gpg --dearmor` makes one
// from an armored key) and exits 1 on a bad signature, 2 when it cannot check one; its stderr
// says why, over several lines (a key "created N days in the future" comes before the final
// "Can't check signature: Bad public key"), so a failure keeps all of it.
import { readFileSync, readdirSync } from 'node:fs';
import { run, ToolError, type RunOptions } from './run';

/** Options for a gpg that must never ask anything: no tty, loopback pinentry, empty passphrase. */
const batch = (homedir: string) => ['gpg', '--homedir', homedir, '--batch', '--no-tty', '--pinentry-mode', 'loopback', '--passphrase', ''];
/** gpg's clock set to this time (seconds since the epoch): keys and signatures made "then". */
const faked = (t?: number) => (t === undefined ? [] : ['--faked-system-time', String(t)]);

export interface GpgSignOptions {
  homedir: string;
  /** --local-user: key id, fingerprint or user id. */
  key: string;
  file: string;
  out: string;
  /** `detach`: armored detached signature (repomd.xml.asc); `clearsign`: CHECKSUM → CHECKSUM.asc. */
  mode: 'detach' | 'clearsign';
  fakedTime?: number;
}

export function gpgSignArgv(o: GpgSignOptions): string[] {
  const how = o.mode === 'detach' ? ['--armor', '--detach-sign'] : ['--clearsign'];
  return [...batch(o.homedir), ...faked(o.fakedTime), '--yes', '--local-user', o.key, ...how, '--output', o.out, o.file];
}

/** gpg --verify of a clearsigned file, or of a detached signature of `file`, with the homedir's keyring. */
export function gpgVerifyArgv(homedir: string, sig: string, file?: string): string[] {
  return ['gpg', '--homedir', homedir, '--batch', '--verify', sig, ...(file ? [file] : [])];
}

/** gpgv: a detached signature against exactly the keys of `keyring` (a binary keyring). */
export function gpgvArgv(keyring: string, sig: string, file: string): string[] {
  return ['gpgv', '--keyring', keyring, sig, file];
}

/** An armored key file → a binary keyring gpgv can read. */
export function gpgDearmorArgv(homedir: string, keyFile: string, out: string): string[] {
  return ['gpg', '--homedir', homedir, '--batch', '--yes', '--dearmor', '--output', out, keyFile];
}

/** The keys of a key file, in gpg's colon format, without importing them. */
export function gpgShowKeysArgv(homedir: string, keyFile: string): string[] {
  return ['gpg', '--homedir', homedir, '--batch', '--with-colons', '--show-keys', keyFile];
}

export function gpgListSecretKeysArgv(homedir: string, uid: string): string[] {
  return ['gpg', '--homedir', homedir, '--batch', '--with-colons', '--list-secret-keys', uid];
}

export interface GpgGenKeyOptions {
  homedir: string;
  uid: string;
  /** Default rsa2048. */
  algo?: string;
  /** Default never. */
  expire?: string;
  fakedTime?: number;
}

/** A signing-only key without a passphrase. */
export function gpgGenKeyArgv(o: GpgGenKeyOptions): string[] {
  return [...batch(o.homedir), ...faked(o.fakedTime), '--quick-gen-key', o.uid, o.algo ?? 'rsa2048', 'sign', o.expire ?? 'never'];
}

export function gpgExportArgv(homedir: string, key: string): string[] {
  return ['gpg', '--homedir', homedir, '--batch', '--armor', '--export', key];
}

export function gpgImportArgv(homedir: string, keyFile: string): string[] {
  return ['gpg', '--homedir', homedir, '--batch', '--import', keyFile];
}

export function gpgconfKillAgentArgv(homedir: string): string[] {
  return ['gpgconf', '--homedir', homedir, '--kill', 'gpg-agent'];
}

// --- runners ---------------------------------------------------------------------------------

export async function gpgSign(o: GpgSignOptions, opts: RunOptions = {}): Promise<void> {
  await run(gpgSignArgv(o), opts);
}

export async function gpgVerify(homedir: string, sig: string, file?: string, opts: RunOptions = {}): Promise<void> {
  await run(gpgVerifyArgv(homedir, sig, file), opts);
}

/** A signature gpgv refused: `diagnostics` is every line gpgv printed to stderr. */
export class SignatureError extends Error {
  constructor(
    readonly what: string,
    readonly diagnostics: string[],
    readonly logFile?: string,
  ) {
    const lines = diagnostics.length ? diagnostics.map((l) => `\n  ${l}`).join('') : ' (gpgv printed nothing)';
    super(`${what}: signature verification failed:${lines}${logFile ? `\ngpgv's log: ${logFile}` : ''}`);
    this.name = 'SignatureError';
  }
}

/** Runs gpgv; a refused signature throws a SignatureError naming `what` with all of gpgv's stderr. */
export async function gpgvVerify(o: { keyring: string; sig: string; file: string; what: string; logFile?: string }): Promise<void> {
  try {
    await run(gpgvArgv(o.keyring, o.sig, o.file), { logFile: o.logFile });
  } catch (e) {
    if (!(e instanceof ToolError)) throw e;
    const lines = e.result.stderr.split('\n').map((l) => l.trimEnd()).filter(Boolean);
    throw new SignatureError(o.what, lines, o.logFile);
  }
}

export async function gpgDearmor(homedir: string, keyFile: string, out: string): Promise<void> {
  await run(gpgDearmorArgv(homedir, keyFile, out));
}

/** Key ids (16 hex digits, lower case) of the primary keys in a key file. */
export async function gpgKeyIds(homedir: string, keyFile: string): Promise<string[]> {
  const r = await run(gpgShowKeysArgv(homedir, keyFile));
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith('pub:'))
    .map((l) => l.split(':')[4].toLowerCase());
}

/** Fingerprint (40 hex) of the secret key `uid` in `homedir`, or undefined when there is none. */
export async function gpgSecretFingerprint(homedir: string, uid: string): Promise<string | undefined> {
  const r = await run(gpgListSecretKeysArgv(homedir, uid), { okCodes: [0, 2] });
  let inSec = false;
  for (const line of r.stdout.split('\n')) {
    const f = line.split(':');
    if (f[0] === 'sec') inSec = true;
    else if (f[0] === 'fpr' && inSec) return f[9];
  }
  return undefined;
}

export async function gpgGenKey(o: GpgGenKeyOptions): Promise<void> {
  await run(gpgGenKeyArgv(o));
}

/** The armored public key. */
export async function gpgExport(homedir: string, key: string): Promise<string> {
  return (await run(gpgExportArgv(homedir, key))).stdout;
}

/**
 * Stops the gpg-agent that signing started for `homedir` (it outlives gpg otherwise). gpgconf
 * finds the agent by its socket, which lives under /run/user/<uid> when that exists and in the
 * homedir otherwise; an agent started before /run/user/<uid> appeared is missed, so agents still
 * running for exactly this homedir are waited for and then signalled by pid.
 */
export async function killGpgAgent(homedir: string): Promise<void> {
  await run(gpgconfKillAgentArgv(homedir)).catch(() => undefined);
  // The agent exits shortly after gpgconf returns (a few ms): wait for it, then signal what is left.
  for (let i = 0; i < 200 && gpgAgentPids(homedir).length; i++) await sleep(10);
  for (const pid of gpgAgentPids(homedir)) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  for (let i = 0; i < 20 && gpgAgentPids(homedir).length; i++) await sleep(50);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Pids of gpg-agent processes started with `--homedir <homedir>` (Linux /proc; empty elsewhere). */
export function gpgAgentPids(homedir: string): number[] {
  const pids: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return pids;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const i = argv.indexOf('--homedir');
    if (argv[0]?.endsWith('gpg-agent') && i > 0 && argv[i + 1] === homedir) pids.push(Number(e));
  }
  return pids;
}
