// createrepo_c and modifyrepo_c: their command lines (pure) and the functions that run them.
// Everything that writes repodata (the fixture upstream, staging's regeneration, test repos)
// goes through here.
import { run, type RunOptions, type RunResult } from '@rocky/exec';

export interface CreaterepoOptions {
  /** The repo directory (repodata/ is written into it). */
  dir: string;
  /** Reuse the existing repodata for unchanged packages. */
  update?: boolean;
  /** With `update`: keep metadata createrepo_c does not write itself (modules, updateinfo). */
  keepAllMetadata?: boolean;
  quiet?: boolean;
  /** false: no sqlite databases (dnf reads the XML). */
  database?: boolean;
  /** Checksum type of the repodata and packages (upstream's is sha256). */
  checksum?: 'sha256';
  /** Checksum-prefixed repodata file names (the default of createrepo_c 0.17+). */
  uniqueMdFilenames?: boolean;
  workers?: number;
  revision?: string | number;
  /** Every timestamp in the repodata is the revision (repodata that is the same for the same packages). */
  setTimestampToRevision?: boolean;
  /** `cpe,name`: repomd.xml's distro tag. */
  distro?: string;
  /** comps.xml (createrepo_c names the group file after it). */
  groupfile?: string;
}

export function createrepoArgv(o: CreaterepoOptions): string[] {
  return [
    'createrepo_c',
    ...(o.update ? ['--update'] : []),
    ...(o.keepAllMetadata ? ['--keep-all-metadata'] : []),
    ...(o.quiet ? ['--quiet'] : []),
    ...(o.database === false ? ['--no-database'] : []),
    ...(o.checksum ? [`--checksum=${o.checksum}`] : []),
    ...(o.uniqueMdFilenames ? ['--unique-md-filenames'] : []),
    ...(o.workers !== undefined ? ['--workers', String(o.workers)] : []),
    ...(o.revision !== undefined ? ['--revision', String(o.revision)] : []),
    ...(o.setTimestampToRevision ? ['--set-timestamp-to-revision'] : []),
    ...(o.distro ? [`--distro=${o.distro}`] : []),
    ...(o.groupfile ? ['-g', o.groupfile] : []),
    o.dir,
  ];
}

export interface ModifyrepoOptions {
  /** The metadata type it is recorded as in repomd.xml (`modules`, `updateinfo`). */
  mdtype: string;
  /** The file to add (compressed by modifyrepo_c). */
  file: string;
  /** The repodata directory. */
  repodata: string;
}

export function modifyrepoArgv(o: ModifyrepoOptions): string[] {
  return ['modifyrepo_c', `--mdtype=${o.mdtype}`, o.file, o.repodata];
}

export function createrepo(o: CreaterepoOptions, opts: RunOptions = {}): Promise<RunResult> {
  return run(createrepoArgv(o), opts);
}

export function modifyrepo(o: ModifyrepoOptions, opts: RunOptions = {}): Promise<RunResult> {
  return run(modifyrepoArgv(o), opts);
}
