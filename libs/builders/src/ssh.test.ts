// buildViaSsh against a real sshd on loopback, with a stand-in lorax on the "remote" side.
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRelease, volumeId, type Release } from '@rocky/config';
import { loraxArgv } from '@rocky/iso';
import { buildViaSsh, sshArgv, type SshOptions } from './ssh';
import { RemoteBuildError, type SshBuilder } from './types';
import { freePort, recordedArgv, startSshd, writeStandinLorax, type TestSshd } from './testing/standin';

const repoRoot = resolve(__dirname, '../../..');

describe('buildViaSsh (real sshd on 127.0.0.1)', () => {
  let dir: string;
  let sshd: TestSshd;
  let release: Release;
  let standin: string;
  let builder: SshBuilder;
  const arch = 'ppc64le' as const;
  const sources = ['file:///mnt/compose/9/latest-Rocky-9/compose/BaseOS/ppc64le/os', 'https://yumrepofs.example/v1/projects/x/repo/AppStream/ppc64le'];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rocky-ssh-'));
    sshd = await startSshd(join(dir, 'sshd'));
    release = loadRelease(repoRoot, 'rocky-9');
    standin = writeStandinLorax(join(dir, 'remote-bin'));
    builder = { type: 'ssh', host: '127.0.0.1', user: 'root', port: sshd.port, identityFile: sshd.identityFile, workdir: join(dir, 'remote work'), loraxCommand: ['lorax'], mustBoot: true };
  });
  afterAll(async () => {
    await sshd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const opts = (mode: string, extra: Partial<SshOptions> = {}): SshOptions => ({
    knownHosts: sshd.knownHosts,
    configFile: '/dev/null',
    // Production runs `lorax` from the builder's PATH; the test puts the stand-in first on it.
    remoteEnv: { PATH: `${join(dir, 'remote-bin')}:/usr/bin:/bin`, STANDIN_MODE: mode, STANDIN_RECORD: join(dir, `argv-${mode}`) },
    ...extra,
  });
  const input = (name: string, lines: string[]) => ({
    release,
    arch,
    sources,
    outDir: join(dir, name, 'out'),
    workDir: join(dir, name, 'work'),
    log: (m: string) => lines.push(m),
  });
  const remoteLeftovers = () => (existsSync(builder.workdir) ? readdirSync(builder.workdir) : []);

  it('runs lorax remotely, streams the tree back and verifies it', async () => {
    const lines: string[] = [];
    const res = await buildViaSsh(builder, input('ok', lines), opts('ok'));

    expect(res.volumeId).toBe(volumeId(release, arch));
    expect(res.volumeId).toBe('Rocky-9-7-ppc64le-dvd');
    expect(res.tree).toBe(join(dir, 'ok', 'out', 'lorax'));
    expect(res.iso.path).toBe(join(dir, 'ok', 'out', 'Rocky-9.7-ppc64le-boot.iso'));
    expect(res.iso.size).toBeGreaterThanOrEqual(1 << 20);
    expect(res.bootable).toBe(true);
    expect(res.treeFiles.map((f) => f.path)).toEqual(
      expect.arrayContaining(['.treeinfo', 'images/boot.iso', 'images/install.img', 'images/pxeboot/initrd.img', 'images/pxeboot/vmlinuz']),
    );

    // The stand-in got exactly loraxArgv(...) with the remote work dir's paths.
    const got = recordedArgv(join(dir, 'argv-ok'));
    const outArg = got[got.length - 1];
    const remoteDir = outArg.replace(/\/lorax$/, '');
    expect(remoteDir.startsWith(`${builder.workdir}/iso-9.7-ppc64le.`)).toBe(true);
    expect(got).toEqual(loraxArgv(release, arch, sources, `${remoteDir}/lorax`, `${remoteDir}/lorax-${arch}.log`).slice(1));

    expect(existsSync(remoteDir)).toBe(false);
    expect(remoteLeftovers()).toEqual([]);
    expect(lines.join('\n')).toMatch(/connecting to root@127\.0\.0\.1:\d+[\s\S]*running lorax[\s\S]*received [\d.]+ MiB[\s\S]*collected[\s\S]*removed /);
  });

  it('reports a failing lorax with host, arch, exit code and the tail of its log, and cleans up', async () => {
    const err = await buildViaSsh(builder, input('fail', []), opts('fail')).catch((e) => e);
    expect(err).toBeInstanceOf(RemoteBuildError);
    expect(err.step).toBe('lorax');
    expect(err.message).toContain(`iso-ppc64le on root@127.0.0.1:${sshd.port}`);
    expect(err.message).toContain('lorax exited 1');
    expect(err.message).toContain('no package provides kernel-core for ppc64le'); // from its --logfile
    expect(err.message).toContain('lorax failed, see'); // from its stderr
    expect(remoteLeftovers()).toEqual([]);
    expect(existsSync(join(dir, 'fail', 'out', 'lorax'))).toBe(false);
  });

  it('refuses a tree whose boot.iso has the wrong volume id, and cleans up', async () => {
    const err = await buildViaSsh(builder, input('volid', []), opts('badvolid')).catch((e) => e);
    expect(err).toBeInstanceOf(RemoteBuildError);
    expect(err.step).toBe('verify');
    expect(err.message).toMatch(/iso-ppc64le on root@127\.0\.0\.1:\d+: verification of the lorax tree failed: .*volume id NOT-THE-VOLUME-ID, expected Rocky-9-7-ppc64le-dvd/);
    expect(remoteLeftovers()).toEqual([]);
    expect(readdirSync(join(dir, 'volid', 'work')).filter((f) => f.startsWith('lorax-'))).toEqual([]);
  });

  it('with mustBoot, refuses a boot.iso without a boot record', async () => {
    const o = opts('ok');
    const err = await buildViaSsh(builder, input('noboot', []), { ...o, remoteEnv: { ...o.remoteEnv, STANDIN_BOOTABLE: '0' } }).catch((e) => e);
    expect(err.step).toBe('verify');
    expect(err.message).toContain('no clean El Torito boot record');
    const out = join(dir, 'noboot', 'out');
    expect(existsSync(out) ? readdirSync(out) : [], 'nothing unverified in outDir').toEqual([]);
    const res = await buildViaSsh({ ...builder, mustBoot: false }, input('noboot2', []), { ...o, remoteEnv: { ...o.remoteEnv, STANDIN_BOOTABLE: '0' } });
    expect(res.bootable).toBe(false);
    expect(remoteLeftovers()).toEqual([]);
  });

  it('uses loraxCommand instead of PATH lookup', async () => {
    const o = opts('ok');
    const res = await buildViaSsh(builder, input('cmd', []), { ...o, remoteEnv: { STANDIN_RECORD: join(dir, 'argv-cmd') }, loraxCommand: [standin] });
    expect(res.volumeId).toBe('Rocky-9-7-ppc64le-dvd');
    expect(recordedArgv(join(dir, 'argv-cmd'))[0]).toBe('--product=Rocky Linux');
  });

  it('names the host when it cannot connect (closed port)', async () => {
    const port = await freePort();
    const err = await buildViaSsh({ ...builder, port }, input('closed', []), opts('ok', { connectTimeoutSec: 5 })).catch((e) => e);
    expect(err).toBeInstanceOf(RemoteBuildError);
    expect(err.step).toBe('connect');
    expect(err.message).toContain(`iso-ppc64le on root@127.0.0.1:${port}: cannot connect`);
    expect(err.message).toMatch(/Connection refused/);
  });

  it('refuses an unknown host key', async () => {
    const err = await buildViaSsh(builder, input('hostkey', []), { ...opts('ok'), knownHosts: join(dir, 'empty_known_hosts') }).catch((e) => e);
    expect(err.step).toBe('connect');
    expect(err.message).toMatch(/Host key verification failed/);
  });

  it('builds the ssh argv from the builder config', () => {
    const argv = sshArgv({ type: 'ssh', host: 'p9.example.org', user: 'releng', port: 2222, identityFile: '/k/id', workdir: '/var/tmp/releng', loraxCommand: ['lorax'], mustBoot: true }, { knownHosts: '/k/known' });
    expect(argv).toEqual(expect.arrayContaining(['-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', 'UserKnownHostsFile=/k/known', '-p', '2222', '-i', '/k/id', '-l', 'releng']));
    expect(argv.slice(-2)).toEqual(['--', 'p9.example.org']);
    expect(() => sshArgv({ type: 'ssh', host: '-oProxyCommand=x', workdir: '/w', loraxCommand: ['lorax'], mustBoot: true })).toThrow(/invalid ssh builder host/);
  });
});
