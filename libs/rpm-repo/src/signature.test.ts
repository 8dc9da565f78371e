// Verifying repomd.xml signatures with real gpg/gpgv; a failure keeps all of gpgv's explanation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { gpgExport, gpgGenKey, gpgSign, hostName, killGpgAgent } from '@rocky/exec';
import { SignatureVerifier, sweepVerifierDirs } from './signature';

let dir: string;
const homes: string[] = [];
/** A key and a detached signature of `data`, made by a gpg whose clock is `offsetDays` ahead. */
async function signed(name: string, data: string, offsetDays = 0) {
  const home = join(dir, name);
  mkdirSync(home, { mode: 0o700 });
  homes.push(home);
  const fakedTime = offsetDays ? Math.trunc(Date.now() / 1000) + offsetDays * 86400 : undefined;
  const uid = `${name}@rockylinux.invalid`;
  await gpgGenKey({ homedir: home, uid, fakedTime });
  const keyFile = join(dir, `${name}.key`);
  writeFileSync(keyFile, await gpgExport(home, uid));
  const file = join(dir, `${name}.xml`);
  writeFileSync(file, data);
  await gpgSign({ homedir: home, key: uid, file, out: `${file}.asc`, mode: 'detach', fakedTime });
  await killGpgAgent(home);
  return { keyFile, data: readFileSync(file), sig: readFileSync(`${file}.asc`) };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'signature-test-'));
});
afterAll(async () => {
  for (const h of homes) await killGpgAgent(h);
  rmSync(dir, { recursive: true, force: true });
});

describe('SignatureVerifier', () => {
  it('accepts a good signature, refuses a tampered file', async () => {
    const s = await signed('good', '<repomd/>\n');
    const v = new SignatureVerifier(s.keyFile);
    try {
      await v.verify(s.data, s.sig, 'good repomd.xml');
      await expect(v.verify(Buffer.from('<repomd>x</repomd>\n'), s.sig, 'tampered repomd.xml')).rejects.toThrow(/tampered repomd.xml: signature verification failed[\s\S]*BAD signature/);
      expect(await v.keyId()).toMatch(/^[0-9a-f]{16}$/);
    } finally {
      await v.close();
      rmSync(v.dir, { recursive: true, force: true }); // kept for the failure's log
    }
  });

  it('a clock behind the key keeps every line gpgv printed ("created ... in the future", not only "Bad public key"), and its log (issue 18.13)', async () => {
    // The key and signature were made two days ahead of this machine's clock: as seen from a
    // host whose clock is two days behind the build system.
    const s = await signed('future', '<repomd/>\n', 2);
    const v = new SignatureVerifier(s.keyFile);
    try {
      const err: Error = await v.verify(s.data, s.sig, 'BaseOS repomd.xml').then(() => undefined, (e) => e);
      expect(err?.message).toMatch(/^BaseOS repomd.xml: signature verification failed/);
      expect(err?.message).toMatch(/gpgv: key [0-9A-F]{16} was created \d+ days? in the future \(time warp or clock problem\)/);
      expect(err?.message).toContain("gpgv: Can't check signature: Bad public key");
      const log = /gpgv's log: (\S+)/.exec(err.message)?.[1];
      expect(log && existsSync(log), `log named in: ${err.message}`).toBe(true);
      expect(readFileSync(log!, 'utf8')).toMatch(/created \d+ days? in the future/);
    } finally {
      await v.close();
      rmSync(v.dir, { recursive: true, force: true }); // kept for the failure's log
    }
  });

  it("removes the directory a killed run's verifier left (with a log it was writing), not a failure's evidence nor a live process's", async () => {
    const parent = join(dir, 'sweep');
    mkdirSync(parent);
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!; // exited: a pid of no process
    const left = join(parent, `releng-gpgv@${hostName()}.${dead}-0`);
    const evidence = join(parent, `releng-gpgv@${hostName()}.${dead}-1`);
    const marked = join(parent, `releng-gpgv@${hostName()}.${dead}-2`);
    const killed = join(parent, `releng-gpgv@${hostName()}.${dead}-3`);
    const live = join(parent, `releng-gpgv@${hostName()}.${process.ppid}-0`);
    const otherHost = join(parent, `releng-gpgv@elsewhere.${dead}-0`);
    const notOurs = join(parent, `put@${hostName()}.${dead}-0`); // another tool's scratch, named the same way
    for (const d of [left, evidence, marked, killed, live, otherHost, notOurs]) mkdirSync(join(d, 'gnupg'), { recursive: true });
    writeFileSync(join(evidence, 'x.gpgv.log'), 'gpgv: BAD signature\n');
    writeFileSync(join(marked, 'KEPT'), '');
    writeFileSync(join(marked, 'y.rpmkeys.log'), 'x.rpm: digests SIGNATURES NOT OK\n');
    writeFileSync(join(killed, 'z.rpmkeys.log'), '$ xargs -0 -r -n 256 rpmkeys --checksig\n'); // killed while rpmkeys ran
    // A verifier made before the sweep removes nothing (a dry run's): only the sweep does.
    await new SignatureVerifier(join(dir, 'none.key'), parent).close();
    expect(existsSync(left)).toBe(true);
    sweepVerifierDirs(parent);
    const v = new SignatureVerifier(join(dir, 'none.key'), parent);
    try {
      for (const d of [left, killed]) expect(existsSync(d), d).toBe(false);
      for (const d of [evidence, marked, live, otherHost, notOurs]) expect(existsSync(d), d).toBe(true);
      expect(v.dir).toMatch(new RegExp(`/releng-gpgv@${hostName()}\\.${process.pid}-[0-9a-z]+$`));
    } finally {
      await v.close();
    }
    expect(existsSync(v.dir)).toBe(false);
  });
});
