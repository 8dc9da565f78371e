import { describe, it, expect } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { githubWorkflow, gitlabPipeline, jobId, pipelineFromTaskGraph, type TaskGraph } from './pipeline';
import { OUTPUT_FILES, parseGenerateArgs, renderPipelines } from './workspace';

const root = resolve(__dirname, '../..');
const graph = JSON.parse(readFileSync(join(__dirname, 'fixtures/task-graph.rocky-8.rocky-9.publish.json'), 'utf8')) as TaskGraph;
const opts = { args: ['--target', 'finalize', '--projects', 'rocky-8,rocky-9', '--publish', '--site', 'rocky-prod'], site: 'rocky-prod', store: { type: 'shared-fs' as const, path: '/mnt/compose/.store' } };
const model = pipelineFromTaskGraph(graph, opts);

type GhJob = { 'runs-on': string[]; needs?: string[]; if?: string; environment?: string; steps: { run?: string; env?: Record<string, string> }[] };
type GlJob = { stage: string; tags: string[]; needs: string[]; rules?: { if: string; when: string }[]; allow_failure?: boolean; environment?: { name: string }; script: string[] };
const gh = parse(githubWorkflow(model)) as { on: Record<string, unknown>; env: Record<string, string>; jobs: Record<string, GhJob> };
const gl = parse(gitlabPipeline(model)) as Record<string, unknown> & { stages: string[]; variables: Record<string, string>; workflow: { rules: { if?: string; variables?: Record<string, string> }[] } };
const glJob = (id: string) => gl[id] as GlJob;
const runs = (j: GhJob) => j.steps.map((s) => s.run).filter((r): r is string => !!r && r.startsWith('npx nx run'));

describe('pipeline from a recorded task graph', () => {
  const taskIds = Object.keys(graph.tasks.tasks);

  it('has one job per task, named after the task id', () => {
    expect(jobId('rocky-9:iso-x86_64')).toBe('rocky-9--iso-x86_64');
    expect(Object.keys(gh.jobs).sort()).toEqual(taskIds.map(jobId).sort());
    expect(Object.keys(gh.jobs)).toEqual([...Object.keys(gh.jobs)].sort()); // deterministic order
    for (const t of taskIds) expect(gl[jobId(t)], t).toBeDefined();
  });

  it('routes each iso arch to the right runners', () => {
    const labels = (id: string) => gh.jobs[id]['runs-on'];
    expect(labels('rocky-9--iso-x86_64')).toEqual(['self-hosted', 'linux', 'X64']);
    expect(labels('rocky-9--iso-aarch64')).toEqual(['self-hosted', 'linux', 'ARM64']);
    expect(labels('rocky-8--iso-aarch64')).toEqual(['self-hosted', 'linux', 'ARM64']);
    // No Nx binary on ppc64le/s390x: the job runs on x86_64 and the executor dispatches the build.
    expect(labels('rocky-9--iso-ppc64le')).toEqual(['self-hosted', 'linux', 'X64']);
    expect(labels('rocky-9--iso-s390x')).toEqual(['self-hosted', 'linux', 'X64']);
    for (const id of ['sync', 'iso-extra', 'cloud', 'finalize', 'staging', 'prod', 'filelist']) expect(labels(`rocky-9--${id}`)).toEqual(['self-hosted', 'linux', 'X64']);
    expect(glJob('rocky-9--iso-aarch64').tags).toEqual(['releng', 'aarch64']);
    expect(glJob('rocky-9--iso-s390x').tags).toEqual(['releng', 'x86_64']);
    expect(Object.keys(gh.jobs).filter((id) => id.includes('--iso-') && id !== 'rocky-8--iso-extra' && id !== 'rocky-9--iso-extra')).toEqual([
      'rocky-8--iso-aarch64',
      'rocky-8--iso-x86_64',
      'rocky-9--iso-aarch64',
      'rocky-9--iso-ppc64le',
      'rocky-9--iso-s390x',
      'rocky-9--iso-x86_64',
    ]);
  });

  it('follows the task dependencies in needs (and file lists wait for every prod)', () => {
    const prods = taskIds.filter((t) => t.endsWith(':prod')).map(jobId);
    for (const t of taskIds) {
      const want = new Set(graph.tasks.dependencies[t].map(jobId));
      if (t.endsWith(':filelist')) prods.forEach((p) => want.add(p));
      expect(gh.jobs[jobId(t)].needs ?? [], t).toEqual([...want].sort());
      expect(glJob(jobId(t)).needs, t).toEqual([...want].sort());
    }
    // GitLab: every need lies in an earlier stage.
    for (const t of taskIds) {
      const j = glJob(jobId(t));
      for (const n of j.needs) expect(gl.stages.indexOf(glJob(n).stage), `${t} needs ${n}`).toBeLessThan(gl.stages.indexOf(j.stage));
    }
  });

  it('runs every task through nx with the remote cache and site environment', () => {
    expect(gh.env).toMatchObject({ NX_DAEMON: 'false', NX_NO_CLOUD: 'true', NX_SELF_HOSTED_REMOTE_CACHE_SERVER: '${{ vars.NX_CACHE_URL }}', RELENG_SITE: 'rocky-prod' });
    expect(gl.variables).toMatchObject({ NX_DAEMON: 'false', NX_NO_CLOUD: 'true', NX_SELF_HOSTED_REMOTE_CACHE_SERVER: '$NX_CACHE_URL', RELENG_SITE: 'rocky-prod' });
    for (const t of taskIds) {
      expect(runs(gh.jobs[jobId(t)]).at(-1)).toMatch(new RegExp(`^npx nx run ${t} `));
      expect(glJob(jobId(t)).script.at(-1)).toMatch(new RegExp(`^npx nx run ${t} `));
    }
    expect(runs(gh.jobs['rocky-9--iso-aarch64'])).toEqual(['npx nx run rocky-9:iso-aarch64 --outputStyle=stream']);
  });

  it('gives pull requests the read-only cache token (CREEP)', () => {
    const token = gh.env.NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN;
    expect(gh.on).toHaveProperty('pull_request');
    // On a PR the && is false, so the RO token is chosen; a missing RW secret also falls to RO.
    expect(token).toBe("${{ github.event_name != 'pull_request' && secrets.NX_CACHE_RW_TOKEN || secrets.NX_CACHE_RO_TOKEN }}");
    const rules = gl.workflow.rules;
    expect(rules[0]).toEqual({ if: '$CI_PIPELINE_SOURCE == "merge_request_event"', variables: { NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN: '$NX_CACHE_RO_TOKEN' } });
    const rw = rules.filter((r) => r.variables?.NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN === '$NX_CACHE_RW_TOKEN');
    expect(rw.map((r) => r.if)).toEqual(['$CI_COMMIT_REF_PROTECTED == "true"']);
  });

  it('gates publishing behind approval; prod takes the approved staging digest', () => {
    for (const p of ['rocky-8', 'rocky-9']) {
      expect(gh.jobs[`${p}--staging`]).toMatchObject({ environment: 'staging', if: "github.event_name == 'workflow_dispatch'" });
      expect(gh.jobs[`${p}--prod`]).toMatchObject({ environment: 'production' });
      expect(gh.jobs[`${p}--prod`].if).toContain("inputs.staging_digest != ''");
      expect(gh.jobs[`${p}--filelist`].environment).toBe('production');
      for (const t of ['staging', 'prod', 'filelist']) {
        expect(glJob(`${p}--${t}`).rules).toEqual([{ if: '$CI_COMMIT_REF_PROTECTED == "true" && $CI_PIPELINE_SOURCE != "merge_request_event"', when: 'manual' }]);
        expect(glJob(`${p}--${t}`).allow_failure).toBe(false);
      }
      for (const t of ['sync', 'iso-x86_64', 'finalize']) {
        expect(gh.jobs[`${p}--${t}`].environment).toBeUndefined();
        expect(glJob(`${p}--${t}`).rules).toBeUndefined();
      }
    }
    expect(gh.on).toHaveProperty('workflow_dispatch.inputs.staging_digest');
    const prod = gh.jobs['rocky-9--prod'].steps.find((s) => s.run?.includes('rocky-9:prod'))!;
    expect(prod.run).toBe('npx nx run rocky-9:prod --excludeTaskDependencies --approve="$STAGING_DIGEST" --outputStyle=stream');
    expect(prod.env).toEqual({ STAGING_DIGEST: '${{ inputs.staging_digest }}' });
    expect(glJob('rocky-9--prod').script.at(-1)).toBe('npx nx run rocky-9:prod --excludeTaskDependencies --approve="$STAGING_DIGEST" --outputStyle=stream');
  });

  it('never re-runs an upstream side effect: restores cached outputs, then excludes task dependencies', () => {
    // staging's only dependency is cached: a plain run restores it from the remote cache.
    expect(runs(gh.jobs['rocky-9--staging'])).toEqual(['npx nx run rocky-9:staging --outputStyle=stream']);
    // prod's dependency (staging) already ran in its own job; running it again would re-publish.
    expect(runs(gh.jobs['rocky-9--prod'])).toEqual([
      'npx nx run rocky-9:finalize --outputStyle=stream',
      'npx nx run rocky-9:prod --excludeTaskDependencies --approve="$STAGING_DIGEST" --outputStyle=stream',
    ]);
    expect(runs(gh.jobs['rocky-8--filelist'])).toEqual(['npx nx run rocky-8:finalize --outputStyle=stream', 'npx nx run rocky-8:filelist --excludeTaskDependencies --outputStyle=stream']);
  });

  it('is deterministic and independent of the graph’s key order', () => {
    const shuffled: TaskGraph = {
      tasks: {
        tasks: Object.fromEntries(Object.entries(graph.tasks.tasks).reverse()),
        dependencies: Object.fromEntries(Object.entries(graph.tasks.dependencies).reverse().map(([k, v]) => [k, [...v].reverse()])),
      },
    };
    const again = pipelineFromTaskGraph(shuffled, opts);
    expect(githubWorkflow(again)).toBe(githubWorkflow(model));
    expect(gitlabPipeline(again)).toBe(gitlabPipeline(model));
    expect(githubWorkflow(model).startsWith('# GENERATED')).toBe(true);
  });

  it('passes S3 credentials for an s3 store and refuses a runner-local store', () => {
    const s3 = parse(githubWorkflow(pipelineFromTaskGraph(graph, { ...opts, store: { type: 's3' } }))) as typeof gh;
    expect(s3.env.AWS_ACCESS_KEY_ID).toBe('${{ secrets.RELENG_S3_ACCESS_KEY_ID }}');
    expect(s3.jobs['rocky-9--sync'].steps.some((s) => s.run?.startsWith('test -d'))).toBe(false);
    expect(() => pipelineFromTaskGraph(graph, { ...opts, site: 'local', store: { type: 'local', path: '.releng/store' } })).toThrow(/shared-fs or s3/);
  });
});

describe('committed ci/ pipelines', () => {
  it('equal what the live workspace generates, byte for byte', () => {
    const committed = (rel: string) => (existsSync(join(root, 'ci', rel)) ? readFileSync(join(root, 'ci', rel), 'utf8') : '');
    // The header records the arguments the files were generated with; the examples' otherwise.
    const command =
      /^# {3}(node -r @swc-node\/register tools\/ci\/generate\.ts .*)$/m.exec(committed(OUTPUT_FILES.github))?.[1] ??
      'node -r @swc-node/register tools/ci/generate.ts --target finalize --projects rocky-8,rocky-9,rocky-9-beta,rocky-9-lookahead --publish --site rocky-prod';
    const args = parseGenerateArgs(command.split(' ').slice(4));
    const fresh = renderPipelines(root, args); // runs nx … --graph=stdout
    for (const rel of Object.values(OUTPUT_FILES)) {
      expect(fresh[rel] === committed(rel), `ci/${rel} is stale: regenerate with\n  ${command}\n`).toBe(true);
    }
  });
});
