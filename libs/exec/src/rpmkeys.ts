// rpmkeys: RPM signatures checked cryptographically against a keyring of our own, as dnf's
// `--gpgcheck` checks them (empanadas runs every reposync with it).
//
// Facts this relies on (rpm 4.16 and 4.18 alike; 4.14 prints the same line shape): `--dbpath DIR
// --import KEY` puts an armored public key into an rpmdb made in DIR, never the system's;
// `--checksig` prints one line per file it could read, `<file>: <checks> OK`, or `... NOT OK`
// (a bad signature, a key the db does not hold), and exits non-zero when any failed; a file it
// cannot read gets no line, only an error on stderr. A package without any signature passes it:
// the signer's key id is the caller's to check.
import type { Readable } from 'node:stream';
import { run } from './run';

export function rpmkeysImportArgv(dbpath: string, keyFile: string): string[] {
  return ['rpmkeys', '--dbpath', dbpath, '--import', keyFile];
}

/**
 * rpmkeys --checksig over the NUL-separated file names on stdin, `batch` files to a run, by
 * xargs: the caller forks once, not once per batch (a fork of a process of a few hundred MiB
 * took ~10 ms of its main thread here). No names, no run.
 */
export function rpmkeysChecksigArgv(dbpath: string, batch: number): string[] {
  return ['xargs', '-0', '-r', '-n', String(batch), 'rpmkeys', '--dbpath', dbpath, '--checksig'];
}

export async function rpmkeysImport(dbpath: string, keyFile: string, logFile?: string): Promise<void> {
  await run(rpmkeysImportArgv(dbpath, keyFile), { logFile });
}

/**
 * rpmkeys' verdict on each file `input` names (NUL-separated, as they come), by file: its words,
 * `digests signatures OK` or `digests SIGNATURES NOT OK`. `named` tells the files asked about
 * (a verdict's words may hold `: ` too). A file rpmkeys could not read has none: `stderr` (its
 * tail; the log has it whole) says why. A run that failed otherwise (xargs could not start
 * rpmkeys, a signal) throws the tool error.
 */
export async function rpmkeysChecksig(dbpath: string, input: Readable, batch: number, named: (file: string) => boolean, logFile?: string): Promise<{ verdicts: Map<string, string>; stderr: string }> {
  // xargs exits 123 when any run exited 1-125: a refused signature, or a file it could not read.
  const r = await run(rpmkeysChecksigArgv(dbpath, batch), { input, logFile, okCodes: [0, 123] });
  const verdicts = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    for (let at = line.indexOf(': '); at > 0; at = line.indexOf(': ', at + 1)) {
      if (!named(line.slice(0, at))) continue;
      verdicts.set(line.slice(0, at), line.slice(at + 2).trim());
      break;
    }
  }
  return { verdicts, stderr: r.stderr };
}
