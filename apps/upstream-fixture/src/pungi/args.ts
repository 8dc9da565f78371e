// pungi-koji's command line, parsed the way its argparse parser does (pungi/scripts/pungi_koji.py,
// 4.3.x): the same options, `--opt value` and `--opt=value`, unique prefixes of long options,
// choices for the phase options, --target-dir and --compose-dir mutually exclusive and one of
// them required, and an error (exit 2) for anything else.

/** pungi's PHASES_NAMES plus the removed `productimg` (the choices of --skip-phase/--just-phase). */
export const PHASES = [
  'buildinstall', 'createiso', 'createrepo', 'extra_files', 'extra_isos', 'gather', 'image_build', 'image_checksum', 'image_container',
  'init', 'live_images', 'live_media', 'osbs', 'osbuild', 'ostree', 'ostree_installer', 'pkgset', 'repoclosure', 'test', 'weaver', 'productimg',
] as const;

export interface PungiArgs {
  targetDir?: string;
  composeDir?: string;
  label?: string;
  noLabel: boolean;
  supported: boolean;
  oldComposes: string[];
  config: string;
  skipPhase: string[];
  justPhase: string[];
  /** The last of --nightly/--test/--ci/--production/--development (argparse store_const into one dest). */
  composeType?: 'nightly' | 'test' | 'ci' | 'production' | 'development';
  kojiEvent?: string;
  notificationScript: string[];
  noLatestLink: boolean;
  latestLinkStatus: string[];
  latestLinkComponents: number;
  parentComposeId: string[];
  respinOf?: string;
  printOutputDir: boolean;
  quiet: boolean;
}

type Kind = { type: 'value'; set: (a: PungiArgs, v: string) => void; choices?: readonly string[] } | { type: 'flag'; set: (a: PungiArgs) => void };

const OPTIONS: Record<string, Kind> = {
  '--target-dir': { type: 'value', set: (a, v) => (a.targetDir = v) },
  '--compose-dir': { type: 'value', set: (a, v) => (a.composeDir = v) },
  '--label': { type: 'value', set: (a, v) => (a.label = v) },
  '--no-label': { type: 'flag', set: (a) => (a.noLabel = true) },
  '--supported': { type: 'flag', set: (a) => (a.supported = true) },
  '--old-composes': { type: 'value', set: (a, v) => a.oldComposes.push(v) },
  '--config': { type: 'value', set: (a, v) => (a.config = v) },
  '--skip-phase': { type: 'value', set: (a, v) => a.skipPhase.push(v), choices: PHASES },
  '--just-phase': { type: 'value', set: (a, v) => a.justPhase.push(v), choices: PHASES },
  '--nightly': { type: 'flag', set: (a) => (a.composeType = 'nightly') },
  '--test': { type: 'flag', set: (a) => (a.composeType = 'test') },
  '--ci': { type: 'flag', set: (a) => (a.composeType = 'ci') },
  '--production': { type: 'flag', set: (a) => (a.composeType = 'production') },
  '--development': { type: 'flag', set: (a) => (a.composeType = 'development') },
  '--koji-event': { type: 'value', set: (a, v) => (a.kojiEvent = v) },
  '--notification-script': { type: 'value', set: (a, v) => a.notificationScript.push(v) },
  '--no-latest-link': { type: 'flag', set: (a) => (a.noLatestLink = true) },
  '--latest-link-status': { type: 'value', set: (a, v) => a.latestLinkStatus.push(v) },
  '--latest-link-components': {
    type: 'value',
    set: (a, v) => {
      if (!/^-?\d+$/.test(v)) throw new UsageError(`argument --latest-link-components: invalid int value: '${v}'`);
      a.latestLinkComponents = Number(v);
    },
  },
  '--parent-compose-id': { type: 'value', set: (a, v) => a.parentComposeId.push(v) },
  '--respin-of': { type: 'value', set: (a, v) => (a.respinOf = v) },
  '--print-output-dir': { type: 'flag', set: (a) => (a.printOutputDir = true) },
  '--quiet': { type: 'flag', set: (a) => (a.quiet = true) },
};

export const USAGE = `usage: pungi-koji [-h] (--target-dir PATH | --compose-dir PATH) [--label LABEL] [--no-label] [--supported]
                  [--old-composes PATH] --config CONFIG [--skip-phase PHASE] [--just-phase PHASE]
                  [--nightly] [--test] [--ci] [--production] [--development] [--koji-event ID]
                  [--version] [--notification-script NOTIFICATION_SCRIPT] [--no-latest-link]
                  [--latest-link-status STATUS] [--latest-link-components LATEST_LINK_COMPONENTS]
                  [--parent-compose-id PARENT_COMPOSE_ID] [--respin-of RESPIN_OF] [--print-output-dir] [--quiet]`;

/** A command line argparse refuses: printed after the usage, exit status 2. */
export class UsageError extends Error {}

export type ParseResult = { kind: 'args'; args: PungiArgs } | { kind: 'help' } | { kind: 'version' };

/** Resolves `--opt` or a unique prefix of one (argparse's allow_abbrev). */
function resolve(flag: string): string {
  if (flag in OPTIONS || flag === '--help' || flag === '--version') return flag;
  const matches = [...Object.keys(OPTIONS), '--help', '--version'].filter((o) => o.startsWith(flag));
  if (matches.length > 1) throw new UsageError(`ambiguous option: ${flag} could match ${matches.join(', ')}`);
  if (matches.length === 1 && flag.length > 2) return matches[0];
  throw new UsageError(`unrecognized arguments: ${flag}`);
}

export function parseArgs(argv: string[]): ParseResult {
  const a: PungiArgs = {
    noLabel: false,
    supported: false,
    oldComposes: [],
    config: '',
    skipPhase: [],
    justPhase: [],
    notificationScript: [],
    noLatestLink: false,
    latestLinkStatus: [],
    latestLinkComponents: -1,
    parentComposeId: [],
    printOutputDir: false,
    quiet: false,
  };
  const unrecognized: string[] = [];
  let help = false;
  let version = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h') {
      help = true;
      continue;
    }
    if (!arg.startsWith('--') || arg === '--') {
      unrecognized.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const given = eq >= 0 ? arg.slice(0, eq) : arg;
    let name: string;
    try {
      name = resolve(given);
    } catch (e) {
      if (/unrecognized/.test((e as Error).message)) {
        unrecognized.push(arg);
        continue;
      }
      throw e;
    }
    if (name === '--help') help = true;
    else if (name === '--version') version = true;
    else {
      const opt = OPTIONS[name];
      if (opt.type === 'flag') {
        if (eq >= 0) throw new UsageError(`argument ${name}: ignored explicit argument '${arg.slice(eq + 1)}'`);
        opt.set(a);
      } else {
        let v: string;
        if (eq >= 0) v = arg.slice(eq + 1);
        else {
          // argparse takes the next word unless it looks like an option.
          if (i + 1 >= argv.length || (argv[i + 1].startsWith('-') && argv[i + 1] !== '-')) throw new UsageError(`argument ${name}: expected one argument`);
          v = argv[++i];
        }
        if (opt.choices && !opt.choices.includes(v)) throw new UsageError(`argument ${name}: invalid choice: '${v}' (choose from ${opt.choices.map((c) => `'${c}'`).join(', ')})`);
        opt.set(a, v);
      }
    }
  }
  if (help) return { kind: 'help' };
  if (version) return { kind: 'version' };
  if (a.targetDir !== undefined && a.composeDir !== undefined) throw new UsageError('argument --compose-dir: not allowed with argument --target-dir');
  if (a.targetDir === undefined && a.composeDir === undefined) throw new UsageError('one of the arguments --target-dir --compose-dir is required');
  if (!a.config) throw new UsageError('the following arguments are required: --config');
  if (unrecognized.length) throw new UsageError(`unrecognized arguments: ${unrecognized.join(' ')}`);
  return { kind: 'args', args: a };
}
