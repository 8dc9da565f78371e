// Issue 15: the compose stage of a release pungi makes, with the fixture's pungi-koji (pungi's
// options, layout, STATUS and exit codes) as the producer: the argv built by libs/pungi, the
// compose verified, its files in the store, its record the Nx output; DOOMED fails and records
// nothing; FINISHED_INCOMPLETE names its failed deliverables.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, readFileSync, readlinkSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { eventsFile, type PungiProducer } from '@rocky/config';
import { openStore } from '@rocky/store';
import type { PungiComposeRecord, PungiMedia } from '@rocky/stages';
import { privateFixture, testSite, type TestSite } from '../helpers/fixture';
import { repoRoot } from '../helpers/workspace';
import { expectNextCompose } from '../helpers/compose-ids';

describe('compose-<name> through the fixture pungi-koji', () => {
  let fx: { root: string; cleanup(): void };
  let t: TestSite;
  let target: string;
  const producer = (env: Record<string, string> = {}): PungiProducer => ({
    type: 'pungi',
    command: [join(repoRoot, 'apps/upstream-fixture/bin/pungi-koji')],
    config: { path: join(repoRoot, 'apps/upstream-fixture/pungi') },
    composes: { Rocky: { produce: 'r8.conf', update: 'r8-updates.conf' }, Extras: { produce: 'extras-8.conf', update: 'extras-8-updates.conf' } },
    targetDir: target,
    oldComposes: [target],
    composeType: 'production',
    env: { PUNGI_FIXTURE_KOJI_ROOT: fx.root, ...env },
    runner: { type: 'local' },
  });
  const record = () => JSON.parse(readFileSync(join(t.dir, 'ws/dist/rocky-8/compose-Extras/compose.json'), 'utf8')) as PungiComposeRecord;
  const events = () => readFileSync(eventsFile(t.site), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

  beforeAll(async () => {
    fx = await privateFixture();
    t = await testSite(fx.root);
    target = join(t.site.roots.compose, '8');
    t.site.producers = { 'rocky-8': producer() };
  });
  afterAll(async () => {
    await t?.close();
    fx?.cleanup();
  });

  it('a dry run plans the pungi-koji command and changes nothing', async () => {
    const o = await t.outcome('compose-Extras', 'rocky-8', { dryRun: true });
    expect(o.plan.argv).toEqual([join(repoRoot, 'apps/upstream-fixture/bin/pungi-koji'), '--config', join(repoRoot, 'apps/upstream-fixture/pungi/extras-8.conf'), '--target-dir', target, '--production', '--label', 'RC-8.10', '--old-composes', target, '--latest-link-status', 'FINISHED', '--latest-link-status', 'FINISHED_INCOMPLETE', '--print-output-dir']);
    expect(existsSync(target)).toBe(false);
    expect(existsSync(join(t.dir, 'ws/dist'))).toBe(false);
    expect(existsSync(eventsFile(t.site))).toBe(false);
  });

  it('a compose the release does not list is refused before anything runs', async () => {
    await expect(t.run('compose-SIG', 'rocky-8')).rejects.toThrow(/compose-SIG: rocky-8 has no compose SIG \(release composes: Plus, Extras, Rocky-devel, NFV, Rocky\)/);
    await expect(t.run('compose-Plus', 'rocky-8')).rejects.toThrow(/producers\.rocky-8\.composes has no Plus \(it has Rocky, Extras\), and rocky-8 lists it/);
  });

  it('Extras: pungi-koji runs, the compose verifies, every tree file is in the store, the record names them', async () => {
    const r = await t.run('compose-Extras', 'rocky-8');
    const rec = record();
    expect(rec).toEqual(r.record);
    expect(rec).toMatchObject({ compose: 'Extras', kind: 'produce', status: 'FINISHED', failed: [] });
    expect(rec.composeId).toMatch(/^Extras-8-\d{8}\.0$/);
    expect(rec.dir).toBe(join(target, rec.composeId));
    expect(rec.trees.map((x) => x.path).sort()).toEqual(['extras/aarch64/debug/tree', 'extras/aarch64/os', 'extras/source/tree', 'extras/x86_64/debug/tree', 'extras/x86_64/os']);
    const os = rec.trees.find((x) => x.path === 'extras/x86_64/os')!;
    expect(os.packages.length).toBeGreaterThan(0);
    expect(os.packages.every((p) => /^[0-9a-f]{8}$/.test(p.sigkey ?? ''))).toBe(true);
    expect(os.repodata.map((f) => f.path)).toContain('repodata/repomd.xml');
    const store = openStore(t.site);
    for (const tree of rec.trees) for (const f of [...tree.packages, ...tree.repodata]) expect(await store.has(f.sha256), `${tree.path}/${f.path}`).toBe(true);
    // pungi's latest link, pungi-koji's output kept in the compose, the argv in the event log.
    expect(readlinkSync(join(target, 'latest-Extras-8'))).toBe(rec.composeId);
    expect(readFileSync(join(rec.dir, 'logs/global/releng-pungi-koji.global.log'), 'utf8')).toMatch(/pungi-koji --config \S+extras-8\.conf/);
    expect(events().find((e) => e.type === 'pungi-koji')).toMatchObject({ target: 'compose-Extras', compose: 'Extras', argv: expect.arrayContaining(['--target-dir', target]) });
  });

  it('a DOOMED compose fails the stage, keeps its logs, and leaves the last good record and latest link as they were', async () => {
    const good = record();
    let failure: string | undefined;
    t.site.producers = { 'rocky-8': producer({ PUNGI_FIXTURE_FAULT: 'doomed' }) };
    try {
      failure = await t.run('compose-Extras', 'rocky-8').then(() => undefined, (e: Error) => e.message);
    } finally {
      t.site.producers = { 'rocky-8': producer() };
    }
    expect(failure).toMatch(/pungi-koji exited 1 \(compose \S+Extras-8-\d{8}\.\d+, compose STATUS DOOMED\)[\s\S]*fixture fault: the compose is doomed/);
    const doomedId = basename(/compose (\S+), compose STATUS DOOMED/.exec(failure!)![1]); // the message names its directory
    expectNextCompose(doomedId, good.composeId);
    const doomed = join(target, doomedId);
    expect(readFileSync(join(doomed, 'STATUS'), 'utf8')).toBe('DOOMED\n');
    expect(existsSync(join(doomed, 'logs/global/releng-pungi-koji.global.log'))).toBe(true);
    expect(record()).toEqual(good);
    expect(readlinkSync(join(target, 'latest-Extras-8'))).toBe(good.composeId);
    expect(events().at(-1)).toMatchObject({ type: 'failed', target: 'compose-Extras' });
  });

  it('FINISHED_INCOMPLETE is used, its failed deliverables named', async () => {
    t.site.producers = { 'rocky-8': producer({ PUNGI_FIXTURE_FAULT: 'incomplete' }) };
    try {
      const r = await t.run('compose-Rocky', 'rocky-8');
      expect(r.record).toMatchObject({ compose: 'Rocky', status: 'FINISHED_INCOMPLETE', failed: ['iso of BaseOS.x86_64 (BaseOS)'] });
      expect(r.record.trees.map((x: { dir: string }) => x.dir)).toEqual(expect.arrayContaining(['BaseOS', 'AppStream', 'PowerTools', 'HighAvailability', 'ResilientStorage', 'RT']));
      expect(readdirSync(target)).toContain('latest-Rocky-8');
      // The ISOs pungi made are recorded per arch, in the store; the boot ISO with buildinstall's boot tree.
      const media = (arch: string) => JSON.parse(readFileSync(join(t.dir, `ws/dist/rocky-8/compose-Rocky/media-${arch}.json`), 'utf8')).images as PungiMedia[];
      expect(media('x86_64').map((m) => `${m.path} ${m.type}`)).toEqual(['BaseOS/x86_64/iso/Rocky-8.10-x86_64-boot.iso boot', 'Minimal/x86_64/iso/Rocky-8.10-x86_64-minimal.iso dvd']);
      expect(media('aarch64').map((m) => m.path.split('/').pop())).toEqual(['Rocky-8.10-aarch64-boot.iso', 'Rocky-8.10-aarch64-dvd1.iso', 'Rocky-8.10-aarch64-minimal.iso']);
      const boot = media('x86_64')[0];
      expect(boot.tree!.map((f) => f.path)).toEqual(expect.arrayContaining(['.treeinfo', 'images/install.img', 'images/pxeboot/vmlinuz', 'images/boot.iso']));
      expect(boot.tree!.some((f) => f.path.startsWith('Packages/') || f.path.startsWith('repodata/'))).toBe(false);
      const store = openStore(t.site);
      for (const f of [...media('x86_64'), ...boot.tree!]) expect(await store.has(f.sha256), f.path).toBe(true);
    } finally {
      t.site.producers = { 'rocky-8': producer() };
    }
  });
});
