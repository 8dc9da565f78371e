// Against research/empanadas-spec.md §2.1.1 (exact) and §2.1.2 (DVD excerpt), plus round trips.
import { describe, it, expect } from 'vitest';
import { renderTreeinfo, parseTreeinfo, repoTreeinfo, discTreeinfo, treeinfoImagePaths, treeinfoProblems, treeinfoReferences, type TreeInfo } from './treeinfo';
import { parseIni } from './ini';

// §2.1.1, verbatim. configparser (and so productmd) also ends the last section with a blank
// line, which a Markdown block cannot show: the file is this text plus "\n\n".
const SPEC_BASEOS = `[general]
; WARNING.0 = This section provides compatibility with pre-productmd treeinfos.
; WARNING.1 = Read productmd documentation for details about new format.
arch = x86_64
family = Rocky Linux
name = Rocky Linux 9.7
packagedir = Packages
platforms = x86_64
repository = .
timestamp = 1731000000
variant = BaseOS
variants = BaseOS
version = 9.7

[header]
type = productmd.treeinfo
version = 1.2

[release]
name = Rocky Linux
short = Rocky
version = 9.7

[tree]
arch = x86_64
build_timestamp = 1731000000
platforms = x86_64
variants = BaseOS

[variant-BaseOS]
id = BaseOS
name = BaseOS
packages = Packages
repository = .
type = variant
uid = BaseOS`;

const base = { fullname: 'Rocky Linux', short: 'Rocky', version: '9.7' };
const baseos = repoTreeinfo({ ...base, arch: 'x86_64', variant: 'BaseOS', timestamp: 1731000000 });

const sha = (c: string) => `sha256:${c.repeat(64)}`;

// What lorax leaves in its output tree (productmd-style sections plus a hand-written [general],
// an images-xen platform, a boot.iso entry and an empty value), in lorax's unsorted order.
const LORAX = `[general]
name = Rocky Linux-9.7
family = Rocky Linux
timestamp = 1763650000.52
variant = BaseOS
version = 9.7
packagedir =
arch = x86_64
platforms = x86_64,xen

[header]
type = productmd.treeinfo
version = 1.2

[release]
name = Rocky Linux
short = Rocky Linux
version = 9.7

[tree]
arch = x86_64
build_timestamp = 1763650000.52
platforms = x86_64,xen
variants = BaseOS

[variant-BaseOS]
id = BaseOS
name = BaseOS
packages = Packages
repository = .
type = variant
uid = BaseOS

[images-x86_64]
efiboot.img = images/efiboot.img
boot.iso = images/boot.iso
kernel = images/pxeboot/vmlinuz
initrd = images/pxeboot/initrd.img
eltorito.img =

[images-xen]
kernel = images/pxeboot/vmlinuz
initrd = images/pxeboot/initrd.img

[stage2]
mainimage = images/install.img

[checksums]
images/boot.iso = sha256:${'9'.repeat(64)}
`;

const imageSums: Record<string, string> = {
  'images/efiboot.img': sha('8'),
  'images/install.img': sha('0'),
  'images/pxeboot/initrd.img': sha('d'),
  'images/pxeboot/vmlinuz': sha('a'),
};
const rocky = { name: 'Rocky Linux', short: 'Rocky', version: '9.7' };
const dvdOpts = { repos: ['BaseOS', 'AppStream'], mainVariant: 'AppStream', disc: true, arch: 'x86_64', checksums: imageSums, dropBootIso: true, release: rocky };

/** Section -> key -> value of a rendered file, for "these keys are present" checks. */
const sections = (text: string) => Object.fromEntries([...parseIni(text)].map(([s, m]) => [s, Object.fromEntries(m)]));

describe('renderTreeinfo', () => {
  it('renders the §2.1.1 BaseOS example byte for byte', () => {
    expect(renderTreeinfo(baseos)).toBe(`${SPEC_BASEOS}\n\n`);
  });

  it('is deterministic: input order does not matter', () => {
    const dvd = discTreeinfo(parseTreeinfo(LORAX), dvdOpts);
    const shuffled: TreeInfo = {
      ...dvd,
      variants: [...dvd.variants].reverse(),
      tree: { ...dvd.tree, platforms: [...dvd.tree.platforms].reverse() },
      checksums: Object.fromEntries(Object.entries(dvd.checksums!).reverse()),
    };
    expect(renderTreeinfo(shuffled)).toBe(renderTreeinfo(dvd));
  });

  it('writes a float build timestamp for debug/source trees and truncates it in [general]', () => {
    const t = sections(renderTreeinfo(repoTreeinfo({ ...base, arch: 'src', variant: 'BaseOS', timestamp: 1731000000.25 })));
    expect(t.tree.build_timestamp).toBe('1731000000.25');
    expect(t.general.timestamp).toBe('1731000000');
    expect(t.tree.arch).toBe('src');
    expect(t.tree.platforms).toBe('src');
  });

  it.each<[string, (t: TreeInfo) => TreeInfo, RegExp]>([
    ['unknown main variant', (t) => ({ ...t, mainVariant: 'AppStream' }), /main variant AppStream/],
    ['image platform not in platforms', (t) => ({ ...t, images: { ppc: { kernel: 'k' } } }), /platform/],
    ['absolute image path', (t) => ({ ...t, images: { x86_64: { kernel: '/images/vmlinuz' } } }), /relative/],
    ['checksum without algorithm', (t) => ({ ...t, checksums: { 'images/a': 'abc' } }), /algorithm/],
    ['checksum path with a delimiter', (t) => ({ ...t, checksums: { 'a=b': sha('1') } }), /invalid checksum path/],
    ['bad media', (t) => ({ ...t, media: { discnum: 2, totaldiscs: 1 } }), /media/],
    ['dash in variant id', (t) => ({ ...t, variants: [{ ...t.variants[0], id: 'Base-OS' }] }), /variant id/],
    ['duplicate variants', (t) => ({ ...t, variants: [t.variants[0], t.variants[0]] }), /duplicate/],
    ['newline in a value', (t) => ({ ...t, release: { ...t.release, name: 'Rocky\nLinux' } }), /invalid INI value/],
  ])('refuses %s', (_what, change, err) => {
    expect(() => renderTreeinfo(change(baseos))).toThrow(err);
  });
});

describe('discTreeinfo (§2.1.2)', () => {
  const dvd = discTreeinfo(parseTreeinfo(LORAX), dvdOpts);
  const text = renderTreeinfo(dvd);

  it('has every key and value of the DVD excerpt', () => {
    const got = sections(text);
    expect(got.checksums).toEqual(imageSums);
    expect(got.general).toMatchObject({ packagedir: 'AppStream/Packages', repository: 'AppStream', variant: 'AppStream', variants: 'AppStream,BaseOS' });
    expect(got['images-x86_64']).toEqual({ 'efiboot.img': 'images/efiboot.img', initrd: 'images/pxeboot/initrd.img', kernel: 'images/pxeboot/vmlinuz' });
    expect(got.media).toEqual({ discnum: '1', totaldiscs: '1' });
    expect(got.stage2).toEqual({ mainimage: 'images/install.img' });
    expect(got['variant-AppStream']).toEqual({ id: 'AppStream', name: 'AppStream', uid: 'AppStream', packages: 'AppStream/Packages', repository: 'AppStream', type: 'variant' });
    expect(got['variant-BaseOS']).toEqual({ id: 'BaseOS', name: 'BaseOS', uid: 'BaseOS', packages: 'BaseOS/Packages', repository: 'BaseOS', type: 'variant' });
    expect(got.release).toEqual({ name: 'Rocky Linux', short: 'Rocky', version: '9.7' });
    expect(got.tree).toMatchObject({ arch: 'x86_64', platforms: 'x86_64,xen', variants: 'AppStream,BaseOS' });
  });

  it('writes the excerpt lines in sorted order, sections sorted', () => {
    expect(text).toContain(
      [
        '[checksums]',
        `images/efiboot.img = ${sha('8')}`,
        `images/install.img = ${sha('0')}`,
        `images/pxeboot/initrd.img = ${sha('d')}`,
        `images/pxeboot/vmlinuz = ${sha('a')}`,
        '',
        '[general]',
      ].join('\n'),
    );
    expect(text).toContain('[media]\ndiscnum = 1\ntotaldiscs = 1\n');
    const order = [...text.matchAll(/^\[(.+)\]$/gm)].map((m) => m[1]);
    expect(order).toEqual(['checksums', 'general', 'header', 'images-x86_64', 'images-xen', 'media', 'release', 'stage2', 'tree', 'variant-AppStream', 'variant-BaseOS']);
  });

  it('drops boot.iso, its checksum and empty image entries from a disc', () => {
    expect(text).not.toContain('boot.iso');
    expect(text).not.toContain('eltorito.img');
  });

  it('points a non-disc primary tree at itself and the other repos at their os trees', () => {
    const t = discTreeinfo(parseTreeinfo(LORAX), {
      repos: ['BaseOS', 'AppStream'],
      mainVariant: 'BaseOS',
      disc: false,
      arch: 'x86_64',
      checksums: { ...imageSums, 'images/boot.iso': sha('b') },
      dropBootIso: false,
    });
    const got = sections(renderTreeinfo(t));
    expect(got['variant-BaseOS']).toMatchObject({ packages: 'Packages', repository: '.' });
    expect(got['variant-AppStream']).toMatchObject({ packages: '../../../AppStream/x86_64/os/Packages', repository: '../../../AppStream/x86_64/os' });
    expect(got.general).toMatchObject({ variant: 'BaseOS', packagedir: 'Packages', repository: '.' });
    expect(got['images-x86_64']['boot.iso']).toBe('images/boot.iso');
    expect(got.checksums['images/boot.iso']).toBe(sha('b'));
    expect(got.media).toBeUndefined();
    // release kept from the base when none is given
    expect(got.release.short).toBe('Rocky Linux');

    const ks = discTreeinfo(parseTreeinfo(LORAX), { repos: ['BaseOS', 'AppStream'], mainVariant: 'BaseOS', disc: false, arch: 'x86_64', checksums: imageSums, dropBootIso: true, kind: 'kickstart' });
    expect(ks.variants.find((v) => v.id === 'AppStream')!.repository).toBe('../../../AppStream/x86_64/kickstart');
  });

  it.each<[string, Partial<typeof dvdOpts>, RegExp]>([
    ['an image without a checksum', { checksums: Object.fromEntries(Object.entries(imageSums).filter(([p]) => p !== 'images/install.img')) }, /no checksum for images\/install.img/],
    ['another arch', { arch: 'aarch64' }, /not aarch64/],
    ['a main variant outside the repos', { mainVariant: 'CRB' }, /main variant CRB/],
  ])('refuses %s', (_what, change, err) => {
    expect(() => discTreeinfo(parseTreeinfo(LORAX), { ...dvdOpts, ...change })).toThrow(err);
  });

  it('lists the files [checksums] must cover', () => {
    expect(treeinfoImagePaths(parseTreeinfo(LORAX))).toEqual(['images/boot.iso', 'images/efiboot.img', 'images/install.img', 'images/pxeboot/initrd.img', 'images/pxeboot/vmlinuz']);
  });
});

describe('parseTreeinfo', () => {
  const lorax = parseTreeinfo(LORAX);
  const cases: [string, TreeInfo][] = [
    ['§2.1.1 os tree', baseos],
    ['debug tree (float timestamp)', repoTreeinfo({ ...base, arch: 'aarch64', variant: 'AppStream', timestamp: 1763650000.123456 })],
    ['source tree', repoTreeinfo({ ...base, arch: 'src', variant: 'devel', timestamp: 1763650000.5 })],
    ['DVD', discTreeinfo(lorax, dvdOpts)],
    ['BaseOS boot tree', discTreeinfo(lorax, { ...dvdOpts, mainVariant: 'BaseOS', disc: false, dropBootIso: false, checksums: { ...imageSums, 'images/boot.iso': sha('b') } })],
    [
      'stage2 instimage, multi-disc media',
      {
        release: rocky,
        tree: { arch: 's390x', buildTimestamp: 1, platforms: ['s390x'] },
        variants: [{ id: 'BaseOS', uid: 'BaseOS', name: 'Base OS', type: 'variant', packages: 'Packages', repository: '.' }],
        mainVariant: 'BaseOS',
        images: { s390x: { 'generic.ins': 'generic.ins', kernel: 'images/kernel.img' } },
        stage2: { instimage: 'images/install.img' },
        checksums: { 'images/kernel.img': sha('c') },
        media: { discnum: 2, totaldiscs: 3 },
      },
    ],
  ];
  it.each(cases)('parse(render(x)) deep-equals x: %s', (_what, t) => {
    expect(parseTreeinfo(renderTreeinfo(t))).toEqual(t);
  });

  it('reads what lorax writes', () => {
    expect(lorax.release).toEqual({ name: 'Rocky Linux', short: 'Rocky Linux', version: '9.7' });
    expect(lorax.tree).toEqual({ arch: 'x86_64', buildTimestamp: 1763650000.52, platforms: ['x86_64', 'xen'] });
    expect(lorax.images!['x86_64']['boot.iso']).toBe('images/boot.iso');
    expect(lorax.images!.xen).toEqual({ kernel: 'images/pxeboot/vmlinuz', initrd: 'images/pxeboot/initrd.img' });
    expect(lorax.stage2).toEqual({ mainimage: 'images/install.img' });
    expect(lorax.checksums).toEqual({ 'images/boot.iso': sha('9') });
    expect(lorax.mainVariant).toBe('BaseOS');
  });

  it('tolerates unknown sections and keys, comments, CRLF and missing optional sections', () => {
    const text = `${SPEC_BASEOS}\nsource_packages = ../../source/tree/Packages\n\n[addon-BaseOS-Foo]\nid = Foo\n# note\n\n[future]\nthing: value\n`.replace(/\n/g, '\r\n');
    expect(parseTreeinfo(text)).toEqual(baseos);
  });

  it('reads a pre-productmd treeinfo from [general]', () => {
    const t = parseTreeinfo(`[general]\nname = CentOS-7\nfamily = CentOS\ntimestamp = 1504618609.47\nvariant =\nversion = 7\npackagedir =\narch = x86_64\n\n[stage2]\nmainimage = LiveOS/squashfs.img\n\n[images-x86_64]\nkernel = images/pxeboot/vmlinuz\n\n[images-xen]\nkernel = images/pxeboot/vmlinuz\n`);
    expect(t).toEqual({
      release: { name: 'CentOS', short: '', version: '7' },
      tree: { arch: 'x86_64', buildTimestamp: 1504618609.47, platforms: ['x86_64', 'xen'] },
      variants: [],
      images: { x86_64: { kernel: 'images/pxeboot/vmlinuz' }, xen: { kernel: 'images/pxeboot/vmlinuz' } },
      stage2: { mainimage: 'LiveOS/squashfs.img' },
    });
    // and it renders (no [general] variant keys without a variant)
    expect(renderTreeinfo(t)).toContain('variants = \n');
  });

  it.each([
    ['a line outside a section', 'arch = x86_64\n[tree]\n', /line 1: key outside any section/],
    ['a line that is not key = value', `${SPEC_BASEOS}\nnot an option\n`, /line 37: expected `key = value`/],
    ['a duplicate key', '[tree]\narch = a\narch = b\n', /line 3: duplicate key arch/],
    ['a duplicate section', '[tree]\n[tree]\n', /line 2: duplicate section/],
    ['another metadata type', SPEC_BASEOS.replace('productmd.treeinfo', 'productmd.images'), /header type/],
    ['a listed variant without its section', SPEC_BASEOS.replace('variants = BaseOS\n\n[variant', 'variants = BaseOS,CRB\n\n[variant'), /no \[variant-CRB\]/],
    ['a missing arch', SPEC_BASEOS.replace(/^arch = x86_64\n/gm, ''), /missing arch in \[tree\]/],
  ])('rejects %s', (_what, text, err) => {
    expect(() => parseTreeinfo(text)).toThrow(err);
  });
});

describe('repoTreeinfo', () => {
  it('refuses a fullname that already carries the version', () => {
    expect(() => repoTreeinfo({ ...base, fullname: 'Rocky Linux 9.7', arch: 'x86_64', variant: 'BaseOS', timestamp: 1 })).toThrow(/distribution name/);
  });
});

// The rules of productmd's TreeInfo loader (treeinfo.py, format 1.x), as treeinfoProblems checks them.
describe('treeinfoProblems', () => {
  const installable = renderTreeinfo(
    discTreeinfo(parseTreeinfo(LORAX), { repos: ['BaseOS', 'AppStream'], mainVariant: 'BaseOS', disc: false, arch: 'x86_64', checksums: { ...imageSums, 'images/boot.iso': sha('b') }, dropBootIso: false, release: rocky }),
  );

  it('accepts what we write (repo trees, installable trees, discs) and what lorax writes', () => {
    for (const text of [SPEC_BASEOS, renderTreeinfo(baseos), installable, renderTreeinfo(discTreeinfo(parseTreeinfo(LORAX), dvdOpts)), LORAX]) expect(treeinfoProblems(text)).toEqual([]);
  });

  const edit = (from: string, to: string) => {
    if (!installable.includes(from)) throw new Error(`no ${from}`);
    return installable.replace(from, to);
  };
  it.each<[string, string, RegExp]>([
    ['a wrong header type', edit('type = productmd.treeinfo', 'type = productmd.composeinfo'), /\[header\] type/],
    ['no release version', edit('[release]\nname = Rocky Linux\nshort = Rocky\nversion = 9.7', '[release]\nname = Rocky Linux\nshort = Rocky'), /\[release\] has no version/],
    ['a malformed numeric version', edit('[release]\nname = Rocky Linux\nshort = Rocky\nversion = 9.7', '[release]\nname = Rocky Linux\nshort = Rocky\nversion = 9.7-beta'), /not dotted digits/],
    ['a non-numeric build timestamp', edit('build_timestamp = 1763650000.52', 'build_timestamp = soon'), /build_timestamp/],
    ['a listed variant without its section', edit('variants = AppStream,BaseOS\n\n[variant-AppStream]', 'variants = AppStream,BaseOS,CRB\n\n[variant-AppStream]'), /variant CRB has no \[variant-CRB\]/],
    ['an unknown variant type', edit('type = variant\nuid = AppStream', 'type = repo\nuid = AppStream'), /type "repo"/],
    ['an image platform not in the tree', edit('platforms = x86_64,xen\nvariants', 'platforms = x86_64\nvariants'), /platform xen is not in \[tree\] platforms/],
    ['an absolute image path', edit('kernel = images/pxeboot/vmlinuz', 'kernel = /images/pxeboot/vmlinuz'), /absolute/],
    ['a checksum without its type', edit(`images/boot.iso = ${sha('b')}`, 'images/boot.iso = md5-abc'), /not <type>:<hex>/],
    ['a syntax error', `${installable}garbage line\n`, /\.treeinfo/],
  ])('refuses %s', (_what, text, err) => {
    expect(treeinfoProblems(text).join('\n')).toMatch(err);
  });

  it('lists every path an installable tree names: files with their checksums, and the repo dirs', () => {
    const refs = treeinfoReferences(parseTreeinfo(installable));
    expect(refs.files).toEqual([
      { path: 'images/boot.iso', checksum: sha('b') },
      { path: 'images/efiboot.img', checksum: sha('8') },
      { path: 'images/install.img', checksum: sha('0') },
      { path: 'images/pxeboot/initrd.img', checksum: sha('d') },
      { path: 'images/pxeboot/vmlinuz', checksum: sha('a') },
    ]);
    expect(refs.dirs).toEqual(['.', '../../../AppStream/x86_64/os', '../../../AppStream/x86_64/os/Packages', 'Packages']);
  });
});

