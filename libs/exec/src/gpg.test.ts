// gpg/gpgv command lines (unit); real signing and verification runs in libs/publish/src/sign.test.ts
// and libs/rpm-repo/src/signature.test.ts.
import { describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { gpgDearmorArgv, gpgGenKeyArgv, gpgShowKeysArgv, gpgSignArgv, gpgVerifyArgv, gpgvArgv, gpgconfKillAgentArgv, SignatureError } from './gpg';
import { runPipe } from './run';

describe('gpg command lines', () => {
  it('signing never asks and names its homedir and key', () => {
    expect(gpgSignArgv({ homedir: '/g', key: 'k@x', file: 'repomd.xml', out: 'repomd.xml.asc', mode: 'detach' })).toEqual([
      'gpg', '--homedir', '/g', '--batch', '--no-tty', '--pinentry-mode', 'loopback', '--passphrase', '', '--yes', '--local-user', 'k@x', '--armor', '--detach-sign', '--output', 'repomd.xml.asc', 'repomd.xml',
    ]);
    expect(gpgSignArgv({ homedir: '/g', key: 'k', file: 'CHECKSUM', out: 'CHECKSUM.asc', mode: 'clearsign', fakedTime: 100 }).slice(9)).toEqual([
      '--faked-system-time', '100', '--yes', '--local-user', 'k', '--clearsign', '--output', 'CHECKSUM.asc', 'CHECKSUM',
    ]);
    expect(gpgGenKeyArgv({ homedir: '/g', uid: 'U <u@x>' }).slice(9)).toEqual(['--quick-gen-key', 'U <u@x>', 'rsa2048', 'sign', 'never']);
  });
  it('verification reads only the keys it is given', () => {
    expect(gpgvArgv('/v/trusted.gpg', 'a.asc', 'a')).toEqual(['gpgv', '--keyring', '/v/trusted.gpg', 'a.asc', 'a']);
    expect(gpgVerifyArgv('/g', 'C.asc')).toEqual(['gpg', '--homedir', '/g', '--batch', '--verify', 'C.asc']);
    expect(gpgDearmorArgv('/v/h', 'KEY', '/v/trusted.gpg')).toEqual(['gpg', '--homedir', '/v/h', '--batch', '--yes', '--dearmor', '--output', '/v/trusted.gpg', 'KEY']);
    expect(gpgShowKeysArgv('/v/h', 'KEY')).toEqual(['gpg', '--homedir', '/v/h', '--batch', '--with-colons', '--show-keys', 'KEY']);
    expect(gpgconfKillAgentArgv('/g')).toEqual(['gpgconf', '--homedir', '/g', '--kill', 'gpg-agent']);
  });
  it('a refused signature says what, every line gpgv printed, and where its log is', () => {
    const e = new SignatureError('BaseOS repomd.xml', ['gpgv: key X was created 2 days in the future (time warp or clock problem)', "gpgv: Can't check signature: Bad public key"], '/l/gpgv.log');
    expect(e.message).toBe(
      "BaseOS repomd.xml: signature verification failed:\n  gpgv: key X was created 2 days in the future (time warp or clock problem)\n  gpgv: Can't check signature: Bad public key\ngpgv's log: /l/gpgv.log",
    );
  });
});

describe('runPipe', () => {
  it('streams a filter without holding its output; a failing filter fails the stream with its stderr', async () => {
    const big = Buffer.alloc(8 << 20, 'a');
    let n = 0;
    for await (const c of runPipe(['cat'], Readable.from([big]))) n += (c as Buffer).length;
    expect(n).toBe(big.length);
    const failing = runPipe(['sh', '-c', 'cat >/dev/null; echo broken input >&2; exit 2'], Readable.from([Buffer.from('x')]));
    await expect((async () => { for await (const _ of failing); })()).rejects.toThrow(/sh exited 2[\s\S]*broken input/);
  });
});
