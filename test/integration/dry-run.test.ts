// Every stage of rocky-9, rocky-8 and a SIG release with a dry run, through the one runner, on an empty site
// and on a site where the compose is up to date: each prints its plan, and nothing under the
// site's roots, the store, the state dir or the workspace changes.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { releaseTargets } from '../../tools/executors/src/plugin';
import { privateFixture, testSite, type TestSite } from '../helpers/fixture';
import { listing } from '../helpers/listing';
import { repoRoot } from '../helpers/workspace';
import { join } from 'node:path';

let fixture: { root: string; cleanup(): void };
let t: TestSite;

beforeAll(async () => {
  fixture = await privateFixture();
  t = await testSite(fixture.root);
});
afterAll(async () => {
  await t?.close();
  fixture?.cleanup();
});

/** The targets the plugin gives a release, but the ones that only read (check-site) or need an argument (rollback). */
const targetsOf = (release: string) =>
  Object.keys(releaseTargets(repoRoot, join(repoRoot, 'releases', release, 'release.yaml')).targets)
    .filter((x) => x !== 'check-site' && x !== 'rollback')
    .sort();

/** Dry-runs every target of `release`: each either prints a plan or refuses with a message; nothing changes. */
async function dryRunAll(release: string) {
  const before = listing(t.dir);
  const printed = vi.spyOn(console, 'log').mockImplementation(() => {});
  const seen: Record<string, string> = {};
  try {
    for (const target of targetsOf(release)) {
      printed.mockClear();
      try {
        const o = await t.outcome(target, release, { dryRun: true });
        expect(o.dryRun, target).toBe(true);
        const lines = printed.mock.calls.map((c) => String(c[0]));
        expect(lines.some((l) => l.startsWith(`[${release}:${target}] plan: `)), `${target}: ${lines.join('\n')}`).toBe(true);
        seen[target] = 'planned';
      } catch (e) {
        // A plan may refuse (nothing staged yet to promote): with a message, and still changing nothing.
        expect((e as Error).message, target).toMatch(/\S/);
        seen[target] = 'refused';
      }
    }
  } finally {
    printed.mockRestore();
  }
  expect(listing(t.dir)).toEqual(before);
  return seen;
}

/** The targets whose plan refused. */
const refused = (seen: Record<string, string>) => Object.keys(seen).filter((x) => seen[x] === 'refused').sort();

describe('a dry run of every stage changes nothing', () => {
  it('on an empty site: rocky-9 and rocky-8 plan every target but the ones with nothing to work on, nothing is created', async () => {
    // Refused: an update needs a finished produce compose; rocky-8's pungi targets need a pungi
    // producer, which this test site does not have (it reposyncs rocky-8), as sign-repos needs a staged tree.
    expect(refused(await dryRunAll('rocky-9'))).toEqual(['update-staging', 'update-sync']);
    const r8 = refused(await dryRunAll('rocky-8'));
    expect(r8.filter((x) => !/^(update-)?(compose|staging)-/.test(x))).toEqual(['sign-repos', 'update-staging', 'update-sync']);
    expect(r8.filter((x) => /^(update-)?(compose|staging)-/.test(x))).toHaveLength(4 * 5);
    // A SIG release: sync and the publishing targets all plan (as rocky-9's do on an empty site).
    expect(refused(await dryRunAll('sig-cloud-9'))).toEqual([]);
  });

  it('on a site whose compose is up to date: every target of rocky-9 plans but staging (not finalized) and update-sync, nothing changes', async () => {
    await t.run('sync', 'rocky-9');
    expect(refused(await dryRunAll('rocky-9'))).toEqual(['staging', 'update-sync']);
  });
});
