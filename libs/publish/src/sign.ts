// Signing with the site's key: clearsigned CHECKSUM files and detached armored repomd.xml
// signatures. The agent gpg starts for the site's GNUPGHOME is stopped afterwards, so no stage
// leaves a daemon behind. One signature at a time per GNUPGHOME, across processes: Nx runs the
// stages of several releases at once, and stopping the agent under another process's gpg fails
// that signature ("Broken pipe", "No agent running").
import { join } from 'node:path';
import { renameSync, rmSync } from 'node:fs';
import { acquireLockWaiting, run, tempName } from '@rocky/exec';
import type { Site } from '@rocky/config';

type Signing = NonNullable<Site['signing']>;

async function gpg(signing: Signing, args: string[]): Promise<void> {
  const unlock = await acquireLockWaiting(join(signing.gnupgHome, '.releng-signing.lock'), `signing with ${signing.gnupgHome}`, { maxPollMs: 20 });
  try {
    await run(['gpg', '--homedir', signing.gnupgHome, '--batch', '--yes', '--pinentry-mode', 'loopback', '--passphrase', '', '--local-user', signing.keyId, ...args]);
  } finally {
    await run(['gpgconf', '--homedir', signing.gnupgHome, '--kill', 'gpg-agent']).catch(() => undefined);
    unlock();
  }
}

/** gpg --output may write in place: the signature goes to a temp name and is renamed over `out`. */
async function signTo(signing: Signing, mode: string[], file: string, out: string): Promise<void> {
  const tmp = tempName(out);
  try {
    await gpg(signing, [...mode, '--output', tmp, file]);
    renameSync(tmp, out);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** `file` → `out` clearsigned (CHECKSUM → CHECKSUM.asc). */
export const clearsign = (signing: Signing, file: string, out: string) => signTo(signing, ['--clearsign'], file, out);

/** `file` → `out` detached armored signature (repomd.xml → repomd.xml.asc). */
export const detachSign = (signing: Signing, file: string, out: string) => signTo(signing, ['--detach-sign', '--armor'], file, out);

/** Checks a clearsigned or detached signature with the site's keyring. */
export async function verifySignature(signing: Signing, sig: string, file?: string): Promise<void> {
  await run(['gpg', '--homedir', signing.gnupgHome, '--batch', '--verify', sig, ...(file ? [file] : [])]);
}
