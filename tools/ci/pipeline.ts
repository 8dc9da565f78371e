// Nx task graph → CI pipeline, as pure functions (research/nx-notes.md §5: without Nx Cloud the
// only distribution is binning: we choose the runner per task, the remote cache carries
// outputs between jobs). One job per task; each job runs `nx run <task>`, so Nx still does the
// hashing and every dependency already built upstream is a remote-cache hit.
import { Document, isScalar, isSeq, visit } from 'yaml';

/** The part of `nx run-many … --graph=stdout` we read. */
export interface TaskGraph {
  tasks: {
    tasks: Record<string, { id: string; target: { project: string; target: string }; cache?: boolean }>;
    dependencies: Record<string, string[]>;
  };
}

export type StoreKind = 'local' | 'shared-fs' | 's3';

export interface PipelineOptions {
  /** The generator's arguments, recorded in the files' header as the command that regenerates them. */
  args: string[];
  /** Site name (RELENG_SITE): part of every task hash, so it must be one literal for all runners. */
  site: string;
  store: { type: StoreKind; path?: string };
}

/** Arches with a native Nx binary; other arches' iso tasks run on x86_64 and dispatch the build (nx-notes §5.4). */
export const NX_NATIVE_ARCHES = ['x86_64', 'aarch64'] as const;
export type RunnerArch = (typeof NX_NATIVE_ARCHES)[number];
export const PUBLISH_TARGETS = ['staging', 'prod', 'filelist'] as const;
export type PublishTarget = (typeof PUBLISH_TARGETS)[number];

export interface CiJob {
  id: string;
  task: string;
  project: string;
  target: string;
  stage: string;
  runner: RunnerArch;
  /** Arch the task builds for when its runner is of another arch (the executor dispatches to a native builder). */
  dispatchArch?: string;
  needs: string[];
  /**
   * Cached tasks to restore (remote-cache hits) before running a task that has uncached
   * dependencies: those (staging, prod) already ran in their own jobs and must not run again,
   * so the task itself runs with --excludeTaskDependencies.
   */
  restore: string[];
  excludeTaskDependencies: boolean;
  publish?: PublishTarget;
  /** prod: pass the approved staging digest. */
  approval: boolean;
}

export interface PipelineModel {
  command: string;
  site: string;
  store: PipelineOptions['store'];
  stages: string[];
  jobs: CiJob[];
}

/** `rocky-9:iso-x86_64` → `rocky-9--iso-x86_64` (a valid GitHub job id and GitLab job name). */
export const jobId = (task: string) => task.replace(':', '--').replace(/[^A-Za-z0-9_-]/g, '_');
const stageOf = (target: string) => (target.startsWith('iso-') && target !== 'iso-extra' ? 'iso' : target);
const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function pipelineFromTaskGraph(graph: TaskGraph, opts: PipelineOptions): PipelineModel {
  if (opts.store.type === 'local') {
    throw new Error(`site ${opts.site} keeps its artifact store on one machine (store.type: local); runners need a shared-fs or s3 store`);
  }
  const { tasks, dependencies } = graph.tasks;
  const ids = Object.keys(tasks).sort(byName);
  const deps = (t: string) => dependencies[t] ?? [];
  const cached = (t: string) => tasks[t]?.cache !== false;
  for (const t of ids) for (const d of deps(t)) if (!tasks[d]) throw new Error(`task graph: ${t} depends on ${d}, which is not in the graph`);

  const prods = ids.filter((t) => tasks[t].target.target === 'prod');
  const jobs: CiJob[] = ids.map((task) => {
    const { project, target } = tasks[task].target;
    const arch = /^iso-(.+)$/.exec(target)?.[1];
    const native = arch && (NX_NATIVE_ARCHES as readonly string[]).includes(arch);
    let needs = deps(task);
    // File lists cover every module of the mirror, so they wait for every prod of the run
    // (DESIGN §4), not only their own release's.
    if (target === 'filelist') needs = [...needs, ...prods];
    const restore = new Set<string>();
    const walk = (t: string) => {
      for (const d of deps(t)) {
        if (cached(d)) restore.add(d);
        else walk(d);
      }
    };
    const excludeTaskDependencies = deps(task).some((d) => !cached(d));
    if (excludeTaskDependencies) walk(task);
    return {
      id: jobId(task),
      task,
      project,
      target,
      stage: stageOf(target),
      runner: native ? (arch as RunnerArch) : 'x86_64',
      ...(arch && arch !== 'extra' && !native ? { dispatchArch: arch } : {}),
      needs: [...new Set(needs.map(jobId))].sort(byName),
      restore: [...restore].sort(byName),
      excludeTaskDependencies,
      ...((PUBLISH_TARGETS as readonly string[]).includes(target) ? { publish: target as PublishTarget } : {}),
      approval: target === 'prod',
    };
  });
  const seen = new Map<string, string>();
  for (const j of jobs) {
    if (seen.has(j.id)) throw new Error(`tasks ${seen.get(j.id)} and ${j.task} map to the same job name ${j.id}`);
    seen.set(j.id, j.task);
  }
  return { command: `node -r @swc-node/register tools/ci/generate.ts ${opts.args.join(' ')}`, site: opts.site, store: opts.store, stages: stageOrder(jobs), jobs };
}

/** Stages in dependency order (GitLab wants a job's needs in earlier stages); ties by name. */
function stageOrder(jobs: CiJob[]): string[] {
  const byId = new Map(jobs.map((j) => [j.id, j]));
  const after = new Map<string, Set<string>>();
  for (const j of jobs) {
    const s = after.get(j.stage) ?? new Set<string>();
    for (const n of j.needs) if (byId.get(n)!.stage !== j.stage) s.add(byId.get(n)!.stage);
    after.set(j.stage, s);
  }
  const order: string[] = [];
  const left = new Set(after.keys());
  while (left.size) {
    const ready = [...left].filter((s) => [...after.get(s)!].every((d) => !left.has(d))).sort(byName);
    if (!ready.length) throw new Error(`stages depend on each other in a cycle: ${[...left].sort(byName).join(', ')}`);
    order.push(ready[0]);
    left.delete(ready[0]);
  }
  for (const j of jobs) {
    for (const n of j.needs) {
      if (byId.get(n)!.stage === j.stage) throw new Error(`${j.task} needs ${byId.get(n)!.task} in its own stage ${j.stage}`);
    }
  }
  return order;
}

// ---------------------------------------------------------------------------------------------
// Rendering. Both renderers build plain objects in a fixed key order (jobs and lists sorted),
// so the same graph always gives the same bytes.

/**
 * YAML text for a pipeline object: no anchors/aliases (CI systems differ in supporting them),
 * no line folding, and short lists of words (runner labels, tags, branches) in flow style.
 */
function toYaml(obj: unknown): string {
  const doc = new Document(obj, { aliasDuplicateObjects: false });
  visit(doc, {
    Pair(_, pair) {
      if (isScalar(pair.key) && FLOW_KEYS.has(String(pair.key.value)) && isSeq(pair.value) && pair.value.items.every(isScalar)) pair.value.flow = true;
    },
  });
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false });
}
const FLOW_KEYS = new Set(['runs-on', 'tags', 'branches']);

const NX = 'npx nx run';
const STREAM = '--outputStyle=stream'; // live logs for long tasks (nx-notes §8.3)
const GITHUB_LABELS: Record<RunnerArch, string[]> = { x86_64: ['self-hosted', 'linux', 'X64'], aarch64: ['self-hosted', 'linux', 'ARM64'] };
const GITLAB_TAGS: Record<RunnerArch, string[]> = { x86_64: ['releng', 'x86_64'], aarch64: ['releng', 'aarch64'] };
const ENVIRONMENT: Record<PublishTarget, string> = { staging: 'staging', prod: 'production', filelist: 'production' };

function header(model: PipelineModel, lines: string[]): string {
  return [
    'GENERATED from the Nx task graph by tools/ci/generate.ts: do not edit by hand. Regenerate with',
    `  ${model.command}`,
    '(tools/ci/pipeline.test.ts fails while this file is stale.)',
    '',
    ...lines,
  ]
    .map((l) => (l ? `# ${l}` : '#'))
    .join('\n');
}

function runCommands(j: CiJob, approve: string): string[] {
  const cmds = j.restore.map((t) => `${NX} ${t} ${STREAM}`);
  const own = [NX, j.task];
  if (j.excludeTaskDependencies) own.push('--excludeTaskDependencies');
  if (j.approval) own.push(`--approve=${approve}`);
  own.push(STREAM);
  return [...cmds, own.join(' ')];
}

const storeCheck = (model: PipelineModel) =>
  model.store.type === 'shared-fs' && model.store.path
    ? `test -d ${model.store.path} && test -w ${model.store.path} || { echo "artifact store ${model.store.path} is not mounted read-write on this runner"; exit 1; }`
    : undefined;

export function githubWorkflow(model: PipelineModel): string {
  const s3 = model.store.type === 's3';
  const check = storeCheck(model);
  const jobs: Record<string, unknown> = {};
  for (const j of [...model.jobs].sort((a, b) => byName(a.id, b.id))) {
    const steps: unknown[] = [
      { uses: 'actions/checkout@v4' },
      { uses: 'actions/setup-node@v4', with: { 'node-version': 20 } },
      // Never --omit=optional: the nx native binary is an optional dependency (nx-notes §8.4).
      { run: 'npm ci' },
    ];
    if (check) steps.push({ name: 'Check the artifact store mount', run: check });
    // The digest reaches the script through the environment, never interpolated into it
    // (GitHub's script-injection hardening).
    for (const cmd of runCommands(j, '"$STAGING_DIGEST"')) steps.push(j.approval && cmd.includes('--approve=') ? { run: cmd, env: { STAGING_DIGEST: '${{ inputs.staging_digest }}' } } : { run: cmd });
    const job: Record<string, unknown> = {
      name: j.dispatchArch ? `${j.task} (dispatched to a ${j.dispatchArch} builder)` : j.task,
      'runs-on': GITHUB_LABELS[j.runner],
    };
    if (j.needs.length) job.needs = j.needs;
    if (j.publish) {
      // Publishing only on a manual dispatch from a trusted ref, and only after a reviewer
      // approves the environment; prod also needs the digest from staging's vetting report.
      job.if = j.publish === 'staging' ? "github.event_name == 'workflow_dispatch'" : "github.event_name == 'workflow_dispatch' && inputs.staging_digest != ''";
      job.environment = ENVIRONMENT[j.publish];
      job.concurrency = { group: `publish-${j.project}`, 'cancel-in-progress': false };
    }
    job.steps = steps;
    jobs[j.id] = job;
  }
  const env: Record<string, string> = {
    NX_DAEMON: 'false',
    NX_NO_CLOUD: 'true',
    NX_SELF_HOSTED_REMOTE_CACHE_SERVER: '${{ vars.NX_CACHE_URL }}',
    // Read-only token on pull requests (CREEP, nx-notes §4.1): the cache answers 403 to their
    // PUTs. Written so that a missing secret falls back to read-only, never to read-write.
    NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN: "${{ github.event_name != 'pull_request' && secrets.NX_CACHE_RW_TOKEN || secrets.NX_CACHE_RO_TOKEN }}",
    RELENG_SITE: model.site,
  };
  if (s3) {
    env.AWS_ACCESS_KEY_ID = '${{ secrets.RELENG_S3_ACCESS_KEY_ID }}';
    env.AWS_SECRET_ACCESS_KEY = '${{ secrets.RELENG_S3_SECRET_ACCESS_KEY }}';
  }
  const workflow = {
    name: 'release',
    on: {
      pull_request: {},
      push: { branches: ['main'] },
      workflow_dispatch: {
        inputs: {
          staging_digest: {
            description: "Approve production: the staging digest from staging's vetting report (empty: publish to staging only)",
            required: false,
            type: 'string',
            default: '',
          },
        },
      },
    },
    permissions: { contents: 'read' },
    concurrency: { group: 'release-${{ github.ref }}', 'cancel-in-progress': false },
    env,
    jobs,
  };
  return (
    header(model, [
      'Runners: self-hosted, labels X64 (x86_64) and ARM64 (aarch64). iso tasks for ppc64le/s390x run on',
      'X64: Nx has no native binary for those arches; their executor dispatches the build to a native builder.',
      'Settings: variable NX_CACHE_URL; secrets NX_CACHE_RW_TOKEN, NX_CACHE_RO_TOKEN' + (s3 ? ', RELENG_S3_ACCESS_KEY_ID, RELENG_S3_SECRET_ACCESS_KEY' : '') + ';',
      'environments "staging" and "production" with required reviewers. Keep NX_CACHE_RW_TOKEN out of reach of',
      'pull_request workflows (fork PRs get no secrets; same-repo PRs do, so prefer an environment secret).',
      model.store.type === 'shared-fs' ? `Artifact store: shared filesystem ${model.store.path}, mounted on every runner.` : 'Artifact store: S3 (bucket from the site file), credentials from the secrets above.',
    ]) +
    '\n' +
    toYaml(workflow)
  );
}

export function gitlabPipeline(model: PipelineModel): string {
  const s3 = model.store.type === 's3';
  const check = storeCheck(model);
  const out: Record<string, unknown> = {
    stages: model.stages,
    workflow: {
      rules: [
        // Protected variables reach only pipelines of protected refs; merge requests get the
        // read-only cache token (CREEP, nx-notes §4.1).
        { if: '$CI_PIPELINE_SOURCE == "merge_request_event"', variables: { NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN: '$NX_CACHE_RO_TOKEN' } },
        // One pipeline per change: the merge-request pipeline, not also a branch pipeline.
        { if: '$CI_COMMIT_BRANCH && $CI_OPEN_MERGE_REQUESTS', when: 'never' },
        { if: '$CI_COMMIT_REF_PROTECTED == "true"', variables: { NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN: '$NX_CACHE_RW_TOKEN' } },
        { when: 'always', variables: { NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN: '$NX_CACHE_RO_TOKEN' } },
      ],
    },
    variables: {
      NX_DAEMON: 'false',
      NX_NO_CLOUD: 'true',
      NX_SELF_HOSTED_REMOTE_CACHE_SERVER: '$NX_CACHE_URL',
      RELENG_SITE: model.site,
    },
    default: { before_script: ['npm ci', ...(check ? [check] : [])] },
  };
  for (const j of [...model.jobs].sort((a, b) => byName(a.id, b.id))) {
    const job: Record<string, unknown> = { stage: j.stage, tags: GITLAB_TAGS[j.runner], needs: j.needs };
    const script = runCommands(j, '"$STAGING_DIGEST"');
    if (j.publish) {
      if (j.approval) script.unshift('test -n "$STAGING_DIGEST" || { echo "run this job with STAGING_DIGEST set to the digest from the staging vetting report"; exit 1; }');
      job.rules = [{ if: '$CI_COMMIT_REF_PROTECTED == "true" && $CI_PIPELINE_SOURCE != "merge_request_event"', when: 'manual' }];
      // A pending manual job blocks the jobs that need it instead of letting them run.
      job.allow_failure = false;
      job.environment = { name: ENVIRONMENT[j.publish] };
      job.resource_group = `publish-${j.project}`;
      job.interruptible = false;
    } else {
      job.interruptible = true;
    }
    job.script = script;
    out[j.id] = job;
  }
  return (
    header(model, [
      'Runners: tags [releng, x86_64] and [releng, aarch64]. iso jobs for ppc64le/s390x run on x86_64: Nx has no',
      'native binary for those arches; their executor dispatches the build to a native builder.',
      'CI/CD variables: NX_CACHE_URL; NX_CACHE_RW_TOKEN (protected, masked); NX_CACHE_RO_TOKEN (masked)' +
        (s3 ? '; AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (protected, masked)' : '') +
        '.',
      'Publishing jobs are manual, on protected refs only; protect the "staging" and "production" environments',
      'with approval rules. Run the prod job with the variable STAGING_DIGEST (from the staging vetting report).',
      model.store.type === 'shared-fs' ? `Artifact store: shared filesystem ${model.store.path}, mounted on every runner.` : 'Artifact store: S3 (bucket from the site file).',
    ]) +
    '\n' +
    toYaml(out)
  );
}
