// Command line entry point:
//   node -r @swc-node/register apps/cache-server/src/main.ts --config apps/cache-server/cache-server.example.yaml
// Logs JSON lines to stdout (one per request, plus start/stop); exits 2 on a bad config.
import { parseArgs } from 'node:util';
import { CacheServerConfigError, loadCacheServerConfig, type CacheServerConfig } from './config';
import { startCacheServer } from './server';

// Every PUT ends in fsync, which holds one of libuv's threads (4 by default) for milliseconds;
// with a handful of uploads in flight, GET reads queue behind them. 64 threads roughly doubled
// throughput under load (bench/cache-server-load.ts). Must be set before the pool's first use,
// which none of the imports above makes.
process.env.UV_THREADPOOL_SIZE ??= '64';

const USAGE = 'usage: main.ts --config <cache-server.yaml>   (tokens may also come from RELENG_CACHE_RW_TOKENS / RELENG_CACHE_RO_TOKENS)';

const write = (line: Record<string, unknown>) => process.stdout.write(JSON.stringify(line) + '\n');
const logEvent = (line: Record<string, unknown>) => write({ time: new Date().toISOString(), ...line });

function main(): void {
  let configFile: string | undefined;
  try {
    const { values } = parseArgs({ options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } });
    if (values.help) {
      console.log(USAGE);
      return;
    }
    configFile = values.config;
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  if (!configFile) {
    console.error(USAGE);
    process.exit(2);
  }

  let config: CacheServerConfig;
  try {
    config = loadCacheServerConfig(configFile);
  } catch (e) {
    if (e instanceof CacheServerConfigError) {
      console.error(e.message);
      process.exit(2);
    }
    throw e;
  }

  startCacheServer(config, { log: write }).then(
    (server) => {
      logEvent({
        event: 'listening',
        url: server.url,
        storage: config.storage,
        ...server.stats(),
        maxEntrySize: config.maxEntrySize,
        readWriteTokens: config.tokens.readWrite.length,
        readOnlyTokens: config.tokens.readOnly.length,
      });
      let stopping = false;
      const stop = (signal: NodeJS.Signals) => {
        // A second signal while draining means "now".
        if (stopping) process.exit(1);
        stopping = true;
        logEvent({ event: 'stopping', signal });
        server.close().then(
          () => {
            logEvent({ event: 'stopped' });
            process.exit(0);
          },
          (e: Error) => {
            logEvent({ event: 'stop-failed', error: e.message });
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    },
    (e: Error) => {
      logEvent({ event: 'start-failed', error: e.message });
      process.exit(1);
    },
  );
}

main();
