// The fixture's signing key: created once per root (no passphrase), used by rpmsign for
// packages and by gpg for detached repomd.xml signatures. Every gpg call names its home
// explicitly, so nothing touches the user's keyring.
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { gpgExport, gpgGenKey, gpgSecretFingerprint, gpgSign, killGpgAgent, run, writeFileAtomic, tempName, mapLimit } from '@rocky/exec';
import { KEY_UID, type FixtureLayout } from './paths';

// The fixture's tests and helpers stop agents by these names.
export { killGpgAgent as killAgent, gpgAgentPids as agentPids } from '@rocky/exec';

/** Fingerprint (40 hex) of the fixture's secret key in `home`, or undefined when there is none. */
export async function keyFingerprint(home: string): Promise<string | undefined> {
  return existsSync(home) ? gpgSecretFingerprint(home, KEY_UID) : undefined;
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
      await gpgGenKey({ homedir: tmp, uid: `Rocky Linux Fixture (release engineering) <${KEY_UID}>`, algo: 'rsa2048', expire: 'never' });
    } finally {
      await killGpgAgent(tmp);
    }
    renameSync(tmp, layout.gnupgHome);
    fpr = await keyFingerprint(layout.gnupgHome);
    if (!fpr) throw new Error(`gpg created no key in ${layout.gnupgHome}`);
    rmSync(layout.keyFile, { force: true });
  }
  if (!existsSync(layout.keyFile)) {
    writeFileAtomic(layout.keyFile, await gpgExport(layout.gnupgHome, fpr));
  }
  return fpr;
}

/** Writes `<file>.asc`, a detached armored signature (temp name, then rename). */
export async function detachSign(home: string, file: string): Promise<void> {
  const out = `${file}.asc`;
  const tmp = tempName(out);
  await gpgSign({ homedir: home, key: KEY_UID, file, out: tmp, mode: 'detach' });
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
