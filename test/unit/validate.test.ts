import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import {
  describeValue,
  optionalBoolean,
  optionalEnum,
  optionalFunction,
  optionalNumber,
  optionalSignal,
  readOptions,
  requireNumber,
} from '../../src/internal/validate.js';

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('CONFIG_INVALID');
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('validate', () => {
  it('names where, field, expectation, value and type', () => {
    const msg = messageOf(() =>
      requireNumber('createScheduler', 'maxConcurrent', 0.5, { integer: true, min: 1 }),
    );
    expect(msg).toBe(
      'createScheduler: expected `maxConcurrent` to be an integer >= 1, got `0.5` (number)',
    );
  });

  it('describes values of every type', () => {
    expect(describeValue('x')).toBe('`"x"` (string)');
    expect(describeValue(null)).toBe('`null` (null)');
    expect(describeValue(undefined)).toBe('`undefined` (undefined)');
    expect(describeValue([1, 2])).toBe('`[array of 2]` (array)');
    expect(describeValue(10n)).toBe('`10n` (bigint)');
    expect(describeValue(function named() {})).toBe('`[function named]` (function)');
    expect(describeValue(new Map())).toBe('`[object Map]` (object)');
    expect(describeValue('y'.repeat(100))).toContain('...');
  });

  it('numbers: NaN, Infinity, bounds, integers', () => {
    expect(() => requireNumber('w', 'f', NaN)).toThrow(ConfigError);
    expect(() => requireNumber('w', 'f', Infinity)).toThrow(/a finite number/);
    expect(requireNumber('w', 'f', Infinity, { allowInfinity: true })).toBe(Infinity);
    expect(() => requireNumber('w', 'f', -1, { min: 0 })).toThrow(/>= 0/);
    expect(() => requireNumber('w', 'f', 0, { greaterThan: 0 })).toThrow(/> 0/);
    expect(() => requireNumber('w', 'f', 1, { lessThan: 1 })).toThrow(/< 1/);
    expect(() => requireNumber('w', 'f', 3, { max: 2 })).toThrow(/<= 2/);
    expect(() => requireNumber('w', 'f', '1')).toThrow(/\(string\)/);
    expect(optionalNumber('w', 'f', undefined, 7)).toBe(7);
    expect(optionalNumber('w', 'f', 3, 7, { integer: true })).toBe(3);
  });

  it('rejects unknown option keys, listing the known ones', () => {
    const msg = messageOf(() =>
      readOptions('createScheduler', { maxConcurency: 2 } as object, ['maxConcurrent']),
    );
    expect(msg).toContain('unknown option `maxConcurency`');
    expect(msg).toContain('`maxConcurrent`');
    expect(() => readOptions('w', 5 as unknown as object, [])).toThrow(
      /expected `options` to be an object/,
    );
    expect(readOptions('w', undefined, [])).toEqual({});
  });

  it('booleans, enums, functions, signals', () => {
    expect(() => optionalBoolean('w', 'b', 1, false)).toThrow(/a boolean/);
    expect(optionalEnum('w', 'p', undefined, ['a', 'b'] as const, 'a')).toBe('a');
    expect(() => optionalEnum('w', 'p', 'c', ['a', 'b'] as const, 'a')).toThrow(/one of 'a', 'b'/);
    expect(() => optionalFunction('w', 'fn', 3)).toThrow(/a function/);
    expect(() => optionalSignal('w', 'signal', {})).toThrow(/an AbortSignal/);
    const signal = new AbortController().signal;
    expect(optionalSignal('w', 'signal', signal)).toBe(signal);
  });
});
