// Verifying upstream's signatures against the key the site names, so a compose is only built
// from what the build system signed: repomd.xml's detached, armored signature with gpgv, and
// every package's own signatures with rpmkeys (what dnf's `--gpgcheck` checks).
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gpgDearmor, gpgKeyIds, gpgvVerify, mapLimit, rpmkeysChecksig, rpmkeysImport, scratchName, sweepScratch } from '@rocky/exec';

const PREFIX = 'releng-gpgv';
let made = 0;

/**
 * Removes the verifier directories in `parent` that killed processes of this host left (a killed
 * sync cannot remove its own), except one holding a gpgv log: a failed verification's evidence,
 * which its error named. Not done by the verifier itself: a dry run changes nothing, anywhere.
 */
export function sweepVerifierDirs(parent = tmpdir()): void {
  const evidence = (n: string) => {
    try {
      return readdirSync(join(parent, n)).some((f) => f.endsWith('.gpgv.log') || f.endsWith('.rpmkeys.log'));
    } catch {
      return true; // unreadable: not ours to judge
    }
  };
  sweepScratch(parent, (n) => n.startsWith(`${PREFIX}@`) && !evidence(n));
}

/** A new directory named by host and pid (scratchName), so that a later verifier removes it if this process is killed. */
function makeDir(parent: string): string {
  for (;;) {
    const dir = join(parent, `${scratchName(PREFIX)}-${(made++).toString(36)}`);
    try {
      mkdirSync(dir, { mode: 0o700 });
      return dir;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; // else a reused pid's leftover: the next name
    }
  }
}

export class SignatureVerifier {
  readonly dir: string;
  private home: string;
  private keyring: string;
  private ready?: Promise<void>;
  /** An rpmdb holding the key alone, for rpmkeys: made at the first package check. */
  private rpmdb?: Promise<string>;
  /** A failed verification's inputs and gpgv log are kept (the error names them). */
  private keep = false;

  /** `parent`: where the verifier's directory goes (default the system's temp dir). */
  constructor(
    readonly keyFile: string,
    parent = tmpdir(),
  ) {
    this.dir = makeDir(parent);
    // gpg's own state for reading the key file, so the user's ~/.gnupg is never touched.
    this.home = join(this.dir, 'gnupg');
    mkdirSync(this.home, { mode: 0o700 });
    this.keyring = join(this.dir, 'trusted.gpg');
  }

  /**
   * Throws naming `what`, with every line gpgv printed, unless `signature` is a good signature
   * of `data` by the key. The data, signature and gpgv's log of a failure stay in the
   * verifier's directory, which the error names.
   */
  async verify(data: Buffer, signature: Buffer, what: string): Promise<void> {
    // gpgv wants a binary keyring; --dearmor turns the armored key file into one. Made at the
    // first verification: a sync with nothing new upstream verifies nothing and runs no gpg.
    await (this.ready ??= gpgDearmor(this.home, this.keyFile, this.keyring));
    const id = Math.random().toString(36).slice(2);
    const d = join(this.dir, `${id}.data`);
    const s = join(this.dir, `${id}.asc`);
    const log = join(this.dir, `${id}.gpgv.log`);
    writeFileSync(d, data);
    writeFileSync(s, signature);
    try {
      await gpgvVerify({ keyring: this.keyring, sig: s, file: d, what, logFile: log });
    } catch (e) {
      this.keep = true;
      throw e;
    }
    for (const f of [d, s, log]) rmSync(f, { force: true });
  }

  /**
   * Checks the signatures of package files (rpmkeys --checksig, `batch` files a run, two runs at
   * a time) against the key alone, as dnf's `--gpgcheck` does: a signature that does not verify,
   * or one by another key, fails. Throws naming each package that failed (`what`), with rpmkeys'
   * words and its log, which is kept. A package with no signature passes here: its signer's key
   * id is checked by the caller.
   */
  async checkPackages(files: { file: string; what: string }[], batch = 256): Promise<void> {
    if (!files.length) return;
    const db = await (this.rpmdb ??= (async () => {
      const dir = join(this.dir, 'rpmdb');
      mkdirSync(dir);
      await rpmkeysImport(dir, this.keyFile);
      return dir;
    })());
    const what = new Map(files.map((f) => [f.file, f.what]));
    const batches: string[][] = [];
    for (let i = 0; i < files.length; i += batch) batches.push(files.slice(i, i + batch).map((f) => f.file));
    const failed: string[] = [];
    const logs: string[] = [];
    await mapLimit(batches, 2, async (b) => {
      const log = join(this.dir, `${Math.random().toString(36).slice(2)}.rpmkeys.log`);
      const bad = await rpmkeysChecksig(db, b, log);
      if (!bad.length) return void rmSync(log, { force: true });
      logs.push(log);
      for (const f of bad) failed.push(`${what.get(f.file)} (${f.why})`);
    });
    if (!failed.length) return;
    this.keep = true;
    const shown = failed.slice(0, 10).map((l) => `\n  ${l}`).join('');
    throw new Error(`${failed.length} package${failed.length > 1 ? 's' : ''} failed the signature check against ${this.keyFile}:${shown}${failed.length > 10 ? `\n  … and ${failed.length - 10} more` : ''}\nrpmkeys' log: ${logs.join(', ')}`);
  }

  /** Key id (16 hex digits) of the verifying key: packages must carry it too. */
  async keyId(): Promise<string> {
    const [id] = await gpgKeyIds(this.home, this.keyFile);
    if (!id) throw new Error(`${this.keyFile}: no public key in it`);
    return id;
  }

  close(): void {
    if (!this.keep) rmSync(this.dir, { recursive: true, force: true });
    else rmSync(this.home, { recursive: true, force: true });
  }
}
