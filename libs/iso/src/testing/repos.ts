// Test inputs made with the real tools: a BaseOS-like repo (a per-arch `kernel` carrying
// /boot/vmlinuz-<v> and /boot/initramfs-<v>.img of 1 MiB pseudo-random bytes each, two noarch
// packages, comps with a `core` group) and an AppStream-like repo (noarch packages).
import { cpSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { schemas, type Release, type ReleaseInput } from '@rocky/config';
import { run } from '@rocky/exec';
import { createrepo } from '@rocky/rpm-repo';

export interface TestRepos {
  baseos: string;
  appstream: string;
  /** File names of each repo's packages. */
  packages: { baseos: string[]; appstream: string[] };
  kernelRpm: Record<'x86_64' | 'aarch64', string>;
}

const KERNEL_SPEC = `Name: kernel
Version: 5.14.0
Release: 570.tc.el9
Summary: Stand-in kernel for boot-tree tests
License: GPLv2
%description
Stand-in kernel.
%install
mkdir -p %{buildroot}/boot
head -c 1048576 /dev/urandom > %{buildroot}/boot/vmlinuz-%{version}-%{release}.%{_target_cpu}
head -c 1048576 /dev/urandom > %{buildroot}/boot/initramfs-%{version}-%{release}.%{_target_cpu}.img
%files
/boot/vmlinuz-%{version}-%{release}.%{_target_cpu}
/boot/initramfs-%{version}-%{release}.%{_target_cpu}.img
`;

const noarchSpec = (main: string, subs: string[]) => `Name: ${main}
Version: 1.0
Release: 1.el9
Summary: ${main}
License: MIT
BuildArch: noarch
%description
${main}
${subs.map((s) => `%package -n ${s}\nSummary: ${s}\n%description -n ${s}\n${s}\n`).join('')}
%install
mkdir -p %{buildroot}/usr/share/tc
${[main, ...subs].map((n) => `echo ${n} > %{buildroot}/usr/share/tc/${n}`).join('\n')}
%files
/usr/share/tc/${main}
${subs.map((s) => `%files -n ${s}\n/usr/share/tc/${s}\n`).join('')}
`;

const COMPS = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE comps PUBLIC "-//Red Hat, Inc.//DTD Comps info//EN" "comps.dtd">
<comps>
  <group>
    <id>core</id>
    <name>Core</name>
    <description>Smallest possible installation</description>
    <default>false</default>
    <uservisible>false</uservisible>
    <packagelist>
      <packagereq type="mandatory">basesystem-tc</packagereq>
      <packagereq type="default">bash-tc</packagereq>
    </packagelist>
  </group>
</comps>
`;

export async function buildTestRepos(dir: string): Promise<TestRepos> {
  // One _topdir per rpmbuild: rpm 4.18 creates %{_buildrootdir} and RPMS/<arch> by stat, then
  // mkdir, and fails with "failed to create directory %{_buildrootdir}: …: File exists" when a
  // concurrent rpmbuild in the same _topdir made it in between.
  const specs = { kernel: KERNEL_SPEC, base: noarchSpec('basesystem-tc', ['bash-tc']), app: noarchSpec('app-tc', ['app-extra-tc']) };
  const rpmbuild = async (spec: keyof typeof specs, target?: string) => {
    const top = join(dir, 'rpmbuild', `${spec}${target ? `-${target}` : ''}`);
    for (const d of ['SPECS', 'SOURCES', 'BUILD', 'RPMS', 'SRPMS']) mkdirSync(join(top, d), { recursive: true });
    writeFileSync(join(top, 'SPECS', `${spec}.spec`), specs[spec]);
    await run([
      'rpmbuild',
      '--define',
      `_topdir ${top}`,
      '--define',
      'debug_package %{nil}',
      '--define',
      '__os_install_post %{nil}',
      ...(target ? ['--target', target] : []),
      '-bb',
      join(top, 'SPECS', `${spec}.spec`),
      // HOME: a user's ~/.rpmmacros must not change what is built.
    ], { env: { ...process.env, HOME: top } });
    return readdirSync(join(top, 'RPMS'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.rpm')).map((f) => join(top, 'RPMS', f));
  };
  const built = (await Promise.all([rpmbuild('kernel', 'x86_64'), rpmbuild('kernel', 'aarch64'), rpmbuild('base'), rpmbuild('app')])).flat();

  const baseos = join(dir, 'BaseOS');
  const appstream = join(dir, 'AppStream');
  const rpms = (arch: string) => built.filter((f) => f.endsWith(`.${arch}.rpm`));
  const put = (repo: string, files: string[]) => {
    mkdirSync(join(repo, 'Packages'), { recursive: true });
    for (const f of files) cpSync(f, join(repo, 'Packages', f.split('/').pop()!));
  };
  const noarch = rpms('noarch');
  put(baseos, [...rpms('x86_64'), ...rpms('aarch64'), ...noarch.filter((f) => /\/(basesystem|bash)-tc/.test(f))]);
  put(appstream, noarch.filter((f) => /\/app-/.test(f)));
  writeFileSync(join(dir, 'comps.xml'), COMPS);
  await createrepo({ dir: baseos, quiet: true, groupfile: join(dir, 'comps.xml') });
  await createrepo({ dir: appstream, quiet: true });
  const list = (repo: string) => readdirSync(join(repo, 'Packages')).sort();
  return {
    baseos,
    appstream,
    packages: { baseos: list(baseos), appstream: list(appstream) },
    kernelRpm: {
      x86_64: join(baseos, 'Packages', list(baseos).find((f) => f.endsWith('.x86_64.rpm'))!),
      aarch64: join(baseos, 'Packages', list(baseos).find((f) => f.endsWith('.aarch64.rpm'))!),
    },
  };
}

/** sha256 digests of the files in an rpm, by path (`rpm -qp --dump`: path size mtime digest …). */
export async function rpmFileDigests(rpm: string): Promise<Map<string, string>> {
  const { stdout } = await run(['rpm', '-qp', '--dump', rpm]);
  return new Map(stdout.split('\n').filter(Boolean).map((l) => l.split(' ')).map((f) => [f[0], f[3]]));
}

/** A Rocky 9.7-like release (or its beta) built through the real schema. */
export function testRelease(over: Partial<ReleaseInput> = {}): Release {
  const input: ReleaseInput = {
    major: 9,
    minor: 7,
    type: 'stable',
    profile: '9',
    project: 'rocky-9',
    arches: ['x86_64', 'aarch64', 'ppc64le', 's390x'],
    repos: [{ name: 'BaseOS' }, { name: 'AppStream', closure: ['BaseOS'] }],
    iso: {
      lorax: { variant: 'BaseOS', repos: ['BaseOS', 'AppStream'] },
      extra: { dvd: { repos: ['BaseOS', 'AppStream'], variant: 'AppStream' } },
    },
    ...over,
  };
  return { ...schemas().releaseSchema.parse(input), name: `rocky-${input.major}${input.type === 'stable' ? '' : `-${input.type}`}` };
}
