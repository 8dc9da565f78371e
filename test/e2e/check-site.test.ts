// Issue 19.9: `nx run rocky-9:check-site` in a temporary workspace: the local site passes and
// nothing under .releng/ changes; a broken site file chosen with RELENG_SITE fails, naming each
// defect (a root that does not exist, a lorax wrapper without mounts, a Kubernetes API server
// without its CA, a tool missing from PATH).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedFixture } from '../helpers/fixture';
import { listing } from '../helpers/listing';
import { tempWorkspace, type TempWorkspace } from '../helpers/workspace';

let ws: TempWorkspace;
let tmp: string;
let api: ChildProcess | undefined;

/** An HTTPS server with the given key and certificate, in a process of its own: nx runs synchronously in this one. */
async function startTlsServer(key: string, cert: string): Promise<number> {
  const script = `const fs = require('node:fs');
const s = require('node:https').createServer({ key: fs.readFileSync(process.argv[1]), cert: fs.readFileSync(process.argv[2]) }, (q, r) => r.writeHead(200).end('{}'));
s.listen(0, '127.0.0.1', () => console.log(s.address().port));`;
  api = spawn(process.execPath, ['-e', script, key, cert], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    api!.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    api!.once('exit', (code) => reject(new Error(`the TLS server exited ${code}`)));
  });
}

beforeAll(async () => {
  ws = tempWorkspace({ fixtureFrom: await sharedFixture() });
  tmp = mkdtempSync(join(tmpdir(), 'check-site-e2e-'));
});
afterAll(async () => {
  if (api && api.exitCode === null) {
    const exited = new Promise((r) => api!.once('exit', r));
    api.kill('SIGTERM');
    await exited;
  }
  ws?.cleanup();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('nx run rocky-9:check-site', () => {
  it('passes on the local site and changes nothing under .releng/', () => {
    const releng = join(ws.dir, '.releng');
    const before = listing(releng);
    const out = ws.nx(['run', 'rocky-9:check-site'], { RELENG_SITE: 'local' });
    expect(out).toMatch(/\[rocky-9:check-site\] ✔ site local \(sites\/local\.yaml\): all \d+ checks passed/);
    expect(out).toContain('[rocky-9:check-site] ✔ upstream: ');
    expect(out).not.toContain('✖');
    expect(listing(releng)).toEqual(before);
  });

  it('fails on a broken site file chosen with RELENG_SITE, naming every defect and what to do', async () => {
    // An API server whose certificate the system CAs do not vouch for, as a cluster's own CA signs it.
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(tmp, 'api.key'), '-out', join(tmp, 'ca.crt')], { stdio: 'ignore' });
    const apiServer = `https://127.0.0.1:${await startTlsServer(join(tmp, 'api.key'), join(tmp, 'ca.crt'))}`;
    writeFileSync(join(tmp, 'token'), 'token\n');
    mkdirSync(join(tmp, 'builds'));

    // PATH: every program of this PATH but rsync, and a podman (the wrapper's program is there; its mounts are not).
    const bin = join(tmp, 'bin');
    mkdirSync(bin);
    for (const d of (process.env.PATH ?? '').split(delimiter).filter((d) => d && existsSync(d))) {
      for (const name of readdirSync(d)) {
        if (name === 'rsync' || existsSync(join(bin, name))) continue;
        try {
          accessSync(join(d, name), constants.X_OK);
          symlinkSync(join(d, name), join(bin, name));
        } catch {
          // not executable, or a name taken meanwhile
        }
      }
    }
    writeFileSync(join(bin, 'podman'), '#!/bin/sh\nexit 0\n');
    chmodSync(join(bin, 'podman'), 0o755);

    const compose = join(tmp, 'mnt', 'compose');
    const local = readFileSync(join(ws.dir, 'sites/local.yaml'), 'utf8');
    const broken = local
      .replace('compose: .releng/compose', `compose: ${compose}`)
      .replace('x86_64: { type: boot-tree, mustBoot: true }', 'x86_64: { type: lorax, wrapper: [podman, run, --rm, --privileged, "ghcr.io/rocky-linux/sig-core-toolkit:latest"] }')
      .replace(
        'ppc64le: { type: boot-tree }',
        `ppc64le: { type: kubernetes, image: "ghcr.io/rocky-linux/sig-core-toolkit:latest", apiServer: "${apiServer}", tokenFile: ${join(tmp, 'token')}, result: { source: { nfs: { server: nfs.example.org, path: /export/builds } }, localPath: ${join(tmp, 'builds')} }, composeVolume: { nfs: { server: nfs.example.org, path: /export/compose } } }`,
      );
    expect(broken).not.toBe(local);
    writeFileSync(join(ws.dir, 'sites/broken.yaml'), broken);

    const releng = join(ws.dir, '.releng');
    const before = listing(releng);
    const r = ws.nxResult(['run', 'rocky-9:check-site'], { RELENG_SITE: 'broken', PATH: bin });
    expect(r.code, r.output).not.toBe(0);
    const report = r.output.slice(r.output.indexOf('✖ rocky-9:check-site failed: '));
    expect(report).toMatch(/^✖ rocky-9:check-site failed: site broken \(sites\/broken\.yaml\): 4 problems found on this host:\n/);
    const lines = report.split('\n').filter((l) => l.startsWith('  ')).map((l) => l.trim());
    expect(lines).toEqual([
      expect.stringMatching(new RegExp(`^roots\\.compose: ${compose} does not exist: mount the file system that holds it there, or create it writable by `)),
      expect.stringMatching(/^tool rsync: not installed \(needed by staging, prod\): apt-get install rsync \/ dnf install rsync/),
      expect.stringMatching(new RegExp(`^builders\\.x86_64\\.wrapper: podman runs lorax in a container that does not see ${compose} \\(its sources\\) nor \\S+/\\.releng/state/tmp \\(its output, writable\\): put "\\{mounts\\}" in the wrapper before the image`)),
      `builders.ppc64le.caFile: TLS to ${apiServer} failed (DEPTH_ZERO_SELF_SIGNED_CERT): unset, so only the system CAs are trusted; set caFile to the cluster's CA certificate`,
    ]);
    expect(listing(releng)).toEqual(before);
  });
});
