export * from './store';
export * from './s3';
export * from './bucket';
import type { Site } from '@rocky/config';
import { Store } from './store';
import { S3Store, s3Client } from './s3';

/**
 * This host's part of the site's store (an S3 store's local cache), opened without a bucket
 * client: for housekeeping of its temp files, which needs neither the AWS SDK nor credentials.
 */
export function localStore(site: Pick<Site, 'store'>): Store {
  return new Store(site.store.type === 's3' ? site.store.cache : site.store.path);
}

/** The store a site names. Local and shared-filesystem stores are the same format on another path. */
export function openStore(site: Pick<Site, 'store'>): Store {
  switch (site.store.type) {
    case 'local':
    case 'shared-fs':
      return new Store(site.store.path);
    case 's3': {
      // Credentials come from the standard AWS chain (env, profile, instance/IRSA role).
      const { bucket, prefix, endpoint, region, cache } = site.store;
      return new S3Store({ bucket, prefix, cache, client: s3Client({ region, endpoint }) });
    }
  }
}
