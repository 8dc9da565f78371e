// iso-<arch> as a Kubernetes Job on a node of that arch (empanadas' launch-builds, without the
// hand-rendered YAML and the hand-run `aws s3 cp`): submit, poll, collect, verify, delete.
//
// Where the result goes (RELENG_RESULT_URL in the pod): the pod packs `lorax/` as one tar and
//  - `file:///<mount>/<job>/lorax.tar` on a shared volume (NFS/EFS/PVC) that this machine also
//    sees at `result.localPath` -- written as `.part` and renamed, so a half-written tar is never
//    taken for a result; or
//  - `http(s)://...`: PUT with curl (a presigned S3 PUT URL, say), fetched back from `get`.
// Either way the tree arrives as a stream and is unpacked with tar's safe defaults here.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { revision, type Arch } from '@rocky/config';
import { bytes as fmtBytes, preflight } from '@rocky/exec';
import { loraxArgv, type BootTreeResult } from '@rocky/iso';
import { verifyTree } from './collect';
import { checkExtracted, extractTar } from './tar';
import { RemoteBuildError, tail, type K8sBuilder, type ProbeResult, type RemoteBuildInput } from './types';

/** `kubernetes.io/arch` values (Go's GOARCH names). */
export const KUBE_ARCH: Record<Arch, string> = { x86_64: 'amd64', aarch64: 'arm64', ppc64le: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

export const LABEL_PREFIX = 'releng.rockylinux.org';
/** Annotation holding the full hash of the job's inputs: an existing job is adopted only when it matches. */
export const INPUTS_ANNOTATION = `${LABEL_PREFIX}/inputs`;

export type K8sResult =
  /** A volume source (`{ nfs: {server, path} }`, `{ persistentVolumeClaim: {claimName} }`) this machine sees at `localPath`. */
  | { type: 'volume'; source: Record<string, unknown>; localPath: string }
  /** URLs for the job's tar: `put` used by the pod (curl -T), `get` by this side. */
  | { type: 'url'; urls: (jobName: string) => { put: string; get: string } };

export interface K8sOptions {
  /** Where the pod leaves the tree; required to build. */
  result?: K8sResult;
  /** More volumes for the pod, e.g. the compose over NFS for `file:///mnt/compose/...` sources (read-only unless said). */
  volumes?: { name: string; mountPath: string; source: Record<string, unknown>; readOnly?: boolean }[];
  /** How lorax is started in the container (default `['lorax']`). */
  loraxCommand?: string[];
  /** Extra container environment. */
  env?: Record<string, string>;
  /** Kubernetes stops the job after this long, pending time included (default 4 h). */
  activeDeadlineSeconds?: number;
  /** Kubernetes removes a finished job (and its pods and logs) after this long (default 1 day). */
  ttlSecondsAfterFinished?: number;
  resources?: Record<string, unknown>;
  serviceAccountName?: string;
  tolerations?: Record<string, unknown>[];
  /** Paths inside the pod: lorax's scratch (an emptyDir) and the result volume's mount point. */
  buildDir?: string;
  resultsMount?: string;
  poll?: { initialMs?: number; maxMs?: number; maxErrors?: number };
  /** For tests: how to wait between polls. */
  sleep?: (ms: number) => Promise<void>;
}

export interface JobStatus {
  name: string;
  phase: 'pending' | 'running' | 'succeeded' | 'failed';
  active: number;
  succeeded: number;
  /** Failed pods so far (retries up to backoffLimit). */
  failed: number;
  /** Reason and message of the Failed condition (BackoffLimitExceeded, DeadlineExceeded). */
  reason?: string;
  message?: string;
  annotations: Record<string, string>;
}

export class KubeApiError extends Error {
  constructor(
    message: string,
    /** HTTP status; undefined when the API server was not reached. */
    readonly status?: number,
    readonly reason?: string,
    /** The network or TLS error code when the API server was not reached (ECONNREFUSED, SELF_SIGNED_CERT_IN_CHAIN…). */
    readonly code?: string,
  ) {
    super(message);
    this.name = 'KubeApiError';
  }
}

export interface KubeClient {
  /** Rejects with KubeApiError (status 409) when a job of that name exists. */
  create(ns: string, job: object): Promise<void>;
  get(ns: string, name: string): Promise<JobStatus>;
  /** Log of the job's newest pod ('' when it has none). */
  logs(ns: string, name: string): Promise<string>;
  /** Deletes the job and, in the background, its pods; a job already gone is not an error. */
  delete(ns: string, name: string): Promise<void>;
}

const DEFAULTS = { buildDir: '/builddir', resultsMount: '/releng-results', deadline: 4 * 3600, ttl: 86400 };

/** The pod's lorax command line: loraxArgv with the pod's paths, behind the configured command. */
function podLorax(input: RemoteBuildInput, opts: K8sOptions): { argv: string[]; logFile: string } {
  const dir = opts.buildDir ?? DEFAULTS.buildDir;
  const logFile = `${dir}/lorax-${input.arch}.log`;
  const argv = loraxArgv(input.release, input.arch, input.sources, `${dir}/lorax`, logFile);
  return { argv: [...(opts.loraxCommand ?? ['lorax']), ...(argv[0] === 'lorax' ? argv.slice(1) : argv)], logFile };
}

/** Hash of everything that decides what the job builds (not where the result goes, which may carry a presigned URL). */
function inputsHash(builder: K8sBuilder, input: RemoteBuildInput, opts: K8sOptions): string {
  const spec = {
    release: input.release.name,
    revision: revision(input.release),
    rc: input.release.rc ?? null,
    type: input.release.type,
    arch: input.arch,
    image: builder.image,
    namespace: builder.namespace,
    lorax: podLorax(input, opts).argv,
    env: opts.env ?? {},
    volumes: opts.volumes ?? [],
    result: opts.result?.type ?? null,
  };
  return createHash('sha256').update(JSON.stringify(spec)).digest('hex');
}

const dnsLabel = (s: string) => s.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-+/g, '-').replace(/^-|-$/g, '');

/**
 * `iso-<release>-<arch>-<hash>`: the same inputs give the same name, so a re-run finds (and
 * adopts) the job an interrupted run left behind instead of building twice.
 */
export function jobName(builder: K8sBuilder, input: RemoteBuildInput, opts: K8sOptions = {}): string {
  const hash = inputsHash(builder, input, opts).slice(0, 10);
  // 63: the name is also the pods' job-name label value.
  const stem = dnsLabel(`iso-${input.release.name}-${input.arch}`).slice(0, 63 - hash.length - 1).replace(/-$/, '');
  return `${stem}-${hash}`;
}

/**
 * The pod's script; lorax's argv arrives as "$@", so nothing of it is ever re-quoted. Exit codes:
 * lorax's own on failure (with its log tail on stderr, which `kubectl logs` shows), 97 no build
 * dir, 98 packing failed, 99 upload failed.
 */
export const POD_SCRIPT = `set -u
cd "$RELENG_BUILD_DIR" || exit 97
"$@"; rc=$?
if [ "$rc" -ne 0 ]; then
  echo "releng: lorax exit status $rc" >&2
  tail -n 40 "$RELENG_LORAX_LOG" >&2
  exit "$rc"
fi
case "$RELENG_RESULT_URL" in
  file://*)
    out="\${RELENG_RESULT_URL#file://}"
    mkdir -p "\${out%/*}" || exit 99
    tar -C "$RELENG_BUILD_DIR" -cf "$out.part" lorax || exit 98
    mv -f "$out.part" "$out" || exit 99 ;;
  http://*|https://*)
    tar -C "$RELENG_BUILD_DIR" -cf "$RELENG_BUILD_DIR/lorax.tar" lorax || exit 98
    curl -fsS --retry 5 -T "$RELENG_BUILD_DIR/lorax.tar" "$RELENG_RESULT_URL" || exit 99 ;;
  *) echo "releng: unsupported RELENG_RESULT_URL scheme" >&2; exit 2 ;;
esac
echo "releng: result uploaded"
`;

function resultUrls(name: string, opts: K8sOptions): { put: string; get: string } {
  const r = opts.result;
  if (!r) throw new Error('a kubernetes builder needs a result location (K8sOptions.result: a shared volume or URLs)');
  if (r.type === 'url') return r.urls(name);
  const mount = opts.resultsMount ?? DEFAULTS.resultsMount;
  return { put: `file://${mount}/${name}/lorax.tar`, get: join(r.localPath, name, 'lorax.tar') };
}

/** A batch/v1 Job like empanadas' launch-builds renders, for one arch's boot tree. */
export function jobManifest(builder: K8sBuilder, input: RemoteBuildInput, name: string, opts: K8sOptions = {}): object {
  const { argv, logFile } = podLorax(input, opts);
  const buildDir = opts.buildDir ?? DEFAULTS.buildDir;
  const labels = {
    'app.kubernetes.io/name': 'releng-iso',
    'app.kubernetes.io/managed-by': 'rocky-releng-nx',
    [`${LABEL_PREFIX}/release`]: dnsLabel(input.release.name),
    [`${LABEL_PREFIX}/revision`]: revision(input.release),
    [`${LABEL_PREFIX}/arch`]: input.arch,
  };
  const volumes: object[] = [{ name: 'build', emptyDir: {} }];
  const mounts: object[] = [{ name: 'build', mountPath: buildDir }];
  if (opts.result?.type === 'volume') {
    volumes.push({ name: 'results', ...opts.result.source });
    mounts.push({ name: 'results', mountPath: opts.resultsMount ?? DEFAULTS.resultsMount });
  }
  for (const v of opts.volumes ?? []) {
    volumes.push({ name: v.name, ...v.source });
    mounts.push({ name: v.name, mountPath: v.mountPath, readOnly: v.readOnly ?? true });
  }
  const env = {
    ...opts.env,
    RELENG_BUILD_DIR: buildDir,
    RELENG_LORAX_LOG: logFile,
    RELENG_RESULT_URL: resultUrls(name, opts).put,
  };
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name,
      namespace: builder.namespace,
      labels,
      annotations: { [INPUTS_ANNOTATION]: inputsHash(builder, input, opts) },
    },
    spec: {
      backoffLimit: 4,
      activeDeadlineSeconds: opts.activeDeadlineSeconds ?? DEFAULTS.deadline,
      ttlSecondsAfterFinished: opts.ttlSecondsAfterFinished ?? DEFAULTS.ttl,
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: 'Never',
          nodeSelector: { 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': KUBE_ARCH[input.arch] },
          ...(opts.tolerations ? { tolerations: opts.tolerations } : {}),
          ...(opts.serviceAccountName ? { serviceAccountName: opts.serviceAccountName } : {}),
          volumes,
          containers: [
            {
              name: 'lorax',
              image: builder.image,
              command: ['/bin/sh', '-c', POD_SCRIPT, 'releng', ...argv],
              env: Object.entries(env).map(([k, value]) => ({ name: k, value })),
              // lorax mounts loop devices and runs anaconda's tooling: it needs a privileged pod, as in empanadas.
              securityContext: { privileged: true },
              volumeMounts: mounts,
              ...(opts.resources ? { resources: opts.resources } : {}),
            },
          ],
        },
      },
    },
  };
}

/** The parts of a batch/v1 Job this module reads. */
interface JobJson {
  metadata?: { name?: string; annotations?: Record<string, string> };
  status?: {
    active?: number;
    ready?: number;
    succeeded?: number;
    failed?: number;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}

/** A JobStatus from the API server's batch/v1 Job JSON. */
export function parseJob(value: unknown): JobStatus {
  const json = (value ?? {}) as JobJson;
  const st = json.status ?? {};
  const cond = (type: string) => (st.conditions ?? []).find((c) => c.type === type && c.status === 'True');
  const complete = cond('Complete');
  const failed = cond('Failed');
  const active = Number(st.active ?? 0);
  // status.ready is missing before Kubernetes 1.24: then an active pod counts as running.
  const running = active > 0 && (st.ready === undefined || Number(st.ready) > 0);
  return {
    name: json.metadata?.name ?? '',
    phase: complete ? 'succeeded' : failed ? 'failed' : running ? 'running' : 'pending',
    active,
    succeeded: Number(st.succeeded ?? 0),
    failed: Number(st.failed ?? 0),
    ...(failed?.reason ? { reason: failed.reason } : {}),
    ...(failed?.message ? { message: failed.message } : {}),
    annotations: json.metadata?.annotations ?? {},
  };
}

/** One REST call to the API server: resolves with the response when its status is in `ok`, else rejects with a KubeApiError. */
type KubeCall = (method: string, path: string, body?: object, ok?: number[]) => Promise<{ status: number; text: string }>;

/** REST calls over plain HTTP(S) with a bearer token; `ca` is PEM text (unset: the system's CAs). */
function kubeCall(apiServer: string, token: string, ca?: string, timeoutMs = 30_000): KubeCall {
  const base = new URL(apiServer);
  const prefix = base.pathname.replace(/\/+$/, '');
  const mod = base.protocol === 'https:' ? https : http;
  const request = (method: string, path: string, body?: string) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = mod.request(
        {
          protocol: base.protocol,
          hostname: base.hostname.replace(/^\[|\]$/g, ''),
          port: base.port || undefined,
          path: prefix + path,
          method,
          ca,
          timeout: timeoutMs,
          headers: {
            Authorization: `Bearer ${token}`,
            Accept: 'application/json',
            ...(body !== undefined ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`), { code: 'ETIMEDOUT' })));
      req.on('error', (e: NodeJS.ErrnoException) => reject(new KubeApiError(`cannot reach the Kubernetes API server ${apiServer}: ${e.code ?? e.message}`, undefined, undefined, e.code)));
      req.end(body);
    });
  return async (method, path, body, ok = [200, 201, 202]) => {
    const r = await request(method, path, body === undefined ? undefined : JSON.stringify(body));
    if (!ok.includes(r.status)) {
      let reason: string | undefined;
      let message = r.text.slice(0, 500);
      try {
        const s = JSON.parse(r.text); // a metav1 Status
        reason = s.reason;
        message = s.message ?? message;
      } catch {
        // not JSON: a proxy's error page, say
      }
      throw new KubeApiError(`${method} ${path}: HTTP ${r.status}${reason ? ` ${reason}` : ''}: ${message}`, r.status, reason);
    }
    return r;
  };
}

/** The Kubernetes REST calls buildViaKubernetes needs, over plain HTTP(S) with a bearer token. `ca` is PEM text. */
export function httpKubeClient(apiServer: string, token: string, ca?: string): KubeClient {
  const call = kubeCall(apiServer, token, ca);
  const e = encodeURIComponent;
  const jobs = (ns: string) => `/apis/batch/v1/namespaces/${e(ns)}/jobs`;
  return {
    async create(ns, job) {
      await call('POST', jobs(ns), job);
    },
    async get(ns, name) {
      return parseJob(JSON.parse((await call('GET', `${jobs(ns)}/${e(name)}`)).text));
    },
    async logs(ns, name) {
      const list = JSON.parse((await call('GET', `/api/v1/namespaces/${e(ns)}/pods?labelSelector=${e(`job-name=${name}`)}`)).text);
      const pods = (list.items ?? []) as { metadata: { name: string; creationTimestamp?: string } }[];
      if (!pods.length) return '';
      const newest = pods.reduce((a, b) => ((b.metadata.creationTimestamp ?? '') > (a.metadata.creationTimestamp ?? '') ? b : a));
      try {
        return (await call('GET', `/api/v1/namespaces/${e(ns)}/pods/${e(newest.metadata.name)}/log?tailLines=200`)).text;
      } catch (err) {
        // A pod that never started (image pull, scheduling) has no log; say so instead.
        return `(no log from pod ${newest.metadata.name}: ${(err as Error).message})`;
      }
    },
    async delete(ns, name) {
      await call('DELETE', `${jobs(ns)}/${e(name)}?propagationPolicy=Background`, undefined, [200, 202, 404]);
    },
  };
}

/** Where a pod finds its service account's token and the cluster's CA. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** The API server as pods reach it: the `kubernetes` service of `default` (or the address Kubernetes gives pods). */
function isInClusterApiServer(apiServer: string, env: NodeJS.ProcessEnv = process.env): boolean {
  let host: string;
  try {
    host = new URL(apiServer).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return false;
  }
  return /^kubernetes(\.default(\.svc(\..+)?)?)?$/.test(host) || (!!env.KUBERNETES_SERVICE_HOST && host === env.KUBERNETES_SERVICE_HOST);
}

/**
 * The CA file TLS to the builder's API server is verified against; undefined: the system's CAs.
 * The in-cluster API server's certificate is signed by the cluster's own CA, so it defaults to
 * the service account's ca.crt whatever token is used (named even when missing, so that the
 * error says which file).
 */
export function kubeCaFile(builder: Pick<K8sBuilder, 'apiServer' | 'tokenFile' | 'caFile'>, saDir = SERVICE_ACCOUNT_DIR): string | undefined {
  if (builder.caFile) return builder.caFile;
  const sa = `${saDir}/ca.crt`;
  if (isInClusterApiServer(builder.apiServer)) return sa;
  return !builder.tokenFile && existsSync(sa) ? sa : undefined;
}

/** A client with the builder's token and CA files, or the in-cluster service account's. */
function defaultClient(builder: K8sBuilder): KubeClient {
  const tokenFile = builder.tokenFile ?? `${SERVICE_ACCOUNT_DIR}/token`;
  let token: string;
  try {
    token = readFileSync(tokenFile, 'utf8').trim();
  } catch (e) {
    throw new Error(`cannot read the Kubernetes token ${tokenFile}${builder.tokenFile ? '' : ' (set tokenFile on the builder outside a cluster)'}: ${(e as Error).message}`);
  }
  return httpKubeClient(builder.apiServer, token, readCa(builder));
}

/** The PEM text of the builder's CA (kubeCaFile), or an error naming the file and the field. */
function readCa(builder: K8sBuilder): string | undefined {
  const caFile = kubeCaFile(builder);
  if (!caFile) return undefined;
  try {
    return readFileSync(caFile, 'utf8');
  } catch (e) {
    const why = builder.caFile ? '' : ` (the in-cluster CA: outside a pod, set caFile on the builder to the cluster's CA certificate)`;
    throw new Error(`cannot read the Kubernetes CA ${caFile}${why}: ${(e as Error).message}`);
  }
}

/** TLS errors of a certificate no CA we were given vouches for (not a name mismatch: another CA would not fix that). */
const untrustedCert = (code = '') => /^(SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_(GET_ISSUER_CERT|GET_ISSUER_CERT_LOCALLY|VERIFY_LEAF_SIGNATURE)|CERT_SIGNATURE_FAILURE|CERT_UNTRUSTED)$/.test(code);

/**
 * Whether this host can drive the builder, reading only: its token and CA files, TLS and the
 * token against the API server (GET /version), and the token's access to jobs in the namespace
 * (GET a list of at most one). Nothing is created.
 */
export async function probeKubernetes(builder: K8sBuilder, opts: { saDir?: string; timeoutMs?: number } = {}): Promise<ProbeResult> {
  const saDir = opts.saDir ?? SERVICE_ACCOUNT_DIR;
  const out: ProbeResult = { problems: [], notes: [] };
  const problem = (field: string, message: string) => out.problems.push({ field, message });
  const ns = builder.namespace;
  const tokenFile = builder.tokenFile ?? `${saDir}/token`;
  let token = '';
  try {
    token = readFileSync(tokenFile, 'utf8').trim();
    if (!token) problem('tokenFile', `${tokenFile} is empty: put a service account token in it`);
  } catch (e) {
    problem(
      'tokenFile',
      builder.tokenFile
        ? `cannot read ${tokenFile} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): put a token of a service account that may create jobs in ${ns} there`
        : `unset, and there is no service account token at ${tokenFile} (this host is not a pod): set tokenFile to a token of a service account that may create jobs in ${ns}`,
    );
  }
  const caFile = kubeCaFile(builder, saDir);
  let ca: string | undefined;
  if (caFile) {
    try {
      ca = readFileSync(caFile, 'utf8');
    } catch (e) {
      problem(
        'caFile',
        builder.caFile
          ? `cannot read ${caFile} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): set caFile to the cluster's CA certificate`
          : `unset, and the in-cluster CA ${caFile} is not here (this host is not a pod): set caFile to the cluster's CA certificate (certificate-authority-data of its kubeconfig, base64-decoded)`,
      );
    }
  }
  if (out.problems.length) return out; // the API server is not asked with credentials known to be wrong
  const call = kubeCall(builder.apiServer, token, ca, opts.timeoutMs ?? 10_000);
  try {
    const v = JSON.parse((await call('GET', '/version')).text) as { gitVersion?: string; platform?: string };
    out.notes.push(`${builder.apiServer} answers: Kubernetes ${v.gitVersion ?? '(version unknown)'}`);
  } catch (e) {
    const err = e as KubeApiError;
    if (err.status === 401) problem('tokenFile', `the API server refused the token in ${tokenFile} (HTTP 401): replace it with a valid service account token`);
    else if (untrustedCert(err.code))
      problem('caFile', `TLS to ${builder.apiServer} failed (${err.code}): ${caFile ? `${caFile} is not the CA that signed its certificate` : 'unset, so only the system CAs are trusted'}; set caFile to the cluster's CA certificate`);
    else if (err.code === 'ERR_TLS_CERT_ALTNAME_INVALID') problem('apiServer', `the certificate of ${builder.apiServer} is not issued for that name: use the name the API server's certificate names`);
    else problem('apiServer', `${err.message}: check the address and that this host reaches it`);
    return out;
  }
  try {
    await call('GET', `/apis/batch/v1/namespaces/${encodeURIComponent(ns)}/jobs?limit=1`);
    out.notes.push(`the token may list jobs in namespace ${ns}`);
  } catch (e) {
    const err = e as KubeApiError;
    problem(
      'namespace',
      err.status === 403
        ? `the token may not list jobs in namespace ${ns} (HTTP 403): bind its service account to a role there that may create, get, list and delete jobs and get pods and pods/log`
        : `listing jobs in namespace ${ns} failed: ${err.message}`,
    );
  }
  return out;
}

const sleepMs = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Builds the boot tree of `input.arch` as a Kubernetes Job and collects it into `input.outDir`.
 * A job of the same name (same inputs) that is pending, running or succeeded is adopted; one
 * that failed is replaced. A failed job is kept (until its TTL) so its pods can be inspected;
 * a collected one is deleted.
 */
export async function buildViaKubernetes(builder: K8sBuilder, input: RemoteBuildInput, client?: KubeClient, opts: K8sOptions = {}): Promise<BootTreeResult> {
  preflight(['tar']);
  const { arch } = input;
  const ns = builder.namespace;
  const log = input.log ?? (() => {});
  const sleep = opts.sleep ?? sleepMs;
  const name = jobName(builder, input, opts);
  const where = `iso-${arch} on Kubernetes ${builder.apiServer} (job ${ns}/${name})`;
  const urls = resultUrls(name, opts);
  const job = jobManifest(builder, input, name, opts) as { metadata: { annotations: Record<string, string> } };
  const inputs = job.metadata.annotations[INPUTS_ANNOTATION];
  const kube = client ?? defaultClient(builder);

  await submit();
  const final = await waitForJob();
  if (final.phase === 'failed') {
    const podLog = await kube.logs(ns, name).catch((e: Error) => `(pod log unavailable: ${e.message})`);
    throw new RemoteBuildError(
      'job',
      `${where}: the job failed${final.reason ? ` (${final.reason}${final.message ? `: ${final.message}` : ''})` : ''} after ${final.failed} attempt${final.failed === 1 ? '' : 's'}` +
        `${podLog.trim() ? `\n--- last lines of the pod log ---\n${tail(podLog, 40)}` : ''}` +
        `\n(kept for inspection until its TTL: kubectl -n ${ns} describe job ${name})`,
    );
  }

  try {
    mkdirSync(input.workDir, { recursive: true });
    const xfer = mkdtempSync(join(input.workDir, `lorax-${arch}-`));
    try {
      let n: number;
      try {
        n = await extractTar(opts.result!.type === 'url' ? await httpGet(urls.get) : requireFile(urls.get), xfer);
        checkExtracted(xfer, ['lorax']);
      } catch (e) {
        throw new RemoteBuildError('transfer', `${where}: cannot collect the result from ${opts.result!.type === 'url' ? 'its URL' : urls.get}: ${(e as Error).message}`, { cause: e });
      }
      log(`received ${fmtBytes(n)}; verifying`);
      return await verifyTree(where, join(xfer, 'lorax'), builder.mustBoot, input);
    } finally {
      rmSync(xfer, { recursive: true, force: true });
    }
  } finally {
    // The job succeeded: its output is collected (or judged), so neither it nor the tar is needed.
    if (opts.result?.type === 'volume') rmSync(join(opts.result.localPath, name), { recursive: true, force: true });
    await kube.delete(ns, name).then(
      () => log(`deleted job ${ns}/${name}`),
      (e: Error) => log(`warning: could not delete job ${ns}/${name}: ${e.message}`),
    );
  }

  async function submit(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await kube.create(ns, job);
        log(`created job ${ns}/${name} (node arch ${KUBE_ARCH[arch]}, image ${builder.image})`);
        return;
      } catch (e) {
        if (!(e instanceof KubeApiError) || e.status !== 409) throw new RemoteBuildError('submit', `${where}: cannot create the job: ${(e as Error).message}`, { cause: e });
      }
      let existing: JobStatus;
      try {
        existing = await kube.get(ns, name);
      } catch (e) {
        if (e instanceof KubeApiError && e.status === 404 && attempt < 5) continue; // deleted meanwhile: create again
        throw new RemoteBuildError('submit', `${where}: the job exists but cannot be read: ${(e as Error).message}`, { cause: e });
      }
      if (existing.annotations[INPUTS_ANNOTATION] !== inputs) {
        throw new RemoteBuildError(
          'submit',
          `${where}: a job of this name exists but was made from other inputs (${INPUTS_ANNOTATION} ${existing.annotations[INPUTS_ANNOTATION] ?? 'missing'}, expected ${inputs}); ` +
            `remove it with: kubectl -n ${ns} delete job ${name}`,
        );
      }
      if (existing.phase !== 'failed') {
        log(`adopting the existing job ${ns}/${name} (${existing.phase}), left by an earlier run`);
        return;
      }
      if (attempt >= 5) throw new RemoteBuildError('submit', `${where}: a failed job of this name keeps coming back after deletion`);
      log(`job ${ns}/${name} failed in an earlier run; deleting it and starting again`);
      try {
        await kube.delete(ns, name);
      } catch (e) {
        throw new RemoteBuildError('submit', `${where}: cannot delete the earlier failed job: ${(e as Error).message}`, { cause: e });
      }
      await sleep(1000 * attempt);
    }
  }

  async function waitForJob(): Promise<JobStatus> {
    let delay = opts.poll?.initialMs ?? 2000;
    const maxDelay = opts.poll?.maxMs ?? 30_000;
    const maxErrors = opts.poll?.maxErrors ?? 6;
    // Kubernetes enforces activeDeadlineSeconds itself; the margin covers a slow API server.
    const deadline = Date.now() + ((opts.activeDeadlineSeconds ?? DEFAULTS.deadline) + 900) * 1000;
    let errors = 0;
    let last: JobStatus | undefined;
    for (;;) {
      let st: JobStatus;
      try {
        st = await kube.get(ns, name);
        errors = 0;
      } catch (e) {
        if (e instanceof KubeApiError && e.status === 404) throw new RemoteBuildError('poll', `${where}: the job disappeared (deleted by someone else?)`, { cause: e });
        if (++errors >= maxErrors) throw new RemoteBuildError('poll', `${where}: lost contact with the API server after ${errors} attempts: ${(e as Error).message}`, { cause: e });
        log(`warning: polling failed (${(e as Error).message}); retrying`);
        await sleep(delay);
        delay = Math.min(maxDelay, delay * 2);
        continue;
      }
      if (st.phase !== last?.phase) log(st.phase === 'pending' ? `job pending (waiting for a ${KUBE_ARCH[arch]} node or the image)` : `job ${st.phase}`);
      if (last && st.failed > last.failed && st.phase !== 'failed') log(`pod attempt ${st.failed} failed; Kubernetes retries (backoffLimit 4)`);
      last = st;
      if (st.phase === 'succeeded' || st.phase === 'failed') return st;
      if (Date.now() > deadline) throw new RemoteBuildError('poll', `${where}: the job did not finish by its deadline (${st.phase})`);
      await sleep(delay);
      delay = Math.min(maxDelay, Math.round(delay * 1.5));
    }
  }
}

function requireFile(path: string): string {
  if (!existsSync(path)) throw new Error(`${path} is missing (is the result volume mounted here at the same place the pod wrote to?)`);
  return path;
}

/** A streamed GET (the result can be gigabytes: never buffered). */
function httpGet(url: string): Promise<Readable> {
  const mod = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.get(url, { timeout: 60_000 }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`GET returned HTTP ${res.statusCode}`));
      } else resolve(res);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 60 s')));
    req.on('error', reject);
  });
}
