// Table-driven against the naming examples of research/empanadas-spec.md §0.2 and §4.2.
import { describe, it, expect } from 'vitest';
import {
  composeId, composeDate, composeLabel, latestLink, volumeId, isoNames, mediaNames, cloudImageNames, stagingNames, productionNames, parseComposeId, sigDir,
  cloudBucketKey, cloudBucketPrefix, parseCloudBucketKey, composeTarget, composeStagingTarget, composeOfTarget,
} from './names';
import { composeRoot } from './layout';
import type { Release } from './schema';

type R = Pick<Release, 'shortname' | 'fullname' | 'major' | 'minor' | 'type' | 'rc' | 'profile' | 'candidate'>;
const r9: R = { shortname: 'Rocky', fullname: 'Rocky Linux', major: 9, minor: 7, type: 'stable', rc: 'RC2', profile: '9', candidate: false };
const beta: R = { ...r9, minor: 8, type: 'beta', rc: 'BETA1', profile: '9-beta' };
const lh: R = { ...r9, minor: 8, type: 'lookahead', rc: 'LH1', profile: '9-lookahead' };
const r8: R = { ...r9, major: 8, minor: 10, profile: '8' };
const when = new Date(Date.UTC(2025, 10, 20, 14, 30, 0));

describe('names', () => {
  it.each([
    // Pungi's names (seed 001: Rocky-8-updates-20210721.1).
    ['compose id', composeId(r9, 'produce', when, 0), 'Rocky-9.7-20251120.0'],
    ['update compose id', composeId(r8, 'update', when, 1), 'Rocky-8-updates-20251120.1'],
    ['beta compose label', composeLabel(beta, 'produce'), 'Rocky-9.8-beta'],
    ['lookahead compose label', composeLabel(lh, 'produce'), 'Rocky-9.8-lookahead'],
    ['beta update label', composeLabel(beta, 'update'), 'Rocky-9-beta-updates'],
    ['rc candidate boot iso', isoNames({ ...r9, candidate: true }, 'x86_64', 'boot').file, 'Rocky-9.7-RC2-x86_64-boot.iso'],
    ['rc candidate volume id', volumeId({ ...r9, candidate: true }, 'x86_64'), 'Rocky-9-7-RC2-x86_64-dvd'],
    ['latest link', latestLink(r9), 'latest-Rocky-9'],
    ['beta latest link', latestLink(beta), 'latest-Rocky-9-beta'],
    ['lookahead latest link', latestLink(lh), 'latest-Rocky-9-lookahead'],
    ['volume id', volumeId(r9, 'x86_64'), 'Rocky-9-7-x86_64-dvd'],
    ['rc volume id', volumeId(beta, 'aarch64'), 'Rocky-9-8-BETA1-aarch64-dvd'],
    ['two-digit minor', volumeId(r8, 'x86_64'), 'Rocky-8-10-x86_64-dvd'],
    ['boot iso', isoNames(r9, 'x86_64', 'boot').file, 'Rocky-9.7-x86_64-boot.iso'],
    ['rc boot iso', isoNames(beta, 'x86_64', 'boot').file, 'Rocky-9.8-BETA1-x86_64-boot.iso'],
    ['dvd', isoNames(r9, 'x86_64', 'dvd').file, 'Rocky-9.7-x86_64-dvd.iso'],
    ['updated dvd', isoNames(r9, 'x86_64', 'dvd', { date: new Date(Date.UTC(2025, 11, 1)), n: 1 }).file, 'Rocky-9.7-20251201.1-x86_64-dvd.iso'],
    // Rocky 8's media as pungi names them and the sync scripts publish them (empanadas-spec §4.3).
    ['8.10 dvd', isoNames(r8, 'aarch64', 'dvd').file, 'Rocky-8.10-aarch64-dvd1.iso'],
    ['8.10 boot', isoNames(r8, 'x86_64', 'boot').file, 'Rocky-8.10-x86_64-boot.iso'],
    ['8.10 minimal', isoNames(r8, 'x86_64', 'minimal').file, 'Rocky-8.10-x86_64-minimal.iso'],
    ['8.10 respun dvd', isoNames(r8, 'x86_64', 'dvd', { date: new Date(Date.UTC(2025, 11, 1)), n: 1 }).file, 'Rocky-8.10-20251201.1-x86_64-dvd1.iso'],
  ])('%s', (_what, got, want) => expect(got).toBe(want));

  it('gives ISO aliases as empanadas links them', () => {
    expect(isoNames(r9, 'x86_64', 'dvd').aliases).toEqual(['Rocky-x86_64-dvd.iso', 'Rocky-9-latest-x86_64-dvd.iso']);
    expect(isoNames(r8, 'x86_64', 'boot').aliases).toEqual(['Rocky-x86_64-boot.iso', 'Rocky-8-latest-x86_64-boot.iso']);
    // Rocky 8: dvd1 with the dvd alias beside it, and the latest link named dvd (`dvd1` → `dvd`).
    expect(isoNames(r8, 'x86_64', 'dvd').aliases).toEqual(['Rocky-8.10-x86_64-dvd.iso', 'Rocky-x86_64-dvd.iso', 'Rocky-8-latest-x86_64-dvd.iso']);
    expect(isoNames(r8, 'aarch64', 'minimal').aliases).toEqual(['Rocky-aarch64-minimal.iso', 'Rocky-8-latest-aarch64-minimal.iso']);
  });

  it('names cloud images and their latest links', () => {
    const b = { date: when, n: 0 };
    expect(cloudImageNames(r9, { type: 'GenericCloud', variant: 'Base', primary: true, format: 'qcow2' }, 'x86_64', b)).toEqual({
      file: 'Rocky-9-GenericCloud-Base-9.7-20251120.0.x86_64.qcow2',
      aliases: ['Rocky-9-GenericCloud-Base.latest.x86_64.qcow2', 'Rocky-9-GenericCloud.latest.x86_64.qcow2'],
    });
    expect(cloudImageNames(r9, { type: 'Container', variant: 'UBI', format: 'tar.xz' }, 'aarch64', b)).toEqual({
      file: 'Rocky-9-Container-UBI-9.7-20251120.0.aarch64.tar.xz',
      aliases: ['Rocky-9-Container-UBI.latest.aarch64.tar.xz'],
    });
    expect(cloudImageNames(r9, { type: 'RPI', format: 'raw.xz' }, 'aarch64', b).file).toBe('Rocky-9-RPI-9.7-20251120.0.aarch64.raw.xz');
  });

  it("reads the producer's bucket layout (§1.6): the build's name, layer.tar.xz renamed, nothing else taken for an image", () => {
    const base = 'Rocky-9-Container-Base-9.7-20251120.0.x86_64';
    expect(parseCloudBucketKey(r9, `buildimage-9.7-x86_64/${base}/1763650000/layer.tar.xz`)).toMatchObject({
      file: `${base}.tar.xz`, kind: 'Container-Base', revision: '9.7', arch: 'x86_64', n: 0, ext: 'tar.xz', epoch: 1763650000,
    });
    const qcow = 'Rocky-9-GenericCloud-Base-9.7-20251120.10.aarch64.qcow2';
    expect(parseCloudBucketKey(r9, `images/buildimage-9.7-aarch64/${qcow.slice(0, -6)}/1763650000/${qcow}`, 'images')).toMatchObject({ file: qcow, n: 10, arch: 'aarch64' });
    for (const other of [
      `buildimage-9.7-x86_64/${base}/1763650000/kiwi.result.json`,
      `buildimage-9.7-x86_64/${base}/1763650000/layer.tar.xz.CHECKSUM`,
      `buildimage-9.7-x86_64/${base}/1763650000/Rocky-9-Container-Base-9.7-20251119.0.x86_64.tar.xz`, // not this build's
      `buildimage-9.7-aarch64/${base}/1763650000/layer.tar.xz`, // filed under another arch
      `buildimage-9.6-x86_64/${base}/1763650000/layer.tar.xz`,
      `buildimage-9.7-x86_64/${base}/latest/layer.tar.xz`,
      `buildiso-9-amd64/1763650000/lorax-9.7-x86_64.tar.gz`,
    ])
      expect(parseCloudBucketKey(r9, other), other).toBeUndefined();
    expect(cloudBucketPrefix(r9, 'x86_64')).toBe('buildimage-9.7-x86_64/');
    expect(cloudBucketPrefix(r9, 's390x', 'images')).toBe('images/buildimage-9.7-s390x/');
    expect(cloudBucketKey(r9, `${base}.tar.xz`, 1763650000, 'layer.tar.xz')).toBe(`buildimage-9.7-x86_64/${base}/1763650000/layer.tar.xz`);
    expect(parseCloudBucketKey(r9, cloudBucketKey(r9, qcow, 5))?.file).toBe(qcow);
  });

  it('names staging and production directories per release type', () => {
    expect(stagingNames(r9)).toEqual({ dir: '9.7-RC2', links: { 'latest-9': '9.7-RC2', '9.7': '9.7-RC2' } });
    expect(productionNames(r9)).toEqual({ dir: '9.7', links: { '9': '9.7' } });
    expect(stagingNames(beta)).toEqual({ dir: '9.8-beta', links: { '9-beta': '9.8-beta' } });
    expect(productionNames(beta).dir).toBe('9.8-beta');
    expect(stagingNames(lh).dir).toBe('9.8-LookAhead');
    expect(stagingNames({ ...r9, rc: undefined })).toEqual({ dir: '9.7', links: { 'latest-9': '9.7' } });
    // common_8 and common_10 append -BETA, common_9 -beta.
    expect(stagingNames({ ...r8, type: 'beta', rc: 'BETA1', profile: '8-beta' })).toEqual({ dir: '8.10-BETA', links: { '8-BETA': '8.10-BETA' } });
    expect(stagingNames({ ...r9, major: 10, minor: 2, type: 'beta', rc: 'BETA1', profile: '10-beta' })).toEqual({ dir: '10.2-BETA', links: { '10-BETA': '10.2-BETA' } });
  });

  it('names a declared respin with the compose date, beside the GA files and without their aliases', () => {
    const rel = { ...r9, iso: { respin: 1 } };
    expect(mediaNames(rel, 'x86_64', 'dvd', 'Rocky-9.7-20261206.0')).toEqual({ file: 'Rocky-9.7-20261206.1-x86_64-dvd.iso', aliases: [] });
    expect(mediaNames({ ...r9, iso: {} }, 'x86_64', 'dvd', 'Rocky-9.7-20261206.0')).toEqual(isoNames(r9, 'x86_64', 'dvd'));
  });

  // Empanadas' SigRepoSync (compose `SIG-<sig>-<rev>-…`, link `latest-SIG-<sig>-<major>`), with the
  // pungi-style `<YYYYMMDD>.<respin>` every compose id has here, and sync-to-staging-sig.sh /
  // sync-to-prod-sig.sh (`pub/sig/<major>/<sig>` in staging and production).
  it('names SIG composes and publish directories as empanadas and the sig scripts do', () => {
    const cloud: R & Pick<Release, 'kind' | 'sig'> = { ...r9, type: 'stable', rc: undefined, profile: undefined, kind: 'sig', sig: { name: 'cloud', gpgKey: 'RPM-GPG-KEY-Rocky-SIG-Cloud' } };
    expect(composeLabel(cloud, 'produce')).toBe('SIG-cloud-9.7');
    expect(composeId(cloud, 'produce', when, 2)).toBe('SIG-cloud-9.7-20251120.2');
    expect(parseComposeId('SIG-cloud-9.7-20251120.2')).toEqual({ label: 'SIG-cloud-9.7', kind: 'produce', date: new Date(Date.UTC(2025, 10, 20)), respin: 2 });
    expect(() => composeLabel(cloud, 'update')).toThrow(/SIG cloud has no update composes/);
    expect(latestLink(cloud)).toBe('latest-SIG-cloud-9');
    expect(stagingNames(cloud)).toEqual({ dir: '9/cloud', links: {} });
    expect(productionNames(cloud)).toEqual({ dir: '9/cloud', links: {} });
    expect(sigDir({ ...cloud, major: 8 })).toBe('8/cloud');
    expect(() => sigDir(r9)).toThrow(/not a SIG release/);
    expect(() => latestLink({ ...cloud, sig: undefined })).toThrow(/no sig section/);
    expect(() => composeLabel({ ...r9, profile: undefined }, 'produce')).toThrow(/needs a profile/);
  });

  it('round-trips compose ids and refuses over-long volume ids', () => {
    expect(parseComposeId('Rocky-9-updates-20261206.3')).toEqual({ label: 'Rocky-9-updates', kind: 'update', date: new Date(Date.UTC(2026, 11, 6)), respin: 3 });
    expect(parseComposeId('Rocky-9.7-20251120.0')?.kind).toBe('produce');
    expect(composeDate(composeId(r9, 'produce', when, 0))?.getTime()).toBe(Date.UTC(2025, 10, 20));
    expect(parseComposeId('latest-Rocky-9')).toBeUndefined();
    expect(() => volumeId({ ...r9, shortname: 'RockyLinuxVeryLongName' }, 'ppc64le')).toThrow(/32 characters/);
  });
});


describe('targets and compose root of a release pungi makes', () => {
  it('one target per compose and chain, and back', () => {
    expect(composeTarget('Rocky-devel', 'produce')).toBe('compose-Rocky-devel');
    expect(composeTarget('Extras', 'update')).toBe('update-compose-Extras');
    expect(composeStagingTarget('Extras', 'update')).toBe('update-staging-Extras');
    for (const t of ['compose-Rocky-devel', 'update-compose-Rocky-devel', 'staging-Rocky-devel', 'update-staging-Rocky-devel']) expect(composeOfTarget(t), t).toBe('Rocky-devel');
    for (const t of ['staging', 'update-staging', 'sync', 'iso-x86_64']) expect(composeOfTarget(t), t).toBeUndefined();
  });

  it("the pipeline's compose is kept out of pungi's directory, whose latest-Rocky-8 is pungi's", () => {
    const rel = { ...r9, major: 8, minor: 10, profile: '8', name: 'rocky-8' } as unknown as Release;
    const roots = { compose: '/mnt/compose', staging: '/s', production: '/p' };
    expect(composeRoot({ roots }, rel)).toMatchObject({ base: '/mnt/compose/8', latest: '/mnt/compose/8/latest-Rocky-8' });
    const producers = { 'rocky-8': { type: 'pungi' } } as never;
    expect(composeRoot({ roots, producers }, rel)).toMatchObject({ base: '/mnt/compose/8/assembled', latest: '/mnt/compose/8/assembled/latest-Rocky-8' });
  });
});
