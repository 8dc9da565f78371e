// The pieces between us and the remote side: shell quoting of the ssh command line, and
// unpacking an untrusted tar.
import { createReadStream, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSync } from '@rocky/exec';
import { remoteSh, shJoin, shQuote } from './shell';
import { checkExtracted, extractTar } from './tar';

describe('shell quoting for the remote command line', () => {
  const nasty = ['plain', '', 'two words', "it's", '$HOME', '`id`', '$(id)', 'a;b', 'x\ny', '*', '~', 'a=b', '--opt=v a l', '"q"', '\\', '!', '-'];

  it('survives a round trip through sh, word for word', () => {
    const out = runSync(['sh', '-c', `printf '%s\\0' ${shJoin(nasty)}`]).toString();
    expect(out.split('\0').slice(0, -1)).toEqual(nasty);
  });

  it('passes values to a remote script as "$@", never re-quoted', () => {
    const line = remoteSh('printf "%s\\0" "$@"', nasty);
    // The login shell (here sh, as sshd would run it with -c) splits the line back into sh -c argv.
    const out = runSync(['sh', '-c', line]).toString();
    expect(out.split('\0').slice(0, -1)).toEqual(nasty);
  });

  it('leaves harmless words bare and quotes the rest', () => {
    expect(shQuote('/var/tmp/releng')).toBe('/var/tmp/releng');
    expect(shQuote('--volid=Rocky-9-7-x86_64-dvd')).toBe("'--volid=Rocky-9-7-x86_64-dvd'");
    expect(shQuote("a'b")).toBe(`'a'\\''b'`);
  });
});

describe('extractTar / checkExtracted', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rocky-tar-'));
    mkdirSync(join(dir, 'src/lorax/images'), { recursive: true });
    writeFileSync(join(dir, 'src/lorax/images/install.img'), 'x'.repeat(10_000));
    writeFileSync(join(dir, 'outside-secret'), 'secret');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const fresh = (name: string) => {
    const d = join(dir, name);
    mkdirSync(d);
    return d;
  };

  it('unpacks a stream and counts its bytes', async () => {
    runSync(['tar', '-C', join(dir, 'src'), '-cf', join(dir, 'good.tar'), 'lorax']);
    const d = fresh('good');
    const n = await extractTar(createReadStream(join(dir, 'good.tar')), d);
    expect(n).toBeGreaterThan(10_000);
    checkExtracted(d, ['lorax']);
    expect(existsSync(join(d, 'lorax/images/install.img'))).toBe(true);
  });

  it('refuses members with .. (tar fails) and strips leading /', async () => {
    runSync(['tar', '-C', join(dir, 'src'), '-cPf', join(dir, 'dotdot.tar'), 'lorax', '../outside-secret']);
    const d = fresh('dotdot');
    await expect(extractTar(createReadStream(join(dir, 'dotdot.tar')), d)).rejects.toThrow(/tar -x exited 2[\s\S]*\.\./);
    expect(existsSync(join(dir, 'outside-secret'))).toBe(true);

    runSync(['tar', '-cPf', join(dir, 'abs.tar'), join(dir, 'outside-secret')]);
    const a = fresh('abs');
    await extractTar(join(dir, 'abs.tar'), a);
    // It landed inside, under the stripped path, and the check rejects the stray top-level entry.
    expect(() => checkExtracted(a, ['lorax'])).toThrow(/should hold lorax only; missing lorax; unexpected/);
  });

  it('rejects links that leave the tree, even through an innocent-looking chain', () => {
    const d = fresh('links');
    mkdirSync(join(d, 'lorax/images'), { recursive: true });
    symlinkSync('/etc/passwd', join(d, 'lorax/images/abs'));
    expect(() => checkExtracted(d, ['lorax'])).toThrow(/lorax\/images\/abs links outside the tree/);
    rmSync(join(d, 'lorax/images/abs'));
    symlinkSync('.', join(d, 'lorax/images/here'));
    symlinkSync('here/../..', join(d, 'lorax/images/up'));
    expect(() => checkExtracted(d, ['lorax'])).not.toThrow(); // still inside: d/lorax
    symlinkSync('here/../../..', join(d, 'lorax/images/out'));
    expect(() => checkExtracted(d, ['lorax'])).toThrow(/images\/out links outside the tree/);
  });

  it('reports a truncated stream', async () => {
    const full = runSync(['tar', '-C', join(dir, 'src'), '-cf', '-', 'lorax']);
    writeFileSync(join(dir, 'cut.tar'), full.subarray(0, 5000));
    await expect(extractTar(createReadStream(join(dir, 'cut.tar')), fresh('cut'))).rejects.toThrow(/tar -x exited 2/);
  });
});
