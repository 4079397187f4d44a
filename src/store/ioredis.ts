/**
 * ioredis, loaded on first use: a program that never creates a Redis client (one that uses only
 * the scheduler, the in-process store, the cache…) does not load it.
 * @internal
 */
import { createRequire } from 'node:module';
import type * as IORedis from 'ioredis';

let loaded: typeof IORedis | undefined;

/** The ioredis module (`Redis`, `Cluster`…), required on the first call. @internal */
export function ioredis(): typeof IORedis {
  loaded ??= createRequire(import.meta.url)('ioredis') as typeof IORedis;
  return loaded;
}
