// Issue 14 at the Nx level: a release's life in ONE temporary workspace on the local site. The
// minor release (produce compose, ISOs, staging, approved prod), then two weekly update pushes
// through the update chain (one adds a package, one removes one and updates another with an
// advisory), each staged and promoted while every published ISO, image, CHECKSUM and torrent
// stays byte for byte the GA one; a rollback; then media frozen: a rebuilt DVD under its GA name
// is refused, a declared respin publishes new names beside the GA files. rocky-9 is trimmed to
// two arches in the workspace, to keep the ISO work small; its staging (the whole pipeline) is
// shared with the publishing e2e files (publish-helpers.ts rocky9Staged).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { addPackage, removePackage, repoUrlPath, updatePackage } from '@rocky/upstream-fixture';
import type { VettingReport } from '@rocky/publish';
import type { ChangesRecord } from '@rocky/stages';
import type { TempWorkspace } from '../helpers/workspace';
import { nxOk, nxRun, ranTasks, rocky9Staged } from './publish-helpers';
import { expectNextCompose } from '../helpers/compose-ids';

const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

/** Every ISO, image, CHECKSUM, signature and torrent of a published release dir: path → link target or sha256. */
function media(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const top of ['isos', 'images', 'torrents']) {
    const walk = (rel: string) => {
      const abs = join(dir, rel);
      if (!existsSync(abs)) return;
      for (const n of readdirSync(abs).sort()) {
        const p = `${rel}/${n}`;
        const st = lstatSync(join(dir, p));
        if (st.isSymbolicLink()) out[p] = `-> ${readlinkSync(join(dir, p))}`;
        else if (st.isDirectory()) walk(p);
        else out[p] = sha(join(dir, p));
      }
    };
    walk(top);
  }
  return out;
}

describe('a release through a minor release and weekly update pushes, media frozen', () => {
  let ws: TempWorkspace;
  let R: string;
  let fx: string;
  const staged = () => join(R, 'repos-staging/mirror/pub/rocky/9.7-RC2');
  const prodDir = () => join(R, 'repos-production/mirror/pub/rocky/9.7');
  const digest = () => readFileSync(join(R, 'repos-staging/.releng/vetting/rocky-9/digest'), 'utf8').trim();
  const report = () => JSON.parse(readFileSync(join(R, 'repos-staging/.releng/vetting/rocky-9/report.json'), 'utf8')) as VettingReport;
  const latest = () => readlinkSync(join(R, 'compose/9/latest-Rocky-9'));
  const ran = () => ws.runJson().tasks.filter((t) => t.cacheStatus === 'cache-miss').map((t) => t.target).sort();
  let ga: Record<string, string>;
  const composes: string[] = [];

  /** dnf installs `pkg` from the production tree into a throwaway root, checking signatures with the fixture key. */
  const dnfInstalls = (pkg: string) => {
    const root = mkdtempSync(join(tmpdir(), 'dnf-root-'));
    try {
      const r = spawnSync(
        'dnf',
        ['-y', '-q', '--noplugins', '--releasever=9', '--forcearch=x86_64', `--installroot=${root}`, '--setopt=reposdir=/dev/null', `--setopt=cachedir=${join(root, 'cache')}`, '--setopt=skip_if_unavailable=False', '--setopt=install_weak_deps=False', '--setopt=tsflags=noscripts',
          `--repofrompath=b,file://${prodDir()}/BaseOS/x86_64/os`, `--repofrompath=a,file://${prodDir()}/AppStream/x86_64/os`, '--setopt=b.gpgcheck=1', '--setopt=a.gpgcheck=1',
          `--setopt=b.gpgkey=file://${fx}/RPM-GPG-KEY-fixture`, `--setopt=a.gpgkey=file://${fx}/RPM-GPG-KEY-fixture`, 'install', pkg],
        { encoding: 'utf8' },
      );
      return r;
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  };

  // rocky-9 staged (x86_64 and aarch64): built once for this file and the publishing ones, copied here.
  beforeAll(async () => {
    ({ ws } = await rocky9Staged());
    R = join(ws.dir, '.releng');
    fx = join(R, 'upstream');
  });
  afterAll(() => ws?.cleanup());

  it('the minor release: produce compose, staging (in the shared workspace), approved prod', () => {
    composes.push(latest());
    expect(composes[0]).toMatch(/^Rocky-9\.7-\d{8}\.0$/);
    nxOk(ws, ['run', 'rocky-9:prod', `--approve=${digest()}`]);
    expect(ranTasks(ws.runJson())).toEqual(['rocky-9:prod', 'rocky-9:staging']); // the pipeline before staging: cache hits
    ga = media(prodDir());
    expect(Object.keys(ga)).toEqual(expect.arrayContaining(['isos/x86_64/Rocky-9.7-x86_64-dvd.iso', 'isos/x86_64/CHECKSUM', 'isos/x86_64/CHECKSUM.asc']));
  });

  it('update push 1 (a package added): a new update compose, staged and promoted, no ISO task, media byte-identical', async () => {
    await addPackage(join(fx, repoUrlPath('rocky-9', 'BaseOS', 'x86_64')), {
      name: 'weekly-fix', version: '1.0', release: '1.el9', noarch: true, summary: 'A package of the first push', requires: [], provides: [],
      files: [{ path: '/usr/share/weekly-fix/README', text: 'push 1' }], debuginfo: false,
    });
    nxOk(ws, ['run', 'rocky-9:update-staging']);
    expect(ran()).toEqual(['update-staging', 'update-sync']);
    composes.push(latest());
    expect(composes[1]).toMatch(/^Rocky-9-updates-\d{8}\.0$/);
    const r = report();
    expect(r.repos.find((x) => x.tree === 'BaseOS/x86_64/os')!.added).toEqual([expect.stringMatching(/^weekly-fix-0:1\.0-1\.el9\.noarch$/)]);
    expect(readFileSync(join(R, 'repos-staging/.releng/vetting/rocky-9/report.md'), 'utf8')).toContain('Media unchanged');
    nxOk(ws, ['run', 'rocky-9:update-prod', `--approve=${digest()}`]);
    expect(media(prodDir())).toEqual(ga);
    const i = dnfInstalls('weekly-fix');
    expect(i.status, i.stderr).toBe(0);
  });

  it('update push 2 (one removed, one updated with an advisory): a second update compose, the first intact', async () => {
    await removePackage({ root: fx, project: 'rocky-9', repo: 'BaseOS', arch: 'x86_64', name: 'weekly-fix' });
    const updated = readPrimaryName(fx);
    await updatePackage({ root: fx, project: 'rocky-9', repo: 'AppStream', arch: 'x86_64', name: updated, advisory: { id: 'RLSA-2026:9001', type: 'security' } });
    nxOk(ws, ['run', 'rocky-9:update-staging']);
    expect(ran()).toEqual(['update-staging', 'update-sync']);
    composes.push(latest());
    expectNextCompose(composes[2], composes[1]); // .1 the same day, .0 after midnight
    expect(existsSync(join(R, 'compose/9', composes[1], 'work/sync-record.json'))).toBe(true); // the previous one stays
    const changes = JSON.parse(readFileSync(join(R, 'compose/9', composes[2], 'compose/metadata/changes.json'), 'utf8')) as ChangesRecord;
    expect(changes.previous).toBe(composes[1]);
    expect(changes.trees.find((t) => t.tree === 'BaseOS/x86_64/os')!.removed).toEqual([expect.stringMatching(/^weekly-fix-/)]);
    const app = report().repos.find((x) => x.tree === 'AppStream/x86_64/os')!;
    expect(app.updated.map((u) => u.name)).toContain(updated);
    expect(app.errata?.map((e) => e.id)).toEqual(['RLSA-2026:9001']);
    expect(report().repos.filter((x) => x.tree !== 'AppStream/x86_64/os').flatMap((x) => x.errata ?? [])).toEqual([]); // no other repo's advisories
    nxOk(ws, ['run', 'rocky-9:update-prod', `--approve=${digest()}`]);
    expect(media(prodDir())).toEqual(ga);
    expect(dnfInstalls('weekly-fix').status).not.toBe(0);
  });

  it('a rollback re-points latest; the re-staged tree has the older package set', () => {
    nxOk(ws, ['run', 'rocky-9:rollback', `--to=${composes[1]}`]);
    expect(latest()).toBe(composes[1]);
    nxOk(ws, ['run', 'rocky-9:update-staging', '--excludeTaskDependencies']);
    expect(report().composeId).toBe(composes[1]);
    expect(readdirSync(join(staged(), 'BaseOS/x86_64/os/Packages/w'))).toEqual([expect.stringMatching(/^weekly-fix-1\.0-1\.el9\.noarch\.rpm$/)]);
    expect(media(staged())).toEqual(Object.fromEntries(Object.entries(media(staged())).filter(([p]) => p in ga)));
    nxOk(ws, ['run', 'rocky-9:rollback', `--to=${composes[2]}`]);
    nxOk(ws, ['run', 'rocky-9:update-staging', '--excludeTaskDependencies']);
  });

  it('a DVD rebuilt under its GA name is refused before anything is published; a declared respin gets new names beside the GA files', () => {
    // The minor release chain again: its compose has the updated packages, so its DVD differs.
    const before = media(staged());
    const refused = nxRun(ws, ['run', 'rocky-9:staging']);
    expect(refused.code, refused.output).not.toBe(0);
    expect(refused.output).toMatch(/Rocky-9\.7-x86_64-dvd\.iso/);
    expect(media(staged())).toEqual(before);
    const file = join(ws.dir, 'releases/rocky-9/release.yaml');
    const doc = parse(readFileSync(file, 'utf8')) as { iso: Record<string, unknown> };
    doc.iso.respin = 1;
    writeFileSync(file, stringify(doc));
    nxOk(ws, ['run', 'rocky-9:staging']);
    const now = media(staged());
    for (const [p, v] of Object.entries(ga).filter(([p]) => p.startsWith('isos/') && !p.endsWith('CHECKSUM') && !p.endsWith('CHECKSUM.asc'))) expect(now[p], p).toBe(v);
    expect(Object.keys(now).filter((p) => /^isos\/x86_64\/Rocky-9\.7-\d{8}\.1-x86_64-dvd\.iso$/.test(p))).toHaveLength(1);
    execFileSync('sha256sum', ['-c', '--strict', 'CHECKSUM'], { cwd: join(staged(), 'isos/x86_64'), stdio: 'pipe' });
    expect(realpathSync(join(staged(), 'isos/x86_64/Rocky-x86_64-dvd.iso'))).toBe(join(staged(), 'isos/x86_64/Rocky-9.7-x86_64-dvd.iso')); // the latest aliases stay with GA
  });
});

/** A package of AppStream x86_64 in the fixture (the first listed). */
function readPrimaryName(fx: string): string {
  const dir = join(fx, repoUrlPath('rocky-9', 'AppStream', 'x86_64'), 'Packages');
  const sub = readdirSync(dir).sort()[0];
  const file = readdirSync(join(dir, sub)).sort()[0];
  return execFileSync('rpm', ['-qp', '--nosignature', '--qf', '%{NAME}', join(dir, sub, file)], { encoding: 'utf8' });
}
