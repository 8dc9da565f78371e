// The approval gate between staging and production (DESIGN §6): a person who reviewed the
// vetting report approves the exact digest of the staged tree, either on the command line
// (`nx run rocky-9:prod --approve=<digest>`) or with an approval file
// `<site.state>/approvals/<release>.json`:
//   { "digest": "<sha256 of the staged tree>", "approvedBy": "<who>", "time": "<ISO 8601>" }
// An approval names content, not a moment: if staging changes after the review, the digest
// changes and the approval no longer applies.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomic } from '@rocky/exec';

export interface Approval {
  digest: string;
  approvedBy: string;
  time: string;
}

export const approvalFile = (state: string, release: string) => join(state, 'approvals', `${release}.json`);

const HEX64 = /^[0-9a-f]{64}$/;

export function readApproval(file: string): Approval | undefined {
  if (!existsSync(file)) return undefined;
  let j: Partial<Approval>;
  try {
    j = JSON.parse(readFileSync(file, 'utf8')) as Partial<Approval>;
  } catch (e) {
    throw new Error(`approval file ${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof j.digest !== 'string' || !HEX64.test(j.digest) || typeof j.approvedBy !== 'string' || !j.approvedBy || typeof j.time !== 'string' || Number.isNaN(Date.parse(j.time))) {
    throw new Error(`approval file ${file} must be {"digest": "<64 hex>", "approvedBy": "<who>", "time": "<ISO 8601 time>"}`);
  }
  return { digest: j.digest, approvedBy: j.approvedBy, time: j.time };
}

export function writeApproval(file: string, a: Approval): void {
  writeJsonAtomic(file, a);
}

export class ApprovalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ApprovalError';
  }
}

export interface ApprovalCheck {
  release: string;
  /** Digest of the staged tree as it is now. */
  current: string;
  /** `--approve=<digest>`. */
  approve?: string;
  /** The approval file's path. */
  file: string;
  /** The vetting report people should read. */
  report?: string;
}

/** Which approval applies, or an ApprovalError saying exactly what to do. */
export function checkApproval(c: ApprovalCheck): { by: string; digest: string } {
  const how =
    `Review ${c.report ? `the vetting report ${c.report}` : 'the vetting report'}, then rerun with --approve=${c.current} ` +
    `or write ${c.file} as {"digest": "${c.current}", "approvedBy": "<you>", "time": "<ISO 8601 time>"}`;
  if (c.approve !== undefined) {
    const given = c.approve.trim().toLowerCase();
    if (given === c.current) return { by: 'command line (--approve)', digest: given };
    throw new ApprovalError(
      `--approve=${c.approve} does not match the staged tree of ${c.release} (digest ${c.current}): staging changed after it was reviewed, or the digest is mistyped; nothing was changed. ${how}`,
    );
  }
  const a = readApproval(c.file);
  if (!a) throw new ApprovalError(`prod of ${c.release} needs approval of the staged tree (digest ${c.current}); nothing was changed. ${how}`);
  if (a.digest !== c.current) {
    throw new ApprovalError(
      `the approval in ${c.file} (digest ${a.digest}, by ${a.approvedBy} at ${a.time}) is stale: the staged tree of ${c.release} changed since (digest now ${c.current}); nothing was changed. ${how}`,
    );
  }
  return { by: `${a.approvedBy} (${c.file}, ${a.time})`, digest: a.digest };
}
