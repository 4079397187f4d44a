/**
 * Argument checks shared by both backends, so a bad argument fails the same way everywhere
 * (ConfigError naming the argument) before any command is sent.
 * @internal
 */
import { ClosedError, StoreCommandError, ErrorCode } from '../errors.js';
import { invalid, optionalString, readOptions, requireNumber } from '../internal/validate.js';
import { namespacePrefix } from '../keys/namespace.js';
import type { RangeOptions, SetOptions } from './types.js';

/**
 * The argument checks of one backend's methods, in one place for both backends: every method
 * first checks that the service is open ({@link ClosedError} after `close()`), then its
 * arguments (ConfigError naming the argument), and adds the namespace prefix to keys.
 */
export class StoreArgs {
  /** The text every full key starts with (see `namespacePrefix`). */
  readonly prefix: string;
  readonly #where: string;
  #closed = false;

  constructor(where: string, keyPrefix: unknown) {
    this.#where = where;
    this.prefix = namespacePrefix(
      optionalString(where, 'keyPrefix', keyPrefix, '', { allowEmpty: true }),
      where,
    );
  }

  /** True once {@link StoreArgs.close} has run. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Marks the service closed; true the first time. */
  close(): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    return true;
  }

  /** Throws {@link ClosedError} once the service is closed. */
  open(): void {
    if (this.#closed)
      throw new ClosedError(`${this.#where}: the service is closed`, {
        context: { field: 'service' },
      });
  }

  /** The full key of `key` for method `op`. */
  key(op: string, key: unknown): string {
    this.open();
    return this.prefix + checkKey(`${this.#where}.${op}`, key);
  }

  /** The full keys of an array argument (`del`'s rest, `mget`'s array). */
  keys(op: string, keys: unknown): string[] {
    this.open();
    if (!Array.isArray(keys)) invalid(`${this.#where}.${op}`, 'keys', 'an array of strings', keys);
    // a script names up to a few hundred keys: the error's text is built only for a bad one
    const full = new Array<string>(keys.length);
    for (let i = 0; i < keys.length; i++) {
      const key: unknown = keys[i];
      if (typeof key !== 'string') invalid(`${this.#where}.${op}`, `keys[${i}]`, 'a string', key);
      full[i] = this.prefix + key;
    }
    return full;
  }

  /** `set`/`setNX`: the value and the TTL (undefined: none). */
  value(
    op: string,
    value: unknown,
    options: unknown,
  ): { value: string; ttlMs: number | undefined } {
    const where = `${this.#where}.${op}`;
    return { value: checkValue(where, value), ttlMs: checkTtl(where, options as SetOptions) };
  }

  /** A score range: `[min, max]`. */
  scores(op: string, min: unknown, max: unknown): [number, number] {
    const where = `${this.#where}.${op}`;
    return [checkScore(where, 'min', min), checkScore(where, 'max', max)];
  }

  /** `offset` and `count` of a range. */
  range(op: string, options: unknown): { offset: number; count: number } {
    return checkRange(`${this.#where}.${op}`, options as RangeOptions | undefined);
  }

  /** `zrangeByScore`'s arguments, checked in order: the key, the score bounds, the range. */
  rangeQuery(
    op: string,
    key: unknown,
    min: unknown,
    max: unknown,
    options: unknown,
  ): { key: string; lo: number; hi: number; offset: number; count: number } {
    const k = this.key(op, key);
    const [lo, hi] = this.scores(op, min, max);
    return { key: k, lo, hi, ...this.range(op, options) };
  }

  /** An argument that is a member or a relative prefix (a string). */
  text(op: string, value: unknown, field: string): string {
    return checkKey(`${this.#where}.${op}`, value, field);
  }

  /** `expire`'s TTL. */
  ttl(op: string, ttlMs: unknown): number {
    return checkTtlArg(`${this.#where}.${op}`, ttlMs);
  }

  /** `incr`'s step. */
  increment(op: string, by: unknown): number {
    return checkIncrement(`${this.#where}.${op}`, by);
  }

  /** `zadd`'s score. */
  score(op: string, score: unknown): number {
    return checkScore(`${this.#where}.${op}`, 'score', score);
  }
}

export function checkKey(where: string, key: unknown, field = 'key'): string {
  if (typeof key !== 'string') invalid(where, field, 'a string', key);
  return key;
}

export function checkValue(where: string, value: unknown): string {
  if (typeof value !== 'string') invalid(where, 'value', 'a string', value);
  return value;
}

/** TTL in ms: a safe integer >= 1, or undefined. */
export function checkTtl(where: string, options: SetOptions | undefined): number | undefined {
  const o = readOptions(where, options, ['ttlMs']);
  if (o.ttlMs === undefined) return undefined;
  return requireNumber(where, 'ttlMs', o.ttlMs, {
    integer: true,
    min: 1,
    max: Number.MAX_SAFE_INTEGER,
  });
}

export function checkTtlArg(where: string, ttlMs: unknown): number {
  return requireNumber(where, 'ttlMs', ttlMs, {
    integer: true,
    min: 1,
    max: Number.MAX_SAFE_INTEGER,
  });
}

export function checkIncrement(where: string, by: unknown): number {
  if (by === undefined) return 1;
  return requireNumber(where, 'by', by, {
    integer: true,
    min: Number.MIN_SAFE_INTEGER,
    max: Number.MAX_SAFE_INTEGER,
  });
}

export function checkScore(where: string, field: string, score: unknown): number {
  if (typeof score !== 'number' || Number.isNaN(score))
    invalid(where, field, 'a number (not NaN)', score);
  return score;
}

export function checkRange(
  where: string,
  options: RangeOptions | undefined,
): { offset: number; count: number } {
  const o = readOptions(where, options, ['offset', 'count']);
  const offset =
    o.offset === undefined
      ? 0
      : requireNumber(where, 'offset', o.offset, { integer: true, min: 0 });
  const count =
    o.count === undefined ? -1 : requireNumber(where, 'count', o.count, { integer: true, min: 0 });
  return { offset, count };
}

/** Redis' integer rules: optional '-', no leading zeros or '+', within int64. */
const INTEGER = /^-?(0|[1-9][0-9]{0,18})$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

export function notAnInteger(key: string): StoreCommandError {
  return new StoreCommandError(
    ErrorCode.NOT_AN_INTEGER,
    'value is not an integer or out of range',
    {
      context: { key },
    },
  );
}

export function wrongType(key: string): StoreCommandError {
  return new StoreCommandError(
    ErrorCode.WRONG_TYPE,
    'operation against a key holding the wrong kind of value',
    { context: { key } },
  );
}

/** Adds `by` to the integer text `current` as Redis INCRBY does; throws NOT_AN_INTEGER. */
export function addInteger(key: string, current: string | null, by: number): bigint {
  let value = 0n;
  if (current !== null) {
    if (!INTEGER.test(current) || current === '-0') throw notAnInteger(key);
    value = BigInt(current);
    if (value < INT64_MIN || value > INT64_MAX) throw notAnInteger(key);
  }
  const result = value + BigInt(by);
  if (result < INT64_MIN || result > INT64_MAX) {
    throw new StoreCommandError(ErrorCode.NOT_AN_INTEGER, 'increment or decrement would overflow', {
      context: { key },
    });
  }
  return result;
}
