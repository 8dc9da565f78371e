// Issue 6 at the Nx level, in ONE temporary workspace on the local site: `nx run rocky-9:staging`
// (whole pipeline, run once for the files that start there; vetting report, digest; --dryRun
// changes nothing), the prod approval gate
// through nx (refusals change nothing; --approve publishes; a rerun without approval is a no-op),
// then rocky-8 from the same fixture and both releases' prods and file lists in one
// `nx run-many -t filelist` run: the lists are written once, after both prods of that run.
// What damage does to staging and prod is test/e2e/publish-damage.test.ts's (its own workspace,
// so that vitest runs the two files at once).
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseFileTimeList, treeDigest, type VettingReport } from '@rocky/publish';
import type { TempWorkspace } from '../helpers/workspace';
import { e2eWorkspace, entries, lastRunTasks, listing, nxOk, nxRun, readEvents, rocky9Staged, type PublishEvent } from './publish-helpers';

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('publishing through nx: staging, the prod gate, file lists after every prod of a run', () => {
  // rocky-8 syncs from the fixture's repos here, as rocky-9 does (no pungi producer, no compose
  // tasks): publishing is what this file tests; rocky-8 made by pungi is test/e2e/rocky8.test.ts's.
  // The file starts from rocky-9 staged (x86_64 and aarch64), built once for it and the other files
  // that start there (publish-helpers.ts rocky9Staged).
  const W = e2eWorkspace('publish e2e', { shared: rocky9Staged });
  const { step } = W;
  let ws: TempWorkspace;
  let R: string; // <workspace>/.releng
  let stagingCat: string;
  let prodCat: string;
  let eventsFile: string;
  const digests: Record<string, string> = {};
  const tasks = () => lastRunTasks(ws);

  beforeAll(() => {
    ({ ws, R, eventsFile } = W);
    stagingCat = join(R, 'repos-staging/mirror/pub/rocky');
    prodCat = join(R, 'repos-production/mirror/pub/rocky');
  });

  it('nx run rocky-9:staging: staged tree with its links, vetting report and digest; --dryRun prints the plan and changes nothing', async () => {
    // The staging run (the whole pipeline) is the one that built the shared workspace this file's is a copy of.
    const t = Object.fromEntries(W.built!.tasks.map((x) => [x.taskId, x]));
    expect(Object.keys(t)).toContain('rocky-9:finalize');
    expect(t['rocky-9:staging']).toMatchObject({ status: 0, cacheStatus: 'cache-miss' });

    const stagingDir = join(stagingCat, '9.7-RC2');
    expect(lstatSync(stagingDir).isDirectory()).toBe(true);
    expect(readlinkSync(join(stagingCat, '9.7'))).toBe('9.7-RC2');
    expect(readlinkSync(join(stagingCat, 'latest-9'))).toBe('9.7-RC2');
    expect(existsSync(join(stagingDir, 'BaseOS/x86_64/os/repodata/repomd.xml'))).toBe(true);

    const vetting = join(R, 'repos-staging/.releng/vetting/rocky-9');
    const digest = readFileSync(join(vetting, 'digest'), 'utf8').trim();
    expect(digest).toMatch(/^[0-9a-f]{64}$/);
    const report = JSON.parse(readFileSync(join(vetting, 'report.json'), 'utf8')) as VettingReport;
    expect(report.ok).toBe(true);
    expect(report.digest).toBe(digest);
    expect((await treeDigest(stagingDir)).digest).toBe(digest);
    expect(readFileSync(join(vetting, 'report.md'), 'utf8')).toContain(`--approve=${digest}`);
    digests['rocky-9'] = digest;

    const before = { staging: listing(join(R, 'repos-staging')), production: listing(join(R, 'repos-production')), state: listing(join(R, 'state')) };
    const dry = step('rocky-9 staging --dryRun', () => nxOk(ws, ['run', 'rocky-9:staging', '--dryRun']));
    expect(dry.output).toMatch(new RegExp(`\\[rocky-9:staging\\] plan: Rocky-9\\.7-\\d{8}\\.\\d+ → ${esc(stagingDir)}: 0 to add .*, 0 to update .*, 0 to delete`));
    expect(listing(join(R, 'repos-staging'))).toEqual(before.staging);
    expect(listing(join(R, 'repos-production'))).toEqual(before.production);
    expect(listing(join(R, 'state'))).toEqual(before.state);
  });

  it('nx run rocky-9:prod refuses without approval and with a wrong --approve, changing nothing', () => {
    const digest = digests['rocky-9'];
    const production = listing(join(R, 'repos-production'));
    const staged = listing(join(stagingCat, '9.7-RC2'));
    const n0 = readEvents(eventsFile).length;

    const none = step('rocky-9 prod (no approval)', () => nxRun(ws, ['run', 'rocky-9:prod']));
    expect(none.code, none.output).not.toBe(0);
    expect(none.output).toContain(`prod of rocky-9 needs approval of the staged tree (digest ${digest}); nothing was changed`);

    const wrongDigest = digest.slice(0, -1) + (digest.endsWith('0') ? '1' : '0'); // a one-character typo
    const wrong = step('rocky-9 prod (wrong --approve)', () => nxRun(ws, ['run', 'rocky-9:prod', `--approve=${wrongDigest}`]));
    expect(wrong.code, wrong.output).not.toBe(0);
    expect(wrong.output).toContain(`--approve=${wrongDigest} does not match the staged tree of rocky-9 (digest ${digest})`);

    expect(listing(join(R, 'repos-production'))).toEqual(production);
    expect(listing(join(stagingCat, '9.7-RC2'))).toEqual(staged);
    const ev = readEvents(eventsFile, n0).filter((e) => e.type === 'prod-refused');
    expect(ev.map((e) => [e.type, e.reason])).toEqual([
      ['prod-refused', 'no-approval'],
      ['prod-refused', 'stale-approval'],
    ]);
    expect(ev[0].runId).toMatch(new RegExp(`^${none.pid}-`));
    expect(ev[1].runId).toMatch(new RegExp(`^${wrong.pid}-`));
  });

  it('nx run rocky-9:prod --approve=<digest> publishes 9.7 with 9 -> 9.7; a second prod needs no approval and changes nothing', async () => {
    const digest = digests['rocky-9'];
    const n0 = readEvents(eventsFile).length;
    const ok = step('rocky-9 prod --approve', () => nxOk(ws, ['run', 'rocky-9:prod', `--approve=${digest}`]));
    expect(tasks()['rocky-9:prod']).toMatchObject({ status: 0, cacheStatus: 'cache-miss' });
    const prodDir = join(prodCat, '9.7');
    expect(lstatSync(prodDir).isDirectory()).toBe(true);
    expect(readlinkSync(join(prodCat, '9'))).toBe('9.7');
    expect((await treeDigest(prodDir)).digest).toBe(digest); // production is the approved staged tree
    const done = readEvents(eventsFile, n0).filter((e) => e.type === 'prod-done');
    expect(done).toHaveLength(1);
    expect(done[0]).toMatchObject({ project: 'rocky-9', changed: true, digest, approvedBy: 'command line (--approve)' });
    expect(done[0].runId).toMatch(new RegExp(`^${ok.pid}-`));

    const before = listing(join(R, 'repos-production'));
    const n1 = readEvents(eventsFile).length;
    const again = step('rocky-9 prod (nothing changed)', () => nxOk(ws, ['run', 'rocky-9:prod']));
    expect(again.output).toContain(`production ${prodDir} already matches staging ${join(stagingCat, '9.7-RC2')}: nothing to do`);
    expect(listing(join(R, 'repos-production'))).toEqual(before);
    expect(readEvents(eventsFile, n1).filter((e) => e.target === 'prod').map((e) => [e.type, e.changed])).toEqual([
      ['stage-start', undefined],
      ['plan', undefined],
      ['prod-done', false],
      ['done', undefined],
    ]);
  });

  it('rocky-8 from the same fixture: finalize, staging --dryRun (plans, changes nothing), staging; prod refused against a live production', async () => {
    step('rocky-8 finalize (whole pipeline)', () => nxOk(ws, ['run', 'rocky-8:finalize']));
    expect(readFileSync(join(R, 'compose/8/latest-Rocky-8/STATUS'), 'utf8')).toMatch(/^FINISHED/);

    const stagingDir = join(stagingCat, '8.10-RC2');
    const before = { staging: listing(join(R, 'repos-staging')), production: listing(join(R, 'repos-production')) };
    const dry = step('rocky-8 staging --dryRun', () => nxOk(ws, ['run', 'rocky-8:staging', '--dryRun']));
    const m = new RegExp(`\\[rocky-8:staging\\] plan: Rocky-8\\.10-\\d{8}\\.\\d+ → ${esc(stagingDir)}: (\\d+) to add`).exec(dry.output);
    expect(m, dry.output.slice(-3000)).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(100);
    expect(dry.output).toMatch(/repodata to regenerate: .*BaseOS\/x86_64\/os/);
    expect(existsSync(stagingDir)).toBe(false);
    expect(listing(join(R, 'repos-staging'))).toEqual(before.staging);
    expect(listing(join(R, 'repos-production'))).toEqual(before.production);

    step('rocky-8 staging', () => nxOk(ws, ['run', 'rocky-8:staging']));
    expect(readlinkSync(join(stagingCat, '8.10'))).toBe('8.10-RC2');
    expect(readlinkSync(join(stagingCat, 'latest-8'))).toBe('8.10-RC2');
    const vetting = join(R, 'repos-staging/.releng/vetting/rocky-8');
    const digest = readFileSync(join(vetting, 'digest'), 'utf8').trim();
    const report = JSON.parse(readFileSync(join(vetting, 'report.json'), 'utf8')) as VettingReport;
    expect(report).toMatchObject({ ok: true, digest });
    expect(existsSync(join(vetting, 'report.md'))).toBe(true);
    expect((await treeDigest(stagingDir)).digest).toBe(digest);
    expect(existsSync(join(stagingDir, 'BaseOS/x86_64/os/repodata/repomd.xml.asc'))).toBe(true); // rocky-8 signs its repodata
    digests['rocky-8'] = digest;

    // Production now holds 9.7: a refused prod of rocky-8 must leave all of it as it is.
    const production = listing(join(R, 'repos-production'));
    const none = step('rocky-8 prod (no approval)', () => nxRun(ws, ['run', 'rocky-8:prod']));
    expect(none.code, none.output).not.toBe(0);
    expect(none.output).toContain(`prod of rocky-8 needs approval of the staged tree (digest ${digest})`);
    const file = join(R, 'state/approvals/rocky-8.json');
    mkdirSync(join(R, 'state/approvals'), { recursive: true });
    writeFileSync(file, JSON.stringify({ digest: '0'.repeat(64), approvedBy: 'e2e', time: new Date().toISOString() }));
    const stale = step('rocky-8 prod (stale approval file)', () => nxRun(ws, ['run', 'rocky-8:prod']));
    expect(stale.code, stale.output).not.toBe(0);
    expect(stale.output).toContain(`the approval in ${file} (digest ${'0'.repeat(64)}, by e2e`);
    expect(stale.output).toContain('is stale');
    expect(listing(join(R, 'repos-production'))).toEqual(production);
    expect(existsSync(join(prodCat, '8.10'))).toBe(false);
  });

  it('nx run-many -t filelist -p rocky-8,rocky-9: both prods (approval files), file lists written once, after both prods of the run', async () => {
    for (const rel of ['rocky-8', 'rocky-9']) {
      writeFileSync(join(R, `state/approvals/${rel}.json`), JSON.stringify({ digest: digests[rel], approvedBy: 'e2e reviewer', time: new Date().toISOString() }));
    }
    const n0 = readEvents(eventsFile).length;
    const run = step('run-many filelist', () => nxOk(ws, ['run-many', '-t', 'filelist', '-p', 'rocky-8,rocky-9', '--parallel=3']));

    const t = tasks();
    for (const id of ['rocky-8:staging', 'rocky-9:staging', 'rocky-8:prod', 'rocky-9:prod', 'rocky-8:filelist', 'rocky-9:filelist']) {
      expect(t[id], id).toMatchObject({ status: 0, cacheStatus: 'cache-miss' });
    }

    // Every event of this invocation carries its run id: <nx pid>-<start time>.
    const ev = readEvents(eventsFile, n0);
    const runIds = [...new Set(ev.map((e) => e.runId).filter(Boolean))];
    expect(runIds).toHaveLength(1);
    const runId = runIds[0]!;
    expect(runId).toMatch(new RegExp(`^${run.pid}-\\d+$`));

    const idx = (e: PublishEvent) => ev.indexOf(e);
    const prodDone = ev.filter((e) => e.type === 'prod-done' && e.runId === runId);
    expect(prodDone.map((e) => e.project).sort()).toEqual(['rocky-8', 'rocky-9']);
    expect(prodDone.find((e) => e.project === 'rocky-8')).toMatchObject({ changed: true, digest: digests['rocky-8'] });
    expect(String(prodDone.find((e) => e.project === 'rocky-8')!.approvedBy)).toContain('e2e reviewer');
    expect(prodDone.find((e) => e.project === 'rocky-9')).toMatchObject({ changed: false }); // already in production

    const fl = ev.filter((e) => e.type.startsWith('filelist-') && e.runId === runId);
    expect(fl.map((e) => e.project).sort()).toEqual(['rocky-8', 'rocky-9']); // one event per filelist task
    const written = fl.filter((e) => e.type === 'filelist-written');
    expect(written).toHaveLength(1);
    const [w] = written;
    const other = fl.find((e) => e !== w)!;
    expect(['filelist-deferred', 'filelist-unchanged']).toContain(other.type);

    // The write came after both prod-done events of the run: in log order and in time, and Nx
    // started the writing task after both prod tasks had ended.
    for (const p of prodDone) {
      expect(idx(w)).toBeGreaterThan(idx(p));
      expect(Date.parse(w.time)).toBeGreaterThanOrEqual(Date.parse(p.time));
      expect(Date.parse(t[`${w.project}:filelist`].startTime)).toBeGreaterThanOrEqual(Date.parse(t[`${p.project}:prod`].endTime));
    }
    if (other.type === 'filelist-deferred') expect(other.waitingFor?.length).toBeGreaterThan(0);
    const order = ev
      .filter((e) => /^(prod-done|filelist-)/.test(e.type))
      .map((e) => `${idx(e)}:${e.type}(${e.project})@${e.time.slice(11, 23)}`)
      .join(' < ');
    console.log(`run ${runId}: ${order}`);

    // Production: both releases with their links.
    expect(readlinkSync(join(prodCat, '8'))).toBe('8.10');
    expect(readlinkSync(join(prodCat, '9'))).toBe('9.7');
    expect((await treeDigest(join(prodCat, '8.10'))).digest).toBe(digests['rocky-8']);

    // The written list: parses strictly and lists every entry of both trees (type and size).
    const listFile = join(prodCat, 'fullfiletimelist-rocky');
    expect(w.written).toContain(listFile);
    const list = parseFileTimeList(readFileSync(listFile, 'utf8'));
    const byPath = new Map(list.files.map((f) => [f.path, f]));
    expect(byPath.get('8')?.type[0]).toBe('l');
    expect(byPath.get('9')?.type[0]).toBe('l');
    expect(byPath.get('8.10')?.type[0]).toBe('d');
    expect(byPath.get('9.7')?.type[0]).toBe('d');
    const counts: Record<string, number> = {};
    for (const tree of ['8.10', '9.7']) {
      const all = entries(prodCat, tree);
      counts[tree] = all.length;
      expect(all.length).toBeGreaterThan(500);
      const missing = all.filter(([p]) => !byPath.has(p)).map(([p]) => p);
      expect(missing.slice(0, 10), `${tree}: ${missing.length} entries not listed`).toEqual([]);
      for (const [p, type, size] of all) {
        const e = byPath.get(p)!;
        expect(e.type[0], p).toBe(type);
        if (type === 'f') expect(e.size, p).toBe(size);
      }
      expect(list.files.filter((f) => f.path.startsWith(`${tree}/`))).toHaveLength(all.length); // nothing listed that is not there
    }

    // [Checksums SHA1] covers repomd.xml: what sha1sum says, for both trees.
    const sha1 = list.checksums.SHA1 ?? {};
    const repomds = Object.keys(sha1).filter((p) => p.endsWith('/repodata/repomd.xml'));
    for (const tree of ['8.10', '9.7']) expect(repomds.filter((p) => p.startsWith(`${tree}/`)).length, tree).toBeGreaterThan(5);
    const out = execFileSync('sha1sum', repomds, { cwd: prodCat, encoding: 'utf8' });
    const actual = Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(42), l.slice(0, 40)]));
    for (const p of repomds) expect(sha1[p], p).toBe(actual[p]);
    console.log(`fullfiletimelist-rocky: ${list.files.length} entries (8.10: ${counts['8.10']}, 9.7: ${counts['9.7']}), ${repomds.length} repomd.xml SHA1s checked with sha1sum`);
  });
});
