export * from './store';
import type { Site } from '@rocky/config';
import { Store } from './store';

/** The store a site names. Local and shared-filesystem stores are the same format on another path. */
export function openStore(site: Pick<Site, 'store'>): Store {
  switch (site.store.type) {
    case 'local':
    case 'shared-fs':
      return new Store(site.store.path);
    case 's3':
      throw new Error('the s3 artifact store is not implemented yet (use local or shared-fs)');
  }
}
