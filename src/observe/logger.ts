/**
 * The logger interface every mocra module writes to. Any logger with these four methods works
 * (pino, winston and console all fit); the default writes nothing.
 */

/** Structured fields attached to a log line. */
export type LogFields = Record<string, unknown>;

/**
 * A structured logger. pino, winston's child loggers and `console` satisfy it.
 *
 * @example
 * ```ts
 * const service = await createCacheService({ logger: console });
 * ```
 */
export interface Logger {
  /** Verbose diagnostics. */
  debug(message: string, fields?: LogFields): void;
  /** Normal operation (start-up mode, shutdown). */
  info(message: string, fields?: LogFields): void;
  /** Something unexpected that the library recovered from. */
  warn(message: string, fields?: LogFields): void;
  /** Something failed. */
  error(message: string, fields?: LogFields): void;
}

const noop = (): void => {};

/** A logger that writes nothing: the default everywhere. */
export const silentLogger: Logger = Object.freeze({
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
});
