// The few Kubernetes API calls a build makes (create, get, logs, delete a Job), over HTTPS with
// the cluster's CA, and the read-only probe check-site runs.
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { K8sBuilder, ProbeResult } from './types';

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
export function defaultClient(builder: K8sBuilder): KubeClient {
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
