export { startCacheServer, type RunningCacheServer, type StartOptions, type LogLine, type Logger } from './server';
export {
  loadCacheServerConfig,
  parseCacheServerConfig,
  parseSize,
  cacheServerConfigSchema,
  CacheServerConfigError,
  ENV_RW_TOKENS,
  ENV_RO_TOKENS,
  type CacheServerConfig,
  type CacheServerConfigInput,
  type ConfigOptions,
} from './config';
export { CacheStore, HASH_RE, type StoreStats } from './storage';
