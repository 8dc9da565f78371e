// The last step of every dispatch: the unpacked lorax tree is verified and adopted exactly like
// a local lorax tree, and a builder configured with mustBoot also needs a bootable boot.iso.
import { collectLoraxTree, type BootTreeResult } from '@rocky/iso';
import { RemoteBuildError, type RemoteBuildInput } from './types';

export async function verifyTree(where: string, loraxDir: string, mustBoot: boolean, input: RemoteBuildInput): Promise<BootTreeResult> {
  let res: BootTreeResult;
  try {
    res = await collectLoraxTree(loraxDir, input.release, input.arch, input.outDir, { mustBoot });
  } catch (e) {
    throw new RemoteBuildError('verify', `${where}: verification of the lorax tree failed: ${(e as Error).message}`, { cause: e });
  }
  input.log?.(`collected ${res.treeFiles.length} files, volume id ${res.volumeId}${res.bootable ? `, bootable (${res.bootloaders.join(', ')})` : ''}`);
  return res;
}
