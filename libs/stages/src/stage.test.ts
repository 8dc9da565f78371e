// runStage removes the work dirs killed runs on this host left in state/tmp before any real run
// executes, whatever that run reuses (issue 19.8: a killed iso-extra whose DVDs were both stored
// left its work dirs behind for good, as the rerun reused both and made no work dir of its own).
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { eventsFile, loadRelease, loadSite } from '@rocky/config';
import * as s3 from '../../store/src/s3';
import { stageContext } from './context';
import { runStage, type Stage } from './stage';

const ws = join(__dirname, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'stage-sweep-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A stage that reuses everything: plans nothing, executes nothing. */
const reusing = (readOnly = false): Stage<object, object> => ({
  name: 'reuse',
  readOnly,
  tools: () => [],
  plan: async () => ({}),
  describe: () => ({ summary: 'everything reused', details: [] }),
  execute: async () => ({}),
  verify: async () => {},
  record: async () => ({ summary: 'reused' }),
});

function ctxWithLeftovers(name: string, dryRun: boolean) {
  const site = { ...loadSite(ws, 'local'), state: join(dir, name, 'state') };
  const tmp = join(site.state, 'tmp');
  // A pid above pid_max is never alive: a SIGKILLed run of this host; another host's dir is not ours to judge.
  for (const d of [`extra-rocky-8-x86_64-dvd@${hostname()}.99999999`, 'extra-rocky-8-aarch64-dvd@other-host.12']) mkdirSync(join(tmp, d), { recursive: true });
  return { tmp, ctx: stageContext({ root: ws, project: 'rocky-8', target: 'iso-extra', release: loadRelease(ws, 'rocky-8'), site, dryRun }) };
}

describe('runStage and the work dirs of killed runs', () => {
  it('a real run removes this host dead runs dirs before execute, even when it reuses everything', async () => {
    const { tmp, ctx } = ctxWithLeftovers('real', false);
    const info = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      await runStage(reusing(), ctx);
    } finally {
      info.mockRestore();
    }
    expect(readdirSync(tmp)).toEqual(['extra-rocky-8-aarch64-dvd@other-host.12']);
  });

  it("on an S3 site, a real run removes dead writers' partial objects from the local cache, and makes no bucket client for it", async () => {
    const { ctx } = ctxWithLeftovers('s3', false);
    const cache = join(dir, 's3', 'cache');
    const site = { ...ctx.site, store: { type: 's3' as const, bucket: 'releng', prefix: '', region: 'us-east-1', cache } };
    mkdirSync(join(cache, 'tmp'), { recursive: true });
    const dead = `put@${hostname()}.99999999-abc0`;
    writeFileSync(join(cache, 'tmp', dead), 'partial');
    writeFileSync(join(cache, 'tmp', 'put@other-host.12-abc0'), 'not ours');
    const client = vi.spyOn(s3, 's3Client');
    const info = vi.spyOn(console, 'log').mockImplementation(() => {});
    let clients: number;
    try {
      await runStage(reusing(), { ...ctx, site });
    } finally {
      clients = client.mock.calls.length; // read before mockRestore, which clears them
      info.mockRestore();
      client.mockRestore();
    }
    expect(readdirSync(join(cache, 'tmp'))).toEqual(['put@other-host.12-abc0']);
    expect(clients).toBe(0);
  });

  it('a dry run and a read-only stage leave them', async () => {
    const dry = ctxWithLeftovers('dry', true);
    const ro = ctxWithLeftovers('ro', false);
    const info = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      await runStage(reusing(), dry.ctx);
      await runStage(reusing(true), ro.ctx);
    } finally {
      info.mockRestore();
    }
    for (const t of [dry.tmp, ro.tmp]) expect(readdirSync(t).sort()).toEqual([`extra-rocky-8-aarch64-dvd@other-host.12`, `extra-rocky-8-x86_64-dvd@${hostname()}.99999999`]);
  });
});

describe('the stage-start event', () => {
  it('says how long the process took to get there (a task process: its fixed cost before the stage)', async () => {
    const { ctx } = ctxWithLeftovers('uptime', false);
    const info = vi.spyOn(console, 'log').mockImplementation(() => {});
    const before = process.uptime();
    try {
      await runStage(reusing(), ctx);
    } finally {
      info.mockRestore();
    }
    const start = readFileSync(eventsFile(ctx.site), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; uptimeSeconds?: number })
      .find((e) => e.type === 'stage-start');
    expect(start?.uptimeSeconds).toBeGreaterThanOrEqual(Math.floor(before * 1000) / 1000);
    expect(start?.uptimeSeconds).toBeLessThanOrEqual(process.uptime());
  });
});

describe('the failed event', () => {
  it("names the error's first line and carries the seconds and the process's peak RSS, as done does", async () => {
    const { ctx } = ctxWithLeftovers('failed', false);
    const info = vi.spyOn(console, 'log').mockImplementation(() => {});
    const failing: Stage<object, object> = { ...reusing(), execute: async () => Promise.reject(new Error('dnf ran out of mirrors\nsecond line')) };
    try {
      await expect(runStage(failing, ctx)).rejects.toThrow('dnf ran out of mirrors');
    } finally {
      info.mockRestore();
    }
    const failed = readFileSync(eventsFile(ctx.site), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; error?: string; seconds?: number; maxRssMiB?: number })
      .find((e) => e.type === 'failed');
    expect(failed).toMatchObject({ error: 'dnf ran out of mirrors', seconds: expect.any(Number) });
    expect(failed?.maxRssMiB).toBeGreaterThan(0);
  });
});
