// The plugin's targets as a pure function of a release file, the plugin as Nx loads it (compiled,
// its projects kept by content), the executors' schemas, and the command-line check the plugin
// runs before any task.
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { releaseTargets } from './plugin';
import { checkCommandLine, executorOf, needsComposes, needsUpstream, parseCommandLine } from './cli';
import { composeFingerprintVar } from './fingerprint';

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
      expect(c.executor, t).toBe(`./tools/executors:${executorOf(t)}`);
    }
  });

  it('hashes only its own arch for each iso target, and never caches publishing', () => {
    expect(targets['iso-aarch64'].inputs).toContainEqual({ dependentTasksOutputFiles: '**/sync/aarch64.json.gz', transitive: false });
    expect(targets['iso-aarch64'].dependsOn).toEqual(['sync']);
    for (const t of ['staging', 'prod', 'filelist']) expect(targets[t], t).toMatchObject({ cache: false, parallelism: false });
    expect(targets.staging.dependsOn).toEqual(['finalize']);
    expect(targets.filelist.dependsOn).toEqual(['prod']);
    for (const t of ['sync', 'iso-x86_64', 'iso-extra', 'cloud', 'finalize']) expect(targets[t].cache, t).toBe(true);
  });

  it('has an update chain (the weekly push) with no ISO, DVD, cloud or finalize task in it', () => {
    expect(targets['update-sync']).toMatchObject({ executor: './tools/executors:sync', cache: true });
    expect(targets['update-sync'].dependsOn).toBeUndefined();
    expect(targets['update-staging'].dependsOn).toEqual(['update-sync']);
    expect(targets['update-prod'].dependsOn).toEqual(['update-staging']);
    expect(targets['update-filelist'].dependsOn).toEqual(['update-prod']);
    for (const t of ['update-staging', 'update-prod', 'update-filelist', 'rollback']) expect(targets[t], t).toMatchObject({ cache: false, parallelism: false });
  });

  it('checks the site without caching and without running anything first', () => {
    expect(targets['check-site']).toMatchObject({ executor: './tools/executors:check-site', cache: false });
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
      for (const [t, kind] of [[`compose-${c}`, 'produce'], [`update-compose-${c}`, 'update']] as const) {
        expect(targets[t], t).toMatchObject({ executor: './tools/executors:compose', cache: true, outputs: [`{workspaceRoot}/dist/{projectName}/${t}`] });
        // What pungi would make it from, computed by the hook (fingerprint.ts) for this compose and chain alone.
        expect(targets[t].inputs, t).toContainEqual({ env: composeFingerprintVar('rocky-8', c, kind) });
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
    expect(targets['staging-Extras']).toMatchObject({ executor: './tools/executors:staging', cache: false, parallelism: false, dependsOn: ['compose-Extras'] });
    expect(targets['update-staging-Extras']).toMatchObject({ executor: './tools/executors:staging', dependsOn: ['update-compose-Extras'] });
    expect(executorOf('update-staging-Rocky-devel')).toBe('staging');
    expect(checkCommandLine(argv('run', 'rocky-8:compose-Extras', '--dryRun'))).toEqual({ dryRun: true });
    expect(() => checkCommandLine(argv('run', 'rocky-8:compose-Extras', '--label=RC-8.9'))).toThrow(/unknown option --label/);
  });

  it('a release without composes has none of these targets, nor sign-repos unless it signs its repodata', () => {
    expect(Object.keys(releaseTargets(root, 'releases/rocky-9/release.yaml').targets).filter((t) => /compose-|staging-|sign-repos/.test(t))).toEqual([]);
  });

  it('sign-repos (sign-repos-only): a publishing target that runs nothing first', () => {
    expect(targets['sign-repos']).toMatchObject({ executor: './tools/executors:sign-repos', cache: false, parallelism: false, dependsOn: [] });
    expect(executorOf('sign-repos')).toBe('sign-repos');
  });
});

describe('the plugin as Nx loads it (tools/executors/plugin.js)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rocky-plugin-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  for (const f of ['libs', 'apps', 'tools', 'releases', 'tsconfig.base.json', 'package.json']) cpSync(join(root, f), join(dir, f), { recursive: true, filter: (p) => !p.includes('node_modules') });
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const plugin = require(join(dir, 'tools/executors/plugin.js')) as { createNodesV2: [string, (files: string[], options: unknown, context: unknown) => Promise<[string, { projects: Record<string, { targets: Record<string, unknown> }> }][]>] };
  const files = readdirSync(join(dir, 'releases')).map((r) => `releases/${r}/release.yaml`);
  const nodes = () => plugin.createNodesV2[1](files, {}, { workspaceRoot: dir, nxJsonConfiguration: {} });
  const cached = () => readdirSync(join(dir, '.nx/workspace-data/releng-build'), { recursive: true, encoding: 'utf8' }).filter((f) => /\/nodes\/[0-9a-f]+\.json$/.test(f));
  const targetsOf = (r: Awaited<ReturnType<typeof nodes>>, name: string) => Object.keys(r.find(([f]) => f === `releases/${name}/release.yaml`)![1].projects[`releases/${name}`].targets).sort();

  it('makes the same projects as the plugin, and keeps them by content', async () => {
    expect(plugin.createNodesV2[0]).toBe('releases/*/release.yaml');
    const first = await nodes();
    expect(targetsOf(first, 'rocky-9')).toEqual(Object.keys(releaseTargets(root, 'releases/rocky-9/release.yaml').targets).sort());
    expect(cached()).toHaveLength(1);
    // What is kept is what a later start gets: nothing computed anew.
    const file = join(dir, '.nx/workspace-data/releng-build', cached()[0]);
    writeFileSync(file, readFileSync(file, 'utf8').replaceAll('"check-site"', '"kept-check-site"'));
    expect(targetsOf(await nodes(), 'rocky-9')).toContain('kept-check-site');
  });

  it('sees a changed release file, and a mistake across release files still stops every command', async () => {
    const release = join(dir, 'releases/rocky-9/release.yaml');
    writeFileSync(release, readFileSync(release, 'utf8').replace(/, s390x\b/g, ''));
    const after = targetsOf(await nodes(), 'rocky-9');
    expect(after).not.toContain('iso-s390x');
    expect(after).not.toContain('kept-check-site');
    expect(cached()).toHaveLength(2);
    symlinkSync(join(dir, 'releases/rocky-9'), join(dir, 'releases/rocky-9-link'));
    await expect(nodes()).rejects.toThrow(/releases\/rocky-9-link.*a symlink/s);
    rmSync(join(dir, 'releases/rocky-9-link'));
    expect(existsSync(join(dir, 'releases/rocky-9-link'))).toBe(false);
  });
});

describe('executor schemas', () => {
  const dir = join(__dirname, 'executors');
  const executors = JSON.parse(readFileSync(join(__dirname, '../executors.json'), 'utf8')).executors as Record<string, { schema: string; implementation: string }>;
  it('every executor of executors.json has a folder with schema.json, schema.d.ts and the executor.ts that executor.js runs compiled', () => {
    expect(Object.keys(executors).sort()).toEqual(readdirSync(dir).sort());
    for (const [e, { implementation }] of Object.entries(executors)) {
      expect(implementation, e).toBe('./executor.js');
      expect(existsSync(join(dir, e, 'executor.ts')), e).toBe(true);
    }
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

  it('reads the projects asked for; a pattern or affected means every project', () => {
    expect(parseCommandLine(argv('run', 'rocky-9:finalize')).projects).toEqual(['rocky-9']);
    expect(parseCommandLine(argv('rocky-9-beta:sync')).projects).toEqual(['rocky-9-beta']);
    expect(parseCommandLine(argv('run-many', '-t', 'finalize', '-p', 'rocky-8,rocky-9')).projects).toEqual(['rocky-8', 'rocky-9']);
    expect(parseCommandLine(argv('run-many', '-p', 'rocky-8', 'rocky-9', '-t', 'finalize')).projects).toEqual(['rocky-8', 'rocky-9']);
    expect(parseCommandLine(argv('run-many', '-t', 'finalize', '--projects=rocky-9')).projects).toEqual(['rocky-9']);
    expect(parseCommandLine(argv('run-many', '-t', 'finalize')).projects).toBeUndefined();
    expect(parseCommandLine(argv('run-many', '-t', 'finalize', '-p', 'rocky-*')).projects).toBeUndefined();
    expect(parseCommandLine(argv('run-many', '-t', 'finalize', '-p', 'tag:type:release')).projects).toBeUndefined();
    expect(parseCommandLine(argv('affected', '-t', 'finalize')).projects).toBeUndefined();
  });

  it('knows which targets hash an upstream fingerprint or run after one that does', () => {
    for (const t of ['sync', 'cloud', 'iso-x86_64', 'iso-extra', 'finalize', 'staging', 'prod', 'filelist', 'update-sync', 'update-staging', 'update-prod', 'update-filelist']) expect(needsUpstream(t), t).toBe(true);
    for (const t of ['check-site', 'rollback', 'sign-repos', 'compose-Extras', 'update-compose-Extras', 'staging-Extras', 'update-staging-Extras', 'test', 'typecheck']) expect(needsUpstream(t), t).toBe(false);
  });

  it('knows which targets may hash a pungi compose fingerprint or run after one that does', () => {
    for (const t of ['compose-Extras', 'update-compose-Extras', 'staging-Extras', 'update-staging-Extras', 'sync', 'iso-x86_64', 'iso-extra', 'cloud', 'finalize', 'staging', 'prod', 'filelist', 'update-sync']) expect(needsComposes(t), t).toBe(true);
    for (const t of ['check-site', 'rollback', 'sign-repos', 'test', 'typecheck']) expect(needsComposes(t), t).toBe(false);
  });

  it('leaves runs of targets that are not ours to Nx', () => {
    expect(checkCommandLine(argv('run-many', '-t', 'test', '--coverage'))).toEqual({ dryRun: false });
  });
});
