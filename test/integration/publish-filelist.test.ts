// The filelist stage runs only after every prod of the same Nx run: deferred until then,
// written by the run's last filelist task, unchanged when nothing moved.
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventsFile, loadRelease, loadSite, type Site } from '@rocky/config';
import { parseFileTimeList } from '@rocky/publish';
import { filelistStage, fileListModules, runStage, stageContext, type FilelistPlan, type FilelistStageResult } from '@rocky/stages';
import { repoRoot } from '../helpers/workspace';

let tmp: string;
let site: Site;
/** The filelist task of `project` in run `runId`, whose prods are those of `prods`. */
async function filelist(project: string, runId: string, prods: string[]): Promise<FilelistStageResult> {
  const o = await runStage(filelistStage, stageContext({ root: join(tmp, 'ws'), project, target: 'filelist', release: loadRelease(repoRoot, project), site, dryRun: false, run: { id: runId, tasks: prods.map((p) => `${p}:prod`) } }));
  return o.dryRun ? (undefined as never) : o.result;
}
async function filelistPlan(project: string, runId: string, prods: string[]): Promise<FilelistPlan> {
  return (await runStage(filelistStage, stageContext({ root: join(tmp, 'ws'), project, target: 'filelist', release: loadRelease(repoRoot, project), site, dryRun: true, run: { id: runId, tasks: prods.map((p) => `${p}:prod`) } }))).plan;
}
/** The stage's own events (the runner's stage-start/plan/done around them are left out). */
const events = () => readFileSync(eventsFile(site), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => String(e.type).startsWith('filelist-'));
const prodDone = (project: string, runId: string) => {
  const f = eventsFile(site);
  mkdirSync(join(f, '..'), { recursive: true });
  appendFileSync(f, JSON.stringify({ time: new Date().toISOString(), type: 'prod-done', project, target: 'prod', runId, changed: true }) + '\n');
};

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'publish-filelist-'));
  site = { ...loadSite(repoRoot, 'local'), roots: { compose: join(tmp, 'compose'), staging: join(tmp, 'staging'), production: join(tmp, 'production') }, state: join(tmp, 'state') };
  const cat = join(site.roots.production, site.category);
  for (const d of ['9.7/BaseOS/x86_64/os/repodata', '8.10/BaseOS/x86_64/os/repodata']) mkdirSync(join(cat, d), { recursive: true });
  writeFileSync(join(cat, '9.7/BaseOS/x86_64/os/repodata/repomd.xml'), '<repomd/>\n');
  writeFileSync(join(cat, '8.10/BaseOS/x86_64/os/repodata/repomd.xml'), '<repomd/>\n');
  symlinkSync('9.7', join(cat, '9'));
  mkdirSync(join(site.roots.production, 'mirror/pub/sig/9'), { recursive: true });
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('filelistStage', () => {
  it('uses the rocky, sig and root modules', () => {
    expect(fileListModules(site).map((m) => [m.name, m.dir])).toEqual([
      ['rocky', join(site.roots.production, 'mirror/pub/rocky')],
      ['sig', join(site.roots.production, 'mirror/pub/sig')],
      ['root', site.roots.production],
    ]);
  });

  it('defers until every prod of the run is done, then writes every module once', async () => {
    const run = ['rocky-8', 'rocky-9'];
    const cat = join(site.roots.production, site.category);
    // rocky-8's prod finished, rocky-9's has not: its filelist task defers.
    prodDone('rocky-8', 'run-A');
    prodDone('rocky-9', 'an-older-run');
    const d = await filelist('rocky-8', 'run-A', run);
    expect(d).toMatchObject({ status: 'deferred' });
    expect(existsSync(join(cat, 'fullfiletimelist-rocky'))).toBe(false);
    expect(events().at(-1)).toMatchObject({ type: 'filelist-deferred', runId: 'run-A', waitingFor: ['rocky-9'] });
    const dry = await filelistPlan('rocky-9', 'run-A', run);
    expect(dry.waitingFor).toEqual(['rocky-9']);

    // rocky-9's prod finishes; its filelist task (the run's last) writes the lists.
    prodDone('rocky-9', 'run-A');
    const w = await filelist('rocky-9', 'run-A', run);
    expect(w.status).toBe('written');
    for (const f of ['fullfiletimelist-rocky', 'fullfiletimelist', 'fullfiletimelist-rocky-linux', 'fullfilelist', 'imagelist-rocky']) expect(existsSync(join(cat, f)), f).toBe(true);
    for (const f of ['fullfiletimelist-sig', 'fullfiletimelist']) expect(existsSync(join(site.roots.production, 'mirror/pub/sig', f)), f).toBe(true);
    for (const f of ['fullfiletimelist-root', 'fullfiletimelist', 'fullfiletimelist-rocky']) expect(existsSync(join(site.roots.production, f)), f).toBe(true);
    const list = parseFileTimeList(readFileSync(join(cat, 'fullfiletimelist-rocky'), 'utf8'));
    expect(list.files.map((e) => e.path)).toEqual(expect.arrayContaining(['9.7/BaseOS/x86_64/os/repodata/repomd.xml', '8.10/BaseOS/x86_64/os/repodata/repomd.xml', '9']));
    // The root list describes the category's lists as they are now (generated after them).
    const root = parseFileTimeList(readFileSync(join(site.roots.production, 'fullfiletimelist-root'), 'utf8'));
    const catList = root.files.find((e) => e.path === 'mirror/pub/rocky/fullfiletimelist-rocky')!;
    expect(catList.size).toBe(statSync(join(cat, 'fullfiletimelist-rocky')).size);
    expect(events().at(-1)).toMatchObject({ type: 'filelist-written', runId: 'run-A' });
    expect((events().at(-1)!.written as string[]).length).toBe(w.written.length);

    // Another filelist task of the same run after the last prod: nothing to redo.
    const again = await filelist('rocky-8', 'run-A', run);
    expect(again.status).toBe('unchanged');

    // A later run in which nothing changed: lists regenerated and found current, left untouched.
    const mtime = statSync(join(cat, 'fullfiletimelist-rocky')).mtimeMs;
    prodDone('rocky-9', 'run-B');
    const u = await filelist('rocky-9', 'run-B', ['rocky-9']);
    expect(u.status).toBe('unchanged');
    expect(u.written).toEqual([]);
    expect(u.unchanged.length).toBe(w.written.length);
    expect(statSync(join(cat, 'fullfiletimelist-rocky')).mtimeMs).toBe(mtime);
    expect(events().at(-1)).toMatchObject({ type: 'filelist-unchanged', runId: 'run-B' });

    // A run that changed production: written again.
    writeFileSync(join(cat, '9.7/BaseOS/x86_64/os/repodata/new.xml'), 'x');
    prodDone('rocky-9', 'run-C');
    expect((await filelist('rocky-9', 'run-C', ['rocky-9'])).status).toBe('written');
  });
});
