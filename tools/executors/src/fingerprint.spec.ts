// The compiled build Nx loads the plugins from (build.js): a plain `node` loads every module the
// plugins and the hook can reach, and it is rebuilt only when a source changes. The upstream
// fingerprints the hook computes per run (fingerprint.ts): an upstream change changes them, the
// releases not in the run never get a value a cache hit could match, nor does an unreadable site;
// what they read is kept while the site and release files are unchanged, and only then. The
// compose fingerprints of a release pungi makes: one per compose and chain, changed by koji's
// content for that compose only (a recorded compose that lost files: test/e2e/rocky8.test.ts).
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSync } from '@rocky/exec';
import { updatePackage } from '@rocky/upstream-fixture';
import { composeFingerprintVar, fingerprintEnv, fingerprintVar } from './fingerprint';
import { sharedFixture } from '../../../test/helpers/fixture';
import { linkFixture } from '../../../test/helpers/workspace';

const repo = join(__dirname, '../../..');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { compiledBuild } = require('../build') as { compiledBuild(root: string): string };

function workspaceCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rocky-build-'));
  for (const f of ['libs', 'apps', 'tools', 'releases', 'sites', 'tsconfig.base.json', 'package.json']) cpSync(join(repo, f), join(dir, f), { recursive: true, filter: (p) => !p.includes('node_modules') });
  symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return dir;
}

describe('compiledBuild', () => {
  const dir = workspaceCopy();
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('compiles to CommonJS that plain node loads, with every module the plugins, the hook and the executors can import', () => {
    const build = join(dir, compiledBuild(dir));
    expect(build).toMatch(/\/\.nx\/workspace-data\/releng-build\/[0-9a-f]{16}$/);
    // The plugins and the hook, and what the hook imports lazily (the compose fingerprint, the fixture, rpm-repo for real upstreams, the store for buckets).
    const modules = ['tools/executors/src/plugin.js', 'tools/executors/src/projects.js', 'tools/executors/src/cli.js', 'libs/stages/src/upstream.js', 'libs/stages/src/pungi-inputs.js', 'apps/upstream-fixture/src/index.js', 'libs/rpm-repo/src/index.js', 'libs/store/src/index.js'];
    // What Nx loads: the plugins and the executor, and the executors it runs (each imports every stage).
    const executors = readdirSync(join(dir, 'tools/executors/src/executors')).map((e) => `tools/executors/src/executors/${e}/executor.js`);
    modules.push(...executors);
    const loaders = ['tools/executors/plugin.js', 'tools/executors/projects.js', 'tools/executors/executor.js'].map((m) => join(dir, m));
    const script = `for (const m of ${JSON.stringify([...modules.map((m) => join(build, m)), ...loaders])}) require(m); console.log('loaded')`;
    const out = runSync([process.execPath, '-e', script], { cwd: dir, env: { ...process.env, NODE_OPTIONS: '' } }).toString();
    expect(out.trim()).toBe('loaded');
  });

  it('reuses a build of the same sources and builds anew when one changes', () => {
    const first = compiledBuild(dir);
    const mtime = statSync(join(dir, first)).mtimeMs;
    // A new process (the memo is per process) finds the same build and leaves it alone.
    const build = () => runSync([process.execPath, '-e', `console.log(require(${JSON.stringify(join(dir, 'tools/executors/build.js'))}).compiledBuild(${JSON.stringify(dir)}))`]).toString().trim();
    const again = build();
    expect(again).toBe(first);
    expect(statSync(join(dir, first)).mtimeMs).toBe(mtime);
    appendFileSync(join(dir, 'libs/config/src/index.ts'), '\n// changed\n');
    const second = build();
    expect(second).not.toBe(first);
    expect(statSync(join(dir, second, 'libs/config/src/index.js')).isFile()).toBe(true);
  });
});

describe('fingerprintEnv', () => {
  let dir: string;
  const site = process.env.RELENG_SITE;
  beforeAll(async () => {
    dir = workspaceCopy();
    mkdirSync(join(dir, '.releng'));
    linkFixture(await sharedFixture(), join(dir, '.releng/upstream'));
    process.env.RELENG_SITE = 'local';
  });
  afterAll(() => {
    if (site === undefined) delete process.env.RELENG_SITE;
    else process.env.RELENG_SITE = site;
    rmSync(dir, { recursive: true, force: true });
  });

  it("computes the run's releases; any other release gets a value no hash can meet twice", async () => {
    const [a, b] = [await fingerprintEnv(dir, ['rocky-9']), await fingerprintEnv(dir, ['rocky-9'])];
    expect(a[fingerprintVar('rocky-9', 'repos')]).toMatch(/^local [0-9a-f]{64}$/);
    expect(a[fingerprintVar('rocky-9', 'cloud')]).toMatch(/^[0-9a-f]{64}$/);
    for (const what of ['repos', 'cloud'] as const) {
      expect(b[fingerprintVar('rocky-9', what)]).toBe(a[fingerprintVar('rocky-9', what)]);
      expect(a[fingerprintVar('rocky-8', what)]).toMatch(/^not computed/);
      expect(b[fingerprintVar('rocky-8', what)]).not.toBe(a[fingerprintVar('rocky-8', what)]);
    }
    // No release list: every release is computed.
    expect((await fingerprintEnv(dir))[fingerprintVar('rocky-8', 'repos')]).toMatch(/^local [0-9a-f]{64}$/);
  });

  it('one package changed upstream changes the repos fingerprint, not the cloud one', async () => {
    const before = await fingerprintEnv(dir, ['rocky-9']);
    await updatePackage({ root: join(dir, '.releng/upstream'), project: 'rocky-9', repo: 'BaseOS', arch: 'aarch64', name: 'bash' });
    const after = await fingerprintEnv(dir, ['rocky-9']);
    expect(after[fingerprintVar('rocky-9', 'repos')]).not.toBe(before[fingerprintVar('rocky-9', 'repos')]);
    expect(after[fingerprintVar('rocky-9', 'cloud')]).toBe(before[fingerprintVar('rocky-9', 'cloud')]);
  });

  it('keeps what a fingerprint reads while the site and release files are unchanged, and only then', async () => {
    const before = (await fingerprintEnv(dir, ['rocky-9']))[fingerprintVar('rocky-9', 'repos')];
    const keptDir = join(dir, compiledBuild(dir), 'fingerprints');
    expect(readdirSync(keptDir)).toEqual(expect.arrayContaining(['rocky-9.cloud.json', 'rocky-9.repos.json']));
    // A later run reads what the kept plan names, and makes nothing anew.
    const kept = join(keptDir, 'rocky-9.repos.json');
    writeFileSync(kept, readFileSync(kept, 'utf8').replaceAll('/repodata/repomd.xml', '/repodata/gone.xml'));
    expect((await fingerprintEnv(dir, ['rocky-9']))[fingerprintVar('rocky-9', 'repos')]).toMatch(/^unavailable: ENOENT.*gone\.xml/s);
    // A changed release file (any: the fixture is built for every release) makes it anew.
    appendFileSync(join(dir, 'releases/rocky-8/release.yaml'), '\n# changed\n');
    expect((await fingerprintEnv(dir, ['rocky-9']))[fingerprintVar('rocky-9', 'repos')]).toBe(before);
    writeFileSync(kept, readFileSync(kept, 'utf8').replaceAll('/repodata/repomd.xml', '/repodata/gone.xml'));
    appendFileSync(join(dir, 'sites/local.yaml'), '\n# changed\n');
    expect((await fingerprintEnv(dir, ['rocky-9']))[fingerprintVar('rocky-9', 'repos')]).toBe(before);
  });

  it('a workspace copied to another path reads its own upstream, not the kept plan of the one it was copied from', async () => {
    const before = (await fingerprintEnv(dir, ['rocky-9']))[fingerprintVar('rocky-9', 'repos')];
    // The copy: every file as it is (the compiled build with the plans the original kept too), its own fixture.
    const moved = mkdtempSync(join(tmpdir(), 'rocky-moved-'));
    try {
      cpSync(dir, moved, { recursive: true, verbatimSymlinks: true, filter: (p) => p !== join(dir, '.releng') });
      mkdirSync(join(moved, '.releng'));
      linkFixture(join(dir, '.releng/upstream'), join(moved, '.releng/upstream'));
      expect((await fingerprintEnv(moved, ['rocky-9']))[fingerprintVar('rocky-9', 'repos')]).toBe(before);
      await updatePackage({ root: join(moved, '.releng/upstream'), project: 'rocky-9', repo: 'BaseOS', arch: 'x86_64', name: 'bash' });
      expect((await fingerprintEnv(moved, ['rocky-9']))[fingerprintVar('rocky-9', 'repos')]).not.toBe(before);
      expect((await fingerprintEnv(dir, ['rocky-9']))[fingerprintVar('rocky-9', 'repos')]).toBe(before);
    } finally {
      rmSync(moved, { recursive: true, force: true });
    }
  });

  it('a release pungi makes gets one compose fingerprint per compose and chain; koji changing Extras changes Extras\' only', async () => {
    const composes = ['Plus', 'Extras', 'Rocky-devel', 'NFV', 'Rocky'];
    const vars = composes.flatMap((c) => (['produce', 'update'] as const).map((k) => composeFingerprintVar('rocky-8', c, k)));
    const before = await fingerprintEnv(dir, ['rocky-8']);
    for (const v of vars) expect(before[v], v).toMatch(/^local rocky-8 \S+ (produce|update) [0-9a-f]{64}$/);
    expect(new Set(vars.map((v) => before[v])).size).toBe(vars.length);
    // Not in the run: a value no hash meets twice. A release without composes has none.
    expect((await fingerprintEnv(dir, ['rocky-9']))[composeFingerprintVar('rocky-8', 'Extras', 'produce')]).toMatch(/^not computed/);
    expect(Object.keys(before).filter((v) => v.startsWith('RELENG_COMPOSE_') && !v.startsWith('RELENG_COMPOSE_rocky-8_'))).toEqual([]);
    // Only the targets' needs are computed.
    expect(Object.keys(await fingerprintEnv(dir, ['rocky-8'], { upstream: false, composes: true })).every((v) => v.startsWith('RELENG_COMPOSE_'))).toBe(true);
    expect(Object.keys(await fingerprintEnv(dir, ['rocky-8'], { upstream: true, composes: false })).some((v) => v.startsWith('RELENG_COMPOSE_'))).toBe(false);
    await updatePackage({ root: join(dir, '.releng/upstream'), project: 'rocky-8', repo: 'extras', arch: 'x86_64', name: 'extras-libs' });
    const after = await fingerprintEnv(dir, ['rocky-8']);
    expect(after[composeFingerprintVar('rocky-8', 'Extras', 'produce')]).not.toBe(before[composeFingerprintVar('rocky-8', 'Extras', 'produce')]);
    for (const c of composes.filter((x) => x !== 'Extras')) expect(after[composeFingerprintVar('rocky-8', c, 'produce')], c).toBe(before[composeFingerprintVar('rocky-8', c, 'produce')]);
  });

  it('an unreadable site gives a value different every time, naming why, and does not throw', async () => {
    process.env.RELENG_SITE = 'no-such-site';
    try {
      const [a, b] = [await fingerprintEnv(dir, ['rocky-9']), await fingerprintEnv(dir, ['rocky-9'])];
      expect(a[fingerprintVar('rocky-9', 'repos')]).toMatch(/^unavailable: .*no such site file/s);
      expect(b[fingerprintVar('rocky-9', 'repos')]).not.toBe(a[fingerprintVar('rocky-9', 'repos')]);
      // A compose task too: its fingerprint is there (the compose list needs no site), never the same twice.
      const extras = composeFingerprintVar('rocky-8', 'Extras', 'produce');
      const [c, d] = [await fingerprintEnv(dir, ['rocky-8']), await fingerprintEnv(dir, ['rocky-8'])];
      expect(c[extras]).toMatch(/^unavailable: .*no such site file/s);
      expect(d[extras]).not.toBe(c[extras]);
    } finally {
      process.env.RELENG_SITE = 'local';
    }
  });
});
