import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { renderChecksum } from '@rocky/compose';
import { HashCache } from '@rocky/exec';
import { approvalFile, ApprovalError, checkApproval, writeApproval } from './approval';
import { treeDigest } from './digest';
import { isImagePath, renderVettingMarkdown, verifyChecksumFiles, type VettingReport } from './vetting';

let tmp: string;
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'vetting-test-'));
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));


describe('verifyChecksumFiles', () => {
  it('verifies every CHECKSUM against its files, aliases included, and names failures', async () => {
    const iso = join(tmp, 'isos/x86_64');
    mkdirSync(iso, { recursive: true });
    const data = Buffer.from('iso bytes');
    writeFileSync(join(iso, 'a.iso'), data);
    symlinkSync('a.iso', join(iso, 'latest.iso'));
    const sum = createHash('sha256').update(data).digest('hex');
    writeFileSync(join(iso, 'CHECKSUM'), renderChecksum([{ name: 'a.iso', size: data.length, sha256: sum }, { name: 'latest.iso', size: data.length, sha256: sum }]));
    const ok = await verifyChecksumFiles(tmp);
    expect(ok).toEqual({ files: ['isos/x86_64/CHECKSUM'], entries: 2, failures: [] });
    writeFileSync(join(iso, 'a.iso'), 'iso bytez');
    mkdirSync(join(tmp, 'images'));
    writeFileSync(join(tmp, 'images/CHECKSUM'), renderChecksum([{ name: 'missing.qcow2', size: 1, sha256: sum }]));
    const bad = await verifyChecksumFiles(tmp);
    expect(bad.failures).toEqual([
      'images/CHECKSUM: missing.qcow2 is missing',
      expect.stringMatching(/^isos\/x86_64\/CHECKSUM: a.iso has sha256 \w+, CHECKSUM says/),
      expect.stringMatching(/^isos\/x86_64\/CHECKSUM: latest.iso has sha256/),
    ]);
  });
  it('knows images', () => {
    expect(isImagePath('isos/x86_64/Rocky-9.7-x86_64-dvd.iso')).toBe(true);
    expect(isImagePath('images/x86_64/Rocky-9-GenericCloud.latest.x86_64.qcow2')).toBe(true);
    expect(isImagePath('BaseOS/x86_64/os/images/install.img')).toBe(true);
    expect(isImagePath('isos/x86_64/CHECKSUM')).toBe(false);
  });
});

describe('treeDigest', () => {
  it('covers paths, types, file sizes, times and content, and link targets; not directory times', async () => {
    mkdirSync(join(tmp, 'a/b'), { recursive: true });
    writeFileSync(join(tmp, 'a/b/f'), 'x');
    utimesSync(join(tmp, 'a/b/f'), 1000, 1000);
    symlinkSync('a', join(tmp, 'l'));
    const cache = new HashCache(join(tmp, '..', `cache-${process.pid}.json`));
    const d0 = await treeDigest(tmp, cache);
    expect(d0).toMatchObject({ entries: 4, files: 1, bytes: 1 });
    utimesSync(join(tmp, 'a'), 5, 5);
    expect((await treeDigest(tmp, cache)).digest).toBe(d0.digest);
    expect(cache.hashed).toBe(1); // the second digest read nothing
    // The same size and mtime, other bytes: another digest (ctime changed, so the file is read again).
    writeFileSync(join(tmp, 'a/b/f'), 'y');
    utimesSync(join(tmp, 'a/b/f'), 1000, 1000);
    const dy = (await treeDigest(tmp, cache)).digest;
    expect(dy).not.toBe(d0.digest);
    cache.save();
    expect((await treeDigest(tmp, new HashCache(cache.file))).digest).toBe(dy);
    rmSync(cache.file!, { force: true });
    utimesSync(join(tmp, 'a/b/f'), 2000, 2000);
    const d1 = (await treeDigest(tmp)).digest;
    expect(d1).not.toBe(dy);
    rmSync(join(tmp, 'l'));
    symlinkSync('a/b', join(tmp, 'l'));
    expect((await treeDigest(tmp)).digest).not.toBe(d1);
  });
});

describe('checkApproval', () => {
  const current = 'a'.repeat(64);
  it('accepts the current digest from the command line or the approval file', () => {
    const file = approvalFile(tmp, 'rocky-9');
    expect(file).toBe(join(tmp, 'approvals/rocky-9.json'));
    expect(checkApproval({ release: 'rocky-9', current, approve: current.toUpperCase(), file }).by).toMatch(/--approve/);
    writeApproval(file, { digest: current, approvedBy: 'alice', time: '2025-11-20T10:00:00Z' });
    expect(checkApproval({ release: 'rocky-9', current, file }).by).toMatch(/^alice/);
  });
  it('refuses missing, stale and malformed approvals, saying how to approve', () => {
    const file = approvalFile(tmp, 'rocky-9');
    const missing = (() => {
      try {
        checkApproval({ release: 'rocky-9', current, file, report: '/r/report.md' });
      } catch (e) {
        return e as Error;
      }
    })()!;
    expect(missing).toBeInstanceOf(ApprovalError);
    expect(missing.message).toContain(`needs approval of the staged tree (digest ${current})`);
    expect(missing.message).toContain(`--approve=${current}`);
    expect(missing.message).toContain(file);
    expect(missing.message).toContain('/r/report.md');
    writeApproval(file, { digest: 'b'.repeat(64), approvedBy: 'alice', time: '2025-11-20T10:00:00Z' });
    expect(() => checkApproval({ release: 'rocky-9', current, file })).toThrow(/is stale: the staged tree of rocky-9 changed since/);
    expect(() => checkApproval({ release: 'rocky-9', current, approve: 'b'.repeat(64), file })).toThrow(/does not match/);
    writeFileSync(file, '{"digest": "nope"}');
    expect(() => checkApproval({ release: 'rocky-9', current, file })).toThrow(/must be \{"digest"/);
  });
});

describe('renderVettingMarkdown', () => {
  it('puts the digest and the approval command up front', () => {
    const r: VettingReport = {
      release: 'rocky-9',
      composeId: 'Rocky-9.7-20251120.100000',
      time: '2025-11-20T10:00:00Z',
      stagingDir: '/s/9.7-RC2',
      digest: 'c'.repeat(64),
      entries: 3,
      files: 2,
      bytes: 10,
      ok: false,
      problems: ['repoclosure AppStream/x86_64: foo needs bar'],
      publish: { changed: true, adds: 1, updates: 0, deletes: 0, bytes: { add: 10, update: 0, delete: 0 }, phases: ['content', 'attrs'] },
      repos: [{ tree: 'BaseOS/x86_64/os', repo: 'BaseOS', arch: 'x86_64', kind: 'os', before: 0, after: 1, added: ['bash-0:5.1-1.el9.x86_64'], removed: [], updated: [] }],
      images: { added: [], updated: [], removed: [] },
      repoclosure: [{ repo: 'AppStream', arch: 'x86_64', required: true, ok: false, broken: [{ package: 'foo', unresolved: ['bar'] }] }],
      checksums: { files: [], entries: 0, failures: [] },
      regenerated: [],
      signed: [],
      torrents: { created: [], skipped: [] },
    };
    const md = renderVettingMarkdown(r);
    expect(md).toContain(`**digest: \`${r.digest}\`**`);
    expect(md).toContain('1 problem(s)');
    expect(md).toContain('- added `bash-0:5.1-1.el9.x86_64`');
    expect(md).toContain(`--approve=${r.digest}`);
  });
});
