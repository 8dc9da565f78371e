// sign-repos (the toolkit's sign-repos-only.sh): re-signs the repomd.xml of every tree of the
// release's staged dir with the site's key, after a key change or a manual fix of the staged
// repodata, without a new compose. Only repomd.xml.asc files change (each written whole and
// renamed over the old one); the staged tree then needs vetting again (`nx run <release>:staging`
// re-vets a changed tree), and prod refuses it until its new digest is approved.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { publishLayout, repoTrees, stagingNames } from '@rocky/config';
import { detachSign, mapLimit, verifySignature } from '@rocky/exec';
import type { Stage } from './stage';

export interface SignReposPlan {
  releaseDir: string;
  /** Tree paths (relative to the release dir) whose repomd.xml is staged. */
  trees: string[];
}

const repomd = (plan: SignReposPlan, tp: string) => join(plan.releaseDir, tp, 'repodata', 'repomd.xml');

export const signReposStage: Stage<SignReposPlan, { signed: string[] }> = {
  name: 'sign-repos',
  tools: () => ['gpg'],
  // Staging's own lock: no staging of the release writes the tree meanwhile.
  locks: (ctx) => [{ file: publishLayout(ctx.site, ctx.release).stagingLock, what: `staging of ${ctx.release.name}` }],

  async plan(ctx) {
    const rel = ctx.release;
    if (!rel.publish.signRepodata) throw new Error(`releases/${rel.name}/release.yaml: ${rel.name} does not sign its repodata (publish.signRepodata is false): nothing to re-sign`);
    if (!ctx.site.signing) throw new Error(`${ctx.site.file}: site ${ctx.site.name} has no signing key (signing {gnupgHome, keyId})`);
    const releaseDir = join(publishLayout(ctx.site, rel).stagingCategory, stagingNames(rel).dir);
    const plan = { releaseDir, trees: [] as string[] };
    plan.trees = [...new Set([...repoTrees(rel, 'produce'), ...repoTrees(rel, 'update')].map((t) => t.path))].filter((tp) => existsSync(repomd(plan, tp)));
    if (!plan.trees.length) throw new Error(`${releaseDir} holds no staged repodata of ${rel.name}: nothing to sign (run \`nx run ${ctx.project}:staging\` first)`);
    return plan;
  },

  describe(plan, ctx) {
    return { summary: `re-sign repomd.xml of ${plan.trees.length} staged trees in ${plan.releaseDir} with ${ctx.site.signing?.keyId}`, details: plan.trees };
  },

  async execute(ctx, plan) {
    const signing = ctx.site.signing!;
    await mapLimit(plan.trees, 2, async (tp) => {
      await detachSign(signing, repomd(plan, tp), `${repomd(plan, tp)}.asc`);
      ctx.log.event('repomd-signed', { tree: tp, keyId: signing.keyId });
    });
    return { signed: plan.trees };
  },

  async verify(ctx, plan) {
    for (const tp of plan.trees) await verifySignature(ctx.site.signing!, `${repomd(plan, tp)}.asc`, repomd(plan, tp));
  },

  async record(ctx, plan, r) {
    return { summary: `${r.signed.length} trees of ${plan.releaseDir} re-signed with ${ctx.site.signing!.keyId}; the staged tree changed: \`nx run ${ctx.project}:staging\` vets it again, and prod needs its new digest approved` };
  },
};
