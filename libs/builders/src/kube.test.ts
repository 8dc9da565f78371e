// buildViaKubernetes against replayed API responses (a fake KubeClient stands in for the API
// server), with a local "kubelet" that runs the Job's real container command; httpKubeClient
// against a local HTTP server speaking the same JSON.
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRelease, type Arch, type Release } from '@rocky/config';
import { run, ToolError } from '@rocky/exec';
import { loraxArgv } from '@rocky/iso';
import { buildViaKubernetes, httpKubeClient, INPUTS_ANNOTATION, jobManifest, jobName, KubeApiError, kubeCaFile, parseJob, POD_SCRIPT, type K8sOptions, type KubeClient } from './kube';
import { RemoteBuildError, type K8sBuilder, type RemoteBuildInput } from './types';
import { freePort, recordedArgv, writeStandinLorax } from './testing/standin';

const repoRoot = resolve(__dirname, '../../..');
const testdata = join(__dirname, 'testdata');

/** A recorded API response with this test's job name and inputs hash filled in. */
function recorded(file: string, name = 'JOB', inputs = 'INPUTS'): any {
  return JSON.parse(readFileSync(join(testdata, file), 'utf8').replaceAll('"JOB', `"${name}`).replaceAll('"INPUTS"', JSON.stringify(inputs)));
}

interface Container {
  command: string[];
  env: { name: string; value: string }[];
}
const containerOf = (job: any): Container => job.spec.template.spec.containers[0];

/** Runs a Job's container command on this machine, as a kubelet would in the pod. */
function runPod(job: any, buildDir: string): Promise<{ code: number | null; stderr: string }> {
  const c = containerOf(job);
  rmSync(buildDir, { recursive: true, force: true });
  mkdirSync(buildDir, { recursive: true }); // the emptyDir
  const env = { PATH: process.env.PATH!, ...Object.fromEntries(c.env.map((e) => [e.name, e.value])) };
  return run(c.command, { env, stdoutTail: true }).then(
    (r) => ({ code: r.code, stderr: r.stderr }),
    (e: unknown) => {
      if (!(e instanceof ToolError)) throw e;
      return { code: e.result.signal ? null : e.result.code, stderr: e.result.stderr };
    },
  );
}

/**
 * Replays API responses: `gets` are returned in order (the last repeats); a response that is an
 * Error is thrown. `created` runs the pod; a `succeeded` response waits for it, as the real
 * status would.
 */
class ReplayClient implements KubeClient {
  calls: string[] = [];
  jobs: any[] = [];
  pod?: Promise<{ code: number | null; stderr: string }>;
  constructor(
    private gets: (object | Error)[],
    /** podOn: run the pod when a create succeeds, or when it finds the job existing (an earlier run's pod). */
    private opts: { create?: (Error | 'ok')[]; buildDir?: string; logs?: string; podOn?: 'created' | 'existing' } = {},
  ) {}
  async create(ns: string, job: any) {
    this.calls.push(`create ${ns}/${job.metadata.name}`);
    this.jobs.push(job);
    const r = this.opts.create?.shift() ?? 'ok';
    if (this.opts.buildDir && !this.pod && (r === 'ok') === ((this.opts.podOn ?? 'created') === 'created')) this.pod = runPod(job, this.opts.buildDir);
    if (r !== 'ok') throw r;
  }
  async get(ns: string, name: string) {
    this.calls.push(`get ${ns}/${name}`);
    const r = this.gets.length > 1 ? this.gets.shift()! : this.gets[0];
    if (r instanceof Error) throw r;
    const st = parseJob(r);
    if (st.phase === 'succeeded' && this.pod) {
      const pod = await this.pod;
      expect(pod.code, `the pod failed:\n${pod.stderr}`).toBe(0);
    }
    return st;
  }
  async logs(ns: string, name: string) {
    this.calls.push(`logs ${ns}/${name}`);
    return this.opts.logs ?? '';
  }
  async delete(ns: string, name: string) {
    this.calls.push(`delete ${ns}/${name}`);
  }
}

describe('Kubernetes builder', () => {
  let dir: string;
  let release: Release;
  let standin: string;
  const builder: K8sBuilder = { type: 'kubernetes', namespace: 'empanadas', image: 'ghcr.io/rocky-linux/sig-core-toolkit:latest', apiServer: 'https://k8s.example.org:6443', loraxCommand: ['lorax'], result: { source: { emptyDir: {} }, localPath: '/unused' }, mustBoot: true };
  const sources = ['file:///mnt/compose/9/latest-Rocky-9/compose/BaseOS/ppc64le/os', 'file:///mnt/compose/9/latest-Rocky-9/compose/AppStream/ppc64le/os'];
  let n = 0;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rocky-k8s-'));
    release = loadRelease(repoRoot, 'rocky-9');
    standin = writeStandinLorax(join(dir, 'bin'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const input = (arch: Arch = 'ppc64le', lines: string[] = []): RemoteBuildInput => {
    const t = join(dir, `t${++n}`);
    return { release, arch, sources, outDir: join(t, 'out'), workDir: join(t, 'work'), log: (m) => lines.push(m) };
  };
  const results = () => join(dir, 'results');
  /** Options for a "pod" that runs here: the stand-in as lorax, the result volume at the same path on both sides. */
  const podOpts = (mode = 'ok', extra: Partial<K8sOptions> = {}): K8sOptions => ({
    result: { type: 'volume', source: { nfs: { server: 'nfs.example.org', path: '/export/releng-results' } }, localPath: results() },
    resultsMount: results(),
    buildDir: join(dir, `pod-${n}`),
    loraxCommand: [standin],
    env: { STANDIN_MODE: mode, STANDIN_RECORD: join(dir, `argv-${n}`) },
    volumes: [{ name: 'compose', mountPath: '/mnt/compose', source: { nfs: { server: 'nfs.example.org', path: '/export/compose' } } }],
    sleep: async () => {},
    poll: { initialMs: 1, maxMs: 1 },
    ...extra,
  });

  describe('jobManifest', () => {
    it('renders a Job like launch-builds: namespace, arch node selector, privileged lorax, backoffLimit 4, deadlines', () => {
      const inp = input('ppc64le');
      const opts: K8sOptions = { result: { type: 'volume', source: { persistentVolumeClaim: { claimName: 'releng-results' } }, localPath: '/mnt/results' } };
      const name = jobName(builder, inp, opts);
      const job = jobManifest(builder, inp, name, opts) as any;
      expect(job.apiVersion).toBe('batch/v1');
      expect(job.kind).toBe('Job');
      expect(job.metadata).toMatchObject({
        name,
        namespace: 'empanadas',
        labels: { 'app.kubernetes.io/name': 'releng-iso', 'releng.rockylinux.org/release': 'rocky-9', 'releng.rockylinux.org/revision': '9.7', 'releng.rockylinux.org/arch': 'ppc64le' },
      });
      expect(job.metadata.annotations[INPUTS_ANNOTATION]).toMatch(/^[0-9a-f]{64}$/);
      expect(job.metadata.generateName).toBeUndefined();
      expect(job.spec).toMatchObject({ backoffLimit: 4, activeDeadlineSeconds: 14400, ttlSecondsAfterFinished: 86400 });
      const pod = job.spec.template.spec;
      expect(job.spec.template.metadata.labels).toEqual(job.metadata.labels);
      expect(pod.restartPolicy).toBe('Never');
      expect(pod.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'ppc64le' });
      expect(pod.containers).toHaveLength(1);
      const c = pod.containers[0];
      expect(c.image).toBe(builder.image);
      expect(c.securityContext).toEqual({ privileged: true });
      expect(c.command.slice(0, 4)).toEqual(['/bin/sh', '-c', POD_SCRIPT, 'releng']);
      expect(c.command.slice(4)).toEqual(loraxArgv(release, 'ppc64le', sources, '/builddir/lorax', '/builddir/lorax-ppc64le.log'));
      expect(c.env).toEqual([
        { name: 'RELENG_BUILD_DIR', value: '/builddir' },
        { name: 'RELENG_LORAX_LOG', value: '/builddir/lorax-ppc64le.log' },
        { name: 'RELENG_RESULT_URL', value: `file:///releng-results/${name}/lorax.tar` },
      ]);
      expect(pod.volumes).toEqual([
        { name: 'build', emptyDir: {} },
        { name: 'results', persistentVolumeClaim: { claimName: 'releng-results' } },
      ]);
      expect(c.volumeMounts).toEqual([
        { name: 'build', mountPath: '/builddir' },
        { name: 'results', mountPath: '/releng-results' },
      ]);
    });

    it('translates arches for kubernetes.io/arch', () => {
      const sel = (arch: Arch) => (jobManifest(builder, input(arch), 'x', { result: { type: 'url', urls: () => ({ put: 'https://p', get: 'https://g' }) } }) as any).spec.template.spec.nodeSelector['kubernetes.io/arch'];
      expect(['x86_64', 'aarch64', 'ppc64le', 's390x'].map((a) => sel(a as Arch))).toEqual(['amd64', 'arm64', 'ppc64le', 's390x']);
    });

    it('names jobs deterministically from their inputs, as valid DNS labels', () => {
      const opts: K8sOptions = { result: { type: 'url', urls: (name) => ({ put: `https://s3.example/put/${name}?sig=${Math.random()}`, get: 'https://g' }) } };
      const a = jobName(builder, input('x86_64'), opts);
      expect(a).toMatch(/^iso-rocky-9-x86-64-[0-9a-f]{10}$/);
      expect(a.length).toBeLessThanOrEqual(63);
      // A presigned URL differs per call; the name must not.
      expect(jobName(builder, input('x86_64'), opts)).toBe(a);
      expect(jobName(builder, { ...input('x86_64'), sources: [sources[0]] }, opts)).not.toBe(a);
      expect(jobName({ ...builder, image: 'other:1' }, input('x86_64'), opts)).not.toBe(a);
      expect(jobName(builder, input('s390x'), opts)).toMatch(/^iso-rocky-9-s390x-/);
    });

    it('needs a result location', () => {
      expect(() => jobManifest(builder, input(), 'x')).toThrow(/needs a result location/);
    });
  });

  describe('the pod script', () => {
    it('runs lorax with exactly the argv of loraxArgv and leaves lorax.tar on the result volume', async () => {
      const inp = input();
      const opts = podOpts();
      const name = jobName(builder, inp, opts);
      const job = jobManifest(builder, inp, name, opts);
      const r = await runPod(job, opts.buildDir!);
      expect(r.code).toBe(0);
      expect(recordedArgv(join(dir, `argv-${n}`))).toEqual(loraxArgv(release, 'ppc64le', sources, `${opts.buildDir}/lorax`, `${opts.buildDir}/lorax-ppc64le.log`).slice(1));
      expect(readdirSync(join(results(), name))).toEqual(['lorax.tar']); // no .part left
      expect(statSync(join(results(), name, 'lorax.tar')).size).toBeGreaterThan(1 << 20);
      rmSync(join(results(), name), { recursive: true });
    });

    it("exits with lorax's status and prints its log tail for kubectl logs", async () => {
      const opts = podOpts('fail');
      const inp = input();
      const r = await runPod(jobManifest(builder, inp, jobName(builder, inp, opts), opts), opts.buildDir!);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('releng: lorax exit status 1');
      expect(r.stderr).toContain('no package provides kernel-core for ppc64le');
    });
  });

  describe('buildViaKubernetes', () => {
    it('pending -> running -> succeeded: collects, verifies, then deletes the job and the tar', async () => {
      const lines: string[] = [];
      const inp = input('ppc64le', lines);
      const opts = podOpts();
      const name = jobName(builder, inp, opts);
      const client = new ReplayClient([recorded('job-pending.json', name), recorded('job-running.json', name), recorded('job-running.json', name), recorded('job-succeeded.json', name)], { buildDir: opts.buildDir });
      const res = await buildViaKubernetes(builder, inp, client, opts);
      expect(res.volumeId).toBe('Rocky-9-7-ppc64le-dvd');
      expect(res.bootable).toBe(true);
      expect(res.iso.path).toBe(join(inp.outDir, 'Rocky-9.7-ppc64le-boot.iso'));
      expect(existsSync(join(res.tree, 'images/install.img'))).toBe(true);
      expect(client.calls).toEqual([`create empanadas/${name}`, ...Array(4).fill(`get empanadas/${name}`), `delete empanadas/${name}`]);
      expect(existsSync(join(results(), name))).toBe(false);
      expect(readdirSync(inp.workDir)).toEqual([]);
      const log = lines.join('\n');
      expect(log).toMatch(/created job empanadas\/iso-rocky-9-ppc64le-\w+ \(node arch ppc64le/);
      expect(log).toMatch(/job pending \(waiting for a ppc64le node[\s\S]*job running[\s\S]*job succeeded[\s\S]*received[\s\S]*collected[\s\S]*deleted job/);
    });

    it('running -> failed: throws with the reason and the tail of the pod log, and keeps the job', async () => {
      const lines: string[] = [];
      const inp = input('ppc64le', lines);
      const opts = podOpts();
      const name = jobName(builder, inp, opts);
      const client = new ReplayClient([recorded('job-running.json', name), recorded('job-running-retry.json', name), recorded('job-failed.json', name)], {
        logs: readFileSync(join(testdata, 'pod-log.txt'), 'utf8'),
      });
      const err = await buildViaKubernetes(builder, inp, client, opts).catch((e) => e);
      expect(err).toBeInstanceOf(RemoteBuildError);
      expect(err.step).toBe('job');
      expect(err.message).toContain(`iso-ppc64le on Kubernetes https://k8s.example.org:6443 (job empanadas/${name})`);
      expect(err.message).toContain('the job failed (BackoffLimitExceeded: Job has reached the specified backoff limit) after 5 attempts');
      expect(err.message).toContain('ERROR: Error in sanitize_repos: failed to download repodata');
      expect(err.message).toContain(`kubectl -n empanadas describe job ${name}`);
      expect(client.calls).toContain(`logs empanadas/${name}`);
      expect(client.calls.some((c) => c.startsWith('delete'))).toBe(false);
      expect(lines.join('\n')).toContain('pod attempt 1 failed; Kubernetes retries');
    });

    it('409 on create with the same inputs: adopts the running job', async () => {
      const lines: string[] = [];
      const inp = input('ppc64le', lines);
      const opts = podOpts();
      const name = jobName(builder, inp, opts);
      const inputs = (jobManifest(builder, inp, name, opts) as any).metadata.annotations[INPUTS_ANNOTATION];
      // The earlier run's pod is running, and the API server says the job exists.
      const exists = new KubeApiError(`POST /apis/batch/v1/namespaces/empanadas/jobs: HTTP 409 AlreadyExists: jobs.batch "${name}" already exists`, 409, 'AlreadyExists');
      const client = new ReplayClient([recorded('job-running.json', name, inputs), recorded('job-running.json', name, inputs), recorded('job-succeeded.json', name, inputs)], {
        create: [exists],
        buildDir: opts.buildDir,
        podOn: 'existing',
      });
      const res = await buildViaKubernetes(builder, inp, client, opts);
      expect(res.volumeId).toBe('Rocky-9-7-ppc64le-dvd');
      expect(client.calls.filter((c) => c.startsWith('create'))).toHaveLength(1);
      expect(lines.join('\n')).toContain(`adopting the existing job empanadas/${name} (running)`);
    });

    it('409 on create with other inputs: fails, saying how to remove it', async () => {
      const inp = input();
      const opts = podOpts();
      const name = jobName(builder, inp, opts);
      const client = new ReplayClient([recorded('job-running.json', name, 'f'.repeat(64))], { create: [new KubeApiError('exists', 409, 'AlreadyExists')] });
      const err = await buildViaKubernetes(builder, inp, client, opts).catch((e) => e);
      expect(err.step).toBe('submit');
      expect(err.message).toContain('a job of this name exists but was made from other inputs');
      expect(err.message).toContain(`kubectl -n empanadas delete job ${name}`);
    });

    it('409 on create with a failed job of the same inputs: deletes it and creates it again', async () => {
      const lines: string[] = [];
      const inp = input('ppc64le', lines);
      const opts = podOpts();
      const name = jobName(builder, inp, opts);
      const inputs = (jobManifest(builder, inp, name, opts) as any).metadata.annotations[INPUTS_ANNOTATION];
      const client = new ReplayClient([recorded('job-failed.json', name, inputs), recorded('job-running.json', name, inputs), recorded('job-succeeded.json', name, inputs)], {
        create: [new KubeApiError('exists', 409, 'AlreadyExists'), 'ok'],
        buildDir: opts.buildDir,
      });
      await buildViaKubernetes(builder, inp, client, opts);
      expect(client.calls.slice(0, 4)).toEqual([`create empanadas/${name}`, `get empanadas/${name}`, `delete empanadas/${name}`, `create empanadas/${name}`]);
      expect(lines.join('\n')).toContain('failed in an earlier run; deleting it and starting again');
    });

    it('API server unreachable: a clear error naming it, before anything else happens', async () => {
      const port = await freePort();
      const b = { ...builder, apiServer: `http://127.0.0.1:${port}` };
      const err = await buildViaKubernetes(b, input(), httpKubeClient(b.apiServer, 'token'), podOpts()).catch((e) => e);
      expect(err).toBeInstanceOf(RemoteBuildError);
      expect(err.step).toBe('submit');
      expect(err.message).toMatch(new RegExp(`^iso-ppc64le on Kubernetes http://127\\.0\\.0\\.1:${port} \\(job empanadas/iso-rocky-9-ppc64le-\\w+\\): cannot create the job: cannot reach the Kubernetes API server http://127\\.0\\.0\\.1:${port}: ECONNREFUSED`));
    });

    it("without a client, authenticates with the builder's token file, or names the file it cannot read", async () => {
      const missing = join(dir, 'no-such-token');
      const err = await buildViaKubernetes({ ...builder, tokenFile: missing }, input(), undefined, podOpts()).catch((e) => e);
      expect(err.message).toContain(`cannot read the Kubernetes token ${missing}`);

      const auth: (string | undefined)[] = [];
      const api = http.createServer((req, res) => {
        auth.push(req.headers.authorization);
        res.writeHead(403, { 'Content-Type': 'application/json' }).end('{"kind":"Status","reason":"Forbidden","message":"forbidden","code":403}');
      });
      await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
      try {
        const tokenFile = join(dir, 'token');
        writeFileSync(tokenFile, 'file-token\n');
        const b = { ...builder, apiServer: `http://127.0.0.1:${(api.address() as any).port}`, tokenFile };
        await expect(buildViaKubernetes(b, input(), undefined, podOpts())).rejects.toThrow(/cannot create the job/);
        expect(auth[0]).toBe('Bearer file-token');
      } finally {
        await new Promise((r) => api.close(r));
      }
    });

    it('rides out a few failed polls, but not an API server that stays away', async () => {
      const inp = input();
      const opts = podOpts();
      const name = jobName(builder, inp, opts);
      const down = new KubeApiError('cannot reach the Kubernetes API server https://k8s.example.org:6443: ECONNRESET');
      const ok = new ReplayClient([down, down, recorded('job-running.json', name), recorded('job-succeeded.json', name)], { buildDir: opts.buildDir });
      await expect(buildViaKubernetes(builder, inp, ok, opts)).resolves.toMatchObject({ volumeId: 'Rocky-9-7-ppc64le-dvd' });

      const inp2 = input();
      const bad = new ReplayClient([recorded('job-running.json', name), down]);
      const err = await buildViaKubernetes(builder, inp2, bad, { ...podOpts(), poll: { initialMs: 1, maxMs: 1, maxErrors: 3 } }).catch((e) => e);
      expect(err.step).toBe('poll');
      expect(err.message).toContain('lost contact with the API server after 3 attempts: cannot reach the Kubernetes API server https://k8s.example.org:6443: ECONNRESET');
    });

    it('a job that succeeded with a wrong tree: verification error, job deleted', async () => {
      const inp = input();
      const opts = podOpts('badvolid');
      const name = jobName(builder, inp, opts);
      const client = new ReplayClient([recorded('job-succeeded.json', name)], { buildDir: opts.buildDir });
      const err = await buildViaKubernetes(builder, inp, client, opts).catch((e) => e);
      expect(err.step).toBe('verify');
      expect(err.message).toContain('has volume id NOT-THE-VOLUME-ID, expected Rocky-9-7-ppc64le-dvd');
      expect(client.calls[client.calls.length - 1]).toBe(`delete empanadas/${name}`);
      expect(existsSync(join(results(), name))).toBe(false);
    });

    it('a missing result tar is a transfer error naming the path', async () => {
      const inp = input();
      const opts = podOpts();
      const name = jobName(builder, inp, opts);
      const client = new ReplayClient([recorded('job-succeeded.json', name)]); // no pod runs
      const err = await buildViaKubernetes(builder, inp, client, opts).catch((e) => e);
      expect(err.step).toBe('transfer');
      expect(err.message).toContain(join(results(), name, 'lorax.tar'));
    });

    it('URL results: the pod PUTs the tar (as to a presigned S3 URL) and it is streamed back with GET', async () => {
      const store = join(dir, 'http-store');
      mkdirSync(store, { recursive: true });
      const seen: string[] = [];
      const server = http.createServer(async (req, res) => {
        seen.push(`${req.method} ${req.url}`);
        const file = join(store, encodeURIComponent(req.url!.split('?')[0]));
        if (req.method === 'PUT') {
          await pipeline(req, createWriteStream(file));
          res.writeHead(200).end();
        } else if (req.method === 'GET' && existsSync(file)) {
          res.writeHead(200, { 'Content-Type': 'application/x-tar' });
          await pipeline((await import('node:fs')).createReadStream(file), res);
        } else res.writeHead(404).end();
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const base = `http://127.0.0.1:${(server.address() as any).port}`;
      try {
        const inp = input();
        const opts = podOpts('ok', { result: { type: 'url', urls: (name) => ({ put: `${base}/bucket/${name}.tar?X-Amz-Signature=put`, get: `${base}/bucket/${name}.tar?X-Amz-Signature=get` }) } });
        const name = jobName(builder, inp, opts);
        const client = new ReplayClient([recorded('job-running.json', name), recorded('job-succeeded.json', name)], { buildDir: opts.buildDir });
        const res = await buildViaKubernetes(builder, inp, client, opts);
        expect(res.volumeId).toBe('Rocky-9-7-ppc64le-dvd');
        expect(seen).toEqual([`PUT /bucket/${name}.tar?X-Amz-Signature=put`, `GET /bucket/${name}.tar?X-Amz-Signature=get`]);
        const env = containerOf(client.jobs[0]).env;
        expect(env.find((e) => e.name === 'RELENG_RESULT_URL')!.value).toBe(`${base}/bucket/${name}.tar?X-Amz-Signature=put`);
      } finally {
        await new Promise((r) => server.close(r));
      }
    });
  });
});

describe('httpKubeClient (local HTTP server replaying API responses)', () => {
  const requests: { method: string; url: string; auth?: string; body: string }[] = [];
  let server: http.Server;
  let base: string;
  const name = 'iso-rocky-9-ppc64le-0123456789';
  const routes: Record<string, [number, string]> = {
    [`POST /apis/batch/v1/namespaces/empanadas/jobs`]: [201, JSON.stringify(recorded('job-pending.json', name))],
    [`GET /apis/batch/v1/namespaces/empanadas/jobs/${name}`]: [200, JSON.stringify(recorded('job-failed.json', name, 'abc'))],
    [`GET /api/v1/namespaces/empanadas/pods?labelSelector=job-name%3D${name}`]: [200, JSON.stringify(recorded('pods.json', name))],
    [`GET /api/v1/namespaces/empanadas/pods/${name}-zt9mb/log?tailLines=200`]: [200, readFileSync(join(testdata, 'pod-log.txt'), 'utf8')],
    [`DELETE /apis/batch/v1/namespaces/empanadas/jobs/${name}?propagationPolicy=Background`]: [200, '{"kind":"Status","status":"Success"}'],
    [`POST /apis/batch/v1/namespaces/taken/jobs`]: [409, JSON.stringify(recorded('status-409.json', name))],
    [`POST /apis/batch/v1/namespaces/locked/jobs`]: [403, readFileSync(join(testdata, 'status-403.json'), 'utf8')],
    [`DELETE /apis/batch/v1/namespaces/empanadas/jobs/gone?propagationPolicy=Background`]: [404, '{"kind":"Status","reason":"NotFound","code":404}'],
  };

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        requests.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, body });
        const [status, text] = routes[`${req.method} ${req.url!.replace(/^\/prefix/, '')}`] ?? [404, '{"kind":"Status","reason":"NotFound","message":"no route","code":404}'];
        res.writeHead(status, { 'Content-Type': 'application/json' }).end(text);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    // A path prefix, as behind a proxy (Rancher's /k8s/clusters/<id>): kept in front of every call.
    base = `http://127.0.0.1:${(server.address() as any).port}/prefix/`;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  it('speaks the batch/v1 and core/v1 REST API with the bearer token', async () => {
    const kube = httpKubeClient(base, 's3cret-token');
    const job = { apiVersion: 'batch/v1', kind: 'Job', metadata: { name } };
    await kube.create('empanadas', job);
    const st = await kube.get('empanadas', name);
    const log = await kube.logs('empanadas', name);
    await kube.delete('empanadas', name);
    await kube.delete('empanadas', 'gone'); // already gone: fine

    // Every call went through the prefix, was authenticated, and the routes above all matched.
    expect(requests.every((r) => r.url.startsWith('/prefix/') && r.auth === 'Bearer s3cret-token')).toBe(true);
    expect(requests.map((r) => `${r.method} ${r.url.slice('/prefix'.length)}`)).toEqual([
      'POST /apis/batch/v1/namespaces/empanadas/jobs',
      `GET /apis/batch/v1/namespaces/empanadas/jobs/${name}`,
      `GET /api/v1/namespaces/empanadas/pods?labelSelector=job-name%3D${name}`,
      `GET /api/v1/namespaces/empanadas/pods/${name}-zt9mb/log?tailLines=200`,
      `DELETE /apis/batch/v1/namespaces/empanadas/jobs/${name}?propagationPolicy=Background`,
      'DELETE /apis/batch/v1/namespaces/empanadas/jobs/gone?propagationPolicy=Background',
    ]);
    expect(JSON.parse(requests[0].body)).toEqual(job);
    expect(st).toEqual({ name, phase: 'failed', active: 0, succeeded: 0, failed: 5, reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit', annotations: { [INPUTS_ANNOTATION]: 'abc' } });
    expect(log).toContain('releng: lorax exit status 1'); // the newest of three pods
  });

  it('turns API errors into KubeApiError with status, reason and message', async () => {
    const kube = httpKubeClient(base.replace('/prefix/', ''), 't');
    const taken = await kube.create('taken', {}).catch((e) => e);
    expect(taken).toBeInstanceOf(KubeApiError);
    expect(taken.status).toBe(409);
    expect(taken.reason).toBe('AlreadyExists');
    expect(taken.message).toContain(`jobs.batch "${name}" already exists`);
    const locked = await kube.create('locked', {}).catch((e) => e);
    expect(locked.status).toBe(403);
    expect(locked.message).toContain('cannot create resource "jobs"');
  });

  it('parses recorded job states', () => {
    expect(parseJob(recorded('job-pending.json')).phase).toBe('pending');
    expect(parseJob(recorded('job-running.json')).phase).toBe('running');
    expect(parseJob(recorded('job-succeeded.json')).phase).toBe('succeeded');
    expect(parseJob(recorded('job-failed.json')).phase).toBe('failed');
    // Before Kubernetes 1.24 there is no status.ready: an active pod counts as running.
    const old = recorded('job-pending.json');
    delete old.status.ready;
    expect(parseJob(old).phase).toBe('running');
  });
});

describe('the CA of the API server', () => {
  const sa = mkdtempSync(join(tmpdir(), 'k8s-sa-'));
  afterAll(() => rmSync(sa, { recursive: true, force: true }));
  const inCluster = { apiServer: 'https://kubernetes.default.svc', tokenFile: '/etc/releng/k8s-token' };

  it("is the in-cluster CA for the in-cluster API server when caFile is unset, whether or not tokenFile is set (rocky-prod's builders set it)", () => {
    writeFileSync(join(sa, 'ca.crt'), 'PEM');
    expect(kubeCaFile(inCluster, sa)).toBe(join(sa, 'ca.crt'));
    expect(kubeCaFile({ ...inCluster, apiServer: 'https://kubernetes.default.svc.cluster.local:443' }, sa)).toBe(join(sa, 'ca.crt'));
    expect(kubeCaFile({ apiServer: 'https://kubernetes.default.svc' }, sa)).toBe(join(sa, 'ca.crt'));
    // Named even when it is missing (not in a pod): reading it then fails, naming the file and caFile.
    expect(kubeCaFile(inCluster, join(sa, 'elsewhere'))).toBe(join(sa, 'elsewhere', 'ca.crt'));
  });

  it('is caFile when set, and the system CAs for another API server given its own token', () => {
    expect(kubeCaFile({ ...inCluster, caFile: '/etc/releng/ca.pem' }, sa)).toBe('/etc/releng/ca.pem');
    expect(kubeCaFile({ apiServer: 'https://k8s.example.org:6443', tokenFile: '/etc/releng/k8s-token' }, sa)).toBeUndefined();
  });
});
