export * from './context';
export * from './manifests';
export * from './upstream';
export { syncStage } from './sync';
