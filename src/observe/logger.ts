/**
 * The logger interface every mocra module writes to, in pino's argument order: structured
 * fields first, then the message. A pino logger works as it is; {@link consoleLogger} is a small
 * one for quick use; the default ({@link silentLogger}) writes nothing.
 *
 * Every logger handed to mocra is checked when the component is built (ConfigError when a method
 * is missing) and wrapped once so that a log call never throws into mocra: a method that throws
 * (or returns a promise that rejects) is ignored.
 */
import { ConfigError } from '../errors.js';
import { describeValue, hasMethods, invalid, readOptions } from '../internal/validate.js';

/** Structured fields attached to a log line (`run_id`, `module_id`, `error`, …). */
export type LogFields = Record<string, unknown>;

/** The four levels mocra logs at, from the most to the least verbose. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/**
 * A structured logger with pino's argument order: `logger.warn(fields, message)`. A pino logger
 * (or one of its children) satisfies it as it is. `console` does too, but prints the fields
 * object before the message: use {@link consoleLogger} for readable console output.
 *
 * @example
 * ```ts
 * import pino from 'pino';
 * const engine = createChainEngine({ modules, logger: pino() });
 * ```
 */
export interface Logger {
  /** Verbose diagnostics. */
  debug(fields: LogFields, message: string): void;
  /** Normal operation (start-up mode, shutdown). */
  info(fields: LogFields, message: string): void;
  /** Something unexpected that the library recovered from. */
  warn(fields: LogFields, message: string): void;
  /** Something failed. */
  error(fields: LogFields, message: string): void;
}

const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];
const noop = (): void => {};

/** A logger that writes nothing: the default everywhere. */
export const silentLogger: Logger = Object.freeze({
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
});

/** Options of {@link consoleLogger}. */
export interface ConsoleLoggerOptions {
  /** Lines below this level are not written; `'silent'` writes nothing. @defaultValue 'info' */
  level?: LogLevel | 'silent';
}

/**
 * A logger that writes to the console: `<level> <message>` followed by the fields, through
 * `console.debug`/`info`/`warn`/`error`. For quick use and examples; use pino (or any logger with
 * the same argument order) in production.
 *
 * @throws {@link ConfigError} for an unknown `level`.
 * @example
 * ```ts
 * const service = await createCacheService({ logger: consoleLogger({ level: 'debug' }) });
 * ```
 */
export function consoleLogger(options: ConsoleLoggerOptions = {}): Logger {
  const o = readOptions('consoleLogger', options, ['level']);
  const level = o.level ?? 'info';
  const min = level === 'silent' ? LEVELS.length : LEVELS.indexOf(level);
  if (min < 0 || typeof level !== 'string') {
    invalid('consoleLogger', 'level', "one of 'debug', 'info', 'warn', 'error', 'silent'", level);
  }
  const line =
    (at: LogLevel) =>
    (fields: LogFields, message: string): void => {
      if (LEVELS.indexOf(at) < min) return;
      const hasFields = fields !== null && typeof fields === 'object' && Object.keys(fields).length;
      // eslint-disable-next-line no-console -- writing to the console is this logger's job
      if (hasFields) console[at](`${at.toUpperCase()} ${message}`, fields);
      // eslint-disable-next-line no-console -- writing to the console is this logger's job
      else console[at](`${at.toUpperCase()} ${message}`);
    };
  return wrap({
    debug: line('debug'),
    info: line('info'),
    warn: line('warn'),
    error: line('error'),
  });
}

const WRAPPED = new WeakSet<Logger>();

/**
 * Checks a `logger` option and wraps it so that no log call throws: undefined gives
 * {@link silentLogger}; anything without the four methods is a ConfigError naming `field`.
 * A logger already wrapped is returned as it is.
 *
 * @throws {@link ConfigError} when `value` is not a logger.
 * @internal
 */
export function readLogger(where: string, field: string, value: unknown): Logger {
  if (value === undefined) return silentLogger;
  if (value === silentLogger || WRAPPED.has(value as Logger)) return value as Logger;
  const missing =
    value !== null && typeof value === 'object'
      ? LEVELS.find((level) => !hasMethods(value, [level]))
      : 'debug';
  if (missing !== undefined) {
    throw new ConfigError(
      `${where}: expected \`${field}\` to be a logger with debug, info, warn and error methods (pino's (fields, message) order), got ${describeValue(value)}${value !== null && typeof value === 'object' ? ` without \`${missing}\`` : ''}`,
      { context: { field } },
    );
  }
  return wrap(value as Logger);
}

/** A logger whose calls never throw (nor reject) into the caller. */
function wrap(target: Logger): Logger {
  const call =
    (level: LogLevel) =>
    (fields: LogFields, message: string): void => {
      try {
        const result: unknown = target[level](fields, message);
        if (result !== null && typeof result === 'object' && 'then' in result) {
          const then = (result as { then?: unknown }).then;
          if (typeof then === 'function') then.call(result, noop, noop);
        }
      } catch {
        // a broken logger never breaks the code that logs
      }
    };
  const logger: Logger = Object.freeze({
    debug: call('debug'),
    info: call('info'),
    warn: call('warn'),
    error: call('error'),
  });
  WRAPPED.add(logger);
  return logger;
}
