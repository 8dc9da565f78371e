// pungi-koji's command line, built in one place and checked against pungi's own argparse rules
// (pungi/scripts/pungi_koji.py, 4.3.x) before anything runs, so a bad option fails here with a
// clear message rather than on the compose host after a checkout and a login.
import { PUNGI_LABEL_MILESTONES, pungiLabel, type PungiComposeType, type PungiProducer, type Release } from '@rocky/config';
import { join } from 'node:path';

/** pungi's phase names (PHASES_NAMES: every phase class's `name`, plus the removed `productimg`), the choices of --skip-phase/--just-phase. */
export const PUNGI_PHASES = [
  'buildinstall',
  'createiso',
  'createrepo',
  'extra_files',
  'extra_isos',
  'gather',
  'image_build',
  'image_checksum',
  'image_container',
  'init',
  'live_images',
  'live_media',
  'osbs',
  'osbuild',
  'ostree',
  'ostree_installer',
  'pkgset',
  'repoclosure',
  'test',
  'weaver',
  'productimg',
] as const;
export type PungiPhase = (typeof PUNGI_PHASES)[number];

/** The compose type flags, one per type (argparse store_const into one dest: the last given wins, so we give exactly one). */
export const COMPOSE_TYPE_FLAGS: Record<PungiComposeType, string> = {
  production: '--production',
  nightly: '--nightly',
  test: '--test',
  ci: '--ci',
  development: '--development',
};

const LABEL_RE = new RegExp(`^(${PUNGI_LABEL_MILESTONES.join('|')})-\\d+\\.\\d+$`);

export interface PungiKojiOptions {
  /** How pungi-koji is started; default `['pungi-koji']`. */
  command?: string[];
  /** --config: the compose's config file. */
  config: string;
  /**
   * --target-dir: pungi creates `<short>-<version>[-<type>]-<date><suffix>.<respin>` in it (the
   * directory must exist). Exactly one of targetDir and composeDir.
   */
  targetDir?: string;
  /** --compose-dir: this very directory, reused if it exists ("DANGEROUS!" says pungi). */
  composeDir?: string;
  composeType: PungiComposeType;
  /** --label `<Milestone>-X.Y` (`RC-8.10`, `Update-8.10`); a production compose needs one, or noLabel. */
  label?: string;
  /** --no-label: a production compose without a label. */
  noLabel?: boolean;
  /** --old-composes, repeated: where pungi looks for a previous compose to reuse. */
  oldComposes?: string[];
  /** --no-latest-link: pungi makes no latest link. */
  noLatestLink?: boolean;
  /** --latest-link-status, repeated: link only when the compose ends in one of these. */
  latestLinkStatus?: ('FINISHED' | 'FINISHED_INCOMPLETE')[];
  skipPhases?: PungiPhase[];
  justPhases?: PungiPhase[];
  /** --notification-script, repeated. */
  notificationScripts?: string[];
  /** --koji-event: pin the package set to a koji event id, or to the event of a compose (its path). */
  kojiEvent?: number | string;
  /** --print-output-dir: pungi prints `Compose dir: <path>` before it starts. */
  printOutputDir?: boolean;
  quiet?: boolean;
}

function fail(msg: string): never {
  throw new Error(`pungi-koji: ${msg}`);
}

function phases(list: readonly string[] | undefined, flag: string): string[] {
  const out: string[] = [];
  for (const p of list ?? []) {
    if (!(PUNGI_PHASES as readonly string[]).includes(p)) fail(`${flag} ${p}: not a pungi phase (one of ${PUNGI_PHASES.join(', ')})`);
    out.push(flag, p);
  }
  return out;
}

/** A value for an option given as `--opt value`: one that starts with `-` would be read as an option. */
function value(v: string, what: string): string {
  if (!v) fail(`${what} is empty`);
  if (v.startsWith('-')) fail(`${what} ${JSON.stringify(v)} starts with '-' (argparse would read it as an option)`);
  return v;
}

/**
 * The argv of one pungi-koji run. Pure: checks what pungi checks before composing (one compose
 * type, label format, a production compose's label, target vs compose dir, phase names, the
 * phases gather/createrepo need) and refuses contradictions pungi would silently resolve.
 */
export function pungiKojiArgv(o: PungiKojiOptions): string[] {
  const command = o.command ?? ['pungi-koji'];
  if (!command.length || !command[0]) fail('the command is empty');
  if (!!o.targetDir === !!o.composeDir) fail('give exactly one of targetDir (--target-dir) and composeDir (--compose-dir)');
  if (!(o.composeType in COMPOSE_TYPE_FLAGS)) fail(`unknown compose type ${JSON.stringify(o.composeType)} (one of ${Object.keys(COMPOSE_TYPE_FLAGS).join(', ')})`);
  if (o.label !== undefined && !LABEL_RE.test(o.label)) fail(`label ${JSON.stringify(o.label)} is not <Milestone>-X.Y with a milestone of ${PUNGI_LABEL_MILESTONES.join(', ')} (productmd verify_label)`);
  if (o.label !== undefined && o.noLabel) fail('label and noLabel contradict each other');
  if (o.composeType === 'production' && o.label === undefined && !o.noLabel) fail('a production compose needs a label (or noLabel), as pungi requires');
  const skip = o.skipPhases ?? [];
  const just = o.justPhases ?? [];
  // pungi's check_skip_phases: pkgset feeds gather, gather feeds createrepo.
  for (const [needed, by] of [['pkgset', 'gather'], ['gather', 'createrepo']] as const) {
    if ((skip.includes(needed) && !skip.includes(by)) || (just.includes(by) && !just.includes(needed))) fail(`the ${needed} phase is skipped but the ${by} phase needs it`);
  }
  for (const p of skip) if (just.includes(p)) fail(`phase ${p} is both skipped and the only one to run`);
  if (o.noLatestLink && o.latestLinkStatus?.length) fail('noLatestLink and latestLinkStatus contradict each other');
  if (o.kojiEvent !== undefined && typeof o.kojiEvent === 'number' && (!Number.isSafeInteger(o.kojiEvent) || o.kojiEvent < 0)) fail(`koji event ${o.kojiEvent} is not an event id`);

  const argv = [...command, '--config', value(o.config, 'config')];
  argv.push(...(o.targetDir ? ['--target-dir', value(o.targetDir, 'targetDir')] : ['--compose-dir', value(o.composeDir!, 'composeDir')]));
  argv.push(COMPOSE_TYPE_FLAGS[o.composeType]);
  if (o.label !== undefined) argv.push('--label', o.label);
  if (o.noLabel) argv.push('--no-label');
  for (const d of o.oldComposes ?? []) argv.push('--old-composes', value(d, 'oldComposes entry'));
  argv.push(...phases(skip, '--skip-phase'), ...phases(just, '--just-phase'));
  if (o.kojiEvent !== undefined) argv.push('--koji-event', value(String(o.kojiEvent), 'kojiEvent'));
  for (const s of o.notificationScripts ?? []) argv.push('--notification-script', value(s, 'notification script'));
  if (o.noLatestLink) argv.push('--no-latest-link');
  for (const s of o.latestLinkStatus ?? []) argv.push('--latest-link-status', s);
  if (o.printOutputDir) argv.push('--print-output-dir');
  if (o.quiet) argv.push('--quiet');
  return argv;
}

export type ComposeKind = 'produce' | 'update';

export interface ProducerRun {
  /** The compose (its release_short, a key of the producer's `composes`): `Rocky`, `Extras`. */
  compose: string;
  kind: ComposeKind;
  /** Defaults to the release's label for `kind` (pungiLabel). */
  label?: string;
  skipPhases?: PungiPhase[];
  justPhases?: PungiPhase[];
  kojiEvent?: number | string;
}

/**
 * The pungi-koji argv for one compose of a release, from the site's producer. pungi owns its
 * `latest-<short>-<version>` link (the Rocky 8 SOP's composes each make theirs); it moves it only
 * for a compose that finished, never for a DOOMED or TERMINATED one. The pipeline reads the
 * compose by the directory pungi prints, not by the link.
 */
export function producerArgv(p: PungiProducer, rel: Pick<Release, 'name' | 'major' | 'minor' | 'type'>, run: ProducerRun): string[] {
  const files = p.composes[run.compose];
  if (!files) throw new Error(`${rel.name}: the site's producer has no compose ${run.compose} (it has ${Object.keys(p.composes).join(', ')})`);
  return pungiKojiArgv({
    command: p.command,
    config: join(p.config.path, files[run.kind]),
    targetDir: p.targetDir,
    composeType: p.composeType,
    // Only production composes need a label; the others take one when given.
    label: run.label ?? (p.composeType === 'production' ? pungiLabel(rel, run.kind) : undefined),
    oldComposes: p.oldComposes,
    latestLinkStatus: ['FINISHED', 'FINISHED_INCOMPLETE'],
    skipPhases: run.skipPhases,
    justPhases: run.justPhases,
    kojiEvent: run.kojiEvent,
    notificationScripts: p.notificationScript ? [p.notificationScript] : [],
    printOutputDir: true,
  });
}
