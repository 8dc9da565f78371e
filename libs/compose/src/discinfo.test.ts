// Against research/empanadas-spec.md §2.2 and §2.3.
import { describe, it, expect } from 'vitest';
import { renderDiscinfo, parseDiscinfo, renderMediaRepo, discTimestamp } from './discinfo';

describe('.discinfo', () => {
  it.each([
    [{ timestamp: 1763650000.123456, fullname: 'Rocky Linux 9.7', arch: 'x86_64' }, '1763650000.123456\nRocky Linux 9.7\nx86_64\nALL\n'],
    [{ timestamp: 1763650000, fullname: 'Rocky Linux 9.7', arch: 'src' }, '1763650000.000000\nRocky Linux 9.7\nsrc\nALL\n'],
    [{ timestamp: 1763650000.5, fullname: 'Rocky Linux 10.1', arch: 'aarch64' }, '1763650000.500000\nRocky Linux 10.1\naarch64\nALL\n'],
  ])('renders %o', (o, want) => {
    expect(renderDiscinfo(o)).toBe(want);
    expect(parseDiscinfo(want)).toEqual({ ...o, discs: 'ALL' });
  });

  it('keeps six decimals whatever the float', () => {
    expect(discTimestamp(1763650000.1)).toBe('1763650000.100000');
    expect(discTimestamp(0)).toBe('0.000000');
  });

  it.each([
    [{ timestamp: Number.NaN, fullname: 'Rocky Linux 9.7', arch: 'x86_64' }, /timestamp/],
    [{ timestamp: -1, fullname: 'Rocky Linux 9.7', arch: 'x86_64' }, /timestamp/],
    [{ timestamp: 1, fullname: 'Rocky\nLinux', arch: 'x86_64' }, /fullname/],
    [{ timestamp: 1, fullname: 'Rocky Linux 9.7', arch: '' }, /arch/],
  ])('refuses %o', (o, err) => expect(() => renderDiscinfo(o)).toThrow(err));

  it('reads a three-line file and rejects a non-timestamp', () => {
    expect(parseDiscinfo('1417653453.026288\nFedora Server 21\nx86_64\n').discs).toBe('ALL');
    expect(() => parseDiscinfo('yesterday\nRocky Linux 9.7\nx86_64\nALL\n')).toThrow(/line 1/);
  });
});

describe('media.repo', () => {
  it('renders the §2.3 example exactly, with the .discinfo timestamp as mediaid', () => {
    const ts = 1763650000.123456;
    expect(renderMediaRepo({ name: 'Rocky Linux 9.7', mediaid: discTimestamp(ts) })).toBe(
      '[InstallMedia]\nname=Rocky Linux 9.7\nmediaid=1763650000.123456\nmetadata_expire=-1\ngpgcheck=0\ncost=500\n',
    );
    expect(renderDiscinfo({ timestamp: ts, fullname: 'Rocky Linux 9.7', arch: 'x86_64' }).split('\n')[0]).toBe('1763650000.123456');
  });

  it('refuses a newline in a value', () => {
    expect(() => renderMediaRepo({ name: 'Rocky\n[evil]', mediaid: '1' })).toThrow(/name/);
  });
});
