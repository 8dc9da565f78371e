// Issue 7: an arch Nx cannot run on is built by the site's native builder. iso-ppc64le goes
// over SSH to a real sshd on loopback, where a stand-in for lorax (lorax itself does not exist
// on Debian: the stand-in simulates the remote tool) builds a lorax-shaped tree; the stage
// collects it, verifies it and records it like a local build.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IsoManifest } from '@rocky/stages';
import { openStore } from '@rocky/store';
import { startSshd, writeStandinLorax, recordedArgv, type TestSshd } from '../../libs/builders/src/testing/standin';
import { privateFixture, testSite, type TestSite } from '../helpers/fixture';

describe('iso-<arch> dispatched to an SSH builder', () => {
  let dir: string;
  let sshd: TestSshd;
  let fx: { root: string; cleanup(): void };
  let t: TestSite;
  let standin: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rocky-dispatch-'));
    sshd = await startSshd(join(dir, 'sshd'));
    standin = writeStandinLorax(join(dir, 'remote-bin'));
    fx = await privateFixture();
    t = await testSite(fx.root);
    t.site.builders.ppc64le = {
      type: 'ssh',
      host: '127.0.0.1',
      user: 'root',
      port: sshd.port,
      identityFile: sshd.identityFile,
      knownHosts: sshd.knownHosts,
      workdir: join(dir, 'remote'),
      loraxCommand: ['env', `STANDIN_RECORD=${join(dir, 'argv')}`, standin],
      mustBoot: true,
    };
    await t.run('sync', 'rocky-9');
  });
  afterAll(async () => {
    await sshd?.stop();
    await t?.close();
    fx?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs lorax there on the compose, collects and verifies the tree, stores the ISO', async () => {
    const m = await t.run<IsoManifest>('iso-ppc64le', 'rocky-9');
    expect(m.builder).toBe('ssh');
    expect(m.iso.name).toBe('Rocky-9.7-ppc64le-boot.iso');
    expect(m.iso.volumeId).toBe('Rocky-9-7-ppc64le-dvd');
    expect(await openStore(t.site).has(m.iso.sha256)).toBe(true);
    const argv = recordedArgv(join(dir, 'argv'));
    expect(argv).toContain('--buildarch=ppc64le');
    expect(argv.filter((a) => a.startsWith('--source=file://')).map((a) => a.replace(/.*\/compose\//, ''))).toEqual(['BaseOS/ppc64le/os', 'AppStream/ppc64le/os']);
    // The remote work dir is cleaned up.
    expect(existsSync(join(dir, 'remote')) ? (await import('node:fs')).readdirSync(join(dir, 'remote')) : []).toEqual([]);
  });
});
