// Against research/empanadas-spec.md §2.4, checked with the real `sha256sum -c` on real files.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, writeFileSync, symlinkSync, statSync, rmSync, readFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, sha256File } from '@rocky/exec';
import { renderChecksum, parseChecksum, UNKNOWN_SIZE, type ChecksumEntry } from './checksum';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

describe('renderChecksum', () => {
  it('writes the §2.4 layout, sorted by name in byte order', () => {
    const entries: ChecksumEntry[] = [
      { name: 'Rocky-x86_64-dvd.iso', size: 11890851840, sha256: B },
      { name: 'Rocky-9.7-x86_64-dvd.iso', size: 11890851840, sha256: B },
      { name: 'Rocky-9-latest-x86_64-dvd.iso', size: 11890851840, sha256: B },
      { name: 'Rocky-9.7-x86_64-boot.iso', size: 1024, sha256: A.toUpperCase() },
    ];
    expect(renderChecksum(entries)).toBe(
      [
        '# Rocky-9-latest-x86_64-dvd.iso: 11890851840 bytes',
        `SHA256 (Rocky-9-latest-x86_64-dvd.iso) = ${B}`,
        '# Rocky-9.7-x86_64-boot.iso: 1024 bytes',
        `SHA256 (Rocky-9.7-x86_64-boot.iso) = ${A}`,
        '# Rocky-9.7-x86_64-dvd.iso: 11890851840 bytes',
        `SHA256 (Rocky-9.7-x86_64-dvd.iso) = ${B}`,
        '# Rocky-x86_64-dvd.iso: 11890851840 bytes',
        `SHA256 (Rocky-x86_64-dvd.iso) = ${B}`,
        '',
      ].join('\n'),
    );
    // same entries in another order: same bytes
    expect(renderChecksum([...entries].reverse())).toBe(renderChecksum(entries));
  });

  it('sorts by bytes, not locale (uppercase before lowercase)', () => {
    const text = renderChecksum([
      { name: 'b.iso', size: 1, sha256: A },
      { name: 'B.iso', size: 1, sha256: A },
      { name: 'a.iso', size: 1, sha256: A },
    ]);
    expect(parseChecksum(text).map((e) => e.name)).toEqual(['B.iso', 'a.iso', 'b.iso']);
  });

  it.each<[string, ChecksumEntry[], RegExp]>([
    ['a short digest', [{ name: 'x', size: 1, sha256: 'abc' }], /not a SHA-256/],
    ['a duplicate name', [{ name: 'x', size: 1, sha256: A }, { name: 'x', size: 1, sha256: A }], /duplicate/],
    ['a newline in a name', [{ name: 'x\ny', size: 1, sha256: A }], /unsupported file name/],
    ['a backslash in a name', [{ name: 'x\\y', size: 1, sha256: A }], /unsupported file name/],
    ['a negative size', [{ name: 'x', size: -2, sha256: A }], /invalid size/],
    ['a fractional size', [{ name: 'x', size: 1.5, sha256: A }], /invalid size/],
  ])('refuses %s', (_what, entries, err) => expect(() => renderChecksum(entries)).toThrow(err));
});

describe('parseChecksum', () => {
  const entries: ChecksumEntry[] = [
    { name: 'Rocky-9.7-x86_64-boot.iso', size: 0, sha256: A },
    { name: 'Rocky (copy) = x.iso', size: 42, sha256: B },
  ];

  it('round-trips renderChecksum', () => {
    const text = renderChecksum(entries);
    expect(parseChecksum(text)).toEqual([...entries].sort((a, b) => (a.name < b.name ? -1 : 1)));
    expect(renderChecksum(parseChecksum(text))).toBe(text);
  });

  it('accepts files without size comments (pungi before the comment, plain sha256sum --tag)', () => {
    const text = `SHA256 (a.iso) = ${A}\nSHA256 (b.iso) = ${B.toUpperCase()}\n`;
    expect(parseChecksum(text)).toEqual([
      { name: 'a.iso', size: UNKNOWN_SIZE, sha256: A },
      { name: 'b.iso', size: UNKNOWN_SIZE, sha256: B },
    ]);
    expect(renderChecksum(parseChecksum(text))).toBe(text.toLowerCase().replaceAll('sha256 (', 'SHA256 ('));
  });

  it('accepts concatenated per-file .CHECKSUM files, blank lines, other comments and CRLF', () => {
    const text = `# a.iso: 5 bytes\r\nSHA256 (a.iso) = ${A}\r\n\r\n# made by hand\r\n# b.iso: 6 bytes\r\nSHA256 (b.iso) = ${B}\r\n`;
    expect(parseChecksum(text)).toEqual([
      { name: 'a.iso', size: 5, sha256: A },
      { name: 'b.iso', size: 6, sha256: B },
    ]);
  });

  it.each([
    ['GNU-style lines', `${A}  a.iso\n`, /line 1: not a BSD-tag checksum line/],
    ['another algorithm', `# a: 1 bytes\nSHA256 (a) = ${A}\nMD5 (b) = ${'c'.repeat(32)}\n`, /line 3: unsupported algorithm MD5/],
    ['a short digest', `SHA256 (a) = ${A}\nSHA256 (b) = abc\n`, /line 2: digest is not 64 hex digits/],
    ['non-hex digits', `SHA256 (a) = ${'g'.repeat(64)}\n`, /line 1: digest/],
    ['a size comment for another file', `# a: 1 bytes\nSHA256 (b) = ${A}\n`, /line 2: size comment on line 1 is for a/],
    ['a dangling size comment', `SHA256 (b) = ${A}\n# a: 1 bytes\n`, /line 2: size comment for a has no checksum line/],
    ['two size comments in a row', `# a: 1 bytes\n# b: 1 bytes\nSHA256 (b) = ${A}\n`, /line 2: size comment for a/],
    ['a PGP-signed file', `-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nSHA256 (a) = ${A}\n`, /line 1: not a BSD-tag/],
  ])('rejects %s, naming the line', (_what, text, err) => expect(() => parseChecksum(text)).toThrow(err));
});

describe('CHECKSUM against the real sha256sum -c', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'compose-checksum-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Entries as the pipeline makes them: size and hash of what the name points to (stat -L). */
  const entriesFor = async (names: string[]) =>
    Promise.all(names.map(async (name) => ({ name, size: statSync(join(dir, name)).size, sha256: await sha256File(join(dir, name)) })));
  const check = () => run(['sha256sum', '-c', '--strict', 'CHECKSUM'], { cwd: dir, okCodes: [0, 1] });

  it('verifies files and a symlink alias, and fails once a byte is changed', async () => {
    writeFileSync(join(dir, 'Rocky-9.7-x86_64-dvd.iso'), Buffer.from('not really an ISO\n'.repeat(1000)));
    writeFileSync(join(dir, 'Rocky-9.7-x86_64-boot.iso'), Buffer.alloc(0));
    writeFileSync(join(dir, 'odd (name) = 1.iso'), 'x');
    symlinkSync('Rocky-9.7-x86_64-dvd.iso', join(dir, 'Rocky-x86_64-dvd.iso'));
    const names = ['Rocky-x86_64-dvd.iso', 'Rocky-9.7-x86_64-dvd.iso', 'Rocky-9.7-x86_64-boot.iso', 'odd (name) = 1.iso'];
    const entries = await entriesFor(names);
    expect(entries.find((e) => e.name === 'Rocky-x86_64-dvd.iso')).toEqual({ ...entries.find((e) => e.name === 'Rocky-9.7-x86_64-dvd.iso')!, name: 'Rocky-x86_64-dvd.iso' });
    writeFileSync(join(dir, 'CHECKSUM'), renderChecksum(entries));

    const ok = await check();
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    for (const n of names) expect(ok.stdout).toContain(`${n}: OK`);
    expect(parseChecksum(readFileSync(join(dir, 'CHECKSUM'), 'utf8'))).toEqual([...entries].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name))));

    // Flip one byte in the middle of the DVD: both its name and its alias must now fail.
    const fd = openSync(join(dir, 'Rocky-9.7-x86_64-dvd.iso'), 'r+');
    writeSync(fd, 'N', 9000);
    closeSync(fd);
    const bad = await check();
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain('Rocky-9.7-x86_64-dvd.iso: FAILED');
    expect(bad.stdout).toContain('Rocky-x86_64-dvd.iso: FAILED');
    expect(bad.stdout).toContain('Rocky-9.7-x86_64-boot.iso: OK');
  });
});
