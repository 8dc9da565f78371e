// @rocky/iso: boot trees and boot ISOs (lorax, or the local boot-tree builder), DVDs and other
// extra ISOs (xorriso dialog replay + implantisomd5), and reading ISOs back.
export type { BootTreeInput, BootTreeResult, BuiltFile, ExtraIsoInput, ExtraIsoResult } from './types';
export { buildBootTree, hasCoreGroup, squashfsCompressor } from './boot-tree';
export { loraxArgv, collectLoraxTree, wrapperArgv, wrapperMountProblem } from './lorax';
export type { WrapperMounts } from './lorax';
export { buildExtraIso, planTreeGrafts, UPDATABLE } from './extra';
export {
  runTool,
  reproducibleEnv,
  isoDate,
  xorrisoReadArgv,
  xorrisoDialogArgv,
  dialogWord,
  dialogScript,
  renderDialog,
  runXorrisoDialog,
  mkisofsArgv,
  implantisomd5Argv,
  checkisomd5Argv,
  isoinfoArgv,
  mksquashfsArgv,
  mkfsFatArgv,
  mmdArgv,
  mcopyArgv,
  mtoolsEnv,
  grubMkimageArgv,
} from './tools';
export type { Graft, ToolRun, MkisofsInput } from './tools';
export { verifyIso, readVolumeId, isoManifest, elTorito, isBootable, bootloadersOf, implantedMd5, parseXorrisoWords } from './inspect';
export type { ElTorito } from './inspect';
export { bootMarker, hostBootLoaders, loaderInstallHint, isolinuxCfg, grubCfg, grubEmbeddedCfg, grubMemdisk, udevLabel } from './bootloaders';
export type { HostLoaders } from './bootloaders';
