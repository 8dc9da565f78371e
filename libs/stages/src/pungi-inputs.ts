// What a compose-<name> task's Nx hash takes besides the workspace (an Nx env input computed by
// the plugin's preTasksExecution hook like sync's upstream fingerprint, tools/executors/src
// fingerprint.ts): what pungi would make the compose from, and whether the compose the task last
// recorded is still whole here.
//   - the pungi-koji argv (config, compose type and label, target dir: produce or update);
//   - the config files it reads (the compose's config, its imports, the files of the checkout it
//     names) and the comps checkout;
//   - koji's content for the compose: `koji list-tagged --latest --inherit` of the config's
//     pkgset_koji_tag (libs/pungi); on a fixture site, the fixture koji's repomd.xml of the repos
//     the compose's variants read (the fixture's kojiState), so an Extras change reruns Extras only.
// A recorded compose that lost files (pruned, damaged) is a reason never to replay the record:
// the caller makes the fingerprint unique then, so the task reruns and pungi makes it anew.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ComposeLayout, PungiComposeLayout, loadRelease, loadSite, pungiProducerOf, pungiTreePath, type ComposeKind, type Release } from '@rocky/config';
import { kojiTagListing, producerArgv, pungiConfigInputs } from '@rocky/pungi';
import { composeDamage } from './compose-check';
import { readPungiMedia, readPungiRecord, type FileEntry, type PungiComposeRecord, type PungiMedia } from './manifests';

export interface ComposeFingerprint {
  fingerprint: string;
  /** What is wrong with the compose the task last recorded on this host (empty: whole, or none recorded). */
  damage: string[];
}

/** Every file under `dir` (but .git), relative, sorted. */
function checkoutFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && !relative(dir, e.parentPath).split('/').includes('.git'))
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

export async function pungiComposeFingerprint(root: string, release: string, compose: string, kind: ComposeKind): Promise<ComposeFingerprint> {
  const site = loadSite(root);
  const rel = loadRelease(root, release);
  const p = pungiProducerOf(site, rel);
  // The task fails on its own (no producer, no such compose): nothing to tell apart.
  if (!p || !p.composes[compose]) return { fingerprint: `${site.name}: ${release} has no pungi compose ${compose}`, damage: [] };
  if (p.runner.type !== 'local') throw new Error(`producers.${release}.runner is ${p.runner.type}: the pungi configs and koji are on ${p.runner.host}, not read from here`);
  const h = createHash('sha256');
  h.update(`${JSON.stringify(producerArgv(p, rel, { compose, kind }))}\n`);
  const config = join(p.config.path, p.composes[compose][kind]);
  const inputs = pungiConfigInputs(config, p.config.path);
  for (const f of inputs.files) h.update(`${relative(p.config.path, f)} ${readFileSync(f).length}\n`).update(readFileSync(f));
  if (p.comps) for (const f of checkoutFiles(p.comps.path)) h.update(`comps ${f}\n`).update(readFileSync(join(p.comps.path, f)));
  if (site.upstream.fixture) {
    // The fixture's pungi-koji reads the koji of PUNGI_FIXTURE_KOJI_ROOT, else the site's fixture.
    const kojiRoot = p.env.PUNGI_FIXTURE_KOJI_ROOT ?? process.env.PUNGI_FIXTURE_KOJI_ROOT ?? site.upstream.fixture.root;
    const fx = await import('@rocky/upstream-fixture');
    await fx.ensureFixture(fx.siteFixtureOptions(root, site.upstream.fixture, { root: kojiRoot }));
    h.update(fx.kojiState(kojiRoot, config));
  } else h.update(await kojiTagListing(inputs.kojiTags, { profile: inputs.kojiProfile, env: p.env }));
  return { fingerprint: `${site.name} ${rel.name} ${compose} ${kind} ${h.digest('hex')}`, damage: await recordedDamage(root, rel, compose, kind) };
}

/** What the compose the task last recorded lacks here: STATUS, metadata, a tree file or an ISO gone or resized. */
async function recordedDamage(root: string, rel: Release, compose: string, kind: ComposeKind): Promise<string[]> {
  const r = readPungiRecord(root, rel.name, compose, kind);
  if (!r) return [];
  const damage = await composeDamage({ layout: new ComposeLayout(r.dir, rel), composeId: r.composeId, trees: [], checksums: {}, metadata: true, producer: 'pungi' });
  if (damage.length) return damage;
  const lost = pungiComposeLosses(r, rel.arches.flatMap((a) => readPungiMedia(root, rel.name, compose, kind, a)));
  return lost.length ? [`${r.composeId} lost ${lost.length} files, e.g. ${lost.slice(0, 3).join(', ')}`] : [];
}

/** Files of a compose task's record (and its media) the compose no longer holds with their recorded size. */
export function pungiComposeLosses(record: PungiComposeRecord, media: PungiMedia[]): string[] {
  const compose = new PungiComposeLayout(record.dir).compose;
  const files: [string, FileEntry][] = [
    ...record.trees.flatMap((t) => [...t.packages, ...t.repodata].map((f): [string, FileEntry] => [`${t.path}/${f.path}`, f])),
    ...media.flatMap((m) => {
      const os = pungiTreePath({ variant: m.variant, kind: 'os', arch: m.arch });
      return [[m.path, m] as [string, FileEntry], ...(m.tree ?? []).map((f): [string, FileEntry] => [`${os}/${f.path}`, f])];
    }),
  ];
  return files.filter(([p, f]) => statSync(join(compose, p), { throwIfNoEntry: false })?.size !== f.size).map(([p]) => p);
}
