// The real Nx 22 client against the server: a throwaway workspace with one cacheable target.
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { run, ToolError } from '@rocky/exec';
import { parseCacheServerConfig } from './config';
import { startCacheServer, type LogLine, type RunningCacheServer } from './server';
import { tempDir } from './testing';

const repoRoot = resolve(__dirname, '../../..');
const RW = 'rw-token-0123456789abcdef';
const RO = 'ro-token-0123456789abcdef';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function makeWorkspace(): string {
  const ws = tempDir('cache-e2e-ws-');
  cleanups.push(() => rmSync(ws, { recursive: true, force: true }));
  writeFileSync(join(ws, 'package.json'), JSON.stringify({ name: 'cache-e2e', version: '0.0.0', private: true }));
  writeFileSync(join(ws, 'nx.json'), JSON.stringify({ neverConnectToCloud: true, analytics: false }));
  writeFileSync(join(ws, '.gitignore'), 'node_modules\n.nx\nout\n');
  mkdirSync(join(ws, 'p'));
  // The output sits outside the project root so it is never an input of its own task.
  const command = `node -e "require('fs').mkdirSync('out',{recursive:true});require('fs').writeFileSync('out/a.txt', String(Date.now()) + Math.random())"`;
  writeFileSync(
    join(ws, 'p', 'project.json'),
    JSON.stringify({ name: 'p', targets: { gen: { executor: 'nx:run-commands', cache: true, outputs: ['{workspaceRoot}/out'], options: { command } } } }),
  );
  // Not `p:t`: Nx maps the target names b/e/l/s/t to build/e2e/lint/serve/test (run-one.js targetAliases).
  symlinkSync(join(repoRoot, 'node_modules'), join(ws, 'node_modules'), 'dir');
  return ws;
}

/** Runs nx asynchronously: the server lives in this process and must keep answering. */
function nx(ws: string, server: RunningCacheServer, token: string, ...args: string[]): Promise<{ code: number | null; output: string }> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('NX_')) env[k] = v;
  Object.assign(env, {
    NX_DAEMON: 'false',
    NX_NO_CLOUD: 'true',
    NX_TUI: 'false',
    CI: 'true',
    NX_SELF_HOSTED_REMOTE_CACHE_SERVER: server.url,
    NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN: token,
  });
  return run([process.execPath, join(ws, 'node_modules/nx/dist/bin/nx.js'), ...args], { cwd: ws, env }).then(
    (r) => ({ code: r.code, output: r.stdout + r.stderr }),
    (e: unknown) => {
      if (!(e instanceof ToolError)) throw e;
      return { code: e.result.signal ? null : e.result.code, output: e.result.stdout + e.result.stderr };
    },
  );
}

async function startServer() {
  const dir = tempDir('cache-e2e-store-');
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const logs: LogLine[] = [];
  const server = await startCacheServer(
    parseCacheServerConfig({ port: 0, storage: dir, maxSize: '1GiB', tokens: { readWrite: [RW], readOnly: [RO] } }, 'test', { env: {} }),
    { log: (l) => logs.push(l) },
  );
  cleanups.push(() => server.close());
  return { server, logs };
}

const lastRun = (ws: string) =>
  JSON.parse(readFileSync(join(ws, '.nx/cache/run.json'), 'utf8')) as { tasks: { taskId: string; hash: string; cacheStatus: string; status: number }[] };

describe('Nx 22 client end to end', () => {
  it('stores on a miss (PUT 200) and restores from the server after the local cache is gone', async () => {
    const { server, logs } = await startServer();
    const ws = makeWorkspace();
    execOk(await nx(ws, server, RW, 'run', 'p:gen', '--outputStyle=static'));
    const [first] = lastRun(ws).tasks;
    expect(first.cacheStatus).toBe('cache-miss');
    expect(logs.filter((l) => l.hash === first.hash).map((l) => `${l.method} ${l.status}`)).toEqual(['GET 404', 'PUT 200']);
    expect(server.store.has(first.hash)).toBe(true);
    const content = readFileSync(join(ws, 'out/a.txt'), 'utf8');

    // A full `nx reset`: in Nx 22.7.12 `reset --onlyCache` keeps the cache DB in
    // .nx/workspace-data, so the rerun reports local-cache-hit and restores nothing.
    execOk(await nx(ws, server, RW, 'reset'));
    rmSync(join(ws, 'out'), { recursive: true, force: true });
    execOk(await nx(ws, server, RW, 'run', 'p:gen', '--outputStyle=static'));
    const [second] = lastRun(ws).tasks;
    expect(second).toMatchObject({ hash: first.hash, cacheStatus: 'remote-cache-hit', status: 0 });
    expect(readFileSync(join(ws, 'out/a.txt'), 'utf8')).toBe(content);
    expect(logs.filter((l) => l.hash === first.hash).map((l) => `${l.method} ${l.status}`)).toEqual(['GET 404', 'PUT 200', 'GET 200']);
  });

  it('passes with a read-only token: the server answers the PUT with 403 and stores nothing', async () => {
    const { server, logs } = await startServer();
    const ws = makeWorkspace();
    execOk(await nx(ws, server, RO, 'run', 'p:gen', '--outputStyle=static'));
    const [task] = lastRun(ws).tasks;
    expect(task).toMatchObject({ cacheStatus: 'cache-miss', status: 0 });
    expect(logs.filter((l) => l.hash === task.hash).map((l) => `${l.method} ${l.status}`)).toEqual(['GET 404', 'PUT 403']);
    expect(server.stats().entries).toBe(0);
  });

  it('fails the run with Nx\u2019s "Unauthorized: bad token" on a wrong token', async () => {
    const { server, logs } = await startServer();
    const ws = makeWorkspace();
    const run = await nx(ws, server, 'not-a-valid-token-000000', 'run', 'p:gen', '--outputStyle=static');
    expect(run.code).not.toBe(0);
    expect(run.output).toContain('Unauthorized: bad token');
    expect(logs.some((l) => l.status === 401)).toBe(true);
    expect(existsSync(join(ws, 'out'))).toBe(false); // stopped before the task ran
    expect(server.stats().entries).toBe(0);
  });
});

function execOk(run: { code: number | null; output: string }): void {
  if (run.code !== 0) throw new Error(`nx exited ${run.code}:\n${run.output}`);
}
