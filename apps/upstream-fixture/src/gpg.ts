// The fixture's signing key: created once per root (no passphrase), used by rpmsign for
// packages and by gpg for detached repomd.xml signatures. Every gpg call names its home
// explicitly, so nothing touches the user's keyring.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { run, writeFileAtomic, tempName, mapLimit } from '@rocky/exec';
import { KEY_UID, type FixtureLayout } from './paths';

const GPG = 'gpg';
const base = (home: string) => [GPG, '--homedir', home, '--batch', '--no-tty', '--pinentry-mode', 'loopback', '--passphrase', ''];

/** Fingerprint (40 hex) of the fixture's secret key in `home`, or undefined when there is none. */
export async function keyFingerprint(home: string): Promise<string | undefined> {
  if (!existsSync(home)) return undefined;
  const r = await run([GPG, '--homedir', home, '--batch', '--with-colons', '--list-secret-keys', KEY_UID], { okCodes: [0, 2] });
  let inSec = false;
  for (const line of r.stdout.split('\n')) {
    const f = line.split(':');
    if (f[0] === 'sec') inSec = true;
    else if (f[0] === 'fpr' && inSec) return f[9];
  }
  return undefined;
}

/** Creates the key (into a temp home, renamed into place) unless it exists; exports the public key. */
export async function ensureKey(layout: FixtureLayout): Promise<string> {
  let fpr = await keyFingerprint(layout.gnupgHome);
  if (!fpr) {
    rmSync(layout.gnupgHome, { recursive: true, force: true });
    mkdirSync(layout.tmp, { recursive: true });
    const tmp = tempName(layout.gnupgHome);
    mkdirSync(tmp, { mode: 0o700 });
    try {
      // RSA like Rocky's keys; 2048 bits because rpmsign runs gpg once per package and a
      // 3072-bit signature costs about three times as much here.
      await run([...base(tmp), '--quick-gen-key', `Rocky Linux Fixture (release engineering) <${KEY_UID}>`, 'rsa2048', 'sign', 'never']);
    } finally {
      await killAgent(tmp);
    }
    renameSync(tmp, layout.gnupgHome);
    fpr = await keyFingerprint(layout.gnupgHome);
    if (!fpr) throw new Error(`gpg created no key in ${layout.gnupgHome}`);
    rmSync(layout.keyFile, { force: true });
  }
  if (!existsSync(layout.keyFile)) {
    const r = await run([GPG, '--homedir', layout.gnupgHome, '--batch', '--armor', '--export', fpr]);
    writeFileAtomic(layout.keyFile, r.stdout);
  }
  return fpr;
}

/** Writes `<file>.asc`, a detached armored signature (temp name, then rename). */
export async function detachSign(home: string, file: string): Promise<void> {
  const out = `${file}.asc`;
  const tmp = tempName(out);
  await run([...base(home), '--yes', '--local-user', KEY_UID, '--armor', '--detach-sign', '--output', tmp, file]);
  renameSync(tmp, out);
}

/** Signs RPMs in place with rpmsign (they are new files nobody links to yet), two batches at a time. */
export async function rpmSign(home: string, files: string[]): Promise<void> {
  // Two processes use both cores; batches bound the argv length at large scales.
  const size = Math.min(400, Math.ceil(files.length / 2));
  const batches: string[][] = [];
  for (let i = 0; i < files.length; i += size) batches.push(files.slice(i, i + size));
  await mapLimit(
    batches,
    2,
    (batch) =>
      run(['rpmsign', '--define', '__gpg /usr/bin/gpg', '--define', `_gpg_name ${KEY_UID}`, '--define', `_gpg_path ${home}`, '--addsign', ...batch], {
        env: { ...process.env, LC_ALL: 'C' },
      }),
  );
}

/**
 * Stops the gpg-agent that signing started for `home` (it outlives gpg otherwise). gpgconf
 * finds the agent by its socket, which lives under /run/user/<uid> when that exists and in the
 * homedir otherwise; an agent started before /run/user/<uid> appeared is missed, so agents
 * still running for exactly this homedir are also signalled by pid.
 */
export async function killAgent(home: string): Promise<void> {
  await run(['gpgconf', '--homedir', home, '--kill', 'gpg-agent']).catch(() => undefined);
  // The agent exits shortly after gpgconf returns; wait for it, then signal what is left.
  for (let i = 0; i < 40 && agentPids(home).length; i++) await sleep(50);
  for (const pid of agentPids(home)) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  for (let i = 0; i < 20 && agentPids(home).length; i++) await sleep(50);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Pids of gpg-agent processes started with `--homedir <home>` (Linux /proc; empty elsewhere). */
export function agentPids(home: string): number[] {
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
    if (argv[0]?.endsWith('gpg-agent') && i > 0 && argv[i + 1] === home) pids.push(Number(e));
  }
  return pids;
}
