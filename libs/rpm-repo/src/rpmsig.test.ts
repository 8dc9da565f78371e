import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSync } from '@rocky/exec';
import { rpmSignerKeyId, rpmSignerOf } from './rpmsig';

// Real rpmbuild + rpmsign; `rpm -qp --qf %{SIGPGP:pgpsig}` is the oracle.
describe('rpmSignerKeyId', () => {
  let dir: string;
  let signed: string;
  let unsigned: string;
  let keyId: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rpmsig-'));
    const gnupg = join(dir, 'gnupg');
    mkdirSync(gnupg, { mode: 0o700 });
    const env = { ...process.env, GNUPGHOME: gnupg };
    runSync(['gpg', '--batch', '--pinentry-mode', 'loopback', '--passphrase', '', '--quick-gen-key', 'Sig Test <sig@example.invalid>', 'rsa2048', 'sign', '1y'], { env });
    keyId = runSync(['gpg', '--batch', '--with-colons', '--list-keys'], { env }).toString().split('\n').find((l) => l.startsWith('pub:'))!.split(':')[4].toLowerCase();
    const top = join(dir, 'rpmbuild');
    mkdirSync(join(top, 'SPECS'), { recursive: true });
    writeFileSync(join(top, 'SPECS/t.spec'), 'Name: sigtest\nVersion: 1\nRelease: 1\nSummary: t\nLicense: MIT\nBuildArch: noarch\n%description\nt\n%files\n');
    runSync(['rpmbuild', '--define', `_topdir ${top}`, '-bb', join(top, 'SPECS/t.spec')]);
    unsigned = join(top, 'RPMS/noarch', readdirSync(join(top, 'RPMS/noarch'))[0]);
    signed = join(dir, 'signed.rpm');
    runSync(['cp', unsigned, signed]);
    runSync(['rpmsign', '--define', '__gpg /usr/bin/gpg', '--define', '_gpg_name sig@example.invalid', '--define', `_gpg_path ${gnupg}`, '--addsign', signed], { env });
    runSync(['gpgconf', '--homedir', gnupg, '--kill', 'gpg-agent']);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('finds the signing key id of a signed package, as rpm reports it', async () => {
    const id = await rpmSignerKeyId(signed);
    expect(id).toBe(keyId);
    const oracle = runSync(['rpm', '-qp', '--nosignature', '--qf', '%{SIGPGP:pgpsig}%{RSAHEADER:pgpsig}', signed]).toString();
    expect(oracle).toContain(keyId.slice(-16));
  });
  it('answers null for an unsigned package and refuses a non-RPM', async () => {
    expect(await rpmSignerKeyId(unsigned)).toBeNull();
    const junk = join(dir, 'junk.rpm');
    writeFileSync(junk, Buffer.alloc(200));
    await expect(rpmSignerKeyId(junk)).rejects.toThrow(/not an RPM/);
  });
  it('reads a signature header bigger than the first read; a header cut short names no key', async () => {
    // A made-up package: lead, then a signature header whose first entry's data (10 KiB) pushes the RSAHEADER packet past 8 KiB.
    const issuer = Buffer.from('0123456789abcdef', 'hex');
    const pkt = Buffer.concat([Buffer.from([0xc2, 18, 4, 0, 1, 8, 0, 0, 0, 10, 9, 16]), issuer]);
    const pad = 10_240;
    const index = Buffer.alloc(32);
    index.writeUInt32BE(1000, 0), index.writeUInt32BE(7, 4), index.writeUInt32BE(0, 8), index.writeUInt32BE(pad, 12);
    index.writeUInt32BE(268, 16), index.writeUInt32BE(7, 20), index.writeUInt32BE(pad, 24), index.writeUInt32BE(pkt.length, 28);
    const intro = Buffer.alloc(16);
    intro.writeUInt32BE(0x8eade801, 0), intro.writeUInt32BE(2, 8), intro.writeUInt32BE(pad + pkt.length, 12);
    const lead = Buffer.alloc(96);
    lead.writeUInt32BE(0xedabeedb, 0);
    const big = join(dir, 'big-header.rpm');
    writeFileSync(big, Buffer.concat([lead, intro, index, Buffer.alloc(pad), pkt]));
    expect(await rpmSignerKeyId(big)).toBe('0123456789abcdef');
    // From bytes as they arrive (downloads): a prefix that ends inside the header answers undefined, not a guess.
    const bytes = readFileSync(big);
    expect(rpmSignerOf(bytes.subarray(0, 8192), big)).toBeUndefined();
    expect(rpmSignerOf(bytes, big)).toBe('0123456789abcdef');
    expect(rpmSignerOf(readFileSync(signed), signed)).toBe(keyId);
    expect(rpmSignerOf(readFileSync(unsigned), unsigned, true)).toBeNull();
    expect(() => rpmSignerOf(Buffer.alloc(200), 'junk.rpm', true)).toThrow(/junk.rpm: not an RPM/);
    const cut = join(dir, 'cut.rpm');
    writeFileSync(cut, Buffer.concat([lead, intro, index, Buffer.alloc(100)]));
    expect(await rpmSignerKeyId(cut)).toBeNull();
  });
});
