// productmd's JSON read back with productmd's rules (peers §3; productmd composeinfo.py, rpms.py,
// images.py): what another tool wrote is accepted when productmd would accept it, and refused
// with the file and the entry otherwise.
import { describe, expect, it } from 'vitest';
import { composeInfo, imagesJson, rpmsJson, stableJson } from './productmd';
import { parseComposeInfo, parseImagesJson, parseRpmsJson } from './productmd-read';

const compose = { id: 'DP-1.0-20161013.t.4', date: '20161013', respin: 4, type: 'test' as const };
const doc = (kind: string, payload: object, version = '1.2') => JSON.stringify({ header: { type: `productmd.${kind}`, version }, payload: { compose, ...payload } });

describe('parseComposeInfo', () => {
  // The example of peers §3 (a pungi test compose), with its variant paths.
  const dp = doc('composeinfo', {
    release: { name: 'Dummy Product', short: 'DP', type: 'ga', version: '1.0', internal: false },
    variants: {
      Client: { arches: ['i386', 'x86_64'], id: 'Client', uid: 'Client', name: 'Client', type: 'variant', paths: { os_tree: { x86_64: 'Client/x86_64/os' }, isos: { x86_64: 'Client/x86_64/iso' }, unknown_category: { x86_64: 'x' } } },
    },
  });

  it('reads the release, the compose and every variant with its paths', () => {
    const ci = parseComposeInfo(dp);
    expect(ci.compose).toEqual(compose);
    expect(ci.release).toEqual({ name: 'Dummy Product', short: 'DP', version: '1.0', type: 'ga', internal: false, isLayered: false });
    expect(ci.variants).toEqual([{ uid: 'Client', id: 'Client', name: 'Client', type: 'variant', arches: ['i386', 'x86_64'], paths: { os_tree: { x86_64: 'Client/x86_64/os' }, isos: { x86_64: 'Client/x86_64/iso' } } }]);
  });

  it('reads back what composeInfo writes, pungi-layout ISO dirs included', () => {
    const text = stableJson(
      composeInfo({
        compose: { ...compose, label: 'RC-1.0', final: true },
        release: { name: 'Rocky Linux', short: 'Rocky', version: '8', type: 'updates' },
        variants: [{ dir: 'BaseOS', arches: ['x86_64'], debug: true, source: true, isos: { x86_64: 'BaseOS/x86_64/iso' } }],
      }),
    );
    const ci = parseComposeInfo(text);
    expect(ci.compose).toMatchObject({ label: 'RC-1.0', final: true });
    expect(ci.release.type).toBe('updates');
    expect(ci.variants[0].paths).toMatchObject({ os_tree: { x86_64: 'BaseOS/x86_64/os' }, debug_tree: { x86_64: 'BaseOS/x86_64/debug/tree' }, source_tree: { x86_64: 'BaseOS/source/tree' }, isos: { x86_64: 'BaseOS/x86_64/iso' } });
  });

  it.each([
    [dp.replace('"productmd.composeinfo"', '"productmd.images"'), /header\.type is "productmd\.images", expected "productmd\.composeinfo"/],
    [dp.replace('"version":"1.2"', '"version":"2.0"'), /productmd 2\.0 metadata is newer than this reader/],
    [dp.replace('"version":"1.2"', '"version":"0.3"'), /productmd 0\.3 metadata is not supported/],
    [dp.replace('"type":"ga"', '"type":"stable"'), /payload\.release\.type "stable" is not one of fast, ga, updates/],
    [dp.replace('"id":"Client"', '"id":"Cli-ent"'), /payload\.variants\.Client\.id "Cli-ent" must be letters and digits/],
    [dp.replace('"Client/x86_64/os"', '"../x86_64/os"'), /payload\.variants\.Client\.paths\.os_tree\.x86_64 must be a relative path inside compose/],
    [dp.replace('"os_tree":{"x86_64"', '"os_tree":{"ppc64le"'), /ppc64le is not one of the variant's arches/],
    [dp.replace('"date":"20161013"', '"date":"2016-10-13"'), /payload\.compose\.date must be YYYYMMDD/],
    [dp.replace('"respin":4', '"respin":4,"label":"RC1.0"'), /payload\.compose\.label "RC1\.0" is not <Milestone>-X\.Y/],
    ['{not json', /not valid JSON/],
  ])('refuses %#', (text, msg) => {
    expect(() => parseComposeInfo(text, '/c/composeinfo.json')).toThrow(msg);
    expect(() => parseComposeInfo(text, '/c/composeinfo.json')).toThrow(/^\/c\/composeinfo\.json: /);
  });
});

describe('parseRpmsJson', () => {
  const rpm = (nevra: string, e: object) => doc('rpms', { rpms: { Server: { x86_64: { 'bash-0:4.3.30-2.fc21.src': { [nevra]: e } } } } });

  it('reads variant, arch, srpm, nevra, path, sigkey and category; reads back what rpmsJson writes', () => {
    const r = parseRpmsJson(rpm('bash-0:4.3.30-2.fc21.x86_64', { category: 'binary', path: 'Server/x86_64/os/Packages/b/bash-4.3.30-2.fc21.x86_64.rpm', sigkey: '246110C1' }));
    expect(r.rpms).toEqual([{ variant: 'Server', arch: 'x86_64', srpm: 'bash-0:4.3.30-2.fc21.src', nevra: 'bash-0:4.3.30-2.fc21.x86_64', path: 'Server/x86_64/os/Packages/b/bash-4.3.30-2.fc21.x86_64.rpm', sigkey: '246110c1', category: 'binary' }]);
    const written = stableJson(rpmsJson({ compose, rpms: [{ variant: 'V', arch: 'x86_64', rpm: { name: 'a', version: '1', release: '1', arch: 'src' }, path: 'V/source/tree/Packages/a/a-1-1.src.rpm', sigkey: null, category: 'source' }] }));
    expect(parseRpmsJson(written).rpms).toEqual([{ variant: 'V', arch: 'x86_64', srpm: 'a-0:1-1.src', nevra: 'a-0:1-1.src', path: 'V/source/tree/Packages/a/a-1-1.src.rpm', sigkey: null, category: 'source' }]);
  });

  it.each([
    [rpm('bash-4.3.30-2.fc21.x86_64', { category: 'binary', path: 'p', sigkey: null }), /not an N-E:V-R\.A \(the epoch is required\)/],
    [rpm('bash-0:4.3.30-2.fc21.x86_64', { category: 'source', path: 'p', sigkey: null }), /category source does not fit arch x86_64/],
    [rpm('bash-0:4.3.30-2.fc21.x86_64', { category: 'package', path: 'p', sigkey: null }), /category "package" is not binary, debug or source/],
    [rpm('bash-0:4.3.30-2.fc21.x86_64', { category: 'binary', path: '/abs', sigkey: null }), /must be a relative path/],
    [rpm('bash-0:4.3.30-2.fc21.x86_64', { category: 'binary', path: 'p', sigkey: 'zz' }), /sigkey "zz" is not a hex key id/],
    [doc('rpms', { rpms: { Server: { src: {} } } }), /source packages are listed under binary arches/],
  ])('refuses %#', (text, msg) => expect(() => parseRpmsJson(text)).toThrow(msg));
});

describe('parseImagesJson', () => {
  const img = { arch: 'x86_64', bootable: true, checksums: { sha256: 'ab'.repeat(32), md5: 'cd'.repeat(16) }, disc_count: 1, disc_number: 1, format: 'iso', implant_md5: 'ef'.repeat(16), mtime: 1476345766, path: 'Server/x86_64/iso/DP-1.0-20161013.t.4-Server-x86_64-dvd1.iso', size: 1048576, subvariant: 'Server', type: 'dvd', volume_id: 'DP-1.0 Server.x86_64' };
  const images = (e: object, version = '1.2') => doc('images', { images: { Server: { x86_64: [e] } } }, version);

  it('reads every image; reads back what imagesJson writes', () => {
    const r = parseImagesJson(images(img));
    expect(r.images).toEqual([{ variant: 'Server', arch: 'x86_64', path: img.path, mtime: img.mtime, size: img.size, volumeId: img.volume_id, type: 'dvd', format: 'iso', discNumber: 1, discCount: 1, checksums: img.checksums, implantMd5: img.implant_md5, bootable: true, subvariant: 'Server' }]);
    const written = stableJson(imagesJson({ compose, images: [{ variant: 'BaseOS', arch: 'aarch64', path: 'BaseOS/aarch64/iso/x.iso', size: 1, sha256: 'a'.repeat(64), mtime: 1, format: 'iso', type: 'dvd', bootable: false }] }));
    expect(parseImagesJson(written).images[0]).toMatchObject({ variant: 'BaseOS', arch: 'aarch64', checksums: { sha256: 'a'.repeat(64) }, subvariant: 'BaseOS', volumeId: null, implantMd5: null });
  });

  it.each([
    [images({ ...img, type: 'floppy' }), /type "floppy" is not an image type productmd knows/],
    [images({ ...img, format: 'box' }), /format "box" is not an image format productmd knows/],
    [images({ ...img, implant_md5: 'xyz' }), /implant_md5 "xyz" is not 32 hex digits/],
    [images({ ...img, checksums: {} }), /checksums is empty/],
    [images({ ...img, size: '1' }), /size must be an integer/],
    [images({ ...img, subvariant: undefined }, '1.1'), /subvariant must be a string/],
  ])('refuses %#', (text, msg) => expect(() => parseImagesJson(text)).toThrow(msg));

  it('a 1.0 file may lack the subvariant, as productmd reads it', () => {
    expect(parseImagesJson(images({ ...img, subvariant: undefined }, '1.0')).images[0].subvariant).toBe('');
  });
});
