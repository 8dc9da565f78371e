// The compose listing of a release, when SIG composes and the main release's share `<compose>/<major>`.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRelease } from '@rocky/config';
import { composesOf, nextRespin } from './composes';

const ws = join(__dirname, '../../..');

describe('composesOf and nextRespin with SIG composes beside the main release', () => {
  let root: string;
  const r9 = loadRelease(ws, 'rocky-9');
  const cloud = loadRelease(ws, 'sig-cloud-9');
  const altarch = loadRelease(ws, 'sig-altarch-9');
  const day = new Date(Date.UTC(2026, 11, 6));
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'composes-'));
    const ids = ['Rocky-9.7-20261206.0', 'Rocky-9-updates-20261206.0', 'SIG-cloud-9.7-20261205.0', 'SIG-cloud-9.7-20261206.0', 'SIG-cloud-9.7-20261206.1', 'latest-SIG-cloud-9'];
    for (const id of ids) mkdirSync(join(root, '9', id), { recursive: true });
    writeFileSync(join(root, '9/SIG-cloud-9.7-20261206.0/STATUS'), 'FINISHED\n');
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("lists each release's own composes, oldest first, and numbers the next respin of the day", () => {
    const site = { roots: { compose: root, staging: '', production: '' } };
    expect(composesOf(site, cloud, 'produce').map((c) => [c.id, c.respin, c.status])).toEqual([
      ['SIG-cloud-9.7-20261205.0', 0, undefined],
      ['SIG-cloud-9.7-20261206.0', 0, 'FINISHED'],
      ['SIG-cloud-9.7-20261206.1', 1, undefined],
    ]);
    expect(composesOf(site, cloud, 'produce')[0].layout.trees).toBe(join(root, '9/SIG-cloud-9.7-20261205.0/compose/9/cloud'));
    expect(nextRespin(site, cloud, 'produce', day)).toBe(2);
    expect(composesOf(site, altarch, 'produce')).toEqual([]);
    expect(nextRespin(site, altarch, 'produce', day)).toBe(0);
    expect(composesOf(site, r9, 'produce').map((c) => c.id)).toEqual(['Rocky-9.7-20261206.0']);
    expect(composesOf(site, r9, 'update').map((c) => c.id)).toEqual(['Rocky-9-updates-20261206.0']);
    expect(() => composesOf(site, cloud, 'update')).toThrow(/SIG cloud has no update composes/);
  });
});
