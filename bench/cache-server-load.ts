// Load test for apps/cache-server: N concurrent keep-alive clients doing a PUT/GET mix on
// loopback for a fixed time; every GET body is checked against the sha256 of what was PUT.
//   node -r @swc-node/register bench/cache-server-load.ts --seconds 30 [--clients 200] [--put-ratio 0.3]
// The server runs in a forked child (same execArgv), so client and server do not share one
// event loop and the numbers describe the server. Exits 1 on any error or corrupted body.
import { fork } from 'node:child_process';
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseCacheServerConfig } from '../apps/cache-server/src/config';
import { startCacheServer } from '../apps/cache-server/src/server';

const TOKEN = 'bench-read-write-token-000000000';
const KiB = 1024;

interface Reply {
  status: number;
  body: Buffer;
}

function serveChild(storage: string, maxSize: string): void {
  const config = parseCacheServerConfig({ port: 0, storage, maxSize, maxEntrySize: '1MiB', tokens: { readWrite: [TOKEN] } }, 'bench', { env: {} });
  startCacheServer(config).then(
    (server) => {
      process.send!({ url: server.url });
      // CPU time lets the report say whether the server or the load generator was the bottleneck.
      process.on('message', (m) => {
        if (m === 'cpu') process.send!({ cpu: process.cpuUsage() });
      });
      // The parent disconnects when it is done (or dies): shut down cleanly either way.
      process.on('disconnect', () => void server.close().then(() => process.exit(0)));
    },
    (e: Error) => {
      console.error(e);
      process.exit(1);
    },
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '30' },
      clients: { type: 'string', default: '200' },
      'put-ratio': { type: 'string', default: '0.3' },
      'max-size': { type: 'string' },
    },
  });
  const seconds = Number(values.seconds);
  const clients = Number(values.clients);
  const putRatio = Number(values['put-ratio']);
  // Without --max-size nothing is evicted, so a 404 for an acknowledged entry is an error.
  const evicting = values['max-size'] !== undefined;
  if (!(seconds > 0) || !(clients > 0) || !(putRatio >= 0 && putRatio <= 1)) throw new Error('bad --seconds / --clients / --put-ratio');

  const storage = mkdtempSync(join(tmpdir(), 'cache-server-load-'));
  const child = fork(__filename, ['--serve-child', storage, values['max-size'] ?? '1TB'], {
    execArgv: process.execArgv,
    // main.ts raises libuv's pool from 4 to 64 (fsyncs otherwise starve reads); do the same here.
    env: { ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '64' },
  });
  const url = new URL(await new Promise<string>((resolve, reject) => {
    child.once('message', (m: { url: string }) => resolve(m.url));
    child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  }));

  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  const send = (method: 'GET' | 'PUT', hash: string, body?: Buffer): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` };
      if (body) headers['content-length'] = String(body.length);
      const req = request({ host: url.hostname, port: url.port, path: `/v1/cache/${hash}`, method, headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });

  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  // Bodies are slices of a random pool with a fresh random head, so every entry is distinct.
  const pool = randomBytes(4 * 1024 * KiB);
  const makeBody = () => {
    const size = KiB + Math.floor(Math.random() * (255 * KiB + 1));
    const off = Math.floor(Math.random() * (pool.length - size));
    const b = Buffer.from(pool.subarray(off, off + size));
    randomFillSync(b, 0, 32);
    return b;
  };

  const known = new Map<string, { sha: string; size: number }>();
  const knownList: string[] = [];
  let seq = 0;
  const newHash = () => String(1_000_000_000_000_000 + seq++);
  const latencies: number[] = [];
  const counts = { put: 0, putExisting: 0, get: 0, getMiss: 0, evictedMiss: 0 };
  let bytesUp = 0;
  let bytesDown = 0;
  let errors = 0;
  let corrupted = 0;
  const samples: string[] = [];
  const fail = (what: string) => {
    errors++;
    if (samples.length < 10) samples.push(what);
  };

  const cpuAtStart = process.cpuUsage();
  const deadline = Date.now() + seconds * 1000;
  const started = process.hrtime.bigint();
  const client = async () => {
    while (Date.now() < deadline) {
      const r = Math.random();
      const t0 = process.hrtime.bigint();
      try {
        if (r < putRatio || knownList.length === 0) {
          const hash = newHash();
          const body = makeBody();
          const res = await send('PUT', hash, body);
          latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
          counts.put++;
          bytesUp += body.length;
          if (res.status !== 200) fail(`PUT ${hash}: ${res.status} ${res.body}`);
          else {
            known.set(hash, { sha: sha(body), size: body.length });
            knownList.push(hash);
          }
        } else if (r < putRatio + 0.05) {
          const hash = knownList[Math.floor(Math.random() * knownList.length)];
          const body = randomBytes(KiB);
          const res = await send('PUT', hash, body);
          latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
          counts.putExisting++;
          // With eviction on, the entry may be gone and the new body legitimately stored.
          if (res.status === 200 && evicting) known.set(hash, { sha: sha(body), size: body.length });
          else if (res.status !== 409) fail(`re-PUT ${hash}: ${res.status} ${res.body}`);
        } else if (r < putRatio + 0.1) {
          const res = await send('GET', `nope${newHash()}`);
          latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
          counts.getMiss++;
          if (res.status !== 404) fail(`GET unknown: ${res.status}`);
        } else {
          const hash = knownList[Math.floor(Math.random() * knownList.length)];
          const res = await send('GET', hash);
          latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
          counts.get++;
          bytesDown += res.body.length;
          if (res.status === 404 && evicting) counts.evictedMiss++;
          else if (res.status !== 200) fail(`GET ${hash}: ${res.status}`);
          else if (sha(res.body) !== known.get(hash)!.sha) {
            corrupted++;
            if (samples.length < 10) samples.push(`GET ${hash}: body sha256 differs (${res.body.length} bytes, expected ${known.get(hash)!.size})`);
          }
        }
      } catch (e) {
        fail(`request failed: ${(e as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, client));
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;

  // Then every acknowledged entry once more, so corruption anywhere in the store shows up.
  let verified = 0;
  let finalCorrupted = 0;
  let finalMissing = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < knownList.length) {
        const hash = knownList[next++];
        try {
          const res = await send('GET', hash);
          if (res.status === 404 && evicting) continue;
          if (res.status !== 200) finalMissing++;
          else if (sha(res.body) !== known.get(hash)!.sha) finalCorrupted++;
          else verified++;
        } catch (e) {
          fail(`verify ${hash}: ${(e as Error).message}`);
        }
      }
    }),
  );
  errors += finalMissing;
  corrupted += finalCorrupted;

  const health = await new Promise<string>((resolve, reject) =>
    request({ host: url.hostname, port: url.port, path: '/health', agent }, (res) => {
      let s = '';
      res.on('data', (d) => (s += d));
      res.on('end', () => resolve(s));
    })
      .on('error', reject)
      .end(),
  );
  const serverCpu = await new Promise<NodeJS.CpuUsage>((resolve) => {
    child.on('message', (m: { cpu?: NodeJS.CpuUsage }) => m.cpu && resolve(m.cpu));
    child.send('cpu');
  });
  const clientCpu = process.cpuUsage(cpuAtStart);
  agent.destroy();
  child.disconnect();
  await new Promise((r) => child.once('exit', r));
  rmSync(storage, { recursive: true, force: true });

  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
  const total = latencies.length;
  const mb = (n: number) => (n / 1024 / 1024).toFixed(0);
  console.log(`cache-server load: ${clients} clients, ${seconds} s, put ratio ${putRatio}, bodies 1-256 KiB, loopback keep-alive`);
  console.log(`requests: ${total} in ${elapsed.toFixed(1)} s = ${(total / elapsed).toFixed(0)} req/s`);
  console.log(
    `  PUT new ${counts.put}, PUT existing (409) ${counts.putExisting}, GET stored ${counts.get}${evicting ? ` (of which evicted: ${counts.evictedMiss})` : ''}, GET unknown (404) ${counts.getMiss}`,
  );
  console.log(`  up ${mb(bytesUp)} MiB (${(bytesUp / elapsed / 1024 / 1024).toFixed(0)} MiB/s), down ${mb(bytesDown)} MiB (${(bytesDown / elapsed / 1024 / 1024).toFixed(0)} MiB/s)`);
  console.log(`latency ms: p50 ${pct(50).toFixed(2)}, p90 ${pct(90).toFixed(2)}, p99 ${pct(99).toFixed(2)}, max ${latencies[total - 1]?.toFixed(2)}`);
  const cpu = (u: NodeJS.CpuUsage) => ((u.user + u.system) / 1e6).toFixed(1);
  console.log(`cpu seconds: server ${cpu(serverCpu)}, load generator ${cpu(clientCpu)} (wall ${elapsed.toFixed(1)} s + verification)`);
  console.log(`final verification: ${verified} of ${knownList.length} entries re-read with matching sha256`);
  console.log(`server health: ${health}`);
  console.log(`errors: ${errors}, corrupted: ${corrupted}`);
  for (const s of samples) console.log(`  ${s}`);
  process.exitCode = errors || corrupted ? 1 : 0;
}

if (process.argv[2] === '--serve-child') serveChild(process.argv[3], process.argv[4]);
else
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
