// The plugin's targets as a pure function of a release file, the executors' schemas, and the
// command-line check the plugin runs before any task.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { releaseTargets } from './plugin';
import { checkCommandLine, executorOf, parseCommandLine } from './cli';

const root = join(__dirname, '../../..');
const argv = (...a: string[]) => ['/usr/bin/node', '/ws/node_modules/nx/dist/bin/nx.js', ...a];

describe('releaseTargets', () => {
  const { name, targets, arches } = releaseTargets(root, 'releases/rocky-9/release.yaml');

  it('makes one target per stage and one iso target per arch, none of them taking release or arch as options', () => {
    expect(name).toBe('rocky-9');
    expect(arches).toEqual(['x86_64', 'aarch64', 'ppc64le', 's390x']);
    expect(Object.keys(targets).sort()).toEqual(['check-site', 'cloud', 'filelist', 'finalize', 'iso-aarch64', 'iso-extra', 'iso-ppc64le', 'iso-s390x', 'iso-x86_64', 'prod', 'rollback', 'staging', 'sync', 'update-filelist', 'update-prod', 'update-staging', 'update-sync']);
    for (const [t, c] of Object.entries(targets)) {
      expect(c.options ?? {}, t).toEqual({});
      expect(c.executor, t).toBe(`@rocky/executors:${executorOf(t)}`);
    }
  });

  it('hashes only its own arch for each iso target, and never caches publishing', () => {
    expect(targets['iso-aarch64'].inputs).toContainEqual({ dependentTasksOutputFiles: '**/sync/aarch64.json', transitive: false });
    expect(targets['iso-aarch64'].dependsOn).toEqual(['sync']);
    for (const t of ['staging', 'prod', 'filelist']) expect(targets[t], t).toMatchObject({ cache: false, parallelism: false });
    expect(targets.staging.dependsOn).toEqual(['finalize']);
    expect(targets.filelist.dependsOn).toEqual(['prod']);
    for (const t of ['sync', 'iso-x86_64', 'iso-extra', 'cloud', 'finalize']) expect(targets[t].cache, t).toBe(true);
  });

  it('has an update chain (the weekly push) with no ISO, DVD, cloud or finalize task in it', () => {
    expect(targets['update-sync']).toMatchObject({ executor: '@rocky/executors:sync', cache: true });
    expect(targets['update-sync'].dependsOn).toBeUndefined();
    expect(targets['update-staging'].dependsOn).toEqual(['update-sync']);
    expect(targets['update-prod'].dependsOn).toEqual(['update-staging']);
    expect(targets['update-filelist'].dependsOn).toEqual(['update-prod']);
    for (const t of ['update-staging', 'update-prod', 'update-filelist', 'rollback']) expect(targets[t], t).toMatchObject({ cache: false, parallelism: false });
  });

  it('checks the site without caching and without running anything first', () => {
    expect(targets['check-site']).toMatchObject({ executor: '@rocky/executors:check-site', cache: false });
    expect(targets['check-site'].dependsOn ?? []).toEqual([]);
    expect(targets['check-site'].inputs).toBeUndefined();
    expect(checkCommandLine(argv('run', 'rocky-9:check-site', '--dryRun'))).toEqual({ dryRun: true });
    expect(() => checkCommandLine(argv('run', 'rocky-9:check-site', '--site=rocky-prod'))).toThrow(/unknown option --site; nothing was run\. Options: check-site: --dryRun;/);
  });
});

describe('releaseTargets of a SIG release', () => {
  const { name, targets, tags } = releaseTargets(root, 'releases/sig-cloud-9/release.yaml');
  it('makes sync, the publishing targets and check-site only, staging right after sync', () => {
    expect(name).toBe('sig-cloud-9');
    expect(Object.keys(targets).sort()).toEqual(['check-site', 'filelist', 'prod', 'staging', 'sync']);
    expect(targets.staging.dependsOn).toEqual(['sync']);
    expect(targets.prod.dependsOn).toEqual(['staging']);
    expect(targets.filelist.dependsOn).toEqual(['prod']);
    for (const t of ['staging', 'prod', 'filelist']) expect(targets[t], t).toMatchObject({ cache: false, parallelism: false });
    expect(targets.sync).toMatchObject({ cache: true, inputs: expect.arrayContaining(['{projectRoot}/release.yaml']) });
    expect(tags).toEqual(['type:release', 'kind:sig', 'arch:x86_64', 'arch:aarch64', 'arch:ppc64le', 'arch:s390x']);
    expect(releaseTargets(root, 'releases/rocky-9/release.yaml').tags).toContain('kind:main');
  });
});

describe('releaseTargets of a release pungi makes (rocky-8)', () => {
  const { targets } = releaseTargets(root, 'releases/rocky-8/release.yaml');
  const composes = ['Plus', 'Extras', 'Rocky-devel', 'NFV', 'Rocky'];

  it('one compose task per compose and chain, cached on what pungi would make it from; sync assembles the produce composes and hashes their records', () => {
    for (const c of composes) {
      for (const [t, kind] of [[`compose-${c}`, 'produce'], [`update-compose-${c}`, 'update']]) {
        expect(targets[t], t).toMatchObject({ executor: '@rocky/executors:compose', cache: true, outputs: [`{workspaceRoot}/dist/{projectName}/${t}`] });
        expect(targets[t].inputs, t).toContainEqual({ runtime: expect.stringMatching(new RegExp(`^node \\S+/upstream-fingerprint\\.js compose rocky-8 ${c} ${kind}$`)) });
        expect(targets[t].inputs, t).toContain('{workspaceRoot}/libs/stages/src/pungi-compose.ts');
        expect(executorOf(t), t).toBe('compose');
      }
    }
    expect(targets.sync.dependsOn).toEqual(composes.map((c) => `compose-${c}`));
    expect(targets.sync.inputs).toContainEqual({ dependentTasksOutputFiles: '**/compose.json', transitive: false });
    // Each iso-<arch> hashes the media its arch's compose records carry (pungi's boot ISO and tree).
    expect(targets['iso-x86_64'].inputs).toContainEqual({ dependentTasksOutputFiles: '**/media-x86_64.json', transitive: true });
    expect(targets['iso-aarch64'].inputs).not.toContainEqual({ dependentTasksOutputFiles: '**/media-x86_64.json', transitive: true });
    expect(targets['iso-x86_64'].dependsOn).toEqual(['sync']);
  });

  it('each compose can be staged alone, after its own compose task only', () => {
    expect(targets['staging-Extras']).toMatchObject({ executor: '@rocky/executors:staging', cache: false, parallelism: false, dependsOn: ['compose-Extras'] });
    expect(targets['update-staging-Extras']).toMatchObject({ executor: '@rocky/executors:staging', dependsOn: ['update-compose-Extras'] });
    expect(executorOf('update-staging-Rocky-devel')).toBe('staging');
    expect(checkCommandLine(argv('run', 'rocky-8:compose-Extras', '--dryRun'))).toEqual({ dryRun: true });
    expect(() => checkCommandLine(argv('run', 'rocky-8:compose-Extras', '--label=RC-8.9'))).toThrow(/unknown option --label/);
  });

  it('a release without composes has none of these targets, nor sign-repos unless it signs its repodata', () => {
    expect(Object.keys(releaseTargets(root, 'releases/rocky-9/release.yaml').targets).filter((t) => /compose-|staging-|sign-repos/.test(t))).toEqual([]);
  });

  it('sign-repos (sign-repos-only): a publishing target that runs nothing first', () => {
    expect(targets['sign-repos']).toMatchObject({ executor: '@rocky/executors:sign-repos', cache: false, parallelism: false, dependsOn: [] });
    expect(executorOf('sign-repos')).toBe('sign-repos');
  });
});

describe('executor schemas', () => {
  const dir = join(__dirname, 'executors');
  const executors = JSON.parse(readFileSync(join(__dirname, '../executors.json'), 'utf8')).executors as Record<string, { schema: string }>;
  it('every executor of executors.json has a folder with schema.json and schema.d.ts', () => {
    expect(Object.keys(executors).sort()).toEqual(readdirSync(dir).sort());
  });
  for (const e of Object.keys(executors)) {
    it(`${e}: unknown options are errors, every option is described, booleans have defaults, schema.d.ts agrees`, () => {
      const schema = JSON.parse(readFileSync(join(dir, e, 'schema.json'), 'utf8'));
      expect(schema.additionalProperties).toBe(false);
      expect(schema.title && schema.description).toBeTruthy();
      expect(schema.required ?? []).toEqual([]);
      for (const [k, p] of Object.entries<{ type: string; description?: string; default?: unknown }>(schema.properties)) {
        expect(p.description, `${e}.${k}`).toBeTruthy();
        if (p.type === 'boolean') expect(p.default, `${e}.${k}`).toBe(false);
      }
      expect(Object.keys(schema.properties)).toContain('dryRun');
      const dts = readFileSync(join(dir, e, 'schema.d.ts'), 'utf8');
      expect([...dts.matchAll(/^ {2}(\w+)\?:/gm)].map((m) => m[1])).toEqual(Object.keys(schema.properties));
    });
  }
});

describe('the command line, checked before any task runs', () => {
  it('reads the targets of run, the infix form, run-many and affected', () => {
    expect(parseCommandLine(argv('run', 'rocky-9:prod', '--approve=ab'))).toMatchObject({ command: 'run', targets: ['prod'] });
    expect(parseCommandLine(argv('rocky-9:iso-x86_64'))).toMatchObject({ command: 'run', targets: ['iso-x86_64'] });
    expect(parseCommandLine(argv('run-many', '-t', 'staging', 'prod', '-p', 'rocky-8,rocky-9')).targets).toEqual(['staging', 'prod']);
    expect(parseCommandLine(argv('affected', '--targets=finalize,filelist')).targets).toEqual(['finalize', 'filelist']);
  });

  it('rejects options the targets do not declare, release and arch among them', () => {
    expect(() => checkCommandLine(argv('run', 'rocky-9:prod', '--dryrun'))).toThrow(/unknown option --dryrun; nothing was run.*prod: --dryRun, --approve, --confirmDeletions/);
    expect(() => checkCommandLine(argv('run', 'rocky-9:staging', '--confirmDeletion'))).toThrow(/unknown option --confirmDeletion/);
    expect(() => checkCommandLine(argv('run', 'rocky-9:sync', '--release=rocky-8', '--dryRun'))).toThrow(/unknown option --release/);
    expect(() => checkCommandLine(argv('run', 'rocky-9:iso-x86_64', '--arch', 'aarch64'))).toThrow(/unknown option --arch/);
    // An option of one target but not of every target asked for.
    expect(() => checkCommandLine(argv('run-many', '-t', 'prod', 'filelist', '--approve=x'))).toThrow(/unknown option --approve \(not an option of every target asked for\)/);
  });

  it("accepts the targets' own options and Nx's", () => {
    expect(checkCommandLine(argv('run', 'rocky-9:prod', '--approve=abc', '--confirmDeletions', '--excludeTaskDependencies', '--outputStyle=static', '--parallel=2', '--skip-nx-cache', '--verbose'))).toEqual({ dryRun: false });
    expect(checkCommandLine(argv('run-many', '-t', 'finalize', '-p', 'rocky-8,rocky-9', '--nxBail', '-c', 'production'))).toEqual({ dryRun: false });
  });

  it('sees a dry run however it is spelt', () => {
    for (const a of [['--dryRun'], ['--dry-run'], ['--dryRun=true'], ['--dryRun', 'true']]) expect(checkCommandLine(argv('run', 'rocky-9:prod', ...a)), a.join(' ')).toEqual({ dryRun: true });
    for (const a of [['--dryRun=false'], ['--no-dryRun'], ['--dryRun', 'false'], []]) expect(checkCommandLine(argv('run', 'rocky-9:prod', ...a)), a.join(' ')).toEqual({ dryRun: false });
  });

  it('leaves runs of targets that are not ours to Nx', () => {
    expect(checkCommandLine(argv('run-many', '-t', 'test', '--coverage'))).toEqual({ dryRun: false });
  });
});
