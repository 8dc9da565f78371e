// pungi-koji's argv, checked against pungi_koji.py's argparse rules (4.3.x), from the
// producer sites/rocky-prod.yaml carries.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadRelease, loadSite, pungiComposeId, pungiLabel, pungiLatestLink, parsePungiComposeId, type PungiProducer } from '@rocky/config';
import { producerArgv, pungiKojiArgv, type PungiKojiOptions } from './argv';
import { parseComposeDir, runnerArgv } from './run';
import { checkProducer } from './preflight';

const repoRoot = resolve(__dirname, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'pungi-argv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** rocky-prod.yaml (with `extra` YAML appended to its producers), loaded as a site. */
function prodSite(extra = '') {
  const file = join(dir, `rocky-prod-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, `${readFileSync(join(repoRoot, 'sites/rocky-prod.yaml'), 'utf8')}${extra}`);
  return loadSite(repoRoot, file);
}

describe('producerArgv (rocky-prod)', () => {
  const site = prodSite();
  const producer = site.producers['rocky-8'] as PungiProducer;
  const r8 = loadRelease(repoRoot, 'rocky-8');

  it('runs the real pungi-koji with the checkout config, the target dir, one compose type, the label, old composes, pungi\'s latest link only for a finished compose', () => {
    expect(producerArgv(producer, r8, { compose: 'Rocky', kind: 'produce' })).toEqual([
      'pungi-koji',
      '--config', '/var/lib/releng/pungi-rocky/r8.conf',
      '--target-dir', '/mnt/compose/8',
      '--production',
      '--label', 'RC-8.10',
      '--old-composes', '/mnt/compose/8',
      '--latest-link-status', 'FINISHED',
      '--latest-link-status', 'FINISHED_INCOMPLETE',
      '--print-output-dir',
    ]);
  });

  it('an update of one compose takes its update config and an Update label', () => {
    const argv = producerArgv(producer, r8, { compose: 'Extras', kind: 'update', skipPhases: ['repoclosure'] });
    expect(argv.slice(0, 3)).toEqual(['pungi-koji', '--config', '/var/lib/releng/pungi-rocky/extras-8-updates.conf']);
    expect(argv).toContain('Update-8.10');
    expect(argv.join(' ')).toContain('--skip-phase repoclosure');
  });

  it('refuses a compose the producer does not have', () => {
    expect(() => producerArgv(producer, r8, { compose: 'SIG-kernel', kind: 'produce' })).toThrow(/rocky-8: the site's producer has no compose SIG-kernel \(it has Rocky, Extras, Plus, Rocky-devel, NFV\)/);
  });

  it('a local runner runs the argv as is; an ssh runner through ssh with host keys checked and the env applied remotely', () => {
    const argv = producerArgv(producer, r8, { compose: 'Rocky', kind: 'produce' });
    expect(runnerArgv(argv, { runner: producer.runner })).toBe(argv);
    const ssh = runnerArgv(argv, { runner: { type: 'ssh', host: 'compose01.rockylinux.org', user: 'releng', knownHosts: '/etc/releng/known_hosts' }, env: { KRB5CCNAME: 'FILE:/tmp/krb5cc_releng' } });
    expect(ssh).toEqual(expect.arrayContaining(['-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', 'UserKnownHostsFile=/etc/releng/known_hosts', '-l', 'releng']));
    expect(ssh.at(-2)).toBe('compose01.rockylinux.org');
    expect(ssh.at(-1)).toBe(`sh -c 'exec "$@"' releng env 'KRB5CCNAME=FILE:/tmp/krb5cc_releng' pungi-koji --config /var/lib/releng/pungi-rocky/r8.conf --target-dir /mnt/compose/8 --production --label RC-8.10 --old-composes /mnt/compose/8 --latest-link-status FINISHED --latest-link-status FINISHED_INCOMPLETE --print-output-dir`);
  });

  it('the site schema: an ssh runner needs absolute paths, unknown keys are errors', () => {
    const ssh = prodSite().producers['rocky-8'] as PungiProducer;
    expect(ssh.runner.type).toBe('local');
    const relative = `\n  rocky-9:\n    type: pungi\n    config: { path: pungi-rocky }\n    composes: { Rocky: { produce: r9.conf, update: r9-updates.conf } }\n    targetDir: /mnt/compose/9\n    runner: { type: ssh, host: compose01 }\n`;
    expect(() => prodSite(relative)).toThrow(/producers\.rocky-9\.config\.path: expected an absolute path \(the runner is ssh/);
    const typo = `\n  rocky-9:\n    type: pungi\n    config: { path: /p }\n    composes: { Rocky: { produce: a, update: b } }\n    targetDir: /mnt/compose/9\n    oldCompose: [/mnt/compose/9]\n`;
    expect(() => prodSite(typo)).toThrow(/producers\.rocky-9: unknown key "oldCompose"/);
  });
});

describe('checkProducer (pre-flight, local runner)', () => {
  it('names every missing piece by its site field; passes when all are there', async () => {
    const conf = join(dir, 'pungi-rocky');
    const target = join(dir, 'compose-8');
    mkdirSync(conf, { recursive: true });
    mkdirSync(target, { recursive: true });
    for (const f of ['r8.conf', 'r8-updates.conf', 'extras-8.conf']) writeFileSync(join(conf, f), '');
    const p: PungiProducer = {
      type: 'pungi',
      command: ['sh'],
      config: { path: conf },
      comps: { path: join(dir, 'no-comps') },
      composes: { Rocky: { produce: 'r8.conf', update: 'r8-updates.conf' }, Extras: { produce: 'extras-8.conf', update: 'extras-8-updates.conf' } },
      targetDir: target,
      oldComposes: [],
      composeType: 'production',
      env: {},
      runner: { type: 'local' },
    };
    const err = await checkProducer(p, 'rocky-8').catch((e) => e);
    expect(err.message).toBe(`producers.rocky-8: the producer cannot run:\n  comps.path: ${join(dir, 'no-comps')} is not a directory\n  composes.Extras.update: ${join(conf, 'extras-8-updates.conf')} is not a file`);
    await expect(checkProducer({ ...p, command: ['pungi-koji-not-installed'] }, 'rocky-8')).rejects.toThrow(/command: pungi-koji-not-installed is not in PATH/);
    writeFileSync(join(conf, 'extras-8-updates.conf'), '');
    mkdirSync(join(dir, 'no-comps'));
    await expect(checkProducer(p, 'rocky-8')).resolves.toBeUndefined();
  });
});

describe('pungiKojiArgv: what pungi-koji accepts', () => {
  const base: PungiKojiOptions = { config: '/c/r8.conf', targetDir: '/mnt/compose/8', composeType: 'production', label: 'RC-8.10' };

  it('gives exactly one compose type flag (argparse keeps only the last of them)', () => {
    for (const [type, flag] of [['production', '--production'], ['nightly', '--nightly'], ['test', '--test'], ['ci', '--ci'], ['development', '--development']] as const) {
      const argv = pungiKojiArgv({ ...base, composeType: type });
      expect(argv.filter((a) => /^--(production|nightly|test|ci|development)$/.test(a))).toEqual([flag]);
    }
  });

  it('checks the label as productmd does: <Milestone>-X.Y', () => {
    expect(pungiKojiArgv({ ...base, label: 'Update-8.10' })).toContain('Update-8.10');
    expect(pungiKojiArgv({ ...base, label: 'SecurityFix-8.10' })).toContain('SecurityFix-8.10');
    for (const bad of ['RC-8', 'rc-8.10', 'Release-8.10', 'RC-8.10.1', 'RC8.10']) expect(() => pungiKojiArgv({ ...base, label: bad })).toThrow(/is not <Milestone>-X\.Y/);
  });

  it('a production compose needs a label or --no-label; other types need neither', () => {
    expect(() => pungiKojiArgv({ ...base, label: undefined })).toThrow(/a production compose needs a label/);
    expect(pungiKojiArgv({ ...base, label: undefined, noLabel: true })).toContain('--no-label');
    expect(pungiKojiArgv({ ...base, composeType: 'nightly', label: undefined })).not.toContain('--label');
    expect(() => pungiKojiArgv({ ...base, noLabel: true })).toThrow(/contradict/);
  });

  it('--target-dir (a new compose dir in it) and --compose-dir (this dir, reused) are exclusive, one is required', () => {
    expect(pungiKojiArgv({ ...base, targetDir: undefined, composeDir: '/mnt/compose/8/Rocky-8-20240520.0' })).toContain('--compose-dir');
    expect(() => pungiKojiArgv({ ...base, composeDir: '/x' })).toThrow(/exactly one of targetDir/);
    expect(() => pungiKojiArgv({ ...base, targetDir: undefined })).toThrow(/exactly one of targetDir/);
  });

  it('phases are pungi phase names, and gather/createrepo keep what they need', () => {
    expect(pungiKojiArgv({ ...base, skipPhases: ['createiso', 'buildinstall'], justPhases: [] })).toEqual(expect.arrayContaining(['--skip-phase', 'createiso', '--skip-phase', 'buildinstall']));
    expect(() => pungiKojiArgv({ ...base, skipPhases: ['isos' as never] })).toThrow(/--skip-phase isos: not a pungi phase/);
    expect(() => pungiKojiArgv({ ...base, skipPhases: ['gather'] })).toThrow(/the gather phase is skipped but the createrepo phase needs it/);
    expect(() => pungiKojiArgv({ ...base, justPhases: ['gather'] })).toThrow(/the pkgset phase is skipped but the gather phase needs it/);
    expect(() => pungiKojiArgv({ ...base, skipPhases: ['createiso'], justPhases: ['createiso'] })).toThrow(/both skipped and the only one/);
  });

  it('repeats the repeatable options and refuses values argparse would read as options', () => {
    const argv = pungiKojiArgv({ ...base, oldComposes: ['/a', '/b'], notificationScripts: ['/n1', '/n2'], latestLinkStatus: ['FINISHED', 'FINISHED_INCOMPLETE'], kojiEvent: 12345 });
    expect(argv.join(' ')).toContain('--old-composes /a --old-composes /b');
    expect(argv.join(' ')).toContain('--notification-script /n1 --notification-script /n2');
    expect(argv.join(' ')).toContain('--latest-link-status FINISHED --latest-link-status FINISHED_INCOMPLETE');
    expect(argv.join(' ')).toContain('--koji-event 12345');
    expect(() => pungiKojiArgv({ ...base, config: '--help' })).toThrow(/starts with '-'/);
    expect(() => pungiKojiArgv({ ...base, noLatestLink: true, latestLinkStatus: ['FINISHED'] })).toThrow(/contradict/);
  });

  it('finds the compose dir in what --print-output-dir printed', () => {
    expect(parseComposeDir('2024-05-20 [INFO] x\nCompose dir: /mnt/compose/8/Rocky-8-20240520.1\n')).toBe('/mnt/compose/8/Rocky-8-20240520.1');
    expect(parseComposeDir('nothing')).toBeUndefined();
  });
});

describe("pungi's names", () => {
  it.each([
    [pungiComposeId({ short: 'Rocky', version: '8', releaseType: 'ga', date: '20240520', composeType: 'production', respin: 0 }), 'Rocky-8-20240520.0'],
    [pungiComposeId({ short: 'Rocky', version: '8', releaseType: 'updates', date: '20210721', composeType: 'production', respin: 1 }), 'Rocky-8-updates-20210721.1'],
    [pungiComposeId({ short: 'Rocky-devel', version: '8', releaseType: 'ga', date: '20240520', composeType: 'nightly', respin: 2 }), 'Rocky-devel-8-20240520.n.2'],
    [pungiComposeId({ short: 'DP', version: '1.0', releaseType: 'ga', date: '20161013', composeType: 'test', respin: 4 }), 'DP-1.0-20161013.t.4'],
    [pungiLatestLink('Rocky', '8'), 'latest-Rocky-8'],
    [pungiLatestLink('Extras', '10.2'), 'latest-Extras-10'],
    [pungiLatestLink('Rocky', '8.10.1', 2), 'latest-Rocky-8.10'],
    [pungiLatestLink('Rocky', '8', 0), 'latest-Rocky'],
    [pungiLabel({ major: 8, minor: 10, type: 'stable' }, 'produce'), 'RC-8.10'],
    [pungiLabel({ major: 8, minor: 10, type: 'stable' }, 'update'), 'Update-8.10'],
    [pungiLabel({ major: 8, minor: 10, type: 'beta' }, 'produce'), 'Beta-8.10'],
  ])('%s', (got, want) => expect(got).toBe(want));

  it('parses a compose id back, a short with dashes included', () => {
    expect(parsePungiComposeId('Rocky-devel-8-updates-20210721.3', 'Rocky-devel', '8')).toEqual({ short: 'Rocky-devel', version: '8', releaseType: 'updates', date: '20210721', composeType: 'production', respin: 3 });
    expect(parsePungiComposeId('Rocky-8-20240520.n.0', 'Rocky', '8')?.composeType).toBe('nightly');
    expect(parsePungiComposeId('Rocky-devel-8-20240520.0', 'Rocky', '8')).toBeUndefined();
  });
});
