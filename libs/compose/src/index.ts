// @rocky/compose: the compose's metadata formats. Pure and deterministic: every function maps
// its input to text or plain data; timestamps are inputs, never read from the clock.
export { renderTreeinfo, parseTreeinfo, repoTreeinfo, discTreeinfo, treeinfoImagePaths, treeinfoProblems, treeinfoReferences } from './treeinfo';
export type { TreeInfo, TreeInfoVariant } from './treeinfo';
export { renderDiscinfo, parseDiscinfo, renderMediaRepo, discTimestamp } from './discinfo';
export { renderChecksum, parseChecksum, UNKNOWN_SIZE } from './checksum';
export type { ChecksumEntry } from './checksum';
export {
  composeInfo,
  imagesJson,
  rpmsJson,
  stableJson,
  STATUS,
  renderStatus,
  parseStatus,
  PRODUCTMD_VERSION,
  COMPOSE_TYPES,
  RELEASE_TYPES,
  IMAGE_TYPE_FORMATS,
  SUPPORTED_IMAGE_FORMATS,
  isProductmdImage,
  cloudImageKind,
  treeExtraFilesJson,
} from './productmd';
export type {
  ComposeStatus,
  ComposeType,
  ReleaseType,
  ComposeRef,
  ComposeInfoInput,
  ComposeInfoVariant,
  ImagesInput,
  ImageEntry,
  RpmsInput,
  RpmEntry,
  RpmCategory,
} from './productmd';
export { parseComposeInfo, parseRpmsJson, parseImagesJson, VARIANT_PATH_CATEGORIES } from './productmd-read';
export type { ComposeInfoRead, RpmsJsonEntry, ImagesJsonEntry, VariantPathCategory } from './productmd-read';
export { nevra, parseNevra, diffPackages } from './nevra';
export type { NevraParts, PackageDiff } from './nevra';
export { composeInfoVariants } from './release';
export { byteOrder } from './order';
