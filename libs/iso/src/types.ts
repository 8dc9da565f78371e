import type { Arch, Builder, Release } from '@rocky/config';

export interface BootTreeInput {
  release: Release;
  arch: Arch;
  /** Local compose repo trees lorax installs from (release.iso.lorax.repos order, e.g. BaseOS then AppStream), each a dir with repodata/. */
  repos: { name: string; path: string }[];
  /** The site's builder for this arch. ssh and kubernetes builders are dispatched by the executor, not here. */
  builder: Builder;
  /** Final results: `<outDir>/lorax/` (the lorax-shaped tree) and `<outDir>/<boot iso file name>`. */
  outDir: string;
  /** Scratch (installroot, memdisk, dnf cache); may be deleted afterwards. */
  workDir: string;
  /** The site's compose root, which holds `repos`: a container wrapper mounts it read-only (default: each repo). */
  composeRoot?: string;
  /**
   * Every date in the tree and the ISO, and the seed of their ids (FAT serial, GPT GUIDs): the
   * compose's timestamp, so a rebuild of the same inputs gives the same bytes.
   */
  buildTimestamp: number;
  /** Gets every tool's command line and full output; failures name it. Default: `<workDir>/boot-tree-<arch>.log` (lorax: `<workDir>/lorax-run.log`). */
  logFile?: string;
  log?: (msg: string) => void;
  /**
   * boot-tree builder: asked once dnf has installed the runtime root, with the digest of what the
   * tree and the ISO are made of on this host (installed packages by sha256, boot loader files,
   * release names, buildTimestamp). True: the caller has the build of that digest already, and
   * this one stops (buildBootTree returns undefined).
   */
  haveBuilt?: (digest: string) => Promise<boolean>;
}

export interface BuiltFile {
  /** Absolute for ISOs; relative to the tree for `treeFiles`. */
  path: string;
  sha256: string;
  size: number;
}

export interface BootTreeResult {
  /** `<outDir>/lorax`. */
  tree: string;
  /** `<outDir>/<boot iso name>` (hardlinked as `<tree>/images/boot.iso`, as lorax places it). */
  iso: BuiltFile;
  volumeId: string;
  /** The boot ISO's implanted md5 (checkisomd5 --md5sumonly), verified; undefined when none is implanted. */
  implantMd5?: string;
  /** True only for an ISO made bootable here (or, for lorax, one whose El Torito report is clean). */
  bootable: boolean;
  /** e.g. `['bios-isolinux', 'uefi-grub']`; empty for a data-only ISO. */
  bootloaders: string[];
  /** Every file of the tree, paths relative to `tree`, sorted. */
  treeFiles: BuiltFile[];
}

export interface ExtraIsoInput {
  release: Release;
  arch: Arch;
  /** Image name (`dvd`). */
  image: string;
  /** The boot ISO whose boot setup is replayed. */
  bootIso: string;
  /** The lorax-shaped boot tree (its .treeinfo is rewritten for the disc). */
  bootTree: string;
  /** Compose os trees whose Packages/ and repodata/ go on the disc (e.g. BaseOS, AppStream). */
  repos: { name: string; path: string }[];
  /** Main variant of the disc's .treeinfo (AppStream for the DVD). */
  mainVariant: string;
  /** Files placed at the ISO root; they win over files of the same name. */
  extraFiles?: string[];
  outFile: string;
  workDir: string;
  /** Every date on the disc and the seed of its ids: the compose's timestamp (see BootTreeInput). */
  buildTimestamp: number;
  /** Gets the dialog script and every tool's full output; failures name it. Default: `<workDir>/<arch>-<image>.log`. */
  logFile?: string;
  log?: (m: string) => void;
}

export interface ExtraIsoResult {
  iso: BuiltFile;
  volumeId: string;
  /** The implanted md5 as `checkisomd5 --md5sumonly` prints it. */
  implantMd5: string;
  /** Sorted ISO paths (files and directories, no leading `/`), as empanadas' `<iso>.manifest`. */
  manifest: string[];
  bootable: boolean;
}
