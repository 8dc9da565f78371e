export * from './context';
export * from './manifests';
export * from './upstream';
export * from './trees';
export { syncStage } from './sync';
export { isoStage, readIsoManifest, type IsoManifest } from './iso';
export { isoExtraStage, readExtraManifest, type ExtraIsoManifest } from './iso-extra';
export { cloudStage, readCloudManifest, type CloudManifest } from './cloud';
export { finalizeStage, type FinalizeManifest } from './finalize';
