// Signing with the site's key: clearsigned CHECKSUM files and detached armored repomd.xml
// signatures. The agent gpg starts for the site's GNUPGHOME is stopped afterwards, so no stage
// leaves a daemon behind. One signature at a time per GNUPGHOME, across processes: Nx runs the
// stages of several releases at once, and stopping the agent under another process's gpg fails
// that signature ("Broken pipe", "No agent running").
import { join } from 'node:path';
import { renameSync, rmSync } from 'node:fs';
import { acquireLockWaiting, tempName } from './fs';
import { gpgSign, gpgVerify, killGpgAgent, type GpgSignOptions } from './gpg';

/** The site's signing key (`site.signing`): kept here, with gpg, so that the stages that sign need no publishing code. */
export interface Signing {
  gnupgHome: string;
  keyId: string;
}

async function sign(signing: Signing, mode: GpgSignOptions['mode'], file: string, out: string): Promise<void> {
  const unlock = await acquireLockWaiting(join(signing.gnupgHome, '.releng-signing.lock'), `signing with ${signing.gnupgHome}`, { maxPollMs: 20 });
  // gpg --output may write in place: the signature goes to a temp name and is renamed over `out`.
  const tmp = tempName(out);
  try {
    await gpgSign({ homedir: signing.gnupgHome, key: signing.keyId, file, out: tmp, mode });
    renameSync(tmp, out);
  } finally {
    rmSync(tmp, { force: true });
    // Gone before the lock is: the next signer must not connect to an agent on its way out (the
    // likely cause of a "keydb_search failed: Connection reset by peer" seen once in CI, under load).
    await killGpgAgent(signing.gnupgHome);
    unlock();
  }
}

/** `file` → `out` clearsigned (CHECKSUM → CHECKSUM.asc). */
export const clearsign = (signing: Signing, file: string, out: string) => sign(signing, 'clearsign', file, out);

/** `file` → `out` detached armored signature (repomd.xml → repomd.xml.asc). */
export const detachSign = (signing: Signing, file: string, out: string) => sign(signing, 'detach', file, out);

/** Checks a clearsigned or detached signature with the site's keyring. */
export async function verifySignature(signing: Signing, sig: string, file?: string): Promise<void> {
  await gpgVerify(signing.gnupgHome, sig, file);
}
