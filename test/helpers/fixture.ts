// Shared test plumbing: one fixture upstream built per test file, a fixture server the test
// controls (so it can read the request log and inject faults), and a site that points at it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRelease, loadSite, type Site } from '@rocky/config';
import { ensureFixture, serveFixture, type FixtureServer } from '@rocky/upstream-fixture';
import { runStage, stageContext, stageForTarget, type Outcome, type StageContext, type StageContextInput } from '@rocky/stages';
import { linkFixture, repoRoot } from './workspace';

/** A fixture built once per machine under os.tmpdir() and hardlink-copied per test (it is read-only to tests that do not mutate it). */
export async function sharedFixture(): Promise<string> {
  const root = join(tmpdir(), 'rocky-fixture-shared');
  await ensureFixture({ workspaceRoot: repoRoot, root, log: () => {} });
  return root;
}

/** A private, mutable copy of the shared fixture (hardlinks; mutations write new files). */
export async function privateFixture(): Promise<{ root: string; cleanup(): void }> {
  const shared = await sharedFixture();
  const dir = mkdtempSync(join(tmpdir(), 'rocky-fx-'));
  const root = join(dir, 'upstream');
  linkFixture(shared, root);
  return { root, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface TestSite {
  dir: string;
  site: Site;
  server: FixtureServer;
  /** A stage context of `release` for `target` (`sync`, `iso-x86_64`, `staging`…). */
  ctx(release: string, target: string, extra?: Partial<StageContextInput>): StageContext;
  /** Runs `target`'s stage through the runner: the result of a real run (a dry run's outcome holds the plan). */
  run<R = any>(target: string, release: string, extra?: Partial<StageContextInput>): Promise<R>;
  /** The runner's outcome: `{ dryRun, plan, result? }`. */
  outcome(target: string, release: string, extra?: Partial<StageContextInput>): Promise<Outcome<any, any>>;
  close(): Promise<void>;
}

/**
 * A site like `local`, but rooted in a temp dir and with a plain URL upstream and errata source:
 * the fixture server is the test's, so requests can be counted and faults injected.
 */
export async function testSite(fixtureRoot: string, overrides: Partial<Site> = {}): Promise<TestSite> {
  const dir = mkdtempSync(join(tmpdir(), 'rocky-site-'));
  const server = await serveFixture({ root: fixtureRoot });
  const local = loadSite(repoRoot, 'local');
  const site: Site = {
    ...local,
    roots: { compose: join(dir, 'compose'), staging: join(dir, 'staging'), production: join(dir, 'production') },
    upstream: { url: `${server.url}/v1/projects/{project}/repo/hashed-{repo}/{arch}`, verifySignature: true, gpgKey: join(fixtureRoot, 'RPM-GPG-KEY-fixture'), sigKeys: join(fixtureRoot, 'keys') },
    store: { type: 'local', path: join(dir, 'store') },
    state: join(dir, 'state'),
    signing: { gnupgHome: join(fixtureRoot, 'gnupg'), keyId: local.signing!.keyId },
    cloud: { source: { type: 'dir', path: join(fixtureRoot, 'images') } },
    // The fixture's Apollo, on the test's server.
    errata: { type: 'url', url: `${server.url}/api/v3/updateinfo/{product}/{major}/{repo}/updateinfo.xml?arch={arch}` },
    // The local site's pungi producer writes into the workspace: a test site reposyncs unless it says otherwise.
    producers: {},
    ...overrides,
  };
  const ctx = (release: string, target: string, extra: Partial<StageContextInput> = {}) =>
    stageContext({ root: join(dir, 'ws'), project: release, target, release: loadRelease(repoRoot, release), site, dryRun: false, ...extra });
  return {
    dir,
    site,
    server,
    ctx,
    outcome: (target, release, extra) => {
      const c = ctx(release, target, extra);
      return stageForTarget(target, c).then((s) => runStage(s, c));
    },
    run: async (target, release, extra) => {
      const c = ctx(release, target, extra);
      const o = await runStage(await stageForTarget(target, c), c);
      return (o.dryRun ? o.plan : o.result) as never;
    },
    close: async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const rpmGets = (server: FixtureServer) => server.requests.filter((r) => r.method === 'GET' && r.path.endsWith('.rpm'));
