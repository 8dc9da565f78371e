// The embedded upstream: real signed yum repos and cloud images for every release, laid out
// and served like Peridot's yumrepofs, with fault injection for tests.
export { ensureFixture, siteFixtureOptions, type FixtureOptions, type FixtureInfo, type SiteFixture } from './fixture';
export { kojiState } from './pungi/compose';
export { APOLLO_DIR, apolloFilePath, repoUrlPath } from './paths';
export { serveFixture, type FixtureServer, type FaultKind, type FaultRule, type RequestRecord, type ServeOptions } from './server';
export { updatePackage, removePackage, damageSignature, damageSignatures, dropModuleStream, writeBrokenRepo, addPackage, editPrimary, injectHref, type PrimaryEdit } from './helpers';
export type { PkgDef } from './model';
export { serveBucket, type FixtureBucket, type BucketOptions, type BucketRequest, type BucketUpload } from './bucket';
