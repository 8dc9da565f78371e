// Against research/peers.md §2.4 and §3 (productmd formats) and empanadas-spec.md §2.6.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { listReleases, loadRelease, schemas } from '@rocky/config';
import {
  composeInfo, imagesJson, rpmsJson, stableJson, STATUS, renderStatus, parseStatus, IMAGE_TYPE_FORMATS, SUPPORTED_IMAGE_FORMATS, cloudImageKind,
  type ComposeRef, type ImageEntry, type RpmEntry,
} from './productmd';
import { composeInfoVariants } from './release';

const compose: ComposeRef = { id: 'Rocky-9.7-20251120', date: '20251120', respin: 0, type: 'production' };
const release = { name: 'Rocky Linux', short: 'Rocky', version: '9.7', type: 'ga' as const };
// Plain data in, plain data out: round-trip through the written JSON to look at what lands on disk.
const written = (o: object) => JSON.parse(stableJson(o));

const rocky9 = schemas().releaseSchema.parse({
  major: 9, minor: 7, type: 'stable', rc: 'RC2', profile: '9', project: 'rocky-9',
  arches: ['x86_64', 'aarch64'],
  repos: [
    { name: 'all', dir: 'devel', multilib: ['i686'], kickstart: false },
    { name: 'BaseOS' },
    { name: 'AppStream' },
    { name: 'RT', arches: ['x86_64'], debug: false },
  ],
  iso: { lorax: { variant: 'BaseOS', repos: ['BaseOS', 'AppStream'] } },
});

describe('STATUS', () => {
  it("has pungi's five states, one word and a newline on disk", () => {
    expect(STATUS).toEqual(['STARTED', 'FINISHED', 'FINISHED_INCOMPLETE', 'DOOMED', 'TERMINATED']);
    expect(renderStatus('FINISHED_INCOMPLETE')).toBe('FINISHED_INCOMPLETE\n');
    expect(parseStatus('DOOMED\n')).toBe('DOOMED');
    expect(() => parseStatus('DONE\n')).toThrow(/unknown compose status/);
  });
});

describe('composeinfo.json', () => {
  const info = written(composeInfo({ compose, release, variants: composeInfoVariants(rocky9) }));

  it('has the productmd header and compose/release blocks', () => {
    expect(info.header).toEqual({ type: 'productmd.composeinfo', version: '1.2' });
    expect(info.payload.compose).toEqual({ id: 'Rocky-9.7-20251120', date: '20251120', respin: 0, type: 'production' });
    expect(info.payload.release).toEqual({ name: 'Rocky Linux', short: 'Rocky', version: '9.7', type: 'ga', internal: false, is_layered: false });
  });

  it('keys variants by compose directory: devel, never all', () => {
    expect(Object.keys(info.payload.variants)).toEqual(['AppStream', 'BaseOS', 'RT', 'devel']);
    expect(info.payload.variants.devel).toMatchObject({ id: 'devel', uid: 'devel', name: 'devel', type: 'variant', arches: ['aarch64', 'i686', 'x86_64'] });
  });

  it('gives every path category per arch, in the empanadas layout', () => {
    const baseos = info.payload.variants.BaseOS;
    expect(baseos.arches).toEqual(['aarch64', 'x86_64']);
    expect(baseos.paths).toEqual({
      os_tree: { aarch64: 'BaseOS/aarch64/os', x86_64: 'BaseOS/x86_64/os' },
      repository: { aarch64: 'BaseOS/aarch64/os', x86_64: 'BaseOS/x86_64/os' },
      packages: { aarch64: 'BaseOS/aarch64/os/Packages', x86_64: 'BaseOS/x86_64/os/Packages' },
      debug_tree: { aarch64: 'BaseOS/aarch64/debug/tree', x86_64: 'BaseOS/x86_64/debug/tree' },
      debug_repository: { aarch64: 'BaseOS/aarch64/debug/tree', x86_64: 'BaseOS/x86_64/debug/tree' },
      debug_packages: { aarch64: 'BaseOS/aarch64/debug/tree/Packages', x86_64: 'BaseOS/x86_64/debug/tree/Packages' },
      source_tree: { aarch64: 'BaseOS/source/tree', x86_64: 'BaseOS/source/tree' },
      source_repository: { aarch64: 'BaseOS/source/tree', x86_64: 'BaseOS/source/tree' },
      source_packages: { aarch64: 'BaseOS/source/tree/Packages', x86_64: 'BaseOS/source/tree/Packages' },
      isos: { aarch64: 'isos/aarch64', x86_64: 'isos/x86_64' },
      images: { aarch64: 'images/aarch64', x86_64: 'images/x86_64' },
    });
    // only the boot variant owns isos/images; a repo without debug has no debug paths
    expect(info.payload.variants.AppStream.paths.isos).toBeUndefined();
    expect(info.payload.variants.RT.paths.debug_tree).toBeUndefined();
    expect(info.payload.variants.RT.arches).toEqual(['x86_64']);
    expect(info.payload.variants.devel.paths.os_tree.i686).toBe('devel/i686/os');
  });

  it('writes label and final only when a label is given', () => {
    const labelled = written(composeInfo({ compose: { ...compose, label: 'RC-9.7', final: true }, release, variants: [] }));
    expect(labelled.payload.compose).toMatchObject({ label: 'RC-9.7', final: true });
    expect(written(composeInfo({ compose: { ...compose, label: 'RC-9.7' }, release, variants: [] })).payload.compose.final).toBe(false);
  });

  it.each<[string, () => object, RegExp]>([
    ['a date not YYYYMMDD', () => composeInfo({ compose: { ...compose, date: '2025-11-20' }, release, variants: [] }), /YYYYMMDD/],
    ['an id without its date', () => composeInfo({ compose: { ...compose, date: '20251121' }, release, variants: [] }), /does not contain/],
    ['an unknown release type', () => composeInfo({ compose, release: { ...release, type: 'stable' as never }, variants: [] }), /release type/],
    ['an unknown compose type', () => composeInfo({ compose: { ...compose, type: 'final' as never }, release, variants: [] }), /compose type/],
    ['a variant with a dash', () => composeInfo({ compose, release, variants: [{ dir: 'Base-OS', arches: ['x86_64'], debug: false, source: false }] }), /invalid variant/],
    ['a src arch', () => composeInfo({ compose, release, variants: [{ dir: 'BaseOS', arches: ['src'], debug: false, source: false }] }), /source is not an arch/],
    ['media for an arch the variant lacks', () => composeInfo({ compose, release, variants: [{ dir: 'BaseOS', arches: ['x86_64'], debug: false, source: false, media: ['s390x'] }] }), /media arch/],
  ])('refuses %s', (_what, f, err) => expect(f).toThrow(err));
});

describe('images.json', () => {
  const dvd: ImageEntry = {
    variant: 'BaseOS', arch: 'x86_64', path: 'isos/x86_64/Rocky-9.7-x86_64-dvd.iso', size: 11890851840, sha256: 'b'.repeat(64),
    mtime: 1763650000, format: 'iso', type: 'dvd', bootable: true, volumeId: 'Rocky-9-7-x86_64-dvd', implantMd5: 'c'.repeat(32),
  };
  const boot: ImageEntry = { ...dvd, path: 'isos/x86_64/Rocky-9.7-x86_64-boot.iso', type: 'boot', size: 1, sha256: 'a'.repeat(64) };
  const qcow: ImageEntry = {
    variant: 'BaseOS', arch: 'aarch64', path: 'images/aarch64/Rocky-9-GenericCloud-Base-9.7-20251120.0.aarch64.qcow2', size: 5, sha256: 'd'.repeat(64),
    mtime: 1763650001, format: 'qcow2', type: 'qcow2', bootable: false, subvariant: 'GenericCloud-Base',
  };
  const out = written(imagesJson({ compose, images: [dvd, qcow, boot] }));

  it('has the header and images.<variant>.<arch>[] sorted by path with every productmd field', () => {
    expect(out.header).toEqual({ type: 'productmd.images', version: '1.2' });
    expect(out.payload.compose).toEqual(compose);
    expect(out.payload.images.BaseOS.x86_64.map((i: { path: string }) => i.path)).toEqual([boot.path, dvd.path]);
    expect(out.payload.images.BaseOS.x86_64[1]).toEqual({
      arch: 'x86_64', bootable: true, checksums: { sha256: 'b'.repeat(64) }, disc_count: 1, disc_number: 1, format: 'iso',
      implant_md5: 'c'.repeat(32), mtime: 1763650000, path: dvd.path, size: 11890851840, subvariant: 'BaseOS', type: 'dvd', volume_id: 'Rocky-9-7-x86_64-dvd',
    });
    expect(out.payload.images.BaseOS.aarch64[0]).toMatchObject({ implant_md5: null, volume_id: null, subvariant: 'GenericCloud-Base', bootable: false });
  });

  it.each<[string, ImageEntry[], RegExp]>([
    ['a src arch', [{ ...dvd, arch: 'src' }], /binary arch/],
    ['an absolute path', [{ ...dvd, path: '/mnt/compose/x.iso' }], /relative/],
    ['a fractional mtime', [{ ...dvd, mtime: 1.5 }], /whole seconds/],
    ['an uppercase digest', [{ ...dvd, sha256: 'B'.repeat(64) }], /lowercase/],
    ['a bad implant md5', [{ ...dvd, implantMd5: 'xyz' }], /implant_md5/],
    ['disc 2 of 1', [{ ...dvd, discNumber: 2 }], /disc 2 of 1/],
    ['two different images with one identity', [dvd, { ...dvd, path: 'isos/x86_64/other.iso', sha256: 'e'.repeat(64) }], /same subvariant/],
    ['one path twice', [dvd, dvd], /listed twice/],
    // what productmd's loader refused in the images.json of 2026-12-06
    ['a .vhd as type vhd (productmd: vpc)', [{ ...qcow, type: 'vhd', format: 'vhd' }], /no image of type "vhd" with format "vhd".*unknown type/],
    ['a libvirt box with format box', [{ ...qcow, type: 'vagrant-libvirt', format: 'box' }], /type "vagrant-libvirt" with format "box".*takes: vagrant-libvirt\.box/],
    ['a pair productmd does not map (boot as qcow2)', [{ ...qcow, type: 'boot', format: 'qcow2' }], /type "boot" with format "qcow2"/],
  ])('refuses %s', (_what, images, err) => expect(() => imagesJson({ compose, images })).toThrow(err));
});

// productmd's table, as read from its source (testdata/productmd-images.json names the commit).
const facts = JSON.parse(readFileSync(join(__dirname, 'testdata/productmd-images.json'), 'utf8')) as { source: string; imageTypeFormats: Record<string, string[]> };

describe("productmd's image types and formats", () => {
  it('are the table of productmd/images.py, and SUPPORTED_IMAGE_FORMATS its sorted values', () => {
    expect(facts.source).toMatch(/release-engineering\/productmd@2a28dec .*productmd\/images\.py/);
    expect(IMAGE_TYPE_FORMATS).toEqual(facts.imageTypeFormats);
    expect(SUPPORTED_IMAGE_FORMATS).toEqual([...new Set(Object.values(facts.imageTypeFormats).flat())].sort());
  });

  it('give every cloud image of every release a type/format pair productmd accepts', () => {
    const ws = join(__dirname, '../../..');
    const seen: string[] = [];
    for (const name of listReleases(ws)) {
      for (const [kind, img] of Object.entries(loadRelease(ws, name).cloud.images)) {
        for (const variant of img.variants.length ? img.variants : [undefined]) {
          const { type, format } = cloudImageKind(img.format, variant);
          expect(facts.imageTypeFormats[type], `${name} ${kind} ${variant}: type ${type}`).toContain(format);
          seen.push(`${img.format}→${type}/${format}`);
        }
      }
    }
    expect(new Set(seen)).toEqual(new Set(['qcow2→qcow2/qcow2', 'vhd→vpc/vhd', 'tar.xz→docker/tar.xz', 'box→vagrant-libvirt/vagrant-libvirt.box', 'raw.xz→raw-xz/raw.xz']));
    expect(() => cloudImageKind('box', 'Parallels')).toThrow(/no productmd vagrant type for box variant "Parallels"/);
  });
});

describe('rpms.json', () => {
  const bashSrc = { name: 'bash', version: '5.1.8', release: '9.el9', arch: 'src' };
  const rows: RpmEntry[] = [
    { variant: 'BaseOS', arch: 'x86_64', rpm: { ...bashSrc, arch: 'x86_64' }, srpm: bashSrc, path: 'BaseOS/x86_64/os/Packages/b/bash-5.1.8-9.el9.x86_64.rpm', sigkey: '350D275D', category: 'binary' },
    { variant: 'BaseOS', arch: 'x86_64', rpm: { ...bashSrc, name: 'bash-debuginfo', arch: 'x86_64' }, srpm: bashSrc, path: 'BaseOS/x86_64/debug/tree/Packages/b/bash-debuginfo-5.1.8-9.el9.x86_64.rpm', sigkey: '350d275d', category: 'debug' },
    { variant: 'BaseOS', arch: 'x86_64', rpm: bashSrc, path: 'BaseOS/source/tree/Packages/b/bash-5.1.8-9.el9.src.rpm', sigkey: null, category: 'source' },
    // a subpackage whose epoch differs from its source package's
    { variant: 'AppStream', arch: 'aarch64', rpm: { name: 'perl-Carp', epoch: 0, version: '1.50', release: '460.el9', arch: 'noarch' }, srpm: { name: 'perl', epoch: '4', version: '5.32.1', release: '481.el9', arch: 'src' }, path: 'AppStream/aarch64/os/Packages/p/perl-Carp-1.50-460.el9.noarch.rpm', sigkey: '350d275d', category: 'binary' },
  ];
  const out = written(rpmsJson({ compose, rpms: rows }));

  it('keys rpms by variant, arch, srpm NEVRA and rpm NEVRA, epochs included', () => {
    expect(out.header).toEqual({ type: 'productmd.rpms', version: '1.2' });
    expect(out.payload.compose).toEqual(compose);
    expect(out.payload.rpms.BaseOS.x86_64['bash-0:5.1.8-9.el9.src']).toEqual({
      'bash-0:5.1.8-9.el9.src': { category: 'source', path: 'BaseOS/source/tree/Packages/b/bash-5.1.8-9.el9.src.rpm', sigkey: null },
      'bash-0:5.1.8-9.el9.x86_64': { category: 'binary', path: 'BaseOS/x86_64/os/Packages/b/bash-5.1.8-9.el9.x86_64.rpm', sigkey: '350d275d' },
      'bash-debuginfo-0:5.1.8-9.el9.x86_64': { category: 'debug', path: 'BaseOS/x86_64/debug/tree/Packages/b/bash-debuginfo-5.1.8-9.el9.x86_64.rpm', sigkey: '350d275d' },
    });
    expect(Object.keys(out.payload.rpms.AppStream.aarch64['perl-4:5.32.1-481.el9.src'])).toEqual(['perl-Carp-0:1.50-460.el9.noarch']);
  });

  it('accepts the same row twice but not two different ones for one package', () => {
    expect(() => rpmsJson({ compose, rpms: [rows[0], rows[0]] })).not.toThrow();
    expect(() => rpmsJson({ compose, rpms: [rows[0], { ...rows[0], sigkey: 'deadbeef' }] })).toThrow(/listed twice/);
  });

  it.each<[string, Partial<RpmEntry>, RegExp]>([
    ['a src arch key', { arch: 'src' }, /binary arches/],
    ['a binary without srpm', { srpm: undefined }, /need their srpm/],
    ['a srpm that is not a source package', { srpm: { ...bashSrc, arch: 'x86_64' } }, /not a source package/],
    ['category source for a binary', { category: 'source' }, /does not fit/],
    ['a long sigkey', { sigkey: '199e2f91fd431d51' }, /8 hex digits/],
    ['an absolute path', { path: '/BaseOS/x.rpm' }, /relative/],
  ])('refuses %s', (_what, change, err) => expect(() => rpmsJson({ compose, rpms: [{ ...rows[0], ...change }] })).toThrow(err));
});

describe('stableJson', () => {
  it('sorts keys at every level, indents by 4 and ends with a newline', () => {
    expect(stableJson({ b: 1, a: { d: [3, { z: true, y: null }], c: 'x' }, e: [], f: {} })).toBe(
      '{\n    "a": {\n        "c": "x",\n        "d": [\n            3,\n            {\n                "y": null,\n                "z": true\n            }\n        ]\n    },\n    "b": 1,\n    "e": [],\n    "f": {}\n}\n',
    );
  });

  it('sorts integer-like keys as strings and by code point, as Python does', () => {
    // (read the text: JSON.parse would put integer-like keys first again)
    expect([...stableJson({ b: 0, 10: 0, 9: 0, B: 0, a: 0 }).matchAll(/"(.+)":/g)].map((m) => m[1])).toEqual(['10', '9', 'B', 'a', 'b']);
    expect(stableJson({ 10: 1, 9: 2 })).toBe('{\n    "10": 1,\n    "9": 2\n}\n');
  });

  it('gives the same bytes for the same data built in another order', () => {
    const a = rpmsJson({ compose, rpms: [] });
    expect(stableJson({ x: 1, y: [1, 2], z: a })).toBe(stableJson({ z: a, y: [1, 2], x: 1 }));
  });

  it('escapes non-ASCII like json.dumps and drops undefined members', () => {
    expect(stableJson({ name: 'Rocky Línux ✓', gone: undefined })).toBe('{\n    "name": "Rocky L\\u00ednux \\u2713"\n}\n');
    expect(JSON.parse(stableJson({ s: 'é😀' })).s).toBe('é😀');
  });

  it('refuses what JSON cannot hold', () => {
    expect(() => stableJson({ a: Number.NaN })).toThrow(/\$\.a/);
    const cyc: Record<string, unknown> = {};
    cyc.self = cyc;
    expect(() => stableJson(cyc)).toThrow(/cycle/);
  });
});
