// Where things live under a fixture root. The root mirrors the URL space of Peridot's yumrepofs,
// so a plain static server (or a file:// reader) over it serves the upstream as-is.
import { join } from 'node:path';

/** `v1/projects/<project>/repo/hashed-<repo>/<upstreamArch>`: the repo's URL path, no leading slash. */
export function repoUrlPath(project: string, repo: string, upstreamArch: string): string {
  return `v1/projects/${project}/repo/hashed-${repo}/${upstreamArch}`;
}

/** The fixture's Apollo (errata) tree under the root; absent until the first build makes errata. */
export const APOLLO_DIR = 'apollo';

/** `apollo/<product>/<major>/<repo>/<arch>/updateinfo.xml`: the file the fixture's Apollo serves for `/api/v3/updateinfo/<product>/<major>/<repo>/updateinfo.xml?arch=<arch>`. */
export function apolloFilePath(product: string, major: string | number, repo: string, arch: string): string {
  return `${APOLLO_DIR}/${product}/${major}/${repo}/${arch}/updateinfo.xml`;
}

/** The hashed package layout: `Packages/<first letter, lowercased>/<file>`. */
export const packageHref = (file: string) => `Packages/${file[0].toLowerCase()}/${file}`;

export const KEY_UID = 'releng-fixture@rockylinux.invalid';
/** SIG projects are signed with a key of their own, as the build system assigns each SIG one. */
export const SIG_KEY_UID = 'sig-fixture@rockylinux.invalid';

/** One of the fixture's signing keys: its GNUPGHOME (secret key, no passphrase), user id and exported public key. */
export interface FixtureKey {
  home: string;
  /** The e-mail part of the user id: what gpg -u and rpmsign's _gpg_name select the key by. */
  uid: string;
  /** The full user id the key is created with. */
  userId: string;
  keyFile: string;
}

/** Layout of one fixture root. `.fixture/` holds the build cache and state; it is never served. */
export class FixtureLayout {
  constructor(readonly root: string) {}
  get keyFile() {
    return join(this.root, 'RPM-GPG-KEY-fixture');
  }
  get gnupgHome() {
    return join(this.root, 'gnupg');
  }
  key(which: 'main' | 'sig'): FixtureKey {
    return which === 'main'
      ? { home: this.gnupgHome, uid: KEY_UID, userId: `Rocky Linux Fixture (release engineering) <${KEY_UID}>`, keyFile: this.keyFile }
      : { home: join(this.root, 'gnupg-sig'), uid: SIG_KEY_UID, userId: `Rocky Linux Fixture SIG (special interest groups) <${SIG_KEY_UID}>`, keyFile: join(this.root, 'RPM-GPG-KEY-fixture-sig') };
  }
  /** The SIG key under the file names the SIG releases give their keys (a site's upstream.sigKeys directory). */
  get sigKeys() {
    return join(this.root, 'keys');
  }
  get internal() {
    return join(this.root, '.fixture');
  }
  get state() {
    return join(this.internal, 'state.json');
  }
  get lock() {
    return join(this.internal, 'lock');
  }
  get tmp() {
    return join(this.internal, 'tmp');
  }
  /** Signed RPMs of one spec build, keyed by the spec's hash. */
  rpmCache(hash: string) {
    return join(this.internal, 'rpms', hash);
  }
  /** Repodata (with repomd.xml.asc) of one package set, keyed by its hash. */
  repodataCache(hash: string) {
    return join(this.internal, 'repodata', hash);
  }
  project(project: string) {
    return join(this.root, 'v1', 'projects', project);
  }
  tree(project: string, repo: string, upstreamArch: string) {
    return join(this.root, repoUrlPath(project, repo, upstreamArch));
  }
  images(project: string) {
    return join(this.root, 'images', project);
  }
  /** The errata Apollo serves for a product's major: `<repo>/<arch>/updateinfo.xml` (see server.ts). */
  apollo(product: string, major: number) {
    return join(this.root, APOLLO_DIR, product, String(major));
  }
}
