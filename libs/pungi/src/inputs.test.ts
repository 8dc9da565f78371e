import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pungiConfigInputs } from './inputs';

const checkout = resolve(__dirname, '../../../apps/upstream-fixture/pungi');

describe('pungiConfigInputs: the files and koji tags a compose is made from', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pungi-inputs-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("follows kobo's imports and the checkout files the config names", () => {
    const r = pungiConfigInputs(join(checkout, 'r8-updates.conf'), checkout);
    expect(r.files.map((f) => f.slice(checkout.length + 1))).toEqual(['r8-updates.conf', 'r8.conf', 'r8-common.conf', 'variants-r8.xml', 'comps-r8.xml']);
    expect(r).toMatchObject({ kojiTags: ['rocky-8'], kojiProfile: 'koji' });
    // Extras reads neither the Rocky variants nor the comps.
    expect(pungiConfigInputs(join(checkout, 'extras-8.conf'), checkout).files.map((f) => f.slice(checkout.length + 1))).toEqual(['extras-8.conf', 'r8-common.conf', 'variants-extras-8.xml']);
  });

  it('takes the last assignment of the tag, a list over several lines; refuses a tag it cannot read', () => {
    writeFileSync(join(dir, 'base.conf'), "pkgset_koji_tag = 'dist-rocky8-build'\n");
    writeFileSync(join(dir, 'a.conf'), "from base import *\npkgset_koji_tag = [\n    'dist-rocky8-compose',  # the compose tag\n    \"dist-rocky8-extras\",\n]\nkoji_profile = 'riscv'\n");
    expect(pungiConfigInputs(join(dir, 'a.conf'))).toMatchObject({ kojiTags: ['dist-rocky8-compose', 'dist-rocky8-extras'], kojiProfile: 'riscv' });
    writeFileSync(join(dir, 'b.conf'), "TAG = 'x'\npkgset_koji_tag = TAG\n");
    expect(() => pungiConfigInputs(join(dir, 'b.conf'))).toThrow(/b\.conf:2: pkgset_koji_tag: not a string or a list of strings \(TAG\)/);
    expect(() => pungiConfigInputs(join(dir, 'c.conf'))).toThrow(/c\.conf: no such pungi config file/);
  });
});
