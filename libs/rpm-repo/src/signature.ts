// Verifying upstream's detached, armored repomd.xml signature with gpgv against the key the
// site names, so a compose is only built from metadata the build system signed.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gpgDearmor, gpgKeyIds, gpgvVerify, scratchName, sweepScratch } from '@rocky/exec';

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
      return readdirSync(join(parent, n)).some((f) => f.endsWith('.gpgv.log'));
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
