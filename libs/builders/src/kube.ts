// iso-<arch> as a Kubernetes Job on a node of that arch (empanadas' launch-builds, without the
// hand-rendered YAML and the hand-run `aws s3 cp`): submit, poll, collect, verify, delete.
//
// Where the result goes (RELENG_RESULT_URL in the pod): the pod packs `lorax/` as one tar and
//  - `file:///<mount>/<job>/lorax.tar` on a shared volume (NFS/EFS/PVC) that this machine also
//    sees at `result.localPath` -- written as `.part` and renamed, so a half-written tar is never
//    taken for a result; or
//  - `http(s)://...`: PUT with curl (a presigned S3 PUT URL, say), fetched back from `get`.
// Either way the tree arrives as a stream and is unpacked with tar's safe defaults here.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { bytes as fmtBytes, preflight } from '@rocky/exec';
import type { BootTreeResult } from '@rocky/iso';
import { verifyTree } from './collect';
import { checkExtracted, extractTar } from './tar';
import { RemoteBuildError, tail, type K8sBuilder, type RemoteBuildInput } from './types';
import { DEFAULTS, INPUTS_ANNOTATION, jobManifest, jobName, KUBE_ARCH, resultUrls, type K8sOptions } from './kube-job';
import { defaultClient, KubeApiError, type JobStatus, type KubeClient } from './kube-api';

export * from './kube-job';
export * from './kube-api';

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
