// Signing with one GNUPGHOME from many places at once, as Nx does when it runs the finalize and
// staging stages of several releases together.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gpgAgentPids, gpgGenKey, killGpgAgent } from './gpg';
import { run } from './run';
import { clearsign, detachSign, verifySignature } from './signing';

let dir: string;
let signing: { gnupgHome: string; keyId: string };
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sign-test-'));
  signing = { gnupgHome: join(dir, 'gnupg'), keyId: 'releng-sign-test@rockylinux.invalid' };
  await run(['mkdir', '-m', '700', signing.gnupgHome]);
  await gpgGenKey({ homedir: signing.gnupgHome, uid: signing.keyId });
  await killGpgAgent(signing.gnupgHome);
});
afterAll(async () => {
  await killGpgAgent(signing.gnupgHome);
  rmSync(dir, { recursive: true, force: true });
});

describe('signing', () => {
  it('signs many files at once with one GNUPGHOME; every signature verifies and no agent is left', async () => {
    const files = Array.from({ length: 40 }, (_, i) => {
      const f = join(dir, `repomd-${i}.xml`);
      writeFileSync(f, `<repomd>${i}</repomd>\n`);
      return f;
    });
    await Promise.all(files.map((f, i) => (i % 4 ? detachSign(signing, f, `${f}.asc`) : clearsign(signing, f, `${f}.asc`))));
    for (const [i, f] of files.entries()) {
      if (i % 4) await verifySignature(signing, `${f}.asc`, f);
      else {
        expect(readFileSync(`${f}.asc`, 'utf8')).toContain('-----BEGIN PGP SIGNED MESSAGE-----');
        await verifySignature(signing, `${f}.asc`);
      }
    }
    const socket = (await run(['gpgconf', '--homedir', signing.gnupgHome, '--list-dirs', 'agent-socket'])).stdout.trim();
    expect(existsSync(socket), `agent socket ${socket}`).toBe(false);
    expect(existsSync(join(signing.gnupgHome, '.releng-signing.lock'))).toBe(false);
  });
  it('a signature returns only once the agent it started is gone: the next signer never meets an agent told to stop', async () => {
    const f = join(dir, 'CHECKSUM');
    writeFileSync(f, 'SHA256 (x.iso) = 00\n');
    for (let i = 0; i < 5; i++) {
      await clearsign(signing, f, `${f}.asc`);
      expect(gpgAgentPids(signing.gnupgHome)).toEqual([]);
    }
  });
});
