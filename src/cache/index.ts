export { PluginCache } from './plugin-cache.js';
export type { CacheStats, GetOrComputeOptions, PluginCacheOptions } from './plugin-cache.js';
export { canonicalKey } from './canonical-key.js';
