// Syncing one upstream repo tree into a local directory, the way `dnf reposync
// --download-metadata --norepopath` does, but content-addressed: every package and repodata
// file goes through the store (verified against the checksum upstream published for it) and
// is hardlinked into place. Order inside a tree is mirror-safe: packages, then repodata
// files, then repomd.xml (and its signature) last, then stale files are removed.
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { hashFilesSized } from '@rocky/exec';
import { IntegrityError, SMALL_OBJECT, type Store, type StoredObject } from '@rocky/store';
import { parseRepomd, parsePrimary, decompress, type RpmPackage, type RepomdRecord } from './repodata';
import { download, fetchBuffer, fetchInto, memorySink, withRetries, type FetchOptions } from './http';
import type { SignatureVerifier } from './signature';
import { RPM_HEAD_BYTES, rpmSignerKeyId, rpmSignerOf } from './rpmsig';
import type { Limiter } from './limiter';

export interface TreeFile {
  /** Path relative to the tree root. */
  path: string;
  sha256: string;
  size: number;
  /** A repodata file's record type in repomd.xml (primary, filelists...). */
  type?: string;
}

export interface TreePlan {
  url: string;
  repomd: Buffer;
  signature?: Buffer;
  records: RepomdRecord[];
  /** primary's bytes as upstream serves them (verified), stored when the plan is executed; unset when its packages were known (`listed`). */
  primary?: Buffer;
  packages: RpmPackage[];
  /** Packages not in the store yet: to download. */
  fetch: RpmPackage[];
  /** sha256 of the packages already in the store at planning: hardlinked without asking it again. */
  stored: Set<string>;
  /** Store objects hashed while applying this plan (a plan applied to several trees hashes each once). */
  checked: Map<string, Promise<StoredObject>>;
  /** gpgv verified `signature` while planning (not known to have passed before): the caller may record the pass. */
  signatureVerified: boolean;
}

export interface TreeResult {
  packages: (TreeFile & { name: string; arch: string; epoch: string; version: string; release: string; sourcerpm?: string; sigkey: string | null })[];
  /** The key id (16 hex) every package was checked to be signed by (`signer` of the options). */
  signer?: string;
  /** Every package's signatures were verified against the verifier's key (rpmkeys), in this sync or an earlier one (knownSigners). */
  signaturesChecked?: true;
  repodata: TreeFile[];
  fetched: number;
  fetchedBytes: number;
  linked: number;
  removed: string[];
}

export interface SyncTreeOptions {
  /** Base URL of the upstream repo (the directory holding repodata/). */
  url: string;
  store: Store;
  verifier?: SignatureVerifier;
  fetch?: FetchOptions;
  /** Shared bound on concurrent downloads across all trees of a stage. */
  limiter: Limiter;
  /** Counts bytes as they arrive, for progress output. */
  onBytes?: (n: number) => void;
  what: string;
  /**
   * Key id (16 hex) every package must be signed with; unset: any or no signature. With a
   * `verifier`, every package's signatures are also verified against its key (rpmkeys).
   */
  signer?: string;
  /**
   * The key id that signed a package's bytes, by their sha256, as earlier syncs read and verified
   * it: a package whose bytes are checked against that sha256 in this run is not read for its
   * signature again, nor verified again.
   */
  knownSigners?: ReadonlyMap<string, string>;
  /** Package signature checks of this run, by sha256, shared by all trees: a package in several trees is checked once. */
  signatureChecks?: Map<string, SignatureCheck>;
  /**
   * repomd.xml's records and primary's packages, as a sync of these very repomd.xml bytes recorded
   * them (same repomd, same records, same primary, same packages): neither repomd.xml nor primary
   * is parsed, nor primary fetched. Every file is still checked against its sha256 and size when
   * the plan is applied.
   */
  listed?: { records: RepomdRecord[]; packages: RpmPackage[] };
  /** repomd.xml already fetched by the caller (it was compared before planning). */
  repomd?: Buffer;
  /**
   * Whether gpgv already passed these very bytes (repomd.xml and its signature) with this
   * verifier's key: the result of gpgv on identical input is known, so it is not run again.
   */
  signaturePassed?: (repomd: Buffer, signature: Buffer) => Promise<boolean>;
  /** Downloads of this run (in flight or done), shared by all trees: a package in several trees is fetched once. */
  inflight?: Map<string, Promise<Fetched>>;
  /** Store objects hashed in this run, shared by all trees: a package in several trees is hashed once. */
  checked?: Map<string, Promise<StoredObject>>;
}

/** The URL of `href` under `base`: each segment percent-encoded (`#`, `?`, `%` and spaces are file name characters here). */
const join2 = (base: string, href: string) => `${base.replace(/\/+$/, '')}/${href.split('/').map(encodeURIComponent).join('/')}`;

/** An object fetched in this run; a package's signing key was read from its bytes as they arrived (undefined: read it from the file). */
type Fetched = StoredObject & { signer?: string | null };
/** An object for a tree: `verified` in this run (sha256 and size known), or in the store and still to be checked (its size NaN until then). */
type Linked = Fetched & { fetched: boolean; verified: boolean };

/**
 * A repodata/package object: fetched into the store (sha256 and size verified as it streams in)
 * unless the store has it. `verified` says the bytes were checked in this run; a stored object
 * is not, and its size is what the store holds. `pkg`: a package planning found missing: it is
 * not asked about again (a concurrent writer that stored it since costs a second download, no
 * harm), and its signing key is read from the bytes it streams, which the store then verifies.
 */
async function fetchObject(opts: SyncTreeOptions, href: string, expect: { sha256: string; size?: number }, pkg = false): Promise<Linked> {
  const fetchedHere = () => opts.inflight?.get(expect.sha256);
  if (!fetchedHere() && !pkg && (await opts.store.has(expect.sha256))) return { sha256: expect.sha256, size: NaN, fetched: false, verified: false };
  const pending = fetchedHere();
  if (pending) return { ...(await pending), fetched: false, verified: true };
  const url = join2(opts.url, href);
  const what = { ...expect, what: href };
  // Not parsable here (not an RPM...): left to the file read, whose error names the tree's file.
  const signerOf = (head: Buffer, whole: boolean) => {
    try {
      return rpmSignerOf(head, href, whole);
    } catch {
      return undefined;
    }
  };
  // Small objects of announced size (nearly all) are gathered in memory, without a stream.
  const attempt = (): Promise<Fetched> =>
    expect.size !== undefined && expect.size <= SMALL_OBJECT
      ? fetchInto(url, opts.fetch?.download, () =>
          memorySink(async (buf) => ({ ...(await opts.store.putBytes(buf, { ...what, absent: pkg })), ...(pkg ? { signer: signerOf(buf, true) } : {}) }), {
            max: expect.size,
            tooBig: () => new IntegrityError(href, `${expect.sha256} (${expect.size} bytes)`, `more than ${expect.size} bytes`),
            onData: opts.onBytes,
          }),
        )
      : download(url, opts.fetch?.download, async (body): Promise<Fetched> => {
          const head: Buffer[] = [];
          let headBytes = 0;
          const obj = await opts.store.putStream(body, what, (n, chunk) => {
            opts.onBytes?.(n);
            if (pkg && headBytes < RPM_HEAD_BYTES) (head.push(chunk), (headBytes += n));
          });
          // Fewer bytes than asked for: the whole file arrived in them.
          return pkg ? { ...obj, signer: signerOf(head.length === 1 ? head[0] : Buffer.concat(head), headBytes < RPM_HEAD_BYTES) } : obj;
        });
  const fetching = opts.limiter.run(() => withRetries(`${opts.what}: ${href}`, attempt, opts.fetch));
  // Kept once stored: a later tree that lists the same object links it without asking the store.
  opts.inflight?.set(expect.sha256, fetching);
  try {
    return { ...(await fetching), fetched: true, verified: true };
  } catch (e) {
    opts.inflight?.delete(expect.sha256);
    throw e;
  }
}

export function fetchRepomd(opts: Pick<SyncTreeOptions, 'url' | 'fetch' | 'what'>): Promise<Buffer> {
  return fetchBuffer(join2(opts.url, 'repodata/repomd.xml'), opts.fetch).catch((e: Error) => {
    throw new Error(`${opts.what}: cannot read upstream repomd.xml: ${e.message}`);
  });
}

/**
 * Reads upstream metadata and decides what must be downloaded; changes nothing locally. The
 * signature check (fetch the .asc, gpgv) runs while primary is fetched and parsed: nothing read
 * on the strength of the unverified repomd.xml is used (or stored) unless gpgv passes it, and a
 * signature failure is the error reported even when reading primary failed too.
 */
export async function planTree(opts: SyncTreeOptions): Promise<TreePlan> {
  const repomd = opts.repomd ?? (await fetchRepomd(opts));
  const signing = opts.verifier ? checkSignature(opts, opts.verifier, repomd) : Promise.resolve({ signature: undefined, signatureVerified: false });
  const reading = readPackages(opts, repomd);
  const [signed, read] = await Promise.allSettled([signing, reading]);
  if (signed.status === 'rejected') throw signed.reason;
  if (read.status === 'rejected') throw read.reason;
  const { records, primary, packages } = read.value;
  const have = await opts.store.hasMany(packages.map((p) => p.sha256));
  const fetch = packages.filter((_, i) => !have[i]);
  return {
    url: opts.url,
    repomd,
    ...signed.value,
    records,
    primary,
    packages,
    fetch,
    stored: new Set(packages.filter((_, i) => have[i]).map((p) => p.sha256)),
    checked: new Map<string, Promise<StoredObject>>(),
  };
}

/** repomd.xml's signature, fetched and checked with gpgv unless these very bytes passed before. */
async function checkSignature(opts: SyncTreeOptions, verifier: SignatureVerifier, repomd: Buffer): Promise<{ signature: Buffer; signatureVerified: boolean }> {
  const signature = await fetchBuffer(join2(opts.url, 'repodata/repomd.xml.asc'), opts.fetch).catch((e: Error) => {
    throw new Error(`${opts.what}: upstream repomd.xml is not signed (${e.message})`);
  });
  if (await opts.signaturePassed?.(repomd, signature)) return { signature, signatureVerified: false };
  await verifier.verify(repomd, signature, `${opts.what}: repomd.xml`);
  return { signature, signatureVerified: true };
}

/** repomd's records and primary's packages (primary read into memory: a plan stores nothing, for dry runs). */
async function readPackages(opts: SyncTreeOptions, repomd: Buffer): Promise<{ records: RepomdRecord[]; primary?: Buffer; packages: RpmPackage[] }> {
  if (opts.listed) return opts.listed;
  const { records } = parseRepomd(repomd.toString('utf8'), `${opts.what}: repomd.xml`);
  const primaryRec = records.find((r) => r.type === 'primary');
  if (!primaryRec) throw new Error(`${opts.what}: repomd.xml has no primary record`);
  // The other repodata is fetched when the plan is executed (or repoclosure asks for it).
  const primary = await readPrimary(opts, primaryRec);
  const xml = decompress(primary, primaryRec.href).toString('utf8');
  const packages = parsePrimary(xml, `${opts.what}: ${primaryRec.href}`);
  const seen = new Set<string>();
  for (const p of packages) {
    if (seen.has(p.href)) throw new Error(`${opts.what}: primary.xml lists ${p.href} twice`);
    seen.add(p.href);
  }
  return { records, primary, packages };
}

/** primary's bytes: the store's copy when it has one that is whole, else fetched into memory; checked against repomd either way. */
async function readPrimary(opts: SyncTreeOptions, rec: RepomdRecord): Promise<Buffer> {
  const verified = (buf: Buffer) => createHash('sha256').update(buf).digest('hex') === rec.sha256 && (!Number.isFinite(rec.size) || buf.length === rec.size);
  if (await opts.store.has(rec.sha256)) {
    const stored = await fsp.readFile(await opts.store.localPath(rec.sha256));
    if (verified(stored)) return stored;
  }
  const url = join2(opts.url, rec.href);
  return withRetries(
    `${opts.what}: ${rec.href}`,
    async () => {
      const buf = await fetchBuffer(url, { ...opts.fetch, attempts: 1 });
      if (!verified(buf)) throw new IntegrityError(url, rec.sha256, createHash('sha256').update(buf).digest('hex'));
      return buf;
    },
    opts.fetch,
  );
}

/** The plan's primary into the store (it was read into memory while planning; unread, it is fetched with the other repodata). */
async function storePrimary(opts: SyncTreeOptions, plan: TreePlan): Promise<void> {
  const rec = plan.records.find((r) => r.type === 'primary')!;
  if (plan.primary && !(await opts.store.has(rec.sha256))) await opts.store.putBytes(plan.primary, { sha256: rec.sha256, size: plan.primary.length, what: rec.href });
}

/**
 * Checks that each object is what repodata says (sha256 and size), and returns what each is.
 * Downloads were checked as they streamed in; objects linked from the store are hashed here (once
 * per run, on worker threads; the read gives their size too), so a store object that rotted, or
 * repodata whose size lies about a package the store already has, fails the sync, naming the
 * file, the tree and both values.
 */
async function checkObjects(
  opts: SyncTreeOptions,
  memo: Map<string, Promise<StoredObject>>,
  items: { href: string; expect: { sha256: string; size?: number }; obj: Linked }[],
  dest: string | undefined,
): Promise<StoredObject[]> {
  const shared = opts.checked ?? memo;
  for (const { obj } of items) if (obj.verified && !shared.has(obj.sha256)) shared.set(obj.sha256, Promise.resolve({ sha256: obj.sha256, size: obj.size }));
  hashStored(opts.store, shared, items.filter((i) => !i.obj.verified).map((i) => i.obj.sha256));
  const where = dest ? ` (into ${dest})` : '';
  const out: StoredObject[] = [];
  for (const { href, expect, obj } of items) {
    const actual = obj.verified ? obj : await shared.get(obj.sha256)!;
    const sizeOk = expect.size === undefined || !Number.isFinite(expect.size) || expect.size === actual.size;
    out.push(actual);
    if (actual.sha256 === expect.sha256 && sizeOk) continue;
    const from = obj.verified ? 'downloaded' : `store object ${await opts.store.localPath(obj.sha256)}`;
    throw new Error(
      `${opts.what}${where}: ${href} does not match its repodata: repodata says sha256 ${expect.sha256}, ${expect.size ?? '?'} bytes; ` +
        `the ${from} has sha256 ${actual.sha256}, ${actual.size} bytes`,
    );
  }
  return out;
}

/** Hashes the store objects among `shas` not in `memo` yet, all in one go on worker threads, into `memo` (what each really is). */
function hashStored(store: Store, memo: Map<string, Promise<StoredObject>>, shas: string[]): void {
  const todo = [...new Set(shas.filter((h) => !memo.has(h)))];
  if (!todo.length) return;
  // Each object's promise settles as soon as its file is hashed: a tree links its packages while others' are read.
  const settle = todo.map((h) => {
    let done!: { resolve: (o: StoredObject) => void; reject: (e: unknown) => void };
    const one = new Promise<StoredObject>((resolve, reject) => (done = { resolve, reject }));
    one.catch(() => {}); // awaited by the tree that links it; a failure is not also an unhandled rejection
    memo.set(h, one);
    return done;
  });
  Promise.all(todo.map((h) => store.localPath(h)))
    .then((paths) => hashFilesSized(paths, 'sha256', undefined, (i, r) => settle[i].resolve({ sha256: r.digest, size: r.size })))
    .catch((e: unknown) => settle.forEach((s) => s.reject(e))); // those hashed already stay resolved
}

/**
 * Starts hashing every store object the plans will link (packages, and repodata the store has),
 * all at once: the trees then find them hashed, instead of each hashing its own few on its turn.
 * What each object really is is compared with its repodata by the tree that links it (checkObjects).
 */
export async function hashLinked(opts: SyncTreeOptions, plans: TreePlan[]): Promise<void> {
  if (!opts.checked) return;
  const records = [...new Set(plans.flatMap((p) => p.records.map((r) => r.sha256)))];
  const have = await opts.store.hasMany(records);
  hashStored(opts.store, opts.checked, [...plans.flatMap((p) => [...p.stored]), ...records.filter((_, i) => have[i])]);
}

/**
 * Writes only the repodata of a plan (repomd.xml last) into `dir`: enough for dnf repoclosure,
 * which reads metadata, not packages.
 */
export async function writeRepodata(opts: SyncTreeOptions, plan: TreePlan, dir: string): Promise<void> {
  await storePrimary(opts, plan);
  await Promise.all(
    plan.records.map(async (rec) => {
      const obj = await fetchObject(opts, rec.href, rec);
      await checkObjects(opts, plan.checked, [{ href: rec.href, expect: rec, obj }], dir);
      await opts.store.materialize(rec.sha256, join(dir, rec.href));
    }),
  );
  const obj = await opts.store.putBytes(plan.repomd, { what: 'repomd.xml' });
  await opts.store.materialize(obj.sha256, join(dir, 'repodata/repomd.xml'));
}

/** Guards against writing through a symlink planted inside the destination tree. */
class Confinement {
  private checked = new Map<string, Promise<void>>();
  private realRoot?: Promise<string>;
  constructor(private readonly root: string) {}
  async dir(dir: string): Promise<void> {
    let p = this.checked.get(dir);
    if (!p) {
      p = (async () => {
        await fsp.mkdir(dir, { recursive: true });
        // The root's real path once (it exists after the first mkdir), each directory's every time.
        const [real, realRoot] = await Promise.all([fsp.realpath(dir), (this.realRoot ??= fsp.realpath(this.root))]);
        if (real !== realRoot && !real.startsWith(realRoot + sep)) throw new Error(`${dir} resolves outside ${this.root} (symlink?)`);
      })();
      this.checked.set(dir, p);
    }
    return p;
  }
  target(rel: string): string {
    const abs = resolve(this.root, rel);
    if (!abs.startsWith(resolve(this.root) + sep)) throw new Error(`${rel} escapes ${this.root}`);
    return abs;
  }
}

/**
 * Executes a plan into `dest`. `removeStale` deletes packages and repodata files that the new
 * metadata no longer names (after repomd.xml is replaced, so no reader sees a reference to a
 * deleted file).
 */
export async function applyTree(opts: SyncTreeOptions, plan: TreePlan, dest: string, removeStale: boolean): Promise<TreeResult> {
  await storePrimary(opts, plan);
  const box = new Confinement(dest);
  // As empanadas' `reposync --gpgcheck`: with the upstream key, every package's signatures are verified.
  const verifier = opts.signer ? opts.verifier : undefined;
  const checks = opts.signatureChecks ?? new Map<string, SignatureCheck>();
  let fetched = 0;
  let fetchedBytes = 0;
  // Store objects are never removed during a run: what planning found stays there. Their sizes
  // are learnt when they are checked (hashed) below.
  const objs = await Promise.all(
    plan.packages.map(async (p): Promise<Linked> => {
      if (plan.stored.has(p.sha256)) return { sha256: p.sha256, size: NaN, fetched: false, verified: false };
      const obj = await fetchObject(opts, p.href, { sha256: p.sha256, size: Number.isFinite(p.size) ? p.size : undefined }, true);
      if (obj.fetched) (fetched++, (fetchedBytes += obj.size));
      // Its bytes were checked as they arrived: its signatures are checked while the others download.
      if (verifier) signatureCheck(opts, verifier, checks, p);
      return obj;
    }),
  );
  // Every package is checked before any is placed, and before the tree exists.
  const actual = await checkObjects(opts, plan.checked, plan.packages.map((p, i) => ({ href: p.href, expect: p, obj: objs[i] })), dest);
  if (verifier) await signaturesVerified(opts, verifier, checks, plan.packages);
  await fsp.mkdir(dest, { recursive: true });
  const packages = await Promise.all(
    plan.packages.map(async (p, i) => {
      const obj = actual[i];
      const target = box.target(p.href);
      await box.dir(dirname(target));
      await opts.store.materialize(obj.sha256, target);
      // The bytes were just checked against their sha256: a signer known for that sha256 is theirs.
      const signer = objs[i].signer !== undefined ? objs[i].signer! : (opts.knownSigners?.get(obj.sha256) ?? (await rpmSignerKeyId(target)));
      if (opts.signer && signer !== opts.signer) {
        throw new Error(`${opts.what}: ${p.href} is ${signer ? `signed by key ${signer}` : 'not signed'}, not by the upstream key ${opts.signer}`);
      }
      const { href: _href, sha256: _s, size: _z, ...rest } = p;
      return { ...rest, path: p.href, sha256: obj.sha256, size: obj.size, sigkey: signer && signer.slice(-8) };
    }),
  );
  // Repodata after packages, repomd.xml last: a reader never sees metadata naming a missing file.
  const repodata: TreeFile[] = [];
  for (const rec of plan.records) {
    const target = box.target(rec.href);
    await box.dir(dirname(target));
    const [obj] = await checkObjects(opts, plan.checked, [{ href: rec.href, expect: rec, obj: await fetchObject(opts, rec.href, rec) }], dest);
    await opts.store.materialize(obj.sha256, target);
    repodata.push({ path: rec.href, type: rec.type, sha256: obj.sha256, size: obj.size });
  }
  // Signature before repomd.xml, so a reader that sees the new repomd.xml finds its signature.
  const last: [string, Buffer | undefined][] = [
    ['repodata/repomd.xml.asc', plan.signature],
    ['repodata/repomd.xml', plan.repomd],
  ];
  for (const [path, buf] of last) {
    if (!buf) continue;
    const obj = await opts.store.putBytes(buf, { what: path });
    await opts.store.materialize(obj.sha256, join(dest, path));
    repodata.push({ path, ...obj });
  }

  const removed = removeStale ? await removeUnlisted(dest, new Set([...packages.map((p) => p.path), ...repodata.map((r) => r.path)])) : [];
  return { packages, repodata, ...(opts.signer ? { signer: opts.signer } : {}), ...(verifier ? { signaturesChecked: true as const } : {}), fetched, fetchedBytes, linked: packages.length - fetched, removed };
}

/** A package's signature check: `queued` settles (never rejects) once its file is in the verifier's queue, `checked` once its batch ran. */
export interface SignatureCheck {
  queued: Promise<unknown>;
  checked: Promise<void>;
}

/** The check of a package's signatures, queued once per run (a package in several trees is checked once). */
function signatureCheck(opts: SyncTreeOptions, verifier: SignatureVerifier, checks: Map<string, SignatureCheck>, p: RpmPackage): SignatureCheck | undefined {
  if (opts.knownSigners?.has(p.sha256)) return undefined;
  let c = checks.get(p.sha256);
  if (!c) {
    const queuing = opts.store.localPath(p.sha256).then((file) => ({ checked: verifier.checkPackage(file, `${opts.what}: ${p.href}`) }));
    c = { queued: queuing.catch(() => {}), checked: queuing.then((q) => q.checked) };
    c.checked.catch(() => {}); // settled by the trees that list it; not also an unhandled rejection
    checks.set(p.sha256, c);
  }
  return c;
}

/**
 * Every package's signatures verified against the upstream key, but those an earlier sync
 * verified (knownSigners): the ones downloaded were queued as they arrived; those from the store,
 * whose bytes were just hashed, now. A bad signature, or one by another key, fails the tree
 * before it exists, naming every package refused.
 */
async function signaturesVerified(opts: SyncTreeOptions, verifier: SignatureVerifier, checks: Map<string, SignatureCheck>, packages: RpmPackage[]): Promise<void> {
  const mine = packages.flatMap((p) => signatureCheck(opts, verifier, checks, p) ?? []);
  // Every check this tree waits for is queued before the queue is flushed (another tree's too).
  await Promise.all(mine.map((c) => c.queued));
  verifier.flushPackages();
  await verifier.settle(mine.map((c) => c.checked));
}

/** Deletes .rpm files and repodata files under `dest` that are not in `keep`. */
async function removeUnlisted(dest: string, keep: Set<string>): Promise<string[]> {
  const removed: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = await fsp.readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const abs = join(dir, e.name);
      const rel = relative(dest, abs).split(sep).join('/');
      if (e.isDirectory()) await walk(abs);
      else if ((rel.startsWith('repodata/') || rel.endsWith('.rpm')) && !keep.has(rel)) {
        await fsp.rm(abs, { force: true });
        removed.push(rel);
      }
    }
  };
  await walk(dest);
  return removed.sort();
}
