/**
 * Store key prefixes as namespaces that cannot reach one another.
 *
 * A `keyPrefix` used to be prepended as it was, so prefix `app` read, scanned and deleted the keys
 * of prefix `app2` (`get('2foo')`), and `a:` those of `a:b:`. Now a prefix names a namespace: its
 * body (the prefix without one trailing `:`) has `%` and `:` percent-encoded, and one `:` ends
 * it. Keys of a namespace therefore start with its body and the first `:` of the key, so two
 * prefixes with different bodies never share a key. `'app'` and `'app:'` name the same namespace
 * (`app:`); `''` means no namespace (the whole keyspace).
 *
 * | keyPrefix | keys start with |
 * |---|---|
 * | `''` | (nothing) |
 * | `'app'`, `'app:'` | `app:` |
 * | `'app2'` | `app2:` |
 * | `'shop:eu:'` | `shop%3Aeu:` |
 */
import { requireString } from '../internal/validate.js';

/** The delimiter that ends a namespace. */
export const NAMESPACE_DELIMITER = ':';

/** Percent-encodes `%` and `:` (the escape and the delimiter) in a namespace body. */
export function escapeNamespace(body: string): string {
  return body.replace(/[%:]/g, (c) => (c === '%' ? '%25' : '%3A'));
}

/**
 * The text every key of the namespace `keyPrefix` starts with (see the table above).
 *
 * @throws {@link ConfigError} when `keyPrefix` is not a string.
 * @example
 * ```ts
 * namespacePrefix('app');        // 'app:'
 * namespacePrefix('shop:eu:');   // 'shop%3Aeu:'
 * ```
 */
export function namespacePrefix(
  keyPrefix: string,
  where = 'namespacePrefix',
  field = 'keyPrefix',
): string {
  if (keyPrefix === '') return '';
  requireString(where, field, keyPrefix);
  const body = keyPrefix.endsWith(NAMESPACE_DELIMITER) ? keyPrefix.slice(0, -1) : keyPrefix;
  return escapeNamespace(body) + NAMESPACE_DELIMITER;
}

/**
 * The `keyPrefix` that names the namespace `prefix` (a value {@link namespacePrefix} returned, as
 * a store's `keyPrefix` property holds it): `namespacePrefix(namespaceKeyPrefix(p)) === p`. Pass
 * it where a `keyPrefix` option is namespaced again (e.g. `createRedisStreamQueues` beside a
 * `RedisBackend`), so that a prefix holding `:` or `%` is not escaped twice.
 * @internal
 */
export function namespaceKeyPrefix(prefix: string): string {
  if (prefix === '') return '';
  const body = prefix.endsWith(NAMESPACE_DELIMITER) ? prefix.slice(0, -1) : prefix;
  return body.replace(/%3A|%25/g, (c) => (c === '%3A' ? ':' : '%')) + NAMESPACE_DELIMITER;
}
