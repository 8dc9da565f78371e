// Verifying upstream's signatures against the key the site names, so a compose is only built
// from what the build system signed: repomd.xml's detached, armored signature with gpgv, and
// every package's own signatures with rpmkeys (what dnf's `--gpgcheck` checks).
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { gpgDearmor, gpgKeyIds, gpgvVerify, rpmkeysChecksig, rpmkeysImport, scratchName, sweepScratch } from '@rocky/exec';

const PREFIX = 'releng-gpgv';
let made = 0;

/**
 * Removes the verifier directories in `parent` that killed processes of this host left (a killed
 * sync cannot remove its own), except a failure's evidence, which its error named: one marked
 * KEPT, or holding a gpgv log (earlier versions' evidence). A log alone is no evidence: a run
 * killed while rpmkeys ran leaves one. Not done by the verifier itself: a dry run changes nothing,
 * anywhere.
 */
export function sweepVerifierDirs(parent = tmpdir()): void {
  const evidence = (n: string) => {
    try {
      return readdirSync(join(parent, n)).some((f) => f === KEPT || f.endsWith('.gpgv.log'));
    } catch {
      return true; // unreadable: not ours to judge
    }
  };
  sweepScratch(parent, (n) => n.startsWith(`${PREFIX}@`) && !evidence(n));
}

/** The mark of a verifier directory kept as a failure's evidence. */
const KEPT = 'KEPT';

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

/** A package whose signatures rpmkeys refused: `why` is its words (`digests SIGNATURES NOT OK`), `log` its log. */
export class RefusedSignature extends Error {
  constructor(
    readonly what: string,
    readonly why: string,
    readonly log: string,
  ) {
    super(`${what}: ${why}`);
    this.name = 'RefusedSignature';
  }
}

/** An xargs running rpmkeys over the package files written to `input`, and what each file is for. */
interface Lane {
  input: PassThrough;
  files: Map<string, { what: string; resolve: () => void; reject: (e: unknown) => void }[]>;
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

  /** `parent`: where the verifier's directory goes (default the system's temp dir); `packageBatch`: files an rpmkeys run checks. */
  constructor(
    readonly keyFile: string,
    parent = tmpdir(),
    readonly packageBatch = 256,
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
      this.keepEvidence();
      throw e;
    }
    for (const f of [d, s, log]) rmSync(f, { force: true });
  }

  /**
   * Queues a package file for the check of its signatures against the key alone (rpmkeys
   * --checksig), as dnf's `--gpgcheck` checks them: a signature that does not verify, or one by
   * another key, is refused. Files go round-robin to two lanes, each one xargs that runs rpmkeys
   * on every `packageBatch` files as they come (a sync queues packages as they arrive). Settles
   * once its lane has ended (flushPackages) and run; refused, with a RefusedSignature (see
   * settle). A package with no signature passes here: its signer's key id is the caller's to check.
   */
  checkPackage(file: string, what: string): Promise<void> {
    const lanes = (this.lanes ??= []);
    const i = this.nextLane++ % 2;
    const lane = (lanes[i] ??= this.lane());
    return new Promise<void>((resolve, reject) => {
      const waiting = lane.files.get(file);
      if (waiting) return void waiting.push({ what, resolve, reject }); // asked twice: one verdict
      lane.files.set(file, [{ what, resolve, reject }]);
      lane.input.write(`${file}\0`);
    });
  }

  /** Ends the lanes: the files queued so far are checked, each lane's last batch too, and settle; later files go to new lanes. */
  flushPackages(): void {
    for (const lane of this.lanes ?? []) lane?.input.end();
    this.lanes = undefined;
  }

  /**
   * Waits for package checks; throws the first error that is not a verdict on a package (rpmkeys
   * could not run, or read a file), else one naming every package refused, with rpmkeys' words and
   * its logs, kept.
   */
  async settle(checks: Promise<void>[]): Promise<void> {
    const errors = (await Promise.allSettled(checks)).flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    const other = errors.find((e) => !(e instanceof RefusedSignature));
    if (other) throw other;
    const refused = [...new Map((errors as RefusedSignature[]).map((e) => [e.what, e])).values()];
    if (!refused.length) return;
    const shown = refused.slice(0, 10).map((e) => `\n  ${e.what} (${e.why})`).join('');
    const more = refused.length > 10 ? `\n  … and ${refused.length - 10} more` : '';
    throw new Error(`${refused.length} package${refused.length > 1 ? 's' : ''} failed the signature check against ${this.keyFile}:${shown}${more}\nrpmkeys' log: ${[...new Set(refused.map((e) => e.log))].join(', ')}`);
  }

  private lanes?: Lane[];
  private nextLane = 0;
  /** The lanes' runs not ended yet, and whether close was called. */
  private running = new Set<Promise<void>>();
  private closed = false;

  /** One xargs running rpmkeys over the files written to it; its files settle when it has exited. */
  private lane(): Lane {
    const lane: Lane = { input: new PassThrough(), files: new Map() };
    const log = join(this.dir, `${Math.random().toString(36).slice(2)}.rpmkeys.log`);
    const db = (this.rpmdb ??= (async () => {
      const dir = join(this.dir, 'rpmdb');
      mkdirSync(dir);
      await rpmkeysImport(dir, this.keyFile);
      return dir;
    })());
    const running = db.then((dir) => rpmkeysChecksig(dir, lane.input, this.packageBatch, (f) => lane.files.has(f), log)).then(
      ({ verdicts, stderr }) => {
        const why = stderr.trim().split('\n').slice(-3).join(' / ') || 'nothing on stderr';
        let kept = false;
        for (const [file, waiting] of lane.files) {
          const words = verdicts.get(file);
          if (words && !words.includes('NOT OK')) {
            for (const f of waiting) f.resolve();
            continue;
          }
          kept = true;
          for (const f of waiting) f.reject(words ? new RefusedSignature(f.what, words, log) : new Error(`rpmkeys gave no verdict on ${f.what} (${file}): ${why}; full log: ${log}`));
        }
        if (kept) this.keepEvidence();
        else rmSync(log, { force: true });
      },
      (e: unknown) => {
        this.keepEvidence(); // the log a tool error names
        for (const waiting of lane.files.values()) for (const f of waiting) f.reject(e);
      },
    );
    this.running.add(running);
    void running.finally(() => this.running.delete(running));
    return lane;
  }

  /** Key id (16 hex digits) of the verifying key: packages must carry it too. */
  async keyId(): Promise<string> {
    const [id] = await gpgKeyIds(this.home, this.keyFile);
    if (!id) throw new Error(`${this.keyFile}: no public key in it`);
    return id;
  }

  /** The directory stays, marked, for the log a failure's error names: close and the sweep leave it. */
  private keepEvidence(): void {
    if (this.closed) return; // a lane that ended after close was called: its verdicts go to no one
    this.keep = true;
    writeFileSync(join(this.dir, KEPT), 'the log of a failed check, named by its error\n');
  }

  /**
   * Removes the verifier's directory, unless a failure's error named a log in it. Ends the lanes
   * and waits for rpmkeys first (a sync that failed elsewhere may close while they run): nothing
   * is left to recreate the directory, and verdicts that came after close go to no one.
   */
  async close(): Promise<void> {
    this.flushPackages();
    this.closed = true;
    await Promise.allSettled([...this.running]);
    if (!this.keep) rmSync(this.dir, { recursive: true, force: true });
    else rmSync(this.home, { recursive: true, force: true });
  }
}
