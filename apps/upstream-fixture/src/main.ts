// CLI: `build [--root DIR] [--scale N] [--shape flat|rocky] [--release NAME]...` builds (or reuses) the fixture;
// `serve [--root DIR] [--port N] [--host H]` brings it up to date and serves it until
// SIGINT/SIGTERM. Run: node -r @swc-node/register apps/upstream-fixture/src/main.ts build
import './cli-paths';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ensureFixture, siteFixtureOptions } from './fixture';
import { serveFixture } from './server';
import type { FixtureShape } from './model';

const USAGE = 'usage: main.ts build [--root DIR] [--scale N] [--shape flat|rocky] [--release NAME]... | serve [--root DIR] [--port N] [--host HOST] [--scale N] [--shape flat|rocky]';

function workspaceRoot(): string {
  for (let d = __dirname; ; d = dirname(d)) {
    if (existsSync(join(d, 'nx.json')) && existsSync(join(d, 'releases'))) return d;
    if (dirname(d) === d) return process.cwd();
  }
}

function parse(argv: string[]) {
  const [cmd, ...rest] = argv;
  const o = { cmd, root: '.releng/upstream', scale: 1, shape: 'flat' as FixtureShape, port: 8765, host: '127.0.0.1', releases: [] as string[] };
  for (let i = 0; i < rest.length; i++) {
    const [flag, inline] = rest[i].split('=', 2);
    const value = () => inline ?? rest[++i] ?? fail(`${flag} needs a value`);
    if (flag === '--root') o.root = value();
    else if (flag === '--scale') o.scale = Number(value());
    else if (flag === '--shape') o.shape = value() as FixtureShape;
    else if (flag === '--port') o.port = Number(value());
    else if (flag === '--host') o.host = value();
    else if (flag === '--release') o.releases.push(value());
    else fail(`unknown option ${rest[i]}`);
  }
  if (cmd !== 'build' && cmd !== 'serve') fail(USAGE);
  if (!Number.isInteger(o.scale) || o.scale < 1) fail('--scale must be an integer >= 1');
  if (o.shape !== 'flat' && o.shape !== 'rocky') fail('--shape must be flat or rocky');
  if (!Number.isInteger(o.port) || o.port < 0) fail('--port must be a port number');
  return o;
}

function fail(msg: string): never {
  console.error(msg);
  process.exit(2);
}

async function main() {
  const o = parse(process.argv.slice(2));
  const ws = workspaceRoot();
  const root = resolve(ws, o.root);
  const t0 = Date.now();
  // The flags are a site's `upstream.fixture` settings, mapped as the stages map them.
  const info = await ensureFixture(siteFixtureOptions(ws, { root, scale: o.scale, shape: o.shape }, { releases: o.releases.length ? o.releases : undefined, log: (m) => console.log(m) }));
  console.log(`fixture ready at ${info.root} (key ${info.keyId}) in ${Date.now() - t0} ms`);
  if (o.cmd === 'build') return;
  const server = await serveFixture({ root, port: o.port, host: o.host });
  console.log(server.url);
  const stop = () => void server.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((e: Error) => {
  console.error(`upstream-fixture: ${e.message}`);
  process.exit(1);
});
