// Table-driven against the naming examples of research/empanadas-spec.md §0.2 and §4.2.
import { describe, it, expect } from 'vitest';
import {
  composeId, composeDate, latestLink, volumeId, isoNames, cloudImageNames, stagingNames, productionNames, dateStamp, sigDir,
} from './names';
import type { Release } from './schema';

type R = Pick<Release, 'shortname' | 'fullname' | 'major' | 'minor' | 'type' | 'rc' | 'profile'>;
const r9: R = { shortname: 'Rocky', fullname: 'Rocky Linux', major: 9, minor: 7, type: 'stable', rc: 'RC2', profile: '9' };
const beta: R = { ...r9, minor: 8, type: 'beta', rc: 'BETA1', profile: '9-beta' };
const lh: R = { ...r9, minor: 8, type: 'lookahead', rc: 'LH1', profile: '9-lookahead' };
const r8: R = { ...r9, major: 8, minor: 10, profile: '8' };
const when = new Date(Date.UTC(2025, 10, 20, 14, 30, 0));

describe('names', () => {
  it.each([
    ['compose id', composeId(r9, when), 'Rocky-9.7-20251120.143000'],
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
    ['8.10 dvd', isoNames(r8, 'aarch64', 'dvd').file, 'Rocky-8.10-aarch64-dvd.iso'],
  ])('%s', (_what, got, want) => expect(got).toBe(want));

  it('gives ISO aliases as empanadas links them', () => {
    expect(isoNames(r9, 'x86_64', 'dvd').aliases).toEqual(['Rocky-x86_64-dvd.iso', 'Rocky-9-latest-x86_64-dvd.iso']);
    expect(isoNames(r8, 'x86_64', 'boot').aliases).toEqual(['Rocky-x86_64-boot.iso', 'Rocky-8-latest-x86_64-boot.iso']);
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

  it('names staging and production directories per release type', () => {
    expect(stagingNames(r9)).toEqual({ dir: '9.7-RC2', links: { 'latest-9': '9.7-RC2', '9.7': '9.7-RC2' } });
    expect(productionNames(r9)).toEqual({ dir: '9.7', links: { '9': '9.7' } });
    expect(stagingNames(beta)).toEqual({ dir: '9.8-beta', links: { '9-beta': '9.8-beta' } });
    expect(productionNames(beta).dir).toBe('9.8-beta');
    expect(stagingNames(lh).dir).toBe('9.8-LookAhead');
    expect(stagingNames({ ...r9, rc: undefined })).toEqual({ dir: '9.7', links: { 'latest-9': '9.7' } });
  });

  // Empanadas' SigRepoSync (compose `SIG-<sig>-<rev>-<stamp>`, link `latest-SIG-<sig>-<major>`) and
  // sync-to-staging-sig.sh / sync-to-prod-sig.sh (`pub/sig/<major>/<sig>` in staging and production).
  it('names SIG composes and publish directories as empanadas and the sig scripts do', () => {
    const cloud: R & Pick<Release, 'kind' | 'sig'> = { ...r9, type: 'stable', rc: undefined, profile: undefined, kind: 'sig', sig: { name: 'cloud', gpgKey: 'RPM-GPG-KEY-Rocky-SIG-Cloud' } };
    expect(composeId(cloud, when)).toBe('SIG-cloud-9.7-20251120.143000');
    expect(composeDate(composeId(cloud, when))?.getTime()).toBe(when.getTime());
    expect(latestLink(cloud)).toBe('latest-SIG-cloud-9');
    expect(stagingNames(cloud)).toEqual({ dir: '9/cloud', links: {} });
    expect(productionNames(cloud)).toEqual({ dir: '9/cloud', links: {} });
    expect(sigDir({ ...cloud, major: 8 })).toBe('8/cloud');
    expect(() => sigDir(r9)).toThrow(/not a SIG release/);
    expect(() => latestLink({ ...cloud, sig: undefined })).toThrow(/no sig section/);
  });

  it('round-trips the compose date and refuses over-long volume ids', () => {
    expect(dateStamp(when)).toBe('20251120.143000');
    expect(composeDate(composeId(r9, when))?.getTime()).toBe(when.getTime());
    expect(() => volumeId({ ...r9, shortname: 'RockyLinuxVeryLongName' }, 'ppc64le')).toThrow(/32 characters/);
  });
});
