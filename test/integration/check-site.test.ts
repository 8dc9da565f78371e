// Issue 19.9: check-site against site files with one defect each, on this host's real tools, the
// fixture upstream (read, never built or served), a real sshd and a TLS API server on loopback.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir, userInfo } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { eventsFile, loadRelease, loadSite, type Release } from '@rocky/config';
import { findTool } from '@rocky/exec';
import { checkSiteStage, planSiteChecks, runSiteChecks, runStage, siteProblems, stageContext, type SiteCheckOptions } from '@rocky/stages';
import { startSshd, type TestSshd } from '../../libs/builders/src/testing/standin';
import { privateFixture } from '../helpers/fixture';
import { listing } from '../helpers/listing';
import { repoRoot } from '../helpers/workspace';

let dir: string;
let fx: string;
let fixture: { root: string; cleanup(): void };
let rel: Release;
let api: https.Server;
let apiUrl: string;
let sshd: TestSshd;
const IMAGE = 'ghcr.io/rocky-linux/sig-core-toolkit:latest';
const TOKEN = 'check-site-token';

/** A site file like local.yaml, rooted in the test's dir, with `over` merged in. */
function siteFile(name: string, over: Record<string, unknown> = {}): string {
  const site = {
    roots: { compose: join(dir, 'compose'), staging: join(dir, 'staging'), production: join(dir, 'production') },
    upstream: { url: '{base}/v1/projects/{project}/repo/hashed-{repo}/{arch}', fixture: { root: fx }, verifySignature: true, gpgKey: join(fx, 'RPM-GPG-KEY-fixture') },
    store: { type: 'local', path: join(dir, 'store') },
    state: join(dir, 'state'),
    signing: { gnupgHome: join(fx, 'gnupg'), keyId: 'releng-fixture@rockylinux.invalid' },
    cloud: { source: { type: 'dir', path: join(fx, 'images') } },
    ...over,
  };
  const file = join(dir, 'ws', 'sites', `${name}.yaml`);
  writeFileSync(file, stringify(site));
  return file;
}

function ctxOf(name: string, over: Record<string, unknown> = {}) {
  const site = loadSite(join(dir, 'ws'), siteFile(name, over));
  return stageContext({ root: join(dir, 'ws'), project: 'rocky-9', target: 'check-site', release: rel, site, dryRun: false });
}

/** Every problem the checks find for a site file (field: message). */
async function problems(name: string, over: Record<string, unknown> = {}, opts: SiteCheckOptions = {}) {
  const ctx = ctxOf(name, over);
  const results = await runSiteChecks(ctx, await planSiteChecks(ctx), opts);
  return { problems: siteProblems(results).map((p) => `${p.field}: ${p.message}`), results };
}

/** A directory of executables named like the tools, each printing `out`. */
function fakeTools(name: string, tools: Record<string, string>): string {
  const bin = join(dir, name);
  mkdirSync(bin, { recursive: true });
  for (const [tool, script] of Object.entries(tools)) {
    writeFileSync(join(bin, tool), script);
    chmodSync(join(bin, tool), 0o755);
  }
  return bin;
}

const k8s = (over: Record<string, unknown> = {}) => ({
  type: 'kubernetes',
  namespace: 'empanadas',
  image: IMAGE,
  apiServer: apiUrl,
  tokenFile: join(dir, 'k8s-token'),
  result: { source: { nfs: { server: 'nfs.example.org', path: '/export/compose/.builds' } }, localPath: join(dir, 'builds') },
  composeVolume: { nfs: { server: 'nfs.example.org', path: '/export/compose', readOnly: true } },
  ...over,
});

beforeAll(async () => {
  fixture = await privateFixture();
  fx = fixture.root;
  dir = mkdtempSync(join(tmpdir(), 'check-site-'));
  for (const d of ['compose', 'staging', 'production', 'store', 'state', 'builds', 'ws/sites']) mkdirSync(join(dir, d), { recursive: true });
  rel = loadRelease(repoRoot, 'rocky-9');
  writeFileSync(join(dir, 'k8s-token'), `${TOKEN}\n`);
  // An API server with a self-signed certificate, as a cluster's own CA makes them.
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'api.key'), '-out', join(dir, 'ca.crt')], { stdio: 'ignore' });
  api = https.createServer({ key: readFileSync(join(dir, 'api.key')), cert: readFileSync(join(dir, 'ca.crt')) }, (req, res) => {
    const json = (status: number, body: object) => res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
    if (req.headers.authorization !== `Bearer ${TOKEN}`) return json(401, { kind: 'Status', reason: 'Unauthorized', code: 401 });
    if (req.url === '/version') return json(200, { gitVersion: 'v1.30.4' });
    if (req.url === '/apis/batch/v1/namespaces/empanadas/jobs?limit=1') return json(200, { kind: 'JobList', items: [] });
    json(403, { kind: 'Status', reason: 'Forbidden', message: 'jobs.batch is forbidden', code: 403 });
  });
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
  apiUrl = `https://127.0.0.1:${(api.address() as { port: number }).port}`;
  sshd = await startSshd(join(dir, 'sshd'));
});
afterAll(async () => {
  await sshd?.stop();
  await new Promise((r) => (api ? api.close(r) : r(undefined)));
  if (dir) rmSync(dir, { recursive: true, force: true });
  fixture?.cleanup();
});

describe('check-site', () => {
  it('passes a good site, and changes nothing (no state dir, no event, no gpg lock)', async () => {
    const ctx = ctxOf('good');
    const before = [listing(dir), listing(fx)];
    const results = await runSiteChecks(ctx, await planSiteChecks(ctx));
    expect(siteProblems(results)).toEqual([]);
    const notes = results.flatMap((r) => r.notes).join('\n');
    expect(notes).toMatch(/rsync [\d.]+/);
    expect(notes).toMatch(/signature good \(key [0-9a-f]{16}\)/);
    expect(notes).toMatch(/signing key [0-9A-F]{40}, secret part present/);
    expect([listing(dir), listing(fx)]).toEqual(before);
  });

  it("checks a SIG release's upstream with the SIG's own key from upstream.sigKeys, and names that field when it is missing", async () => {
    const sig = loadRelease(repoRoot, 'sig-cloud-9');
    const sigCtx = (name: string, upstream: Record<string, unknown>) =>
      stageContext({ root: join(dir, 'ws'), project: sig.name, target: 'check-site', release: sig, site: loadSite(join(dir, 'ws'), siteFile(name, { upstream })), dryRun: false });
    const base = { url: '{base}/v1/projects/{project}/repo/hashed-{repo}/{arch}', fixture: { root: fx }, verifySignature: true, gpgKey: join(fx, 'RPM-GPG-KEY-fixture') };
    const good = sigCtx('sig-good', { ...base, sigKeys: join(fx, 'keys') });
    const results = await runSiteChecks(good, await planSiteChecks(good));
    expect(siteProblems(results)).toEqual([]);
    expect(results.flatMap((r) => r.notes).join('\n')).toMatch(/signature good \(key [0-9a-f]{16}\)/);
    // The main key does not verify a SIG's repos: without sigKeys the check names that field.
    const bare = sigCtx('sig-no-keys', base);
    const found = siteProblems(await runSiteChecks(bare, await planSiteChecks(bare))).map((p) => `${p.field}: ${p.message}`);
    expect(found).toEqual(['upstream.sigKeys: unset, but upstream.verifySignature is true: set it to the directory holding RPM-GPG-KEY-Rocky-SIG-Cloud']);
  });

  it('names a root that does not exist, and lets the first run make one inside the workspace', async () => {
    const absent = join(dir, 'mnt', 'compose');
    const { problems: found } = await problems('no-root', { roots: { compose: absent, staging: join(dir, 'staging'), production: join(dir, 'ws', '.releng', 'production') } });
    expect(found).toEqual([`roots.compose: ${absent} does not exist: mount the file system that holds it there, or create it writable by ${userInfo().username} (uid ${userInfo().uid}) (a root outside the workspace must exist before the first run, so that a missing mount is never filled on the local disk)`]);
    expect(existsSync(absent)).toBe(false);
  });

  it('names a lorax wrapper that runs a container without mounts, and accepts "{mounts}" or same-path volumes', async () => {
    const bin = fakeTools('bin-podman', { podman: '#!/bin/sh\nexit 0\n' });
    const env = { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH}` };
    const lorax = (wrapper: string[]) => ({ builders: { x86_64: { type: 'lorax', wrapper } } });
    const bare = await problems('no-mounts', lorax(['podman', 'run', '--rm', '--privileged', IMAGE]), { env });
    expect(bare.problems).toEqual([
      `builders.x86_64.wrapper: podman runs lorax in a container that does not see ${join(dir, 'compose')} (its sources) nor ${join(dir, 'state', 'tmp')} (its output, writable): put "{mounts}" in the wrapper before the image (it becomes -v <path>:<path>:ro for the compose and -v <path>:<path> for lorax's work dir)`,
    ]);
    expect((await problems('mounts', lorax(['podman', 'run', '--rm', '--privileged', '{mounts}', IMAGE]), { env })).problems).toEqual([]);
    const volumes = ['-v', `${join(dir, 'compose')}:${join(dir, 'compose')}:ro`, `--volume=${dir}/state:${dir}/state`];
    expect((await problems('volumes', lorax(['podman', 'run', '--rm', ...volumes, IMAGE]), { env })).problems).toEqual([]);
    // The work dir mounted read-only: lorax could not write its output.
    const ro = await problems('ro-work', lorax(['podman', 'run', '-v', `${dir}:${dir}:ro`, IMAGE]), { env });
    expect(ro.problems).toEqual([expect.stringMatching(/^builders\.x86_64\.wrapper: podman runs lorax in a container that does not see .*\/state\/tmp \(its output, writable\): put "\{mounts\}"/)]);
    // The wrapper's program itself.
    const gone = await problems('no-podman', lorax([join(dir, 'no-such-dir', 'podman'), 'run', '{mounts}', IMAGE]));
    expect(gone.problems).toEqual([`builders.x86_64.wrapper: ${join(dir, 'no-such-dir', 'podman')} is not installed: apt-get install podman runc / dnf install podman; or run scripts/setup.sh`]);
  });

  it("names a Kubernetes builder without the CA of its API server: TLS, or the in-cluster CA that is not here", async () => {
    const tls = await problems('no-ca', { builders: { ppc64le: k8s() } });
    expect(tls.problems).toEqual([`builders.ppc64le.caFile: TLS to ${apiUrl} failed (DEPTH_ZERO_SELF_SIGNED_CERT): unset, so only the system CAs are trusted; set caFile to the cluster's CA certificate`]);
    const ok = await problems('ca', { builders: { ppc64le: k8s({ caFile: join(dir, 'ca.crt') }) } });
    expect(ok.problems).toEqual([]);
    expect(ok.results.flatMap((r) => r.notes)).toContain(`${apiUrl} answers: Kubernetes v1.30.4`);
    // rocky-prod's builders: the in-cluster API server, tokenFile set, no caFile, on a host that is not a pod.
    const sa = join(dir, 'no-pod');
    const inCluster = await problems('in-cluster', { builders: { s390x: k8s({ apiServer: 'https://kubernetes.default.svc' }) } }, { serviceAccountDir: sa });
    expect(inCluster.problems).toEqual([
      `builders.s390x.caFile: unset, and the in-cluster CA ${sa}/ca.crt is not here (this host is not a pod): set caFile to the cluster's CA certificate (certificate-authority-data of its kubeconfig, base64-decoded)`,
    ]);
    // A token the API server refuses, a namespace it may not use, no compose volume for the pod.
    writeFileSync(join(dir, 'bad-token'), 'expired\n');
    const more = await problems('k8s-more', {
      builders: { ppc64le: k8s({ caFile: join(dir, 'ca.crt'), tokenFile: join(dir, 'bad-token') }), s390x: k8s({ caFile: join(dir, 'ca.crt'), namespace: 'locked', composeVolume: undefined }) },
    });
    expect(more.problems).toEqual([
      `builders.ppc64le.tokenFile: the API server refused the token in ${join(dir, 'bad-token')} (HTTP 401): replace it with a valid service account token`,
      `builders.s390x.composeVolume: unset: the pod cannot read the compose (lorax's file:// sources under ${join(dir, 'compose')}); give the compose's volume, e.g. { nfs: { server, path, readOnly: true } }`,
      'builders.s390x.namespace: the token may not list jobs in namespace locked (HTTP 403): bind its service account to a role there that may create, get, list and delete jobs and get pods and pods/log',
    ]);
  });

  it('names a missing tool (a PATH without it) and a tool too old (a fake printing an old version)', async () => {
    const ctx = ctxOf('tools');
    const plan = await planSiteChecks(ctx);
    // Every tool the checks look for, except rsync.
    const bin = join(dir, 'bin-no-rsync');
    mkdirSync(bin);
    for (const c of plan.checks) if (c.kind === 'tool' && c.tool !== 'rsync') symlinkSync(findTool(c.tool)!, join(bin, c.tool));
    const without = siteProblems(await runSiteChecks(ctx, plan, { env: { ...process.env, PATH: bin } }));
    expect(without.map((p) => `${p.field}: ${p.message}`)).toEqual(['tool rsync: not installed (needed by staging, prod): apt-get install rsync / dnf install rsync; or run scripts/setup.sh']);

    const old = fakeTools('bin-old', {
      rsync: '#!/bin/sh\necho "rsync  version 3.1.2  protocol version 31"\n',
      xorriso: '#!/bin/sh\necho "xorriso 1.4.6 : RockRidge filesystem manipulator, libburnia project."\n',
      gpg: '#!/bin/sh\necho "gpg (GnuPG) 2.1.18"\n',
      dnf: '#!/bin/sh\necho "dnf5 version 5.2.6.2"\n',
    });
    const found = siteProblems(await runSiteChecks(ctx, plan, { env: { ...process.env, PATH: `${old}${delimiter}${process.env.PATH}` } })).map((p) => `${p.field}: ${p.message}`);
    expect(found).toEqual([
      `tool dnf: ${old}/dnf is 5.2.6; the pipeline needs 4.x (dnf 4 with dnf-plugins-core (reposync, repoclosure); dnf5 takes other options): apt-get install dnf dnf-plugins-core / dnf install dnf dnf-plugins-core; or run scripts/setup.sh`,
      `tool gpg: ${old}/gpg is 2.1.18; the pipeline needs 2.2 or later (--pinentry-mode loopback, --show-keys): apt-get install gnupg / dnf install gnupg2; or run scripts/setup.sh`,
      `tool rsync: ${old}/rsync is 3.1.2; the pipeline needs 3.1.3 or later (Rocky 8's rsync; publishing uses --delay-updates, --delete-delay and --chown): apt-get install rsync / dnf install rsync; or run scripts/setup.sh`,
      // The signing check runs the (fake) gpg too: it lists no key.
      `signing.keyId: no key releng-fixture@rockylinux.invalid in ${join(fx, 'gnupg')}: import the signing key there (gpg --homedir ${join(fx, 'gnupg')} --import <secret key>), or correct keyId`,
    ]);
  });

  it('connects to an SSH builder as builds do, and names the key files at fault', async () => {
    const ssh = (over: Record<string, unknown> = {}) => ({ builders: { x86_64: { type: 'ssh', host: '127.0.0.1', port: sshd.port, user: 'root', identityFile: sshd.identityFile, knownHosts: sshd.knownHosts, loraxCommand: ['sh'], ...over } } });
    const ok = await problems('ssh', ssh());
    expect(ok.problems).toEqual([]);
    expect(ok.results.flatMap((r) => r.notes)).toContain(`root@127.0.0.1:${sshd.port} answers (x86_64), sh found`);
    writeFileSync(join(dir, 'empty_known_hosts'), '');
    const found = await problems('ssh-bad', ssh({ knownHosts: join(dir, 'empty_known_hosts') }));
    expect(found.problems).toEqual([
      `builders.x86_64.knownHosts: root@127.0.0.1:${sshd.port}'s host key is not in ${join(dir, 'empty_known_hosts')}: add it (ssh-keyscan -p ${sshd.port} 127.0.0.1, after checking its fingerprint)`,
    ]);
    const noLorax = await problems('ssh-lorax', ssh({ loraxCommand: ['lorax-not-here'] }));
    expect(noLorax.problems).toEqual([`builders.x86_64.loraxCommand: lorax-not-here is not on root@127.0.0.1:${sshd.port}'s PATH: install lorax there (dnf install lorax) or set loraxCommand`]);
  });

  it('reports every problem at once through the runner, naming the fields, and writes no event', async () => {
    const ctx = ctxOf('broken', {
      roots: { compose: join(dir, 'mnt', 'compose'), staging: join(dir, 'staging'), production: join(dir, 'production') },
      builders: { x86_64: { type: 'lorax', wrapper: ['podman', 'run', '--rm', IMAGE] }, ppc64le: k8s() },
    });
    const before = listing(dir);
    const err = (await runStage(checkSiteStage, ctx).catch((e) => e)) as Error;
    expect(err.message).toMatch(/^site broken \(sites\/broken\.yaml\): \d+ problems found on this host:\n/);
    for (const field of ['roots.compose', 'builders.x86_64.wrapper', 'builders.ppc64le.caFile']) expect(err.message).toContain(`\n  ${field}: `);
    expect(existsSync(eventsFile(ctx.site))).toBe(false);
    expect(listing(dir)).toEqual(before);
  });
});

describe('check-site: the errata source of a release that applies errata (rocky-8 regenerates its repodata)', () => {
  let server: http.Server;
  let base: string;
  const rocky8 = () => loadRelease(repoRoot, 'rocky-8');
  /** The errata check of `release` on a good site with this errata source, and its problems (field: message). */
  async function errataCheck(name: string, errata: Record<string, unknown>, release = rocky8()) {
    const ctx = stageContext({ root: join(dir, 'ws'), project: release.name, target: 'check-site', release, site: loadSite(join(dir, 'ws'), siteFile(name, { errata })), dryRun: false });
    const plan = await planSiteChecks(ctx);
    const results = await runSiteChecks(ctx, { ...plan, checks: plan.checks.filter((c) => c.kind === 'errata') });
    return { planned: results.map((r) => r.check.field), problems: siteProblems(results).map((p) => `${p.field}: ${p.message}`), notes: results.flatMap((r) => r.notes) };
  }
  beforeAll(async () => {
    // Answers 200 with an HTML page under /html/, with JSON under /json/, and 404 elsewhere.
    server = http.createServer((req, res) => {
      if (req.url?.startsWith('/html/')) return void res.writeHead(200, { 'Content-Type': 'text/html' }).end('<html><body>Apollo has moved</body></html>');
      if (req.url?.startsWith('/json/')) return void res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"advisories": []}');
      res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"detail": "Not Found"}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => new Promise((r) => (server ? server.close(r) : r(undefined))));

  it("passes the local site's errata (the fixture's Apollo), reading one document", async () => {
    const r = await errataCheck('errata-local', { type: 'url', url: '{base}/api/v3/updateinfo/{product}/{major}/{repo}/updateinfo.xml?arch={arch}' });
    expect(r.planned).toEqual(['errata.url']);
    expect(r.problems).toEqual([]);
    expect(r.notes.join('\n')).toMatch(new RegExp(`${fx}/apollo/rocky-linux/8/BaseOS/x86_64/updateinfo.xml: [1-9]\\d* advisories`));
  });

  it('names the URL when the errata source answers 404, or something that is not updateinfo', async () => {
    const url = (prefix: string) => `${base}/${prefix}/api/v3/updateinfo/rocky-linux/8/BaseOS/updateinfo.xml?arch=x86_64`;
    const template = (prefix: string) => ({ type: 'url', url: `${base}/${prefix}/api/v3/updateinfo/{product}/{major}/{repo}/updateinfo.xml?arch={arch}` });
    const missing = await errataCheck('errata-404', template('gone'));
    expect(missing.problems).toEqual([expect.stringMatching(/^errata\.url: /)]);
    expect(missing.problems[0]).toContain(`GET ${url('gone')}: HTTP 404`);
    for (const kind of ['html', 'json']) {
      const wrong = await errataCheck(`errata-${kind}`, template(kind));
      expect(wrong.problems).toEqual([expect.stringMatching(/^errata\.url: /)]);
      expect(wrong.problems[0]).toContain(url(kind));
      expect(wrong.problems[0]).toMatch(/not an updateinfo document|not valid XML/);
    }
  });

  it('names the file of a directory source that lacks the document; a release that applies no errata has no errata check', async () => {
    const missing = await errataCheck('errata-dir', { type: 'dir', path: join(dir, 'errata/{repo}/{arch}/updateinfo.xml') });
    expect(missing.problems).toEqual([expect.stringContaining(`errata.path: ${join(dir, 'errata/BaseOS/x86_64/updateinfo.xml')} does not exist`)]);
    expect((await errataCheck('errata-rocky-9', { type: 'url', url: `${base}/gone/{repo}/{arch}` }, rel)).planned).toEqual([]);
  });
});
