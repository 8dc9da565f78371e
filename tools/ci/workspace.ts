// The impure half of the CI generator: ask Nx for the task graph, load the site, render files.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadSite } from '../../libs/config/src';
import { runSync } from '../../libs/exec/src/run';
import { githubWorkflow, gitlabPipeline, pipelineFromTaskGraph, PUBLISH_TARGETS, type TaskGraph } from './pipeline';

export interface GenerateArgs {
  targets: string[];
  projects: string[];
  publish: boolean;
  site: string;
  out: string;
  check: boolean;
}

/** Output files, relative to the output directory. */
export const OUTPUT_FILES = { github: 'github/release.yml', gitlab: 'gitlab/release.gitlab-ci.yml' } as const;

const list = (s: string) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

export function parseGenerateArgs(argv: string[]): GenerateArgs {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      target: { type: 'string' },
      projects: { type: 'string' },
      publish: { type: 'boolean', default: false },
      // The production compose host's site: a CI pipeline for the `local` site makes no sense.
      site: { type: 'string', default: 'rocky-prod' },
      out: { type: 'string', default: 'ci' },
      check: { type: 'boolean', default: false },
    },
  });
  if (!values.target || !values.projects) {
    throw new Error('usage: generate.ts --target <target>[,<target>] --projects <p>[,<p>] [--publish] [--site rocky-prod] [--out ci] [--check]');
  }
  return { targets: list(values.target), projects: list(values.projects), publish: values.publish!, site: values.site!, out: values.out!, check: values.check! };
}

/** The arguments that determine the files' contents, in a fixed order (recorded in their header). */
export function canonicalArgs(a: Pick<GenerateArgs, 'targets' | 'projects' | 'publish' | 'site'>): string[] {
  return ['--target', a.targets.join(','), '--projects', [...a.projects].sort().join(','), ...(a.publish ? ['--publish'] : []), '--site', a.site];
}

/** `nx run-many -t … -p … --graph=stdout`, parsed (nx-notes §5.2). */
export function readTaskGraph(root: string, targets: string[], projects: string[]): TaskGraph {
  const argv = [join(root, 'node_modules/.bin/nx'), 'run-many', '-t', targets.join(','), '-p', projects.join(','), '--graph=stdout'];
  const stdout = runSync(argv, { cwd: root, env: { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true', NX_TUI: 'false' } }).toString('utf8');
  // Anything Nx prints before the JSON (warnings) is not part of it.
  const start = stdout.indexOf('{');
  const graph = JSON.parse(stdout.slice(start)) as TaskGraph;
  const missing = projects.filter((p) => !Object.values(graph.tasks.tasks).some((t) => t.target.project === p));
  if (missing.length) throw new Error(`no ${targets.join('/')} task for project(s) ${missing.join(', ')}`);
  return graph;
}

/** Both pipeline files for these arguments, keyed by their path under the output directory. */
export function renderPipelines(root: string, a: GenerateArgs, graph?: TaskGraph): Record<string, string> {
  const targets = a.publish ? [...new Set([...a.targets, ...PUBLISH_TARGETS])] : a.targets;
  const g = graph ?? readTaskGraph(root, targets, a.projects);
  const site = loadSite(root, a.site);
  const store = site.store.type === 's3' ? { type: site.store.type } : { type: site.store.type, path: site.store.path };
  const model = pipelineFromTaskGraph(g, { args: canonicalArgs(a), site: site.name, store });
  return { [OUTPUT_FILES.github]: githubWorkflow(model), [OUTPUT_FILES.gitlab]: gitlabPipeline(model) };
}
