import { describe, it, expect } from 'vitest';
import { diffPackages, nevra, parseNevra, type NevraParts } from './nevra';

describe('nevra', () => {
  it.each<[NevraParts, string]>([
    [{ name: 'bash', version: '5.1.8', release: '9.el9', arch: 'x86_64' }, 'bash-0:5.1.8-9.el9.x86_64'],
    [{ name: 'bash', epoch: '', version: '5.1.8', release: '9.el9', arch: 'src' }, 'bash-0:5.1.8-9.el9.src'],
    [{ name: 'perl', epoch: 4, version: '5.32.1', release: '481.el9', arch: 'src' }, 'perl-4:5.32.1-481.el9.src'],
    [{ name: 'perl-Carp', epoch: '007', version: '1.50', release: '460.el9', arch: 'noarch' }, 'perl-Carp-7:1.50-460.el9.noarch'],
    [{ name: 'python3.11-pip', epoch: null, version: '22.3.1', release: '4.el9_3.1', arch: 'noarch' }, 'python3.11-pip-0:22.3.1-4.el9_3.1.noarch'],
  ])('%o -> %s', (parts, want) => {
    expect(nevra(parts)).toBe(want);
    const back = parseNevra(want);
    expect(nevra(back)).toBe(want);
  });

  it.each<[Partial<NevraParts>, RegExp]>([
    [{ epoch: 'x' }, /epoch/],
    [{ epoch: -1 }, /epoch/],
    [{ version: '5.1-8' }, /version/],
    [{ release: '' }, /release/],
    [{ arch: 'x86.64' }, /arch/],
    [{ name: 'ba sh' }, /name/],
  ])('refuses %o', (change, err) => {
    expect(() => nevra({ name: 'bash', version: '5.1.8', release: '9.el9', arch: 'x86_64', ...change })).toThrow(err);
  });

  it('parses file names (no epoch) and full NEVRAs', () => {
    expect(parseNevra('Packages/b/bash-5.1.8-9.el9.x86_64.rpm')).toEqual({ name: 'bash', version: '5.1.8', release: '9.el9', arch: 'x86_64' });
    expect(parseNevra('kernel-rt-debug-0:5.14.0-570.el9.x86_64')).toEqual({ name: 'kernel-rt-debug', epoch: '0', version: '5.14.0', release: '570.el9', arch: 'x86_64' });
    expect(() => parseNevra('bash')).toThrow(/cannot parse/);
  });
});

const pkg = (name: string, version: string, arch = 'x86_64', epoch = '0') => ({ name, arch, epoch, version, release: '1.el9' });

describe('diffPackages', () => {
  it('reports added, removed and updated NEVRAs per name.arch', () => {
    const d = diffPackages([pkg('bash', '5.1'), pkg('gone', '1'), pkg('glibc', '2.34'), pkg('glibc', '2.34', 'i686')], [pkg('bash', '5.2'), pkg('new', '1'), pkg('glibc', '2.34'), pkg('glibc', '2.34', 'i686')]);
    expect(d.added).toEqual(['new-0:1-1.el9.x86_64']);
    expect(d.removed).toEqual(['gone-0:1-1.el9.x86_64']);
    expect(d.updated).toEqual([{ name: 'bash', arch: 'x86_64', from: ['bash-0:5.1-1.el9.x86_64'], to: ['bash-0:5.2-1.el9.x86_64'] }]);
  });
  it('counts a kept old version plus a new one as an update (rocky-8 staging)', () => {
    const d = diffPackages([pkg('bash', '5.1')], [pkg('bash', '5.1'), pkg('bash', '5.2')]);
    expect(d).toEqual({ added: [], removed: [], updated: [{ name: 'bash', arch: 'x86_64', from: [], to: ['bash-0:5.2-1.el9.x86_64'] }] });
  });
});
