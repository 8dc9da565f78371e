// Issue 16 (2–4): the compose finalize leaves behind, read the way the field's tools read it.
// rocky-8 (the smallest full release) through sync, iso-<arch>, iso-extra, cloud and finalize on
// the fixture upstream, then: every .treeinfo loads as productmd's reader would and names files
// that are there with their checksums; BaseOS/<arch>/os installs over HTTP as far as the fixture's
// kernel allows; every images.json entry is a type/format pair of productmd's own table; one
// compose id everywhere; the release's extra files at the tree root, in metadata/ and on the DVD.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeDate, composeRoot } from '@rocky/config';
import { parseChecksum, parseTreeinfo, treeinfoProblems, treeinfoReferences } from '@rocky/compose';
import { run, sha256File } from '@rocky/exec';
import { rpmFiles } from '@rocky/rpm-repo';
import { readSyncManifest } from '@rocky/stages';
import { pxeBootToMarker, qemuMissing } from '../../libs/iso/src/testing/qemu';
import { privateFixture, testSite, type TestSite } from '../helpers/fixture';
import { repoRoot } from '../helpers/workspace';

const REL = 'rocky-8';
const ARCHES = ['x86_64', 'aarch64'];
// productmd's IMAGE_TYPE_FORMAT_MAPPING as read from its source (the file names the commit).
const PRODUCTMD = JSON.parse(readFileSync(join(repoRoot, 'libs/compose/src/testdata/productmd-images.json'), 'utf8')) as { source: string; imageTypeFormats: Record<string, string[]> };

let fx: { root: string; cleanup(): void };
let t: TestSite;
let compose = '';
const read = (p: string) => readFileSync(join(compose, p), 'utf8');
const json = (p: string) => JSON.parse(read(p));

beforeAll(async () => {
  fx = await privateFixture();
  t = await testSite(fx.root);
  for (const target of ['sync', ...ARCHES.map((a) => `iso-${a}`), 'iso-extra', 'cloud', 'finalize']) await t.run(target, REL);
  compose = join(realpathSync(composeRoot(t.site, t.ctx(REL, 'sync').release).latest), 'compose');
});
afterAll(async () => {
  await t?.close();
  fx?.cleanup();
});

/** Every .treeinfo of the compose, relative to it. */
const treeinfos = () => execFileSync('find', [compose, '-name', '.treeinfo', '-printf', '%P\n'], { encoding: 'utf8' }).trim().split('\n').sort();

describe(`the ${REL} compose`, () => {
  it("has .treeinfo files productmd's reader accepts, and installable trees whose every named path is there with its checksum", async () => {
    const all = treeinfos();
    expect(all.length).toBeGreaterThan(20);
    for (const p of all) expect(treeinfoProblems(read(p)), p).toEqual([]);
    for (const arch of ARCHES) {
      for (const kind of ['os', 'kickstart']) {
        const dir = `BaseOS/${arch}/${kind}`;
        const ti = parseTreeinfo(read(`${dir}/.treeinfo`));
        expect(ti.variants.map((v) => [v.uid, v.repository, v.packages]), dir).toEqual([
          ['AppStream', `../../../AppStream/${arch}/${kind}`, `../../../AppStream/${arch}/${kind}/Packages`],
          ['BaseOS', '.', 'Packages'],
        ]);
        expect(ti.mainVariant).toBe('BaseOS');
        expect(ti.images?.[arch], dir).toMatchObject({ kernel: 'images/pxeboot/vmlinuz', initrd: 'images/pxeboot/initrd.img', 'boot.iso': 'images/boot.iso' });
        expect(ti.stage2).toEqual({ mainimage: 'images/install.img' });
        const refs = treeinfoReferences(ti);
        expect(refs.files.map((f) => f.path)).toEqual(expect.arrayContaining(['images/boot.iso', 'images/install.img', 'images/pxeboot/initrd.img', 'images/pxeboot/vmlinuz']));
        for (const f of refs.files) {
          expect(f.checksum, `${dir}: checksum of ${f.path}`).toBeDefined();
          expect(`sha256:${await sha256File(join(compose, dir, f.path))}`, `${dir}/${f.path}`).toBe(f.checksum);
        }
        for (const d of refs.dirs) expect(statSync(join(compose, dir, d)).isDirectory(), `${dir} → ${d}`).toBe(true);
        // dnf reads both repos the .treeinfo names, from the tree's own location.
        for (const d of refs.dirs.filter((x) => !x.endsWith('Packages'))) expect(existsSync(join(compose, dir, d, 'repodata/repomd.xml')), `${dir} → ${d}`).toBe(true);
      }
      // The boot ISO in the tree is the published one (the same inode: one object of the store).
      expect(statSync(join(compose, `BaseOS/${arch}/os/images/boot.iso`)).ino).toBe(statSync(join(compose, `isos/${arch}/Rocky-8.10-${arch}-boot.iso`)).ino);
    }
    // x86_64 keeps isolinux/ and EFI/ as the boot tree has them (where this host has the loaders).
    const bootTree = readdirSync(join(compose, 'BaseOS/x86_64/os'));
    console.log(`BaseOS/x86_64/os: ${bootTree.sort().join(' ')}`);
    expect(bootTree).toEqual(expect.arrayContaining(['images', 'Packages', 'repodata', '.treeinfo', '.discinfo', 'media.repo', 'EULA', 'LICENSE', 'extra_files.json']));
  });

  it("lists every image with a type/format pair of productmd's table, the compose's time, and the boot ISO's implanted md5", () => {
    expect(PRODUCTMD.source).toMatch(/release-engineering\/productmd@\w+ .*productmd\/images\.py/);
    const images = json('metadata/images.json').payload.images as Record<string, Record<string, { path: string; type: string; format: string; mtime: number; implant_md5: string | null }[]>>;
    const all = Object.values(images).flatMap((a) => Object.values(a).flat());
    const id = readFileSync(join(compose, 'metadata/COMPOSE_ID'), 'utf8').trim();
    const composeTime = composeDate(id)!.getTime() / 1000;
    expect(all.length).toBeGreaterThanOrEqual(4 + 7); // 2 boot + 2 DVD ISOs, 7 cloud images
    const pairs = new Set<string>();
    for (const img of all) {
      expect(PRODUCTMD.imageTypeFormats[img.type], `${img.path}: type ${img.type}`).toContain(img.format);
      // The compose's own time (its id's date), not the store object's: the same compose rebuilt
      // elsewhere writes the same images.json, so the staged tree's digest holds.
      expect(img.mtime, img.path).toBe(composeTime);
      pairs.add(`${img.type}/${img.format}`);
      if (img.path.endsWith('.iso')) {
        const md5 = /:\s+([0-9a-f]{32})\s*$/m.exec(execFileSync('checkisomd5', ['--md5sumonly', join(compose, img.path)], { encoding: 'utf8' }))![1];
        expect(img.implant_md5, img.path).toBe(md5);
      }
    }
    console.log(`${REL} images.json type/format pairs: ${[...pairs].sort().join(', ')}`);
    expect(pairs).toContain('vagrant-libvirt/vagrant-libvirt.box');
  });

  it('has one compose id everywhere: COMPOSE_ID, composeinfo, images and rpms, pungi-style', () => {
    const id = read('metadata/COMPOSE_ID');
    expect(id).toMatch(/^Rocky-8\.10-\d{8}\.0$/);
    for (const f of ['composeinfo.json', 'images.json', 'rpms.json']) expect(json(`metadata/${f}`).payload.compose, f).toMatchObject({ id, respin: 0, date: id.slice(11, 19) });
  });

  it('ships the release files beside the packages: tree root, metadata/ and DVD root, the same bytes as the release packages', async () => {
    const names = ['EULA', 'LICENSE', 'COMMUNITY-CHARTER', 'RPM-GPG-KEY-rockyofficial', 'RPM-GPG-KEY-rockytesting'];
    // The oracle: the files as rpm2cpio unpacks them from the compose's rocky-release packages.
    const baseos = readSyncManifest(t.ctx(REL, 'sync').root, REL, 'x86_64').trees.find((x) => x.dir === 'BaseOS' && x.kind === 'os')!;
    const want = new Map<string, Buffer>();
    for (const p of baseos.packages.filter((x) => x.name === 'rocky-release' || x.name === 'rocky-gpg-keys')) {
      for (const [path, data] of await rpmFiles(join(compose, baseos.path, p.path), () => true)) if (names.includes(posix.basename(path))) want.set(posix.basename(path), data);
    }
    expect([...want.keys()].sort()).toEqual([...names].sort());
    expect(want.get('RPM-GPG-KEY-rockyofficial')!.toString()).toBe(readFileSync(join(fx.root, 'RPM-GPG-KEY-fixture'), 'utf8'));
    for (const dir of ['metadata', ...ARCHES.flatMap((a) => [`BaseOS/${a}/os`, `BaseOS/${a}/kickstart`])]) {
      for (const n of names) expect(readFileSync(join(compose, dir, n)).equals(want.get(n)!), `${dir}/${n}`).toBe(true);
    }
    const extra = json('BaseOS/x86_64/os/extra_files.json');
    expect(extra.header).toEqual({ version: '1.0' });
    expect(extra.data.map((d: { file: string }) => d.file)).toEqual([...names].sort());
    expect(read('metadata/README')).toMatch(/COMPOSE_ID/);
    for (const arch of ARCHES) {
      const dvd = join(compose, `isos/${arch}/Rocky-8.10-${arch}-dvd1.iso`);
      const root = read(`isos/${arch}/Rocky-8.10-${arch}-dvd1.iso.manifest`).split('\n').filter((p) => p && !p.includes('/')).sort();
      console.log(`DVD root (${arch}): ${root.join(' ')}`);
      expect(root).toEqual(expect.arrayContaining([...names, 'AppStream', 'BaseOS', 'images', '.treeinfo', '.discinfo', 'media.repo']));
      const out = mkdtempSync(join(tmpdir(), 'dvd-root-'));
      try {
        execFileSync('xorriso', ['-osirrox', 'on', '-indev', dvd, ...[...names, '.treeinfo'].flatMap((n) => ['-extract', `/${n}`, join(out, n)])], { stdio: 'pipe' });
        for (const n of names) expect(readFileSync(join(out, n)).equals(want.get(n)!), `DVD ${arch} /${n}`).toBe(true);
        // The disc's own .treeinfo loads too, and names what is on the disc.
        const disc = readFileSync(join(out, '.treeinfo'), 'utf8');
        expect(treeinfoProblems(disc), `DVD ${arch} .treeinfo`).toEqual([]);
        const listing = new Set(read(`isos/${arch}/Rocky-8.10-${arch}-dvd1.iso.manifest`).split('\n'));
        for (const p of [...treeinfoReferences(parseTreeinfo(disc)).files.map((f) => f.path), 'BaseOS/repodata', 'AppStream/repodata']) expect(listing.has(p), `DVD ${arch}: ${p}`).toBe(true);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    }
  });

  it('has a <name>.CHECKSUM beside every ISO and image name, links included, that sha256sum accepts', () => {
    for (const kind of ['isos', 'images']) {
      for (const arch of ARCHES) {
        const dir = join(compose, kind, arch);
        const names = readdirSync(dir).filter((n) => /\.(iso|qcow2|vhd|box|tar\.xz|raw\.xz)$/.test(n));
        expect(names.length).toBeGreaterThan(0);
        for (const n of names) {
          const entries = parseChecksum(readFileSync(join(dir, `${n}.CHECKSUM`), 'utf8'));
          expect(entries.map((e) => [e.name, e.size]), `${kind}/${arch}/${n}.CHECKSUM`).toEqual([[n, statSync(join(dir, n)).size]]);
          execFileSync('sha256sum', ['-c', '--strict', `${n}.CHECKSUM`], { cwd: dir, stdio: 'pipe' });
        }
        // CHECKSUM is every .CHECKSUM of the directory, in name order, as the toolkit concatenates them.
        const files = readdirSync(dir).filter((n) => n.endsWith('.CHECKSUM')).sort();
        expect(readFileSync(join(dir, 'CHECKSUM'), 'utf8')).toBe(files.map((f) => readFileSync(join(dir, f), 'utf8')).join(''));
        expect(files.filter((f) => lstatSync(join(dir, f.slice(0, -'.CHECKSUM'.length))).isSymbolicLink()).length).toBeGreaterThan(0);
      }
    }
  });
});

/** A plain static HTTP server on loopback over `root` (as a mirror serves the tree), logging every request. */
function serveDir(root: string): Promise<{ server: Server; url: string; port: number; log: { path: string; status: number; bytes: number }[] }> {
  const log: { path: string; status: number; bytes: number }[] = [];
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = join(root, path);
    const st = !path.split('/').includes('..') && statSync(file, { throwIfNoEntry: false });
    if (req.method !== 'GET' || !st || !st.isFile()) {
      log.push({ path, status: 404, bytes: 0 });
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-length': st.size });
    const entry = { path, status: 200, bytes: 0 };
    log.push(entry);
    createReadStream(file).on('data', (c) => (entry.bytes += c.length)).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as AddressInfo;
    resolve({ server, url: `http://127.0.0.1:${port}`, port, log });
  }));
}

describe('BaseOS/x86_64/os served over HTTP as inst.repo', () => {
  let http: Awaited<ReturnType<typeof serveDir>>;
  const tree = 'BaseOS/x86_64/os';
  beforeAll(async () => {
    http = await serveDir(compose);
  });
  afterAll(async () => {
    await new Promise((r) => http?.server.close(r));
  });

  it('gives what anaconda reads from inst.repo: the .treeinfo, stage2 with its checksum, and both repos', async () => {
    const repo = `${http.url}/${tree}/`;
    const ti = parseTreeinfo(await (await fetch(new URL('.treeinfo', repo))).text());
    const stage2 = Buffer.from(await (await fetch(new URL(ti.stage2!.mainimage!, repo))).arrayBuffer());
    expect(`sha256:${createHash('sha256').update(stage2).digest('hex')}`).toBe(ti.checksums![ti.stage2!.mainimage!]);
    const scratch = mkdtempSync(join(tmpdir(), 'stage2-'));
    try {
      writeFileSync(join(scratch, 'install.img'), stage2);
      // stage2 is the squashfs root lorax makes: the runtime's files are in it.
      expect(execFileSync('unsquashfs', ['-l', join(scratch, 'install.img')], { encoding: 'utf8' })).toMatch(/squashfs-root\/usr\/bin\/bash/);
      // The variants' repositories, resolved against the inst.repo URL as anaconda does (AppStream is ../../../AppStream/x86_64/os).
      const urls = ti.variants.map((v) => [v.uid, new URL(`${v.repository}/`, repo).href]);
      expect(urls).toEqual([['AppStream', `${http.url}/AppStream/x86_64/os/`], ['BaseOS', repo]]);
      // Not spawnSync: the HTTP server answering dnf lives in this process.
      const q = await run(['dnf', '-q', '--releasever=8', '--setopt=reposdir=/dev/null', `--setopt=cachedir=${join(scratch, 'cache')}`, '--setopt=skip_if_unavailable=False',
        ...urls.flatMap(([id, u]) => [`--repofrompath=${id},${u}`, `--repo=${id}`]), 'repoquery', '--qf', '%{repoid} %{name}']);
      const got = new Set(q.stdout.trim().split('\n'));
      expect(got).toContain('BaseOS kernel');
      expect(got).toContain('AppStream appstream-libs');
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  it.skipIf(!!qemuMissing())('PXE: the firmware fetches the kernel and initrd the .treeinfo names from the tree, with inst.repo pointing at it; the fixture kernel stops it there', async () => {
    const ti = parseTreeinfo(read(`${tree}/.treeinfo`));
    const { kernel, initrd } = ti.images!.x86_64;
    // The guest reaches the host's loopback as 10.0.2.2 (qemu user networking).
    const base = `http://10.0.2.2:${http.port}/${tree}`;
    const script = [
      '#!ipxe',
      `imgfetch ${base}/${kernel} inst.repo=${base}/ console=ttyS0 || goto failed`,
      `imgfetch ${base}/${initrd} || goto failed`,
      'imgstat',
      'echo RELENG-PXE fetched',
      `imgexec ${posix.basename(kernel)} || echo RELENG-PXE kernel refused`,
      'goto end',
      ':failed',
      'echo RELENG-PXE fetch failed',
      ':end',
      'echo RELENG-PXE end',
      '',
    ].join('\n');
    http.log.length = 0;
    const run = await pxeBootToMarker(script, 'RELENG-PXE end');
    const tail = run.output.slice(-1500);
    console.log(`PXE console (tail):\n${tail}`);
    expect(run.found, tail).toBe(true);
    expect(run.output).toContain('RELENG-PXE fetched');
    for (const p of [kernel, initrd]) {
      const size = statSync(join(compose, tree, p)).size;
      expect(http.log.find((r) => r.path === `/${tree}/${p}`), p).toEqual({ path: `/${tree}/${p}`, status: 200, bytes: size });
      expect(run.output, p).toMatch(new RegExp(`${posix.basename(p).replace('.', '\\.')} : ${size} bytes`));
    }
    expect(run.output.replace(/\n/g, '')).toContain(`"inst.repo=${base}/ console=ttyS0"`); // imgstat shows the kernel's command line
    // As far as the fixture's kernel allows: it is random bytes, not a bzImage.
    expect(run.output).toMatch(/Exec format error[\s\S]*RELENG-PXE kernel refused/);
  });
});
