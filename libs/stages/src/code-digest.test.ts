import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { codeDigest } from './code-digest';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'code-digest-'));
  mkdirSync(join(root, 'a/sub'), { recursive: true });
  writeFileSync(join(root, 'a/x.ts'), 'x');
  writeFileSync(join(root, 'a/y.ts'), 'y');
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('codeDigest', () => {
  it('changes with a source of the dir, not with its tests, other files, subdirectories or a missing dir', () => {
    const d0 = codeDigest(root, ['a', 'missing']);
    expect(codeDigest(root, ['a'])).toBe(d0);
    writeFileSync(join(root, 'a/x.test.ts'), 't');
    writeFileSync(join(root, 'a/README.md'), 'r');
    writeFileSync(join(root, 'a/sub/z.ts'), 'z');
    expect(codeDigest(root, ['a'])).toBe(d0);
    writeFileSync(join(root, 'a/y.ts'), 'y // comment');
    expect(codeDigest(root, ['a'])).not.toBe(d0);
  });

  it('names each file: the same bytes under another name differ', () => {
    const d0 = codeDigest(root, ['a']);
    rmSync(join(root, 'a/y.ts'));
    writeFileSync(join(root, 'a/w.ts'), 'y');
    expect(codeDigest(root, ['a'])).not.toBe(d0);
  });
});
