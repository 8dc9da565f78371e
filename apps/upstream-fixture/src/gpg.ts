// The fixture's signing keys (the main key and the SIGs' key): each created once per root (no
// passphrase) in a GNUPGHOME of its own, used by rpmsign for packages and by gpg for detached
// repomd.xml signatures. Every gpg call names its home explicitly, so nothing touches the user's keyring.
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { gpgExport, gpgGenKey, gpgSecretFingerprint, gpgSign, killGpgAgent, run, writeFileAtomic, tempName, mapLimit } from '@rocky/exec';
import type { FixtureKey, FixtureLayout } from './paths';

// The fixture's tests and helpers stop agents by these names.
export { killGpgAgent as killAgent, gpgAgentPids as agentPids } from '@rocky/exec';

/** What signs: a key's home, the user id that selects it, and its exported public key. */
export type SigningKey = Pick<FixtureKey, 'home' | 'uid' | 'keyFile'>;

/** Fingerprint (40 hex) of the key's secret key in its home, or undefined when there is none. */
export async function keyFingerprint(key: SigningKey): Promise<string | undefined> {
  return existsSync(key.home) ? gpgSecretFingerprint(key.home, key.uid) : undefined;
}

/** Creates the key (into a temp home, renamed into place) unless it exists; exports the public key. */
export async function ensureKey(layout: FixtureLayout, key: FixtureKey): Promise<string> {
  let fpr = await keyFingerprint(key);
  if (!fpr) {
    rmSync(key.home, { recursive: true, force: true });
    mkdirSync(layout.tmp, { recursive: true });
    const tmp = tempName(key.home);
    mkdirSync(tmp, { mode: 0o700 });
    try {
      // RSA like Rocky's keys; 2048 bits because rpmsign runs gpg once per package and a
      // 3072-bit signature costs about three times as much here.
      await gpgGenKey({ homedir: tmp, uid: key.userId, algo: 'rsa2048', expire: 'never' });
    } finally {
      await killGpgAgent(tmp);
    }
    renameSync(tmp, key.home);
    fpr = await keyFingerprint(key);
    if (!fpr) throw new Error(`gpg created no key in ${key.home}`);
    rmSync(key.keyFile, { force: true });
  }
  if (!existsSync(key.keyFile)) {
    writeFileAtomic(key.keyFile, await gpgExport(key.home, fpr));
  }
  return fpr;
}

/** Writes `<file>.asc`, a detached armored signature (temp name, then rename). */
export async function detachSign(key: SigningKey, file: string): Promise<void> {
  const out = `${file}.asc`;
  const tmp = tempName(out);
  await gpgSign({ homedir: key.home, key: key.uid, file, out: tmp, mode: 'detach' });
  renameSync(tmp, out);
}

/** Signs RPMs in place with rpmsign (they are new files nobody links to yet), two batches at a time. */
export async function rpmSign(key: SigningKey, files: string[]): Promise<void> {
  // Two processes use both cores; batches bound the argv length at large scales.
  const size = Math.min(400, Math.ceil(files.length / 2));
  const batches: string[][] = [];
  for (let i = 0; i < files.length; i += size) batches.push(files.slice(i, i + size));
  await mapLimit(
    batches,
    2,
    (batch) =>
      run(['rpmsign', '--define', '__gpg /usr/bin/gpg', '--define', `_gpg_name ${key.uid}`, '--define', `_gpg_path ${key.home}`, '--addsign', ...batch], {
        env: { ...process.env, LC_ALL: 'C' },
      }),
  );
}
