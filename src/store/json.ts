/**
 * A typed JSON layer over a {@link CacheService}.
 */
import { ConfigError } from '../errors.js';
import { hasMethods, invalid } from '../internal/validate.js';
import type { CacheService, SetOptions } from './types.js';

/** Typed JSON get/set over a {@link CacheService}. */
export interface JsonStore<T> {
  /** The decoded value, or null when missing. @throws {@link ConfigError} when the stored text is not JSON. */
  get(key: string): Promise<T | null>;
  /** Stores `value` as JSON. @throws {@link ConfigError} when it cannot be serialised. */
  set(key: string, value: T, options?: SetOptions): Promise<void>;
  /** Stores `value` only when `key` is missing; true when stored. */
  setNX(key: string, value: T, options?: SetOptions): Promise<boolean>;
}

/**
 * Wraps a {@link CacheService} so values are typed JSON. Pass `validate` to check the shape of
 * what comes back (it should throw on a bad value).
 *
 * @throws {@link ConfigError} when `service` is not a CacheService or `validate` not a function.
 * @example
 * ```ts
 * const sessions = jsonStore<{ user: string }>(service);
 * await sessions.set('s:1', { user: 'ada' }, { ttlMs: 60_000 });
 * ```
 */
export function jsonStore<T>(
  service: CacheService,
  validate?: (value: unknown) => T,
): JsonStore<T> {
  if (!hasMethods(service, ['get', 'set', 'setNX']))
    invalid('jsonStore', 'service', 'a CacheService (get, set, setNX)', service);
  if (validate !== undefined && typeof validate !== 'function')
    invalid('jsonStore', 'validate', 'a function', validate);
  const encode = (key: string, value: T): string => {
    let text: string | undefined;
    try {
      text = JSON.stringify(value);
    } catch (error) {
      throw new ConfigError(
        `jsonStore.set(${JSON.stringify(key)}): value cannot be serialised: ${(error as Error).message}`,
        {
          cause: error,
          context: { key, field: 'value' },
        },
      );
    }
    if (text === undefined) {
      throw new ConfigError(
        `jsonStore.set(${JSON.stringify(key)}): value is not JSON-serialisable`,
        {
          context: { key, field: 'value' },
        },
      );
    }
    return text;
  };
  return {
    async get(key) {
      const text = await service.get(key);
      if (text === null) return null;
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (error) {
        throw new ConfigError(`jsonStore.get(${JSON.stringify(key)}): stored value is not JSON`, {
          cause: error,
          context: { key, field: 'value' },
        });
      }
      return validate ? validate(parsed) : (parsed as T);
    },
    set: (key, value, options) => service.set(key, encode(key, value), options),
    setNX: (key, value, options) => service.setNX(key, encode(key, value), options),
  };
}
