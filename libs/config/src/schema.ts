// Schemas for release and site files. Every object is strict: an unknown key is an error,
// because a misspelt key that is silently ignored is how a release ships without its repo.
// They are built, and zod is loaded, on the first validation (`schemas()`): a process that takes
// its config from the cache of validated files (load.ts) loads neither (~90 ms of its start).
import type { z as zod } from 'zod';

export const ARCHES = ['x86_64', 'aarch64', 'ppc64le', 's390x', 'riscv64'] as const;
export type Arch = (typeof ARCHES)[number];

/** What a release is: the distribution itself (`main`), or a Special Interest Group's repositories (`sig`). */
export const RELEASE_KINDS = ['main', 'sig'] as const;
/** Keys only a main release has: a SIG compose is packages only, published as it is (sync-to-staging-sig.sh). */
const MAIN_ONLY = ['type', 'rc', 'profile', 'iso', 'cloud'] as const;

/** The element of a lorax builder's wrapper that becomes the container's bind mounts. */
export const WRAPPER_MOUNTS = '{mounts}';

/** Placeholders of the upstream URL template; see `upstreamUrl`. */
const URL_PLACEHOLDERS = ['base', 'project', 'repo', 'arch'];

/** Placeholders of the errata source template; see `errataLocation`. */
export const ERRATA_PLACEHOLDERS = ['base', 'product', 'major', 'repo', 'arch'];

/** The download limits a site that says none has (downloadSchema's defaults): dnf's low-speed limit, an hour per attempt. */
export const DOWNLOAD_DEFAULTS = { lowSpeedBytes: 1000, lowSpeedSeconds: 30, deadlineSeconds: 3600 } as const;

/** The schemas, made with `z` (zod, loaded by `schemas()`). */
function build(z: typeof zod) {
  const arch = z.enum(ARCHES);

  const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._+-]*$/, 'a name of letters, digits and ._+-');

  const repoSchema = z.strictObject({
    /** Upstream repo name (yumrepofs), e.g. `all`, `BaseOS`. */
    name,
    /** Directory name in the compose, when it differs (Rocky renames `all` to `devel`). */
    dir: name.optional(),
    /** Arches this repo exists for; defaults to every arch of the release. */
    arches: z.array(arch).min(1).optional(),
    debug: z.boolean().default(true),
    source: z.boolean().default(true),
    /** Extra arches synced into this repo on x86_64 (multilib: i686 in devel). */
    multilib: z.array(z.literal('i686')).default([]),
    /** Repos (by dir name) this repo's dependencies are resolved against, besides itself. */
    closure: z.array(name).default([]),
    /** Whether repoclosure must pass for this repo (devel, for one, is not expected to close). */
    mustClose: z.boolean().default(true),
    /** Also sync a kickstart tree (full composes only). */
    kickstart: z.boolean().default(true),
  });

  const extraIsoSchema = z.strictObject({
    /** Repos (dir names) whose packages and repodata go on the disc. */
    repos: z.array(name).min(1),
    /** Main variant in the disc's .treeinfo. */
    variant: name,
    /** Arches to build this ISO for; defaults to every arch of the release. */
    arches: z.array(arch).min(1).optional(),
    /**
     * Whether the release has this image (false: empanadas' `isoskip`, named but not made). Where
     * pungi makes the release's media, the image is collected from pungi's compose: required when
     * true, taken when pungi made it anyway when false.
     */
    build: z.boolean().default(true),
  });

  const cloudImageSchema = z.strictObject({
    format: z.enum(['qcow2', 'raw.xz', 'tar.xz', 'vhd', 'box', 'wsl']),
    variants: z.array(name).default([]),
    primaryVariant: name.optional(),
    arches: z.array(arch).min(1).optional(),
    required: z.boolean().default(true),
  });

  const isoSchema = z.strictObject({
    /** Repos (dir names) lorax installs from; the first is the boot tree's variant. */
    lorax: z.strictObject({
      variant: name,
      repos: z.array(name).min(1),
      squashfsOnly: z.boolean().default(true),
      removes: z.array(z.string()).default([]),
      bugurl: z.string().url().default('https://bugs.rockylinux.org'),
      /** Package carrying vmlinuz and initrd for the boot-tree builder. */
      kernelPackage: name.default('kernel'),
    }),
    extra: z.record(name, extraIsoSchema).default({}),
    /**
     * A declared respin of published media (empanadas' --updated-image/--image-increment): the
     * ISOs are named `<short>-<revision>-<YYYYMMDD>.<respin>-<arch>-<image>.iso` (the date of the
     * produce compose) beside the GA files, which stay as they are.
     */
    respin: z.number().int().positive().optional(),
  });

  const releaseSchema = z
    .strictObject({
      kind: z.enum(RELEASE_KINDS).default('main'),
      /** A SIG release: the SIG's short name (lowercase, as in `pub/sig/<major>/<name>`) and the key file its packages are signed with. */
      sig: z
        .strictObject({
          name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'a lowercase name of letters, digits, _ and - (it is a directory: pub/sig/<major>/<name>)'),
          /** File name of the SIG's public key (`RPM-GPG-KEY-Rocky-SIG-Cloud`), found in the site's upstream.sigKeys directory. */
          gpgKey: name,
        })
        .optional(),
      shortname: name.default('Rocky'),
      fullname: z.string().min(1).default('Rocky Linux'),
      major: z.number().int().positive(),
      minor: z.number().int().nonnegative(),
      /** Main releases only (required there); SIG releases are `stable`. */
      type: z.enum(['stable', 'beta', 'lookahead']).optional(),
      /** RC level (RC2, BETA1, LH1); appears in boot ISO names, volume ids and the staging dir. */
      rc: z.string().regex(/^[A-Za-z0-9]+$/).optional(),
      /** Suffix of the latest-<short>-<profile> link: `9`, `9-beta`, `9-lookahead` (main releases; required there). */
      profile: name.optional(),
      /** Upstream build-system project (yumrepofs project id). */
      project: name,
      /**
       * A release candidate of a stable release (the SOP's `--rc`): its ISOs carry the RC level in
       * their names and volume ids and lorax runs without --isfinal, as beta and lookahead builds do.
       */
      candidate: z.boolean().default(false),
      arches: z.array(arch).min(1),
      checksum: z.literal('sha256').default('sha256'),
      repos: z.array(repoSchema).min(1),
      /** Main releases only (required there). */
      iso: isoSchema.optional(),
      cloud: z.strictObject({ images: z.record(name, cloudImageSchema).default({}) }).optional(),
      /**
       * What the tree ships beside the packages (empanadas' extra_files: EULA, LICENSE, the GPG keys…):
       * files taken by name from the newest build of these packages in the lorax variant's tree, the
       * same bytes the release's rocky-release sources hold. Main releases only (finalize places them).
       */
      extraFiles: z
        .strictObject({ packages: z.array(name).default([]), files: z.array(name).default([]) })
        .default({ packages: [], files: [] }),
      /**
       * The composes pungi makes for this release where the site's producer is pungi (their
       * release_short: Rocky, Extras…), in the order staging takes them: the Rocky 8 SOP syncs
       * Plus, Extras, Rocky-devel, then Rocky. Each is its own Nx task (`compose-<name>`).
       */
      composes: z.array(name).default([]),
      publish: z
        .strictObject({
          /** Delete from staging what the compose no longer has (rocky-8 keeps old packages). */
          delete: z.boolean().default(true),
          /** Regenerate repodata with comps and modules, inject updateinfo, sign repomd (rocky-8). */
          regenerateRepodata: z.boolean().default(false),
          signRepodata: z.boolean().default(false),
          /** Extra symlinks in the release dir, `link: target` (rocky-8: NFV -> nfv). */
          repoLinks: z.record(name, name).default({}),
        })
        .default({ delete: true, regenerateRepodata: false, signRepodata: false, repoLinks: {} }),
    })
    .superRefine((r, ctx) => {
      const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
      // A repeated entry is never meant: an arch or a repo would be built twice, a variant's image clobbered.
      const unique = (list: readonly string[] | undefined, path: (string | number)[]) =>
        list?.forEach((x, j) => {
          const first = list.indexOf(x);
          if (first < j) issue([...path, j], `${x} is listed twice (first at index ${first})`);
        });
      // An arch the release does not have is never built: say so instead of skipping it.
      const releaseArches = (list: readonly Arch[] | undefined, path: (string | number)[]) => {
        for (const a of list ?? []) if (!r.arches.includes(a)) issue(path, `arch ${a} is not in the release's arches`);
        unique(list, path);
      };
      if (r.kind === 'sig') {
        if (!r.sig) issue(['sig'], 'a SIG release (kind: sig) needs sig: { name, gpgKey }');
        for (const k of MAIN_ONLY) if (r[k] !== undefined) issue([k], `a SIG release has no ${k}: its compose is packages only, published as it is under pub/sig`);
        if (r.candidate) issue(['candidate'], 'a SIG release has no candidate: it builds no ISOs');
        if (r.extraFiles.packages.length || r.extraFiles.files.length) issue(['extraFiles'], 'a SIG release has no extraFiles: its compose is packages only, published as it is under pub/sig');
        if (r.publish.regenerateRepodata || r.publish.signRepodata) issue(['publish'], 'a SIG compose is published as it is: regenerateRepodata and signRepodata are for main releases');
        r.repos.forEach((repo, i) => {
          if (repo.multilib.length) issue(['repos', i, 'multilib'], 'SIG repos have no multilib trees (pub/sig/<major>/<sig>/<arch>/<repo>)');
          const debugOf = r.repos.findIndex((x) => x.debug && `${x.dir ?? x.name}-debug` === (repo.dir ?? repo.name));
          if (debugOf >= 0) issue(['repos', i, repo.dir ? 'dir' : 'name'], `${repo.dir ?? repo.name} is where the debug tree of repos[${debugOf}] goes (<arch>/<repo>-debug)`);
        });
      } else {
        if (r.sig) issue(['sig'], 'only a SIG release (kind: sig) has a sig section');
        if (!r.type) issue(['type'], 'expected one of "stable", "beta", "lookahead" (missing)');
        if (!r.profile) issue(['profile'], 'expected string (missing)');
        if (!r.iso) issue(['iso'], 'expected object (missing)');
      }
      unique(r.arches, ['arches']);
      const dirs = new Set(r.repos.map((x) => x.dir ?? x.name));
      r.repos.forEach((repo, i) => {
        const sameName = r.repos.findIndex((x) => x.name === repo.name);
        const sameDir = r.repos.findIndex((x) => (x.dir ?? x.name) === (repo.dir ?? repo.name));
        if (sameName < i) issue(['repos', i, 'name'], `repo ${repo.name} is listed twice (also repos[${sameName}])`);
        else if (sameDir < i) issue(['repos', i, repo.dir ? 'dir' : 'name'], `${repo.dir ?? repo.name} is also the dir of repos[${sameDir}]: both would sync into one directory`);
        releaseArches(repo.arches, ['repos', i, 'arches']);
        unique(repo.multilib, ['repos', i, 'multilib']);
        unique(repo.closure, ['repos', i, 'closure']);
        repo.closure.forEach((dep, j) => {
          if (!dirs.has(dep)) issue(['repos', i, 'closure', j], `unknown repo ${dep}`);
        });
      });
      const checkRepos = (list: string[], path: (string | number)[]) => {
        list.forEach((d, j) => {
          if (!dirs.has(d)) issue([...path, j], `unknown repo ${d}`);
        });
        unique(list, path);
      };
      if (r.iso) {
        checkRepos(r.iso.lorax.repos, ['iso', 'lorax', 'repos']);
        for (const [img, def] of Object.entries(r.iso.extra)) {
          checkRepos(def.repos, ['iso', 'extra', img, 'repos']);
          releaseArches(def.arches, ['iso', 'extra', img, 'arches']);
        }
      }
      for (const [img, def] of Object.entries(r.cloud?.images ?? {})) {
        releaseArches(def.arches, ['cloud', 'images', img, 'arches']);
        unique(def.variants, ['cloud', 'images', img, 'variants']);
      }
      unique(r.composes, ['composes']);
      unique(r.extraFiles.packages, ['extraFiles', 'packages']);
      unique(r.extraFiles.files, ['extraFiles', 'files']);
      if (r.extraFiles.files.length && !r.extraFiles.packages.length) issue(['extraFiles', 'packages'], 'extra files need the packages they come from');
      if (r.type && r.type !== 'stable' && !r.rc) issue(['rc'], `a ${r.type} release needs an rc level (e.g. BETA1, LH1)`);
    })
    // The main-only keys a release left out, as main releases default them (a SIG is a stable release without images).
    .transform((r) => ({ ...r, type: r.type ?? 'stable', cloud: r.cloud ?? { images: {} } }));

  const path = z.string().min(1);
  /**
   * A directory the site writes or reads as a whole; loadSite checks that these do not overlap.
   * `..` is refused: it hides where a path really goes (`/mnt/compose/../repos-production`).
   */
  const sitePath = path.refine((p) => !p.split('/').includes('..'), 'expected a path without .. (write the directory it means)');

  /** Where an SSH host is and how to reach it (builders and producer runners alike). */
  const sshConnection = {
    host: z.string().min(1),
    user: z.string().optional(),
    port: z.number().int().positive().optional(),
    identityFile: path.optional(),
    /** known_hosts holding the host's key (host keys are always checked). */
    knownHosts: path.optional(),
  };

  const builderSchema = z.discriminatedUnion('type', [
    /** Build the boot tree and ISO from the compose with the host's tools. */
    z.strictObject({ type: z.literal('boot-tree'), mustBoot: z.boolean().default(false) }),
    /** Real lorax on a Rocky host (this host, or inside podman/mock). */
    z.strictObject({
      type: z.literal('lorax'),
      /**
       * What lorax's argv is prepended with (podman run…, mock…). In a container wrapper, the
       * element `{mounts}` (WRAPPER_MOUNTS, before the image) becomes the bind mounts lorax needs,
       * at the same paths: the compose root read-only and its work dir writable.
       */
      wrapper: z
        .array(z.string())
        .default([])
        .superRefine((w, ctx) => {
          w.forEach((x, i) => {
            if (x.includes(WRAPPER_MOUNTS) && x !== WRAPPER_MOUNTS) ctx.addIssue({ code: 'custom', path: [i], message: `${WRAPPER_MOUNTS} must be an element of its own (it becomes several arguments)` });
            else if (x === WRAPPER_MOUNTS && w.indexOf(x) < i) ctx.addIssue({ code: 'custom', path: [i], message: `${WRAPPER_MOUNTS} is listed twice (first at index ${w.indexOf(x)})` });
          });
        }),
      mustBoot: z.boolean().default(true),
    }),
    /** Dispatch the build to a native host over SSH. */
    z.strictObject({
      type: z.literal('ssh'),
      ...sshConnection,
      workdir: path.default('/var/tmp/releng'),
      /** How lorax is started there, e.g. [sudo, -n, lorax] or a mock/podman wrapper. */
      loraxCommand: z.array(z.string()).min(1).default(['lorax']),
      /** URL under which the builder sees the site's compose root (lorax --source); default: the same path over NFS. */
      composeUrl: z.string().optional(),
      mustBoot: z.boolean().default(true),
    }),
    /** Dispatch the build as a Kubernetes Job on a node of that arch. */
    z.strictObject({
      type: z.literal('kubernetes'),
      namespace: z.string().default('empanadas'),
      image: z.string().min(1),
      apiServer: z.string().url(),
      /** Unset: the pod's service account token. */
      tokenFile: path.optional(),
      /** The API server's CA (PEM). Unset: the pod's service account CA for the in-cluster API server, else the system CAs. */
      caFile: path.optional(),
      loraxCommand: z.array(z.string()).min(1).default(['lorax']),
      /** The volume the pod leaves its result on, and where this host sees it. */
      result: z.strictObject({ source: z.record(z.string(), z.unknown()), localPath: path }),
      /** The compose, as a volume the pod mounts at the same path (lorax reads it with file:// URLs). */
      composeVolume: z.record(z.string(), z.unknown()).optional(),
      mustBoot: z.boolean().default(true),
    }),
  ]);

  const storeSchema = z.discriminatedUnion('type', [
    z.strictObject({ type: z.literal('local'), path: sitePath }),
    z.strictObject({ type: z.literal('shared-fs'), path: sitePath }),
    z.strictObject({
      type: z.literal('s3'),
      bucket: z.string().min(1),
      prefix: z.string().default(''),
      endpoint: z.string().url().optional(),
      region: z.string().default('us-east-2'),
      /** Local cache of objects fetched from the bucket. */
      cache: sitePath,
    }),
  ]);

  /** An errata template: known placeholders only, and one document per repo and arch. */
  const errataTemplate = (kind: 'url' | 'dir') =>
    z
      .string()
      .min(1)
      .superRefine((t, ctx) => {
        const used = new Set([...t.matchAll(/\{([^}]*)\}/g)].map((m) => m[1]));
        const known = kind === 'url' ? ERRATA_PLACEHOLDERS : ERRATA_PLACEHOLDERS.filter((p) => p !== 'base');
        for (const p of used) if (!known.includes(p)) ctx.addIssue({ code: 'custom', message: `unknown placeholder {${p}} (known: ${known.map((x) => `{${x}}`).join(', ')})` });
        // Without them every tree would get one document: the static updateinfo.xml injected everywhere.
        for (const p of ['repo', 'arch']) if (!used.has(p)) ctx.addIssue({ code: 'custom', message: `no {${p}}: every ${p} would get the same advisories` });
        if (kind === 'url' && !/^(\{base\}|https?:\/\/|file:\/\/)/.test(t)) ctx.addIssue({ code: 'custom', message: 'expected an http://, https:// or file:// URL (or one starting with {base})' });
        if (kind === 'dir' && t.split('/').includes('..')) ctx.addIssue({ code: 'custom', message: 'expected a path without ..' });
      });

  /**
   * Where the errata (updateinfo.xml) of a tree that staging regenerates come from: one document
   * per repo and arch. `url`: Rocky's Apollo (`/api/v3/updateinfo/{product}/{major}/{repo}/updateinfo.xml?arch={arch}`;
   * a 404 means no advisories for that repo); `dir`: a file tree (a missing file means none).
   * `{product}` is the release's product slug (`rocky-linux`), `{major}` its major version,
   * `{repo}` the repo's upstream name, `{arch}` the basearch, `{base}` the fixture server.
   */
  const errataSchema = z.discriminatedUnion('type', [
    z.strictObject({ type: z.literal('url'), url: errataTemplate('url') }),
    z.strictObject({ type: z.literal('dir'), path: errataTemplate('dir') }),
  ]);

  /**
   * Limits on each upstream download attempt, as curl's --speed-limit/--speed-time and --max-time;
   * the low-speed defaults are dnf's (minrate=1000, timeout=30). An attempt that hits one fails
   * naming the URL and the limit, and is retried like any transient failure.
   */
  const downloadSchema = z.strictObject({
    /** Fail when fewer than this many bytes per second arrive over lowSpeedSeconds (0: no low-speed limit). */
    lowSpeedBytes: z.number().int().nonnegative().default(DOWNLOAD_DEFAULTS.lowSpeedBytes),
    lowSpeedSeconds: z.number().int().positive().default(DOWNLOAD_DEFAULTS.lowSpeedSeconds),
    /** Fail an attempt not complete after this long, redirects included (0: no deadline). */
    deadlineSeconds: z.number().int().nonnegative().default(DOWNLOAD_DEFAULTS.deadlineSeconds),
  });

  /** A checkout of a git repository the producer reads (pungi-rocky's configs, the comps), kept up to date by the compose host. */
  const checkoutSchema = z.strictObject({ path: sitePath });

  /** Where the producer's command runs: on this host, or on the compose host over SSH (host keys always checked). */
  const producerRunnerSchema = z.discriminatedUnion('type', [
    z.strictObject({ type: z.literal('local') }),
    z.strictObject({ type: z.literal('ssh'), ...sshConnection }),
  ]);

  /**
   * How a release's composes are made when the site does not reposync them from Peridot: pungi
   * (`pungi-koji`) against koji, with the configs of a pungi-rocky checkout. Each compose (Rocky,
   * Extras, Plus, Rocky-devel, NFV) has its own config per kind: `produce` (a minor release, with
   * ISOs) and `update` (packages only, `<Short>-<ver>-updates-<date>.<n>`).
   */
  const producerSchema = z.discriminatedUnion('type', [
    z
      .strictObject({
        type: z.literal('pungi'),
        /** How pungi-koji is started (e.g. [sudo, -n, -u, compose, pungi-koji]). */
        command: z.array(z.string().min(1)).min(1).default(['pungi-koji']),
        /** The pungi config repository; compose config files are relative to it. */
        config: checkoutSchema,
        /** The comps repository the configs refer to. */
        comps: checkoutSchema.optional(),
        /** Compose (its release_short) -> config file per kind. */
        composes: z.record(name, z.strictObject({ produce: z.string().min(1), update: z.string().min(1) })).refine((c) => Object.keys(c).length > 0, 'expected at least one compose'),
        /** pungi --target-dir: the directory new compose directories are created in. */
        targetDir: sitePath,
        /** pungi --old-composes: where it looks for the previous compose to reuse. */
        oldComposes: z.array(sitePath).default([]),
        composeType: z.enum(['production', 'nightly', 'test', 'ci', 'development']).default('production'),
        /** pungi --notification-script. */
        notificationScript: path.optional(),
        /** Environment for the command (KRB5CCNAME, KOJI_CONFIG...). */
        env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name'), z.string()).default({}),
        runner: producerRunnerSchema.default({ type: 'local' }),
      })
      .superRefine((p, ctx) => {
        if (p.runner.type !== 'ssh') return;
        // Paths are the compose host's: a relative one would be resolved against this workspace.
        const remote: [string, (string | number)[]][] = [
          [p.config.path, ['config', 'path']],
          ...(p.comps ? [[p.comps.path, ['comps', 'path']] as [string, (string | number)[]]] : []),
          [p.targetDir, ['targetDir']],
          ...p.oldComposes.map((o, i) => [o, ['oldComposes', i]] as [string, (string | number)[]]),
          ...(p.notificationScript ? [[p.notificationScript, ['notificationScript']] as [string, (string | number)[]]] : []),
        ];
        for (const [value, at] of remote) if (!value.startsWith('/')) ctx.addIssue({ code: 'custom', path: at, message: 'expected an absolute path (the runner is ssh: paths are on the compose host)' });
      }),
  ]);

  const category = z
    .string()
    .refine((c) => !c.startsWith('/') && !c.split('/').includes('..'), 'expected a relative path without .. (it is a directory inside the staging and production roots)');

  const siteSchema = z.strictObject({
    description: z.string().optional(),
    roots: z.strictObject({ compose: sitePath, staging: sitePath, production: sitePath }),
    /** Mirror category path under staging/production roots (sync/common CATEGORY_STUB). */
    category: category.default('mirror/pub/rocky'),
    /** Where SIG releases publish, `<sigCategory>/<major>/<sig>/` (sync/common SIG_CATEGORY_STUB). */
    sigCategory: category.default('mirror/pub/sig'),
    upstream: z.strictObject({
      /**
       * Repo URL template. `{project}`, `{repo}` and `{arch}` are filled in (each is required);
       * `{arch}` is the basearch, `<basearch>-debug` for debug repos and `src` for source repos.
       * `{base}` is the fixture server's address.
       */
      url: z
        .string()
        .min(1)
        .superRefine((url, ctx) => {
          const used = new Set([...url.matchAll(/\{([^}]*)\}/g)].map((m) => m[1]));
          for (const p of used)
            if (!URL_PLACEHOLDERS.includes(p)) ctx.addIssue({ code: 'custom', message: `unknown placeholder {${p}} (known: ${URL_PLACEHOLDERS.map((x) => `{${x}}`).join(', ')})` });
          // Without one of these, different trees come from one URL: rocky-8 synced BaseOS into every repo, and succeeded.
          for (const [p, what] of [['project', 'release'], ['repo', 'repo'], ['arch', 'arch (and debug and source)']])
            if (!used.has(p)) ctx.addIssue({ code: 'custom', message: `no {${p}}: every ${what} would be synced from the same URL` });
        }),
      /** Serve the embedded fixture upstream on loopback instead of reaching a host. */
      fixture: z.strictObject({ root: sitePath, scale: z.number().int().positive().default(1), shape: z.enum(['flat', 'rocky']).default('flat') }).optional(),
      verifySignature: z.boolean().default(true),
      /** ASCII-armored key that signs repomd.xml and packages; relative to the workspace. The key of every release `releases` gives none. */
      gpgKey: path.optional(),
      /** Directory of the SIGs' public keys: each SIG release's `sig.gpgKey` file is in it. */
      sigKeys: path.optional(),
      /**
       * Per release (by name), where it differs from the defaults: the key its upstream signs with
       * (Rocky 8's `RPM-GPG-KEY-rockyofficial`, Rocky 9's `RPM-GPG-KEY-Rocky-9`, the testing keys of
       * beta and lookahead) and its project in the URL (a Peridot project id; default: the
       * release's `project`).
       */
      releases: z.record(name, z.strictObject({ gpgKey: path.optional(), project: name.optional() })).optional(),
      /** Unset: every limit at its default. */
      download: downloadSchema.optional(),
    }).superRefine((u, ctx) => {
      if (u.url.includes('{base}') && !u.fixture) ctx.addIssue({ code: 'custom', path: ['url'], message: "{base} is the fixture server's address, and this site has no upstream.fixture" });
    }),
    store: storeSchema,
    /** Working state: locks, dnf caches, logs. */
    state: sitePath,
    builders: z.partialRecord(z.enum(ARCHES), builderSchema).default({}),
    /** Releases (by name) whose composes are produced by something else than a reposync from `upstream`. */
    producers: z.record(name, producerSchema).default({}),
    signing: z.strictObject({ gnupgHome: sitePath, keyId: z.string().min(1) }).optional(),
    /** Errata of the releases whose staging regenerates repodata (rocky-8); unset: none are added. */
    errata: errataSchema.optional(),
    concurrency: z
      .strictObject({ downloads: z.number().int().positive().default(8), builds: z.number().int().positive().default(2) })
      .default({ downloads: 8, builds: 2 }),
    cloud: z
      .strictObject({
        source: z.discriminatedUnion('type', [
          /** The producer's images in `<path>/<project>/<arch>/`, each with its `<file>.CHECKSUM`. */
          z.strictObject({ type: z.literal('dir'), path: sitePath }),
          /**
           * The producer's bucket, in its own layout (`[<prefix>]buildimage-<revision>-<arch>/<base>/<epoch>/…`,
           * empanadas-spec.md §1.6), read with the store's S3 client; credentials come from the
           * standard AWS chain (environment, profile, instance role), as for the store.
           */
          z.strictObject({
            type: z.literal('s3'),
            bucket: z.string().min(1),
            prefix: z.string().default(''),
            region: z.string().default('us-east-2'),
            /** An S3-compatible server instead of AWS. */
            endpoint: z.string().url().optional(),
          }),
        ]),
      })
      .optional(),
    publish: z
      .strictObject({
        /** Deletions above this many files need --confirmDeletions. */
        deletionLimit: z.number().int().nonnegative().default(1000),
        owner: z.string().regex(/^\d+:\d+$/).optional(),
        torrent: z
          .strictObject({ trackers: z.array(z.string()).default([]), comment: z.string().optional() })
          .optional(),
      })
      .default({ deletionLimit: 1000 }),
  }).superRefine((s, ctx) => {
    // Nested, one category's publishing would write into (or, with deletions, delete from) the other's.
    const inside = (a: string, b: string) => a === b || b.startsWith(`${a.replace(/\/+$/, '')}/`);
    if (inside(s.category, s.sigCategory) || inside(s.sigCategory, s.category)) ctx.addIssue({ code: 'custom', path: ['sigCategory'], message: `${s.sigCategory} and category ${s.category} must not contain one another` });
    if (s.errata?.type === 'url' && s.errata.url.includes('{base}') && !s.upstream.fixture)
      ctx.addIssue({ code: 'custom', path: ['errata', 'url'], message: "{base} is the fixture server's address, and this site has no upstream.fixture" });
  });
  return { repoSchema, extraIsoSchema, cloudImageSchema, isoSchema, releaseSchema, builderSchema, storeSchema, errataSchema, downloadSchema, producerSchema, siteSchema };
}

let built: ReturnType<typeof build> | undefined;
/** The zod schemas (zod is loaded and they are built on the first call). */
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const schemas = () => (built ??= build((require('zod') as typeof import('zod')).z));
type Schemas = ReturnType<typeof build>;

export type Repo = zod.infer<Schemas['repoSchema']>;
export type IsoConfig = zod.infer<Schemas['isoSchema']>;
export type ReleaseInput = zod.input<Schemas['releaseSchema']>;
export type Release = zod.infer<Schemas['releaseSchema']> & { name: string };
export type ErrataSource = zod.infer<Schemas['errataSchema']>;
export type DownloadLimits = zod.infer<Schemas['downloadSchema']>;
export type Producer = zod.infer<Schemas['producerSchema']>;
export type PungiProducer = Extract<Producer, { type: 'pungi' }>;
export type Site = zod.infer<Schemas['siteSchema']> & { name: string; file: string };
export type Builder = zod.infer<Schemas['builderSchema']>;
