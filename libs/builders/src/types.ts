import type { Arch, Builder, Release } from '@rocky/config';

export type SshBuilder = Extract<Builder, { type: 'ssh' }>;
export type K8sBuilder = Extract<Builder, { type: 'kubernetes' }>;

export interface RemoteBuildInput {
  release: Release;
  arch: Arch;
  /** Repo URLs the remote builder can reach (lorax --source), e.g. file:///mnt/compose/... on NFS or https yumrepofs URLs. */
  sources: string[];
  /** Local dir where the collected lorax tree goes (`<outDir>/lorax` and the boot ISO, as collectLoraxTree lays them out). */
  outDir: string;
  /** Local scratch (the transferred archive is unpacked here); the caller removes it. */
  workDir: string;
  log?: (m: string) => void;
}

/**
 * What a probe of a builder found, reading only: `problems` name the builder's field at fault
 * (`caFile`, `knownHosts`…) and say what to do; `notes` are what was seen (versions, arches).
 */
export interface ProbeResult {
  problems: { field: string; message: string }[];
  notes: string[];
}

/** A dispatch failure, naming where (builder) and which step failed. */
export class RemoteBuildError extends Error {
  constructor(
    readonly step: 'connect' | 'lorax' | 'transfer' | 'verify' | 'submit' | 'poll' | 'job',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RemoteBuildError';
  }
}

/** Last `n` non-empty lines of some tool output, for error messages. */
export function tail(text: string, n = 30): string {
  return text
    .split('\n')
    .map((l) => l.trimEnd())
    .filter(Boolean)
    .slice(-n)
    .join('\n');
}
