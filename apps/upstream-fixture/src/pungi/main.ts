// The fixture's `pungi-koji` (apps/upstream-fixture/bin/pungi-koji runs this): pungi's options,
// pungi's output layout and exit codes (2 for a command line argparse refuses, 1 for a compose
// that failed), from the fixture's packages. Its koji is a fixture root: $PUNGI_FIXTURE_KOJI_ROOT,
// or the `upstream.fixture.root` of the site RELENG_SITE names (default `local`).
// Test switches: PUNGI_FIXTURE_FAULT=doomed|incomplete, PUNGI_FIXTURE_DATE=YYYYMMDD.
import '../cli-paths';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { loadSite } from '@rocky/config';
import { parseArgs, USAGE, UsageError } from './args';
import { AbortError, FIXTURE_PUNGI_VERSION, prepareCompose, type FixtureCompose, type FixtureEnv } from './compose';

function workspaceRoot(): string {
  for (let d = __dirname; ; d = dirname(d)) {
    if (existsSync(join(d, 'nx.json')) && existsSync(join(d, 'sites'))) return d;
    if (dirname(d) === d) throw new Error(`cannot find the workspace above ${__dirname}`);
  }
}

function kojiRoot(): string {
  if (process.env.PUNGI_FIXTURE_KOJI_ROOT) return resolve(process.env.PUNGI_FIXTURE_KOJI_ROOT);
  const site = loadSite(workspaceRoot());
  if (!site.upstream.fixture) throw new Error(`site ${site.name} has no upstream.fixture: the fixture's pungi-koji has no koji to read (set PUNGI_FIXTURE_KOJI_ROOT)`);
  return site.upstream.fixture.root;
}

function usageError(msg: string): never {
  process.stderr.write(`${USAGE}\npungi-koji: error: ${msg}\n`);
  process.exit(2);
}

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs(process.argv.slice(2));
  } catch (e) {
    if (e instanceof UsageError) usageError(e.message);
    throw e;
  }
  if (parsed.kind === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (parsed.kind === 'version') {
    process.stdout.write(`${FIXTURE_PUNGI_VERSION}\n`);
    return 0;
  }
  const args = parsed.args;
  args.config = resolve(args.config);
  if (args.targetDir) args.targetDir = resolve(args.targetDir);
  if (args.composeDir) args.composeDir = resolve(args.composeDir);
  const fault = process.env.PUNGI_FIXTURE_FAULT;
  if (fault && fault !== 'doomed' && fault !== 'incomplete') throw new Error(`PUNGI_FIXTURE_FAULT=${fault}: expected doomed or incomplete`);
  const date = process.env.PUNGI_FIXTURE_DATE;
  if (date && !/^\d{8}$/.test(date)) throw new Error(`PUNGI_FIXTURE_DATE=${date}: expected YYYYMMDD`);
  const env: FixtureEnv = {
    kojiRoot: kojiRoot(),
    fault: fault as FixtureEnv['fault'],
    date,
    stdout: (l) => process.stdout.write(`${l}\n`),
    stderr: (l) => process.stderr.write(`${l}\n`),
  };

  let compose: FixtureCompose;
  try {
    compose = prepareCompose(args, env);
  } catch (e) {
    if (e instanceof AbortError) usageError(e.message);
    throw e;
  }
  if (args.printOutputDir) env.stdout(`Compose dir: ${compose.dir}`);

  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.once(sig, () => {
      try {
        compose.terminated(sig === 'SIGTERM' ? '15' : '2');
      } finally {
        process.exit(1);
      }
    });
  }
  try {
    await compose.run();
    return 0;
  } catch (e) {
    compose.doomed(e as Error);
    return 1;
  }
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    process.stderr.write(`Exception: ${e.message}\n`);
    process.exit(1);
  },
);
