// The Job a Kubernetes iso-<arch> build runs: its name (from its inputs, so a rerun adopts the
// same job), the pod's script and lorax command line, and the batch/v1 manifest.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { revision, type Arch } from '@rocky/config';
import { loraxArgv } from '@rocky/iso';
import type { K8sBuilder, RemoteBuildInput } from './types';

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

export const DEFAULTS = { buildDir: '/builddir', resultsMount: '/releng-results', deadline: 4 * 3600, ttl: 86400 };

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

export function resultUrls(name: string, opts: K8sOptions): { put: string; get: string } {
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

