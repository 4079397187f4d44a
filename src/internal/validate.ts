/**
 * Option validation shared by every primitive. Messages name the field, the expectation and
 * the value received with its type, e.g.
 * "createScheduler: expected `maxConcurrent` to be an integer >= 1, got `0.5` (number)".
 * @internal
 */
import { ConfigError } from '../errors.js';

/**
 * Renders a received value for an error message: "`-1` (number)". Never throws, whatever the
 * value (a Proxy with throwing traps, a getter that throws, an object without a prototype).
 */
export function describeValue(value: unknown): string {
  let shown: string;
  let type: string;
  try {
    type = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
  } catch {
    type = typeof value; // Array.isArray throws on a revoked Proxy
  }
  try {
    if (typeof value === 'string')
      shown = JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
    else if (typeof value === 'function')
      shown =
        typeof value.name === 'string' && value.name ? `[function ${value.name}]` : '[function]';
    else if (typeof value === 'bigint') shown = `${value}n`;
    else if (typeof value === 'symbol') shown = value.toString();
    else if (type === 'array') shown = `[array of ${(value as unknown[]).length}]`;
    else if (value !== null && typeof value === 'object') {
      const name: unknown = (value as { constructor?: { name?: unknown } }).constructor?.name;
      shown = `[object ${typeof name === 'string' && name ? name : 'Object'}]`;
    } else shown = String(value);
  } catch {
    shown = `[${type}]`;
  }
  return `\`${shown}\` (${type})`;
}

/** Throws a ConfigError naming `where`, the field, what was expected and what arrived. */
export function invalid(where: string, field: string, expected: string, value: unknown): never {
  throw new ConfigError(
    `${where}: expected \`${field}\` to be ${expected}, got ${describeValue(value)}`,
    {
      context: { field, value },
    },
  );
}

/** Throws a ConfigError for a rule that involves several fields. */
export function invalidCombination(where: string, fields: string[], message: string): never {
  throw new ConfigError(`${where}: ${message}`, { context: { field: fields.join(',') } });
}

/**
 * Checks that `options` is undefined or an object, that it has no unknown keys, and that each of
 * its values can be read: a Proxy trap or a getter that throws is a ConfigError naming the field,
 * never its own error.
 */
export function readOptions<T extends object>(
  where: string,
  options: T | undefined,
  allowed: readonly string[],
  field = 'options',
): Partial<T> {
  if (options === undefined) return {};
  let names: string[];
  try {
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      invalid(where, field, 'an object', options);
    }
    names = Object.keys(options);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw unreadable(where, field, error);
  }
  for (const name of names) {
    const path = field === 'options' ? name : `${field}.${name}`;
    if (!allowed.includes(name)) {
      throw new ConfigError(
        `${where}: unknown option \`${name}\`${field === 'options' ? '' : ` in \`${field}\``}; known options are ${allowed.map((a) => `\`${a}\``).join(', ')}`,
        { context: { field: path } },
      );
    }
    try {
      void (options as Record<string, unknown>)[name];
    } catch (error) {
      throw unreadable(where, path, error);
    }
  }
  return options;
}

function unreadable(where: string, field: string, error: unknown): ConfigError {
  let reason: string;
  try {
    reason = error instanceof Error ? error.message : String(error);
  } catch {
    reason = 'unknown error';
  }
  return new ConfigError(`${where}: \`${field}\` cannot be read: ${reason}`, {
    cause: error,
    context: { field },
  });
}

/** Range constraints for numeric options. */
export interface NumberRule {
  /** Inclusive lower bound. */
  min?: number;
  /** Exclusive lower bound. */
  greaterThan?: number;
  /** Inclusive upper bound. */
  max?: number;
  /** Exclusive upper bound. */
  lessThan?: number;
  /** Accept only integers (Infinity is accepted only with `allowInfinity`). */
  integer?: boolean;
  /** Accept `Infinity`. */
  allowInfinity?: boolean;
}

function describeRule(rule: NumberRule): string {
  const parts: string[] = [rule.integer ? 'an integer' : 'a finite number'];
  if (rule.min !== undefined) parts.push(`>= ${rule.min}`);
  if (rule.greaterThan !== undefined) parts.push(`> ${rule.greaterThan}`);
  if (rule.max !== undefined) parts.push(`<= ${rule.max}`);
  if (rule.lessThan !== undefined) parts.push(`< ${rule.lessThan}`);
  let text = parts.join(' ');
  if (rule.allowInfinity) text += ' or Infinity';
  return text;
}

/** Whether `value` is a number satisfying `rule`. */
export function satisfies(value: unknown, rule: NumberRule): value is number {
  if (typeof value !== 'number' || Number.isNaN(value)) return false;
  if (value === Infinity) return rule.allowInfinity === true;
  if (!Number.isFinite(value)) return false;
  if (rule.integer && !Number.isInteger(value)) return false;
  if (rule.min !== undefined && value < rule.min) return false;
  if (rule.greaterThan !== undefined && value <= rule.greaterThan) return false;
  if (rule.max !== undefined && value > rule.max) return false;
  if (rule.lessThan !== undefined && value >= rule.lessThan) return false;
  return true;
}

/** Validates a required number. */
export function requireNumber(
  where: string,
  field: string,
  value: unknown,
  rule: NumberRule = {},
): number {
  if (!satisfies(value, rule)) invalid(where, field, describeRule(rule), value);
  return value;
}

/** Validates an optional number, returning `fallback` when it is `undefined`. */
export function optionalNumber<D extends number | undefined>(
  where: string,
  field: string,
  value: unknown,
  fallback: D,
  rule: NumberRule = {},
): number | D {
  if (value === undefined) return fallback;
  return requireNumber(where, field, value, rule);
}

/** Validates an optional boolean. */
export function optionalBoolean<D extends boolean | undefined>(
  where: string,
  field: string,
  value: unknown,
  fallback: D,
): boolean | D {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') invalid(where, field, 'a boolean', value);
  return value;
}

/** Validates an optional non-empty string. */
export function optionalString<D extends string | undefined>(
  where: string,
  field: string,
  value: unknown,
  fallback: D,
  { allowEmpty = false }: { allowEmpty?: boolean } = {},
): string | D {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || (!allowEmpty && value.length === 0)) {
    invalid(where, field, allowEmpty ? 'a string' : 'a non-empty string', value);
  }
  return value;
}

/** Validates a required non-empty string argument. */
export function requireString(where: string, field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0)
    invalid(where, field, 'a non-empty string', value);
  return value;
}

/** Validates an optional function. */
export function optionalFunction<F extends (...args: never[]) => unknown>(
  where: string,
  field: string,
  value: unknown,
): F | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'function') invalid(where, field, 'a function', value);
  return value as F;
}

/** Validates a required function argument. */
export function requireFunction<F extends (...args: never[]) => unknown>(
  where: string,
  field: string,
  value: unknown,
): F {
  if (typeof value !== 'function') invalid(where, field, 'a function', value);
  return value as F;
}

/** Validates an optional value from a fixed set. */
export function optionalEnum<T extends string, D extends T | undefined>(
  where: string,
  field: string,
  value: unknown,
  allowed: readonly T[],
  fallback: D,
): T | D {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    invalid(where, field, `one of ${allowed.map((a) => `'${a}'`).join(', ')}`, value);
  }
  return value as T;
}

/** Validates an optional AbortSignal. */
export function optionalSignal(
  where: string,
  field: string,
  value: unknown,
): AbortSignal | undefined {
  if (value === undefined) return undefined;
  // a real signal (the usual case) passes without reading its properties
  if (value instanceof AbortSignal) return value;
  if (
    value === null ||
    typeof value !== 'object' ||
    typeof (value as AbortSignal).aborted !== 'boolean' ||
    typeof (value as AbortSignal).addEventListener !== 'function'
  ) {
    invalid(where, field, 'an AbortSignal', value);
  }
  return value as AbortSignal;
}

/** Validates an optional clock (`{ now(): number }`). */
export function optionalClock<C extends { now(): number }>(
  where: string,
  field: string,
  value: unknown,
  fallback: C,
): C {
  if (value === undefined) return fallback;
  if (value === null || typeof value !== 'object' || typeof (value as C).now !== 'function') {
    invalid(where, field, 'an object with a now() method', value);
  }
  return value as C;
}

/**
 * Whether `value` is an object with a function under each of `names`. Never throws: a Proxy trap
 * or a getter that throws makes it false.
 */
export function hasMethods(value: unknown, names: readonly string[]): boolean {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return false;
  try {
    return names.every((name) => typeof (value as Record<string, unknown>)[name] === 'function');
  } catch {
    return false;
  }
}
