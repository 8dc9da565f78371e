// dnf run as forks of one server that imported dnf: the same exit, output and log as the plain
// command, stopped on a timeout and when the server is closed; wrappers are not taken for dnf.
// Here, not in libs/rpm-repo: it uses the fixture's broken repo, and rpm-repo's own files must not
// import the fixture (which imports rpm-repo), or every change to the fixture's imports affects rpm-repo.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ToolError, formatArgv, run } from '@rocky/exec';
import { writeBrokenRepo } from '@rocky/upstream-fixture';
import { DnfForks, dnfArgv, dnfConfig, dnfLauncher, repoclosure, repoclosureArgv } from '@rocky/rpm-repo';

describe('dnf forks', () => {
  let tmp: string;
  let broken: string;
  // A server that accepts connections and never answers: a dnf reading from it waits.
  let silent: Server;
  const sockets: Socket[] = [];
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'dnf-forks-'));
    broken = join(tmp, 'broken');
    await writeBrokenRepo(broken);
    silent = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => silent.close(r));
    rmSync(tmp, { recursive: true, force: true });
  });
  const hanging = () => {
    const port = (silent.address() as { port: number }).port;
    const work = mkdtempSync(join(tmp, 'hang-'));
    return { work, argv: dnfArgv({ config: dnfConfig(work), releasever: 9, repos: [{ id: 'silent', url: `http://127.0.0.1:${port}/repo` }], quiet: true }, ['repoquery']) };
  };

  it('a failing repoclosure: the exit code, stdout, stderr and log of the plain command', async () => {
    const forks = DnfForks.start();
    expect(forks).toBeDefined();
    try {
      const argv = (w: string) => repoclosureArgv({ config: dnfConfig(join(tmp, w)), releasever: 9, check: { id: 'broken', path: broken }, deps: [], arch: 'x86_64' });
      const plain = await run(argv('plain'), { okCodes: [1], logFile: join(tmp, 'plain.log') });
      const log = join(tmp, 'forked.log');
      const err = await forks!.run(argv('forked'), { workDir: join(tmp, 'forked'), logFile: log }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ToolError);
      const { result, logFile } = err as ToolError;
      expect(result.code).toBe(1);
      expect(plain.code).toBe(1);
      expect(result.stdout.replaceAll('forked', 'plain')).toBe(plain.stdout);
      expect(result.stderr.replaceAll('forked', 'plain')).toBe(plain.stderr);
      expect(result.stdout).toContain('package: broken-fixture-1.0-1.fixture.noarch from broken');
      expect(logFile).toBe(log);
      expect(readFileSync(log, 'utf8')).toBe(`$ ${formatArgv(argv('forked'))}\n${result.stdout}${result.stderr}`);
      // The output files went into the log and are gone.
      expect(readdirSync(join(tmp, 'forked')).filter((f) => f.startsWith('dnf-'))).toEqual([]);
      // repoclosure reads the same verdict from a fork.
      const v = await repoclosure({ check: { id: 'broken', path: broken }, deps: [], arch: 'x86_64', releasever: 9, workDir: join(tmp, 'closure'), forks });
      expect(v.ok).toBe(false);
      expect(v.broken).toEqual([{ package: 'broken-fixture-1.0-1.fixture.noarch', repo: 'broken', unresolved: ['does-not-exist-fixture >= 1.0'] }]);
    } finally {
      await forks?.close();
    }
  });

  it('a fork past its timeout is stopped (SIGTERM) and reported as timed out', async () => {
    const forks = DnfForks.start()!;
    try {
      const { work, argv } = hanging();
      const err = await forks.run(argv, { workDir: work, timeoutMs: 500 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ToolError);
      expect((err as ToolError).result).toMatchObject({ timedOut: true, signal: 'SIGTERM' });
    } finally {
      await forks.close();
    }
  });

  it('closing the server stops its running forks', async () => {
    const forks = DnfForks.start()!;
    const { work, argv } = hanging();
    const connected = sockets.length;
    try {
      const running = forks.run(argv, { workDir: work }).then(
        () => undefined,
        (e: unknown) => e,
      );
      // Closed once the fork is connected (it waits on the silent server then).
      while (sockets.length === connected) await new Promise((r) => setTimeout(r, 20));
      await forks.close();
      const err = await running;
      expect(err).toBeInstanceOf(ToolError);
      expect((err as ToolError).result.signal).toBe('SIGTERM');
    } finally {
      await forks.close(); // a no-op once closed; stops the server if the test failed before
    }
  });

  it('only the standard dnf launcher is forked from; a wrapper named dnf is run as it is', () => {
    const bin = join(tmp, 'bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'dnf'), '#!/bin/sh\nexec /usr/bin/dnf "$@"\n', { mode: 0o755 });
    expect(dnfLauncher(`${bin}:${process.env.PATH}`)).toBeUndefined();
    const real = dnfLauncher();
    expect(real?.[0]).toMatch(/python/);
    expect(existsSync(real![0])).toBe(true);
  });
});
