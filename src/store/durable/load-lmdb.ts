/**
 * Loads the optional `lmdb` package on first use, so a process that never asks for a durable
 * store loads no native code.
 * @internal
 */
import { ConfigError } from '../../errors.js';
import type { LmdbModule } from './lmdb-types.js';

let loaded: Promise<LmdbModule> | undefined;

function isModule(m: unknown): m is LmdbModule {
  return typeof m === 'object' && m !== null && typeof (m as LmdbModule).open === 'function';
}

/**
 * The `lmdb` module, imported once.
 *
 * @throws {@link ConfigError} (field `path`) when `lmdb` is not installed or cannot load.
 */
export function loadLmdb(): Promise<LmdbModule> {
  loaded ??= import('lmdb').then(
    (m: unknown) => {
      const candidate = isModule(m) ? m : (m as { default?: unknown }).default;
      if (!isModule(candidate)) throw new Error('the lmdb module has no open()');
      return candidate;
    },
    (error: unknown) => {
      loaded = undefined;
      throw new ConfigError(
        'createCacheService: a durable store (`path`) needs the optional package `lmdb`; ' +
          'install it with `npm install lmdb`',
        { cause: error, context: { field: 'path' } },
      );
    },
  );
  return loaded;
}
