// rpmVercmp against rpm itself (its Lua binding), readNewc against GNU cpio's own newc archives.
import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSync } from '@rocky/exec';
import { compareEvr, readNewc, rpmVercmp } from './rpm-files';

describe('rpmVercmp', () => {
  const pairs = [
    ['1.0', '1.0'], ['1.0', '2.0'], ['1.0~rc1', '1.0'], ['1.0^git1', '1.0'], ['1.0^git1', '1.0.1'], ['1.0a', '1.0'], ['1.a', '1.1'],
    ['1.010', '1.9'], ['9.7', '9.10'], ['1.el9', '1.el9_1'], ['0.beta1.el9', '1.el9'], ['a', '1'], ['1_0', '1.0'], ['~~', '~'], ['001', '1'], ['1.2.3', '1.2'],
  ];
  it.each(pairs)('%s vs %s as rpm compares them', (a, b) => {
    const rpm = Number(runSync(['rpm', '--eval', `%{lua: print(rpm.vercmp("${a}", "${b}"))}`]).toString().trim());
    expect(rpmVercmp(a, b)).toBe(rpm);
    expect(rpmVercmp(b, a)).toBe(rpm === 0 ? 0 : -rpm);
  });
  it('orders epoch first, then version, then release', () => {
    expect(compareEvr({ epoch: '1', version: '1.0', release: '1' }, { epoch: '0', version: '9.9', release: '9' })).toBe(1);
    expect(compareEvr({ version: '9.7', release: '0.beta1.el9' }, { version: '9.7', release: '1.el9' })).toBe(-1);
  });
});

describe('readNewc', () => {
  it('reads the regular files of a newc archive by path, not links or directories', () => {
    const dir = mkdtempSync(join(tmpdir(), 'newc-'));
    try {
      mkdirSync(join(dir, 'usr/share/doc/rocky-release'), { recursive: true });
      writeFileSync(join(dir, 'usr/share/doc/rocky-release/EULA'), 'eula text\n');
      writeFileSync(join(dir, 'usr/share/doc/rocky-release/odd'), Buffer.alloc(5, 1)); // a size that needs padding
      symlinkSync('EULA', join(dir, 'usr/share/doc/rocky-release/EULA-link'));
      const list = ['./usr', './usr/share', './usr/share/doc', './usr/share/doc/rocky-release', './usr/share/doc/rocky-release/odd', './usr/share/doc/rocky-release/EULA-link', './usr/share/doc/rocky-release/EULA'];
      const cpio = runSync(['cpio', '-o', '-H', 'newc', '--quiet'], { cwd: dir, input: list.join('\n') + '\n' });
      const files = readNewc(cpio, () => true);
      expect([...files.keys()].sort()).toEqual(['/usr/share/doc/rocky-release/EULA', '/usr/share/doc/rocky-release/odd']);
      expect(files.get('/usr/share/doc/rocky-release/EULA')!.toString()).toBe('eula text\n');
      expect(readNewc(cpio, (p) => p.endsWith('/odd')).get('/usr/share/doc/rocky-release/odd')).toEqual(Buffer.alloc(5, 1));
      expect(() => readNewc(cpio.subarray(0, 300), () => true, 'x.rpm')).toThrow(/x\.rpm: .*(cut short|truncated)/);
      expect(() => readNewc(Buffer.alloc(200, 'x'), () => true)).toThrow(/not a newc cpio entry/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
