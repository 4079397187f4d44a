/**
 * Canonical, order-independent text for cache keys, stable across processes and versions.
 */
import { ConfigError } from '../errors.js';
import { describeValue } from '../internal/validate.js';

/** Marks a non-string key's encoding; a string key never starts with it unencoded. */
const MARK = '\u0000';

/**
 * The canonical text of a cache key. Strings map to themselves (unless they start with U+0000);
 * every other key is encoded as JSON with object keys sorted, behind a U+0000 marker, so
 * `{ a: 1, b: 2 }` and `{ b: 2, a: 1 }` give the same text and no string can collide with it.
 *
 * Accepted: strings, finite numbers (`-0` is `0`), booleans, null, arrays and plain objects of
 * these. Anything else — `undefined`, functions, symbols, bigints, NaN, ±Infinity, class
 * instances (Date, Map…), cycles, nesting deeper than 256 levels — is refused.
 *
 * @throws {@link ConfigError} naming the path of the offending part.
 * @example
 * ```ts
 * canonicalKey({ page: 2, q: 'shoes' }) === canonicalKey({ q: 'shoes', page: 2 }); // true
 * ```
 */
export function canonicalKey(key: unknown): string {
  if (typeof key === 'string') return key.charCodeAt(0) === 0 ? MARK + JSON.stringify(key) : key;
  try {
    return MARK + encode(key, 'key', new Set(), 0);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    // a getter or a Proxy trap of the key threw
    throw new ConfigError(
      `PluginCache: \`key\` cannot be read: ${String((error as Error)?.message)}`,
      {
        cause: error,
        context: { field: 'key' },
      },
    );
  }
}

/** Deepest nesting of a key; deeper keys are refused (no stack overflow). */
const MAX_DEPTH = 256;

function encode(value: unknown, path: string, seen: Set<object>, depth: number): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) refuse(path, value, 'a finite number');
      return Object.is(value, -0) ? '0' : String(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (depth >= MAX_DEPTH) refuse(path, value, `nested at most ${MAX_DEPTH} levels deep`);
      if (seen.has(value)) refuse(path, value, 'a key without cycles');
      seen.add(value);
      let out: string;
      if (Array.isArray(value)) {
        out = `[${value.map((v, i) => encode(v, `${path}[${i}]`, seen, depth + 1)).join(',')}]`;
      } else {
        const proto = Object.getPrototypeOf(value) as unknown;
        if (proto !== Object.prototype && proto !== null)
          refuse(path, value, 'a plain object, array or primitive');
        const names = Object.keys(value).sort();
        out = `{${names
          .map(
            (n) =>
              `${JSON.stringify(n)}:${encode((value as Record<string, unknown>)[n], `${path}.${n}`, seen, depth + 1)}`,
          )
          .join(',')}}`;
      }
      seen.delete(value);
      return out;
    }
    default:
      return refuse(path, value, 'a string, finite number, boolean, null, array or plain object');
  }
}

function refuse(path: string, value: unknown, expected: string): never {
  throw new ConfigError(
    `PluginCache: expected \`${path}\` to be ${expected}, got ${describeValue(value)}`,
    {
      context: { field: path },
    },
  );
}
