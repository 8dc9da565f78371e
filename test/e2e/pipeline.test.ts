// Issues 3–5 end to end: `nx run rocky-9:finalize` in a temporary copy of the workspace on the
// local site (fixture upstream served on demand), then again with nothing changed (all cache
// hits), then with one aarch64 package changed upstream (only aarch64 work reruns).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, readFileSync, readlinkSync, realpathSync, readdirSync, lstatSync, mkdtempSync, rmSync, symlinkSync, copyFileSync, chmodSync, openSync, readSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { updatePackage } from '@rocky/upstream-fixture';
import { readJson, sha256File } from '@rocky/exec';
import { parseTreeinfo, treeinfoProblems, treeinfoReferences } from '@rocky/compose';
import { bootMarker } from '@rocky/iso';
import { bootToMarker, qemuMissing } from '../../libs/iso/src/testing/qemu';
import type { ArchManifest } from '@rocky/stages';
import { tempWorkspace, type TempWorkspace } from '../helpers/workspace';
import { sharedFixture } from '../helpers/fixture';

const statusOf = (ws: TempWorkspace) => Object.fromEntries(ws.runJson().tasks.map((t) => [t.taskId, t.cacheStatus]));

describe('nx run rocky-9:finalize on the local site', () => {
  let ws: TempWorkspace;
  const times: Record<string, number> = {};
  beforeAll(async () => {
    ws = tempWorkspace({ fixtureFrom: await sharedFixture() });
  });
  afterAll(() => {
    console.log(`pipeline times (s): ${JSON.stringify(times)}`);
    ws.cleanup();
  });

  it('runs the whole pipeline green and produces a finished, verifiable compose', () => {
    const t0 = Date.now();
    ws.nx(['run', 'rocky-9:finalize', '--outputStyle=static']);
    times.cold = (Date.now() - t0) / 1000;
    const st = statusOf(ws);
    expect(Object.keys(st).sort()).toEqual(
      ['rocky-9:cloud', 'rocky-9:finalize', 'rocky-9:iso-aarch64', 'rocky-9:iso-extra', 'rocky-9:iso-ppc64le', 'rocky-9:iso-s390x', 'rocky-9:iso-x86_64', 'rocky-9:sync'].sort(),
    );
    const latest = join(ws.dir, '.releng/compose/9/latest-Rocky-9');
    const compose = join(realpathSync(latest), 'compose');
    expect(readFileSync(join(realpathSync(latest), 'STATUS'), 'utf8').trim()).toMatch(/^FINISHED/);
    for (const arch of ['x86_64', 'aarch64', 'ppc64le', 's390x']) {
      const dir = join(compose, 'isos', arch);
      const names = readdirSync(dir);
      expect(names).toContain(`Rocky-9.7-${arch}-boot.iso`);
      expect(names).toContain(`Rocky-9.7-${arch}-dvd.iso`);
      expect(lstatSync(join(dir, `Rocky-9-latest-${arch}-dvd.iso`)).isSymbolicLink()).toBe(true);
      // coreutils accepts our CHECKSUM (BSD tag lines), aliases included
      execFileSync('sha256sum', ['-c', '--strict', 'CHECKSUM'], { cwd: dir, stdio: 'pipe' });
      execFileSync('gpg', ['--homedir', join(ws.dir, '.releng/upstream/gnupg'), '--batch', '--verify', 'CHECKSUM.asc'], { cwd: dir, stdio: 'pipe' });
    }
    for (const f of ['COMPOSE_ID', 'composeinfo.json', 'images.json', 'rpms.json', 'upstream.json']) expect(existsSync(join(compose, 'metadata', f)), f).toBe(true);
    // Nx cache entries stay small: manifests, never ISOs.
    const du = execFileSync('du', ['-sb', join(ws.dir, '.nx/cache')], { encoding: 'utf8' });
    expect(Number(du.split('\t')[0])).toBeLessThan(8 << 20);
  });

  const compose = () => join(realpathSync(join(ws.dir, '.releng/compose/9/latest-Rocky-9')), 'compose');
  const syncManifest = (arch: string) => readJson<ArchManifest>(join(ws.dir, 'dist/rocky-9/sync', `${arch}.json.gz`));

  it('ISOs have Rocky volume ids, implanted md5s that checkisomd5 accepts, and DVDs with every BaseOS and AppStream package', () => {
    for (const arch of ['x86_64', 'aarch64', 'ppc64le', 's390x']) {
      const dir = join(compose(), 'isos', arch);
      for (const iso of [`Rocky-9.7-${arch}-boot.iso`, `Rocky-9.7-${arch}-dvd.iso`]) {
        const info = execFileSync('isoinfo', ['-d', '-i', join(dir, iso)], { encoding: 'utf8' });
        expect(/^Volume id: (.*)$/m.exec(info)?.[1], iso).toBe(`Rocky-9-7-${arch}-dvd`);
      }
      execFileSync('checkisomd5', [join(dir, `Rocky-9.7-${arch}-dvd.iso`)], { stdio: 'pipe' });
      // The DVD's listing (xorriso -find) holds every package and the repodata of both repos.
      const listing = new Set(readFileSync(join(dir, `Rocky-9.7-${arch}-dvd.iso.manifest`), 'utf8').split('\n'));
      for (const repo of ['BaseOS', 'AppStream']) {
        const tree = syncManifest(arch).trees.find((t) => t.dir === repo && t.kind === 'os')!;
        for (const p of [...tree.packages, ...tree.repodata.filter((f) => !f.path.endsWith('.asc'))]) expect(listing.has(`${repo}/${p.path}`), `${arch} ${repo}/${p.path}`).toBe(true);
      }
    }
  });

  it('dnf reads the repodata on the DVD', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dvd-'));
    try {
      execFileSync('xorriso', ['-osirrox', 'on', '-indev', join(compose(), 'isos/x86_64/Rocky-9.7-x86_64-dvd.iso'), '-extract', '/BaseOS', join(dir, 'BaseOS')], { stdio: 'pipe' });
      const q = spawnSync('dnf', ['-q', '--releasever=9', '--setopt=reposdir=/dev/null', `--setopt=cachedir=${join(dir, 'cache')}`, '--setopt=skip_if_unavailable=False', `--repofrompath=dvd,file://${join(dir, 'BaseOS')}`, '--repo=dvd', 'repoquery', '--qf', '%{name}'], { encoding: 'utf8' });
      expect(q.status, q.stderr).toBe(0);
      const names = syncManifest('x86_64').trees.find((t) => t.dir === 'BaseOS' && t.kind === 'os')!.packages.map((p) => p.name);
      expect(q.stdout.trim().split('\n').sort()).toEqual([...new Set(names)].sort());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(!!qemuMissing())('the x86_64 boot ISO and DVD boot under qemu (BIOS) to the boot loader', async () => {
    for (const iso of ['Rocky-9.7-x86_64-boot.iso', 'Rocky-9.7-x86_64-dvd.iso']) {
      const run = await bootToMarker(join(compose(), 'isos/x86_64', iso), bootMarker('isolinux', 'Rocky-9-7-x86_64-dvd'));
      expect(run.found, `${iso}: ${run.output.slice(-500)}`).toBe(true);
    }
  });

  it('images.json and rpms.json agree with every file on disk', async () => {
    const c = compose();
    const images = JSON.parse(readFileSync(join(c, 'metadata/images.json'), 'utf8')).payload.images as Record<string, Record<string, { path: string; size: number; checksums: { sha256: string } }[]>>;
    const listed = Object.values(images).flatMap((byArch) => Object.values(byArch).flat());
    const onDisk = ['isos', 'images'].flatMap((kind) =>
      readdirSync(join(c, kind)).flatMap((arch) => readdirSync(join(c, kind, arch)).filter((n) => /\.(iso|qcow2|vhd|box|tar\.xz|raw\.xz)$/.test(n) && !lstatSync(join(c, kind, arch, n)).isSymbolicLink()).map((n) => `${kind}/${arch}/${n}`)),
    );
    expect(listed.map((i) => i.path).sort()).toEqual(onDisk.sort());
    for (const i of listed) expect(await sha256File(join(c, i.path)), i.path).toBe(i.checksums.sha256);
    // Every package of every non-kickstart tree appears in rpms.json, at its path.
    const rpms = JSON.parse(readFileSync(join(c, 'metadata/rpms.json'), 'utf8')).payload.rpms as Record<string, Record<string, Record<string, Record<string, { path: string }>>>>;
    const paths = new Set(Object.values(rpms).flatMap((a) => Object.values(a).flatMap((s) => Object.values(s).flatMap((r) => Object.values(r).map((e) => e.path)))));
    const files = execFileSync('find', [c, '-name', '*.rpm', '-not', '-path', '*/kickstart/*', '-printf', '%P\n'], { encoding: 'utf8' }).trim().split('\n');
    expect([...paths].sort()).toEqual([...new Set(files)].sort());
  });

  it("images.json holds only type/format pairs of productmd's table, under the one compose id; every .treeinfo loads", () => {
    const c = compose();
    const table = JSON.parse(readFileSync(join(ws.dir, 'libs/compose/src/testdata/productmd-images.json'), 'utf8')).imageTypeFormats as Record<string, string[]>;
    const images = JSON.parse(readFileSync(join(c, 'metadata/images.json'), 'utf8')).payload.images as Record<string, Record<string, { path: string; type: string; format: string }[]>>;
    const pairs = new Set<string>();
    for (const img of Object.values(images).flatMap((a) => Object.values(a).flat())) {
      expect(table[img.type], `${img.path}: ${img.type}/${img.format}`).toContain(img.format);
      pairs.add(`${img.type}/${img.format}`);
    }
    console.log(`rocky-9 images.json type/format pairs: ${[...pairs].sort().join(', ')}`);
    const id = readFileSync(join(c, 'metadata/COMPOSE_ID'), 'utf8');
    expect(id).toMatch(/^Rocky-9\.7-\d{8}\.\d+$/);
    for (const f of ['composeinfo.json', 'images.json', 'rpms.json']) expect(JSON.parse(readFileSync(join(c, 'metadata', f), 'utf8')).payload.compose.id, f).toBe(id);
    const treeinfos = execFileSync('find', [c, '-name', '.treeinfo', '-printf', '%P\n'], { encoding: 'utf8' }).trim().split('\n');
    for (const p of treeinfos) expect(treeinfoProblems(readFileSync(join(c, p), 'utf8')), p).toEqual([]);
    for (const arch of ['x86_64', 'aarch64', 'ppc64le', 's390x']) {
      const ti = parseTreeinfo(readFileSync(join(c, `BaseOS/${arch}/os/.treeinfo`), 'utf8'));
      expect(ti.variants.map((v) => v.uid), arch).toEqual(['AppStream', 'BaseOS']);
      for (const f of treeinfoReferences(ti).files) expect(existsSync(join(c, `BaseOS/${arch}/os`, f.path)), `${arch} ${f.path}`).toBe(true);
    }
  });

  it('a tampered ISO byte fails CHECKSUM verification', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tamper-'));
    try {
      // A real copy (aliases stay links): the compose's files are store objects, never to be modified.
      const src = join(compose(), 'isos/aarch64');
      for (const n of readdirSync(src)) {
        if (lstatSync(join(src, n)).isSymbolicLink()) symlinkSync(readlinkSync(join(src, n)), join(dir, n));
        else copyFileSync(join(src, n), join(dir, n));
      }
      const ok = spawnSync('sha256sum', ['-c', '--strict', 'CHECKSUM'], { cwd: dir, encoding: 'utf8' });
      expect(ok.status, ok.stdout + ok.stderr + readdirSync(dir).join(' ')).toBe(0);
      chmodSync(join(dir, 'Rocky-9.7-aarch64-boot.iso'), 0o644);
      const fd = openSync(join(dir, 'Rocky-9.7-aarch64-boot.iso'), 'r+');
      const b = Buffer.alloc(1);
      readSync(fd, b, 0, 1, 40000);
      writeSync(fd, Buffer.from([b[0] ^ 0xff]), 0, 1, 40000);
      closeSync(fd);
      expect(spawnSync('sha256sum', ['-c', '--strict', 'CHECKSUM'], { cwd: dir }).status).not.toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('finalizing the same inputs again gives byte-identical metadata', () => {
    const md = () => Object.fromEntries(['composeinfo.json', 'images.json', 'rpms.json', 'upstream.json', 'COMPOSE_ID'].map((f) => [f, readFileSync(join(compose(), 'metadata', f), 'utf8')]));
    const sums = () => readFileSync(join(compose(), 'isos/x86_64/CHECKSUM'), 'utf8');
    const before = { ...md(), sums: sums() };
    ws.nx(['run', 'rocky-9:finalize', '--skip-nx-cache', '--excludeTaskDependencies', '--outputStyle=static']);
    expect(ws.runJson().tasks.map((t) => [t.taskId, t.cacheStatus])).toEqual([['rocky-9:finalize', 'cache-miss']]);
    expect({ ...md(), sums: sums() }).toEqual(before);
  });

  it('a second run with nothing changed is all cache hits', () => {
    const t0 = Date.now();
    ws.nx(['run', 'rocky-9:finalize', '--outputStyle=static']);
    times.warm = (Date.now() - t0) / 1000;
    for (const [task, status] of Object.entries(statusOf(ws))) expect(status, task).toMatch(/cache-hit$/);
  });

  let x86Dvd = '';
  it('one package changed upstream in aarch64 BaseOS reruns only the aarch64 work', async () => {
    x86Dvd = JSON.parse(readFileSync(join(ws.dir, 'dist/rocky-9/iso-extra/manifest.json'), 'utf8')).images.find((i: { arch: string }) => i.arch === 'x86_64').sha256;
    await updatePackage({ root: join(ws.dir, '.releng/upstream'), project: 'rocky-9', repo: 'BaseOS', arch: 'aarch64', name: 'bash' });
    const t0 = Date.now();
    ws.nx(['run', 'rocky-9:finalize', '--outputStyle=static']);
    times.incremental = (Date.now() - t0) / 1000;
    const st = statusOf(ws);
    expect(st['rocky-9:sync']).toBe('cache-miss');
    expect(st['rocky-9:iso-aarch64']).toBe('cache-miss');
    for (const a of ['x86_64', 'ppc64le', 's390x']) expect(st[`rocky-9:iso-${a}`], a).toMatch(/cache-hit$/);
    expect(st['rocky-9:finalize']).toBe('cache-miss');
    // The x86_64 DVD was not rebuilt: iso-extra took it from the store by the digest of its inputs.
    const out = readFileSync(join(ws.dir, 'dist/rocky-9/iso-extra/manifest.json'), 'utf8');
    expect(JSON.parse(out).images.find((i: { arch: string }) => i.arch === 'x86_64').sha256).toBe(x86Dvd);
    // bash is in the boot tree (comps core): its install.img, so the boot ISO, was made anew.
    expect(readFileSync(join(compose(), '../logs/aarch64/iso-boot.log'), 'utf8')).toContain('$ mksquashfs');
  });

  it('a package outside the boot tree changed in aarch64 BaseOS: the boot ISO is the stored build of the same packages, the DVD is rebuilt with the new package', async () => {
    const bootIso = () => readJson<{ iso: { sha256: string } }>(join(ws.dir, 'dist/rocky-9/iso/aarch64/manifest.json')).iso.sha256;
    const dvd = () => readJson<{ images: { arch: string; sha256: string }[] }>(join(ws.dir, 'dist/rocky-9/iso-extra/manifest.json')).images.find((i) => i.arch === 'aarch64')!.sha256;
    const before = { boot: bootIso(), dvd: dvd() };
    const { newHref } = await updatePackage({ root: join(ws.dir, '.releng/upstream'), project: 'rocky-9', repo: 'BaseOS', arch: 'aarch64', name: 'baseos-tools-1' });
    ws.nx(['run', 'rocky-9:finalize', '--outputStyle=static']);
    expect(statusOf(ws)['rocky-9:iso-aarch64']).toBe('cache-miss');
    // dnf made the runtime root (the same packages as before), and nothing after it ran.
    const log = readFileSync(join(compose(), '../logs/aarch64/iso-boot.log'), 'utf8');
    expect(log).toContain('$ dnf');
    expect(log).not.toContain('$ mksquashfs');
    expect(log).not.toContain('$ xorriso');
    expect(bootIso()).toBe(before.boot);
    expect(dvd()).not.toBe(before.dvd);
    const dir = join(compose(), 'isos/aarch64');
    expect(readFileSync(join(dir, 'Rocky-9.7-aarch64-dvd.iso.manifest'), 'utf8').split('\n')).toContain(`BaseOS/${newHref}`);
    execFileSync('sha256sum', ['-c', '--strict', 'CHECKSUM'], { cwd: dir, stdio: 'pipe' });
  });
});
