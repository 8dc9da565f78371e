// Tool versions as the tools print them (the Rocky 8/9 and Debian 12 versions), compared numerically.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compareVersions, findTool, parseVersion } from './version';

describe('tool versions', () => {
  const dir = mkdtempSync(join(tmpdir(), 'version-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the version each tool prints', () => {
    expect(parseVersion('rsync  version 3.1.3  protocol version 31\nCopyright (C) 1996-2018')).toBe('3.1.3');
    expect(parseVersion('xorriso 1.4.8 : RockRidge filesystem manipulator, libburnia project.')).toBe('1.4.8');
    expect(parseVersion('gpg (GnuPG) 2.2.20\nlibgcrypt 1.8.5')).toBe('2.2.20');
    expect(parseVersion('Version: 0.17.7 (Features: DeltaRPM LegacyWeakdeps )')).toBe('0.17.7');
    expect(parseVersion('4.7.0')).toBe('4.7.0');
    expect(parseVersion('no version here')).toBeUndefined();
  });

  it('compares numerically, missing parts as 0', () => {
    expect(compareVersions('3.1.10', '3.1.3')).toBe(1);
    expect(compareVersions('3.1.3', '3.1.3')).toBe(0);
    expect(compareVersions('3.1.2', '3.1.3')).toBe(-1);
    expect(compareVersions('2.2', '2.2.0')).toBe(0);
    expect(compareVersions('1.5.4', '1.4.6')).toBe(1);
    expect(compareVersions('4.14.0', '5')).toBe(-1);
  });

  it('finds executables in the given PATH only', () => {
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'tool-x'), '#!/bin/sh\n');
    chmodSync(join(bin, 'tool-x'), 0o755);
    writeFileSync(join(bin, 'not-exec'), '');
    mkdirSync(join(bin, 'a-dir'));
    expect(findTool('tool-x', `/nonexistent:${bin}`)).toBe(join(bin, 'tool-x'));
    expect(findTool('tool-x', '/usr/bin')).toBeUndefined();
    expect(findTool('not-exec', bin)).toBeUndefined();
    expect(findTool('a-dir', bin)).toBeUndefined();
    expect(findTool(join(bin, 'tool-x'), '')).toBe(join(bin, 'tool-x'));
  });
});
