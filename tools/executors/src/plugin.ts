// Local Nx plugin: every releases/<name>/release.yaml becomes a project whose targets are the
// pipeline's stages. Per-arch inputs and dependsOn live here only (targetDefaults would replace
// them, see research/nx-notes.md §6.1), so adding an arch to a release file adds its iso target
// and nothing else has to be edited.
import { createNodesFromFiles, type CreateNodesV2, type TargetConfiguration } from '@nx/devkit';
import { composeFingerprintVar, fingerprintVar, type Fingerprint } from './fingerprint';
import { dirname, basename } from 'node:path';
import { checkReleases, composeStagingTarget, composeTarget, distDir, loadRelease } from '@rocky/config';
import { stageInputs } from './stage-inputs';

// By path, not as `@rocky/executors`: Nx resolves a package name that only tsconfig paths know by
// registering its TypeScript transpiler (typescript loaded, ~0.5 CPU-s) in every nx process that
// computes the graph; a path is found as it is (and executors.json names plain JavaScript).
const EXECUTORS = './tools/executors';
// RELENG_DRY_RUN (set for a whole `--dryRun` run, see cli.ts) is an input of every target: a dry
// run's tasks hash apart from real ones, so nothing they leave in Nx's cache directory (Nx writes
// a task's terminal output under its hash, even when the cache is skipped) mixes with a real run's.
// pipelineSource is the executors and scripts; each cached target adds the code of its own stage
// (stage-inputs.ts), so a change to a lib reruns only the targets whose stage imports it.
const common = ['pipelineSource', 'site', { env: 'RELENG_DRY_RUN' }];

/**
 * The upstream state enters sync's hash through a fingerprint of upstream repomd.xml files, and
 * cloud's through the listing of the image source (a pungi compose task's through what pungi would
 * make it from, composeFingerprintVar): computed once per run by the preTasksExecution hook and
 * read by Nx from the environment (see fingerprint.ts).
 */
const fingerprint = (project: string, what: Fingerprint) => ({ env: fingerprintVar(project, what) });

export function releaseTargets(workspaceRoot: string, configFile: string): { name: string; targets: Record<string, TargetConfiguration>; arches: string[]; tags: string[] } {
  const projectRoot = dirname(configFile);
  const name = basename(projectRoot);
  const rel = loadRelease(workspaceRoot, configFile);
  const out = (target: string) => [distDir('{workspaceRoot}', '{projectName}', target)];
  const releaseFile = '{projectRoot}/release.yaml';
  const code = (stage: string) => stageInputs(workspaceRoot, stage);

  // Publishing is a side effect: never replayed from the cache, never run beside other tasks.
  const publish = (executor: string, dependsOn: string[], description: string): TargetConfiguration => ({
    executor: `${EXECUTORS}:${executor}`,
    cache: false,
    parallelism: false,
    dependsOn,
    metadata: { description },
  });
  const publishing = (staging: string[]) => ({
    staging: publish('staging', staging, 'Mirror-safe publish of the compose to staging, vetting report'),
    prod: publish('prod', ['staging'], 'Promote approved staging to production'),
    filelist: publish('filelist', ['prod'], 'Mirror file lists after every prod of the run'),
  });
  const tags = ['type:release', `kind:${rel.kind}`, ...rel.arches.map((a) => `arch:${a}`)];

  const targets: Record<string, TargetConfiguration> = {
    sync: {
      executor: `${EXECUTORS}:sync`,
      cache: true,
      inputs: [...common, ...code('sync'), releaseFile, fingerprint(name, 'repos')],
      outputs: out('sync'),
      metadata: { description: 'Reposync every repo x arch from upstream into a new compose, repoclosure, treeinfo' },
    },
  };
  const checkSite: TargetConfiguration = {
    executor: `${EXECUTORS}:check-site`,
    cache: false,
    metadata: { description: 'Check the site file on this host (roots, tools, keys, builders, upstream, cloud source), reading only' },
  };
  // A SIG compose is packages only, published as it is (sync-to-staging-sig.sh): no ISOs, images or finalize.
  if (rel.kind === 'sig') return { name, targets: { ...targets, ...publishing(['sync']), 'check-site': checkSite }, arches: rel.arches, tags };
  for (const arch of rel.arches) {
    targets[`iso-${arch}`] = {
      executor: `${EXECUTORS}:iso`,
      cache: true,
      dependsOn: ['sync'],
      // Only this arch's sync manifest: it carries the arch's config slice and package set.
      inputs: [...common, ...code('iso'), { dependentTasksOutputFiles: `**/sync/${arch}.json.gz`, transitive: false }],
      outputs: out(`iso/${arch}`),
      metadata: { description: `Boot tree and boot ISO for ${arch}` },
    };
  }
  targets['iso-extra'] = {
    executor: `${EXECUTORS}:iso-extra`,
    cache: true,
    dependsOn: ['iso-*', 'sync'],
    inputs: [...common, ...code('iso-extra'), { dependentTasksOutputFiles: '**/*.json', transitive: true }],
    outputs: out('iso-extra'),
    metadata: { description: 'DVD (and other extra) ISOs for every arch, implantisomd5, verified' },
  };
  targets.cloud = {
    executor: `${EXECUTORS}:cloud`,
    cache: true,
    inputs: [...common, ...code('cloud'), releaseFile, fingerprint(name, 'cloud')],
    outputs: out('cloud'),
    metadata: { description: 'Collect, verify and name the cloud images' },
  };
  targets.finalize = {
    executor: `${EXECUTORS}:finalize`,
    cache: true,
    dependsOn: ['sync', 'iso-*', 'iso-extra', 'cloud'],
    inputs: [...common, ...code('finalize'), releaseFile, { dependentTasksOutputFiles: '**/*.json', transitive: true }],
    outputs: out('finalize'),
    metadata: { description: 'Place ISOs and images, CHECKSUM files, productmd metadata, STATUS' },
  };
  Object.assign(targets, publishing(['finalize']));

  // The weekly push: an update compose (packages only; the published media carried as they are),
  // staged, promoted and listed. No ISO, DVD, cloud or finalize task is in this chain.
  targets['update-sync'] = {
    executor: `${EXECUTORS}:sync`,
    cache: true,
    inputs: [...common, ...code('sync'), releaseFile, fingerprint(name, 'repos')],
    outputs: out('update-sync'),
    metadata: { description: 'Reposync every repo x arch into a new update compose (packages only), carrying the published media' },
  };
  targets['update-staging'] = publish('staging', ['update-sync'], 'Mirror-safe publish of the latest compose (the update push) to staging, vetting report');
  targets['update-prod'] = publish('prod', ['update-staging'], 'Promote the approved update push to production');
  targets['update-filelist'] = publish('filelist', ['update-prod'], 'Mirror file lists after every prod of the run');
  targets.rollback = { ...publish('rollback', [], 'Point the latest link at an earlier finished compose (then update-staging publishes it)') };
  // A doctor for the site on this host: reads only, so nothing to cache and nothing to wait for.
  // A release pungi makes (Rocky 8): one task per compose and chain, each its own pungi-koji run,
  // directory and latest link; sync assembles the produce composes for the minor release chain;
  // each compose can be staged alone (the SOP's `sync-to-staging.sh <compose>`). A compose task
  // is a cache hit while what pungi would make it from is unchanged (its config, koji's content
  // for its tags: the `compose` fingerprint) and the compose it recorded is whole on this host;
  // the hit replays its record (compose.json, media-<arch>.json).
  if (rel.composes.length) {
    for (const c of rel.composes) {
      for (const kind of ['produce', 'update'] as const) {
        targets[composeTarget(c, kind)] = {
          executor: `${EXECUTORS}:compose`,
          cache: true,
          inputs: [...common, ...code('pungi-compose'), releaseFile, { env: composeFingerprintVar(name, c, kind) }],
          outputs: out(composeTarget(c, kind)),
          metadata: { description: `pungi-koji: ${kind === 'update' ? 'an update' : 'a produce'} compose of ${c}, verified, into the store` },
        };
        targets[composeStagingTarget(c, kind)] = publish('staging', [composeTarget(c, kind)], `Mirror-safe publish of the ${c} ${kind} compose alone to staging, vetting report`);
      }
    }
    // Where pungi makes the media, iso-<arch> collects its arch's from the compose tasks' records.
    for (const arch of rel.arches) {
      const t = targets[`iso-${arch}`];
      t.inputs = [...t.inputs!, ...code('pungi-media'), { dependentTasksOutputFiles: `**/media-${arch}.json`, transitive: true }];
    }
    targets['iso-extra'].inputs = [...targets['iso-extra'].inputs!, ...code('pungi-media')];
    targets.sync = {
      ...targets.sync,
      dependsOn: rel.composes.map((c) => composeTarget(c, 'produce')),
      inputs: [...common, releaseFile, { dependentTasksOutputFiles: '**/compose.json', transitive: false }],
      metadata: { description: `Assemble the composes pungi made (${rel.composes.join(', ')}) into the release's compose, treeinfo; on a site that reposyncs ${name}, reposync` },
    };
  }
  // The toolkit's sign-repos-only: the staged repomd.xml files re-signed, without a new compose.
  if (rel.publish.signRepodata) targets['sign-repos'] = publish('sign-repos', [], 'Re-sign the repomd.xml of every staged tree with the site key (after a key change or a manual fix), without a new compose');
  targets['check-site'] = checkSite;
  return { name, targets, arches: rel.arches, tags };
}

export const createNodesV2: CreateNodesV2 = [
  'releases/*/release.yaml',
  (files, options, context) =>
    checkReleases(context.workspaceRoot) ?? // throws on mistakes across release files; returns nothing
    createNodesFromFiles(
      (file, _opts, ctx) => {
        const { name, targets, tags } = releaseTargets(ctx.workspaceRoot, file);
        return {
          projects: {
            [dirname(file)]: { name, projectType: 'application', targets, implicitDependencies: ['executors'], tags },
          },
        };
      },
      files,
      options,
      context,
    ),
];

export { preTasksExecution } from './cli';
