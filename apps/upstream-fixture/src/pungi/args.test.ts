// The fixture's pungi-koji command line against pungi_koji.py's argparse parser (4.3.x), and its
// config reader against kobo's syntax and pungi's option rules.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseArgs, UsageError } from './args';
import { ConfTuple, loadConf, parseConf } from './conf';
import { archVariantData, loadPungiConfig, imageNameFormatOf } from './config';

const base = ['--config', 'r8.conf', '--target-dir', '/mnt/compose/8'];
const args = (argv: string[]) => {
  const r = parseArgs(argv);
  if (r.kind !== 'args') throw new Error(`parsed as ${r.kind}`);
  return r.args;
};

describe('pungi-koji options (argparse)', () => {
  it('reads every option, repeated ones in order, --opt=value and --opt value alike', () => {
    const a = args([...base, '--label=RC-8.10', '--production', '--old-composes', '/a', '--old-composes=/b', '--skip-phase', 'createiso', '--just-phase=gather', '--just-phase', 'pkgset', '--koji-event', '123', '--notification-script', '/n', '--no-latest-link', '--latest-link-status', 'FINISHED', '--latest-link-components', '2', '--print-output-dir', '--quiet', '--supported', '--parent-compose-id', 'X-1', '--respin-of', 'X-0']);
    expect(a).toMatchObject({ config: 'r8.conf', targetDir: '/mnt/compose/8', label: 'RC-8.10', composeType: 'production', oldComposes: ['/a', '/b'], skipPhase: ['createiso'], justPhase: ['gather', 'pkgset'], kojiEvent: '123', notificationScript: ['/n'], noLatestLink: true, latestLinkStatus: ['FINISHED'], latestLinkComponents: 2, printOutputDir: true, quiet: true, supported: true, parentComposeId: ['X-1'], respinOf: 'X-0' });
  });

  it('the compose type flags share one dest: the last given wins (why the wrapper gives exactly one)', () => {
    expect(args([...base, '--nightly', '--production']).composeType).toBe('production');
    expect(args([...base, '--production', '--test']).composeType).toBe('test');
    expect(args(base).composeType).toBeUndefined();
  });

  it('takes a unique prefix of an option, as argparse does; an ambiguous one is an error', () => {
    expect(args(['--conf', 'c', '--target', '/t', '--print-out']).printOutputDir).toBe(true);
    expect(() => parseArgs([...base, '--no-la'])).toThrow(/ambiguous option: --no-la could match --no-label, --no-latest-link/);
  });

  it.each([
    [[...base, '--frobnicate'], /unrecognized arguments: --frobnicate/],
    [[...base, 'stray'], /unrecognized arguments: stray/],
    [[...base, '-x'], /unrecognized arguments: -x/],
    [[...base, '--skip-phase', 'isos'], /argument --skip-phase: invalid choice: 'isos' \(choose from 'buildinstall', 'createiso'/],
    [['--config', 'c'], /one of the arguments --target-dir --compose-dir is required/],
    [[...base, '--compose-dir', '/c'], /argument --compose-dir: not allowed with argument --target-dir/],
    [['--target-dir', '/t'], /the following arguments are required: --config/],
    [['--config', '--target-dir', '/t'], /argument --config: expected one argument/],
    [[...base, '--label'], /argument --label: expected one argument/],
    [[...base, '--no-latest-link=yes'], /argument --no-latest-link: ignored explicit argument 'yes'/],
    [[...base, '--latest-link-components', 'two'], /invalid int value: 'two'/],
  ])('%j is refused', (argv, msg) => {
    expect(() => parseArgs(argv)).toThrow(UsageError);
    expect(() => parseArgs(argv)).toThrow(msg);
  });

  it('help and version do not need the required options', () => {
    expect(parseArgs(['-h']).kind).toBe('help');
    expect(parseArgs(['--vers']).kind).toBe('version');
  });
});

describe('pungi configs (kobo syntax)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pungi-conf-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const none = () => ({});

  it('reads values as kobo does: strings, numbers, booleans, None, lists, tuples, dicts, earlier names', () => {
    const c = parseConf(
      `# comment\nname = 'Rocky Linux'  # trailing\nversion = "8"\nn = -3\nf = 1.5\nyes = True\nnothing = None\nl = ['a',\n  'b',]\nt = ('^BaseOS$', {'*': ['iso'], 'src': False})\nalias = name\n`,
      'x.conf',
      none,
    );
    expect(c).toMatchObject({ name: 'Rocky Linux', version: '8', n: -3, f: 1.5, yes: true, nothing: null, l: ['a', 'b'], alias: 'Rocky Linux' });
    expect(c.t).toBeInstanceOf(ConfTuple);
    expect([...(c.t as ConfTuple)]).toEqual(['^BaseOS$', { '*': ['iso'], src: false }]);
  });

  it('imports another file of the directory (`from r8-common import *`), later names win', () => {
    writeFileSync(join(dir, 'r8-common.conf'), "release_name = 'Rocky Linux'\nrelease_version = '8'\n");
    writeFileSync(join(dir, 'r8.conf'), "from r8-common import *\nrelease_version = '8.10'\n");
    expect(loadConf(join(dir, 'r8.conf'))).toEqual({ release_name: 'Rocky Linux', release_version: '8.10' });
  });

  it.each([
    ["x = 'a' % (b,)\n", /string '%' formatting is not supported/],
    ['x = y\n', /undefined name y/],
    ["x = {'a': 1, 'a': 2}\n", /duplicate dict key "a"/],
    ["x = 'unterminated\n", /unterminated string/],
    ['x = 1 2\n', /expected the end of the line/],
    ['global x\n', /'global' is not supported/],
  ])('%j is an error naming the file and line', (text, msg) => {
    expect(() => parseConf(text, 'bad.conf', none)).toThrow(msg);
    expect(() => parseConf(text, 'bad.conf', none)).toThrow(/^bad\.conf:1: /);
  });

  it("the fixture's r8.conf: variants, comps per variant, createiso_skip and failable_deliverables as pungi reads them", () => {
    const c = loadPungiConfig(resolve(__dirname, '../../pungi/r8.conf'));
    expect(c).toMatchObject({ releaseShort: 'Rocky', releaseVersion: '8', releaseType: 'ga', kojiTag: 'rocky-8', hashedDirectories: true, mediaChecksums: ['sha256'], mediaChecksumOneFile: true });
    expect(c.variants.map((v) => `${v.uid}:${v.arches.join(',')}`)).toEqual(['BaseOS:x86_64,aarch64', 'Minimal:x86_64,aarch64', 'AppStream:x86_64,aarch64', 'PowerTools:x86_64,aarch64', 'HighAvailability:x86_64,aarch64', 'ResilientStorage:x86_64', 'RT:x86_64']);
    expect(c).toMatchObject({ buildinstallMethod: 'lorax', treeinfoVersion: '8.10' });
    expect(archVariantData<boolean>(c.buildinstallSkip, 'x86_64', 'BaseOS').some(Boolean)).toBe(false);
    expect(archVariantData<boolean>(c.buildinstallSkip, 'x86_64', 'Minimal').some(Boolean)).toBe(true);
    expect(imageNameFormatOf(c, 'Minimal')).toBe('{release_short}-8.10-{arch}-minimal{suffix}');
    expect(imageNameFormatOf(c, 'BaseOS')).toBe('{release_short}-8.10-{arch}-{disc_type}{disc_num}{suffix}');
    expect(archVariantData<boolean>(c.createisoSkip, 'x86_64', 'Minimal').some(Boolean)).toBe(false);
    expect(archVariantData<boolean>(c.createisoSkip, 'x86_64', 'BaseOS').some(Boolean)).toBe(false);
    expect(archVariantData<boolean>(c.createisoSkip, 'src', 'BaseOS').some(Boolean)).toBe(true);
    expect(archVariantData<boolean>(c.createisoSkip, 'x86_64', 'AppStream').some(Boolean)).toBe(true);
    expect(archVariantData<string>(c.failableDeliverables, 'aarch64', 'BaseOS')).toEqual(['iso']);
    expect(archVariantData<string>(c.failableDeliverables, 'src', 'BaseOS')).toEqual([]);
    const u = loadPungiConfig(resolve(__dirname, '../../pungi/r8-updates.conf'));
    expect(u).toMatchObject({ releaseShort: 'Rocky', releaseType: 'updates' });
    expect(u.skipPhases).toContain('createiso');
  });

  it('refuses options it does not know, phases pungi does not have, a group the comps lack', () => {
    writeFileSync(join(dir, 'variants.xml'), '<variants><variant id="BaseOS" name="BaseOS" type="variant"><arches><arch>x86_64</arch></arches><groups><group>core</group></groups></variant></variants>');
    writeFileSync(join(dir, 'comps.xml'), '<comps><group><id>other</id><name>Other</name></group></comps>');
    const head = "release_name = 'R'\nrelease_short = 'R'\nrelease_version = '8'\nvariants_file = 'variants.xml'\npkgset_koji_tag = 'rocky-8'\n";
    const conf = (name: string, extra: string) => {
      writeFileSync(join(dir, name), head + extra);
      return () => loadPungiConfig(join(dir, name));
    };
    expect(conf('a.conf', "gather_methd = 'deps'\n")).toThrow(/a\.conf: unrecognized option gather_methd/);
    expect(conf('b.conf', "skip_phases = ['isos']\n")).toThrow(/skip_phases: isos is not a pungi phase/);
    expect(conf('c.conf', "comps_file = 'comps.xml'\n")).toThrow(/variant BaseOS lists group core, which the comps file does not have/);
    expect(conf('d.conf', "media_checksum_one_file = True\n")).toThrow(/media_checksum_one_file needs exactly one of media_checksums/);
    expect(conf('e.conf', "release_type = 'nightly'\n")).toThrow(/release_type nightly is not a productmd release type/);
    expect(conf('f.conf', '')().variants[0].uid).toBe('BaseOS');
  });
});
