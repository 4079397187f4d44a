/**
 * An LMDB environment opened read-only, behind the interface the durable store writes through:
 * a "transaction" runs its reads as they are (lmdb gives a read-only environment no write
 * transaction), and every write throws a {@link ConfigError} saying the store is read-only
 * (lmdb gives a read-only environment no write methods at all).
 * @internal
 */
import { ConfigError } from '../../errors.js';
import type { LmdbDb, LmdbEnv } from './lmdb-types.js';

/** `env` (opened with `readOnly: true`) as an {@link LmdbEnv} whose writes throw. @internal */
export function readOnlyEnv(env: LmdbEnv, dir: string): LmdbEnv {
  const refuse = (): never => {
    throw new ConfigError(
      `the durable store in ${JSON.stringify(dir)} is open read-only; writing needs DurableBackend.open`,
      { context: { field: 'path', path: dir } },
    );
  };
  return {
    openDB(options): LmdbDb {
      const db = env.openDB(options);
      return {
        get: (key) => db.get(key),
        getRange: (range) => db.getRange(range),
        putSync: refuse,
        removeSync: refuse,
      };
    },
    transactionSync: (action) => action(),
    get: (key) => env.get(key),
    putSync: refuse,
    getKeys: (options) => env.getKeys(options),
    close: () => env.close(),
  };
}
