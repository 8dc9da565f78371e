// Verifying upstream's detached, armored repomd.xml signature with gpgv against the key the
// site names, so a compose is only built from metadata the build system signed.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, ToolError } from '@rocky/exec';

export class SignatureVerifier {
  private dir: string;
  private keyring: string;
  private ready: Promise<void>;

  constructor(readonly keyFile: string) {
    this.dir = mkdtempSync(join(tmpdir(), 'releng-gpgv-'));
    this.keyring = join(this.dir, 'trusted.gpg');
    // gpgv wants a binary keyring; --dearmor turns the armored key file into one.
    this.ready = run(['gpg', '--batch', '--yes', '--dearmor', '--output', this.keyring, keyFile]).then(() => undefined);
  }

  /** Throws naming `what` unless `signature` is a good signature of `data` by the key. */
  async verify(data: Buffer, signature: Buffer, what: string): Promise<void> {
    await this.ready;
    const id = Math.random().toString(36).slice(2);
    const d = join(this.dir, `${id}.data`);
    const s = join(this.dir, `${id}.asc`);
    writeFileSync(d, data);
    writeFileSync(s, signature);
    try {
      await run(['gpgv', '--keyring', this.keyring, s, d]);
    } catch (e) {
      const msg = e instanceof ToolError ? (e.result.stderr.trim().split('\n').pop() ?? '') : (e as Error).message;
      throw new Error(`${what}: signature verification failed (${msg})`);
    } finally {
      rmSync(d, { force: true });
      rmSync(s, { force: true });
    }
  }

  /** Key id (16 hex digits) of the verifying key: packages must carry it too. */
  async keyId(): Promise<string> {
    const r = await run(['gpg', '--batch', '--with-colons', '--show-keys', this.keyFile]);
    const pub = r.stdout.split('\n').find((l) => l.startsWith('pub:'));
    if (!pub) throw new Error(`${this.keyFile}: no public key in it`);
    return pub.split(':')[4].toLowerCase();
  }

  close(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

