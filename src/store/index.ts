export { createCacheService } from './create.js';
export type { CacheServiceOptions } from './create.js';
export { DurableBackend } from './durable/durable-backend.js';
export type { DurableBackendOptions } from './durable/durable-backend.js';
export { LocalBackend } from './local-backend.js';
export type { LocalBackendOptions } from './local-backend.js';
export { RedisBackend } from './redis-backend.js';
export type { RedisBackendOptions } from './redis-backend.js';
export type { RedisClusterConnection, RedisConnection } from './redis-connection.js';
export { jsonStore } from './json.js';
export type { JsonStore } from './json.js';
export { keySlot } from './key-slot.js';
export type {
  CacheService,
  CacheServiceBaseOptions,
  RangeOptions,
  RunScriptOptions,
  RuntimeMode,
  ScriptReply,
  ScriptRunner,
  SetOptions,
} from './types.js';
export { classifyRedisError } from './redis-errors.js';
export type { RedisCallContext } from './redis-errors.js';
