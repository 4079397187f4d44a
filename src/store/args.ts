/**
 * Argument checks shared by both backends, so a bad argument fails the same way everywhere
 * (ConfigError naming the argument) before any command is sent.
 * @internal
 */
import { ConfigError, StoreCommandError, ErrorCode } from '../errors.js';
import { invalid, requireNumber } from '../internal/validate.js';
import type { RangeOptions, SetOptions } from './types.js';

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
  if (options === undefined) return undefined;
  if (options === null || typeof options !== 'object')
    invalid(where, 'options', 'an object', options);
  for (const k of Object.keys(options)) {
    if (k !== 'ttlMs')
      throw new ConfigError(`${where}: unknown option \`${k}\``, { context: { field: k } });
  }
  if (options.ttlMs === undefined) return undefined;
  return requireNumber(where, 'ttlMs', options.ttlMs, {
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
  if (options === undefined) return { offset: 0, count: -1 };
  if (options === null || typeof options !== 'object')
    invalid(where, 'options', 'an object', options);
  for (const k of Object.keys(options)) {
    if (k !== 'offset' && k !== 'count') {
      throw new ConfigError(`${where}: unknown option \`${k}\``, { context: { field: k } });
    }
  }
  const offset =
    options.offset === undefined
      ? 0
      : requireNumber(where, 'offset', options.offset, { integer: true, min: 0 });
  const count =
    options.count === undefined
      ? -1
      : requireNumber(where, 'count', options.count, { integer: true, min: 0 });
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
