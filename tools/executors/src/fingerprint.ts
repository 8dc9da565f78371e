// Upstream state enters the hashes of sync, update-sync and cloud through fingerprints the
// plugin's preTasksExecution hook computes once per run, in the Nx process, and hands to Nx as
// environment variables (env inputs of those targets): a fingerprint of every upstream repomd.xml
// (`repos`) and the listing of the cloud image source (`cloud`), per release; and, for a release
// pungi makes, what pungi would make each compose task from (`compose`, one per compose and
// chain, libs/stages/src/pungi-inputs.ts). (As Nx `runtime` inputs they cost a Node process per
// command and hash, about 1 CPU-s each, most of it loading and parsing the config.)
// What a repos or cloud fingerprint reads (its plan, libs/stages/src/upstream-read.ts) is kept
// between runs beside the compiled build that made it (so a change of code makes it anew), with a
// digest of what it was made from: the workspace root, RELENG_SITE, the site file, every release file. While those are
// unchanged a run only reads the repomd.xml files (or GETs them) and the image listing: no config,
// YAML or fixture check. The fixture is then not rebuilt by the hook, only by the stages (sync
// ensures it): a fixture changed or removed meanwhile is read as it is, or is unavailable.
// A release's list of composes is kept the same way (a release without any costs nothing more);
// a compose fingerprint itself is made anew every run: it reads the pungi configs, koji and the
// compose the task recorded, none of which the digest covers.
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ComposeKind } from '@rocky/config';
// By path, not `@rocky/stages`: this runs at every nx start, and the package's index would load
// every stage (and their tools' wrappers) for the one reader needed here.
import { readFingerprint, type FingerprintPlan } from '../../../libs/stages/src/upstream-read';

export type Fingerprint = 'repos' | 'cloud';

/** The environment variable holding a release's fingerprint (an Nx env input of its targets). */
export const fingerprintVar = (release: string, what: Fingerprint) => `RELENG_${what === 'repos' ? 'UPSTREAM' : 'CLOUD'}_${release}`;

/** The environment variable holding the fingerprint of a pungi compose task (`compose-<name>`, `update-compose-<name>`; an Nx env input of it). */
export const composeFingerprintVar = (release: string, compose: string, kind: ComposeKind) => `RELENG_COMPOSE_${release}_${kind}_${compose}`;

/** A plan kept, with what it was made from: `inputs` digests the workspace root, RELENG_SITE, whether `probe` (the compose-host probe that decides the default site) exists, `siteFile` and the release files. */
interface KeptPlan<T = FingerprintPlan> {
  inputs: string;
  probe: string;
  siteFile: string;
  plan: T;
}

const sha256 = (...parts: (string | Buffer)[]) => parts.reduce((h, p) => h.update(p).update('\0'), createHash('sha256')).digest('hex');
const fileDigest = (f: string) => (existsSync(f) ? sha256(readFileSync(f)) : 'absent');

/** The releases (as the plugin's glob sees them), and a digest of every entry of releases/ with its release file. */
function releaseFiles(root: string): { names: string[]; digest: string } {
  const dir = join(root, 'releases');
  const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1));
  const names = entries.filter((d) => d.isDirectory() && existsSync(join(dir, d.name, 'release.yaml'))).map((d) => d.name);
  return { names, digest: sha256(...entries.map((d) => `${d.name} ${d.isDirectory()} ${fileDigest(join(dir, d.name, 'release.yaml'))}`)) };
}

/** Which fingerprints a run needs (cli.ts decides from the targets asked for). */
export interface Needed {
  /** repos and cloud: some task of the run hashes them, or runs after one that does. */
  upstream: boolean;
  /** compose: some task of the run may be or run after a pungi compose task. */
  composes: boolean;
}

/**
 * Every release's fingerprints: computed for the releases of the run (`run`; undefined: every
 * release), and for any other release a value different every time, so that a task of it hashed
 * by mistake is never a cache hit on an unknown upstream. Never fails: when upstream cannot be
 * read, the value is different every time too, so sync runs and reports why. So does a compose
 * whose recorded pungi compose is damaged or gone here: the compose task reruns.
 */
export async function fingerprintEnv(root: string, run?: string[], needed: Needed = { upstream: true, composes: true }): Promise<Record<string, string>> {
  const unknown = (why: string) => `${why} (${randomUUID()})`;
  const releases = releaseFiles(root);
  // The workspace's own build.js, as plugin.js loads it: the same module, so the build is not hashed again.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const kept = join(root, (require(join(root, 'tools/executors/build.js')) as { compiledBuild(root: string): string }).compiledBuild(root), 'fingerprints');
  // The root too: a plan names files by absolute path, and a workspace copied or moved elsewhere must read its own.
  const inputs = (k: Pick<KeptPlan, 'probe' | 'siteFile'>) => sha256(JSON.stringify([root, process.env.RELENG_SITE ?? null, existsSync(k.probe), k.siteFile]), fileDigest(k.siteFile), releases.digest);
  // Loaded only to make a plan or a compose fingerprint: they load the config schema, the YAML parser and the fixture.
  const config = () => import('@rocky/config');

  const keep = async <T>(release: string, what: string, make: () => Promise<T>): Promise<T> => {
    const file = join(kept, `${release}.${what}.json`);
    try {
      const k = JSON.parse(readFileSync(file, 'utf8')) as KeptPlan<T>;
      if (k.inputs === inputs(k)) return k.plan;
    } catch {
      // none kept yet
    }
    const { loadSite, COMPOSE_HOST_PROBE } = await config();
    let k: Pick<KeptPlan, 'probe' | 'siteFile'>;
    try {
      k = { probe: COMPOSE_HOST_PROBE, siteFile: loadSite(root).file };
    } catch {
      return make(); // not kept: a plan that needs the site says why it cannot be made (a compose list does not need it)
    }
    const made = { inputs: inputs(k), ...k }; // digested before the plan reads them: a change meanwhile makes it anew next time
    const p = await make();
    mkdirSync(kept, { recursive: true });
    writeFileSync(`${file}.${process.pid}`, JSON.stringify({ ...made, plan: p } satisfies KeptPlan<T>));
    renameSync(`${file}.${process.pid}`, file);
    return p;
  };
  const upstream = () => import('../../../libs/stages/src/upstream');
  const plan = (release: string, what: Fingerprint) => keep(release, what, async () => (await upstream())[what === 'repos' ? 'upstreamFingerprintPlan' : 'cloudFingerprintPlan'](root, release));
  const composes = (release: string) => keep(release, 'composes', async () => (await config()).loadRelease(root, release).composes);
  const composeFingerprint = async (release: string, compose: string, kind: ComposeKind) => {
    const { pungiComposeFingerprint } = await import('../../../libs/stages/src/pungi-inputs');
    const { fingerprint, damage } = await pungiComposeFingerprint(root, release, compose, kind);
    return damage.length ? unknown(`${fingerprint}; recorded compose not whole: ${damage[0]}`) : fingerprint;
  };

  const env: Record<string, string> = {};
  const inRun = (r: string) => !run || run.includes(r);
  const notInRun = () => unknown('not computed: no task of this release was asked for');
  const unavailable = (e: Error) => unknown(`unavailable: ${e.message}`);
  await Promise.all(
    releases.names.flatMap((r) => [
      ...(needed.upstream ? (['repos', 'cloud'] as const) : []).map(async (what) => {
        env[fingerprintVar(r, what)] = inRun(r) ? await plan(r, what).then(readFingerprint).catch(unavailable) : notInRun();
      }),
      (async () => {
        if (!needed.composes) return;
        // A release file that does not load stops Nx before any task (the plugin): nothing is hashed then.
        const names = await composes(r).catch(() => [] as string[]);
        await Promise.all(
          names.flatMap((c) =>
            (['produce', 'update'] as const).map(async (kind) => {
              env[composeFingerprintVar(r, c, kind)] = inRun(r) ? await composeFingerprint(r, c, kind).catch(unavailable) : notInRun();
            }),
          ),
        );
      })(),
    ]),
  );
  return env;
}
