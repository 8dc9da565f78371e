// rpmkeys: RPM signatures checked cryptographically against a keyring of our own, as dnf's
// `--gpgcheck` checks them (empanadas runs every reposync with it).
//
// Facts this relies on (rpm 4.14 to 4.18): `--dbpath DIR --import KEY` puts an armored public key
// into an rpmdb made in DIR, never the system's; `--checksig` prints one line per file,
// `<file>: <checks> OK`, or `... NOT OK` with the reason (a bad signature, a key the db does not
// hold), and exits non-zero when any file failed. A package without any signature passes it:
// the signer's key id is the caller's to check.
import { run, ToolError } from './run';

export function rpmkeysImportArgv(dbpath: string, keyFile: string): string[] {
  return ['rpmkeys', '--dbpath', dbpath, '--import', keyFile];
}

export function rpmkeysChecksigArgv(dbpath: string, files: string[]): string[] {
  return ['rpmkeys', '--dbpath', dbpath, '--checksig', ...files];
}

export async function rpmkeysImport(dbpath: string, keyFile: string, logFile?: string): Promise<void> {
  await run(rpmkeysImportArgv(dbpath, keyFile), { logFile });
}

/**
 * The files whose signatures rpmkeys refused, each with its words (`digests SIGNATURES NOT OK`);
 * empty when all passed. A failure that names no file (rpmkeys could not run the check) is thrown.
 */
export async function rpmkeysChecksig(dbpath: string, files: string[], logFile?: string): Promise<{ file: string; why: string }[]> {
  try {
    await run(rpmkeysChecksigArgv(dbpath, files), { logFile });
    return [];
  } catch (e) {
    if (!(e instanceof ToolError) || e.result.signal || e.result.timedOut) throw e;
    const named = new Set(files);
    const failed = e.result.stdout.split('\n').flatMap((line) => {
      const at = line.indexOf(': ');
      const file = line.slice(0, at);
      return at > 0 && named.has(file) && line.includes('NOT OK') ? [{ file, why: line.slice(at + 2).trim() }] : [];
    });
    if (!failed.length) throw e;
    return failed;
  }
}
