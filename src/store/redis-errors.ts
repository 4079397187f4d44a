/**
 * The one classifier of Redis failures. Every Redis caller in mocra (the Redis backend and its
 * scripts, the rate limiter's Redis store through it, the Redis Stream queues) turns what ioredis
 * throws into a mocra error here, so the same failure has the same code everywhere:
 *
 * | failure | error | retryable |
 * |---|---|---|
 * | a dropped or refused connection, an offline client, a command past its timeout, `LOADING`, `BUSY`, `CLUSTERDOWN`, `TRYAGAIN`, `MASTERDOWN`, cluster routing gone | {@link BackendUnavailableError} (`BACKEND_UNAVAILABLE`) | yes |
 * | `OOM` (maxmemory reached, nothing to evict) | {@link BackendOutOfMemoryError} (`BACKEND_OUT_OF_MEMORY`) | yes |
 * | `WRONGTYPE` | {@link StoreCommandError} (`WRONG_TYPE`) | no |
 * | not an integer, overflow | {@link StoreCommandError} (`NOT_AN_INTEGER`) | no |
 * | anything else from a script | {@link ScriptError} (`SCRIPT_FAILED`) | no |
 * | anything else from a command | {@link StoreCommandError} (`STORE_COMMAND_FAILED`) | no |
 *
 * A timed-out command may still run on the server: mocra never sends it again by itself (its
 * clients do not resend, see `RedisBackend`); the caller may, and every chain transition is safe
 * to replay by the same owner.
 */
import {
  BackendOutOfMemoryError,
  BackendUnavailableError,
  ErrorCode,
  ScriptError,
  StoreCommandError,
  isMocraError,
  type MocraError,
} from '../errors.js';

/** What a failed call was, for the error's message and context. */
export interface RedisCallContext {
  /** The key (relative to the store prefix) the call concerned. */
  key?: string;
  /** The script the call ran, when it ran one. */
  script?: string;
  /** Who called, for the message (`queue parser`, `RedisBackend`…). */
  source?: string;
}

/** Connection, timeout and cluster-availability failures: Redis did not (surely) answer. */
const UNAVAILABLE =
  /Connection is closed|Stream isn't writeable|enableOfflineQueue|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|MaxRetriesPerRequest|Reached the max retries|Socket closed|Command timed out|Cluster is ended|None of startup nodes|Failed to refresh slots cache|Too many Cluster redirections|Connection is not ready|^(LOADING|BUSY|CLUSTERDOWN|TRYAGAIN|MASTERDOWN)\b/i;

/** The message of a thrown value, whatever it is (never throws itself). */
function messageOf(error: unknown): string {
  try {
    if (error instanceof Error) return String(error.message);
    return String(error);
  } catch {
    return 'unknown error';
  }
}

/**
 * Turns a failure of a Redis call into a mocra error (see the table above). A mocra error passes
 * through unchanged.
 *
 * @example
 * ```ts
 * try { await client.get(k); } catch (e) { throw classifyRedisError(e, { key: k }); }
 * ```
 */
export function classifyRedisError(error: unknown, call: RedisCallContext = {}): MocraError {
  if (isMocraError(error)) return error;
  const message = messageOf(error);
  const context: Record<string, unknown> = {};
  if (call.key !== undefined) context.key = call.key;
  if (call.script !== undefined) context.script = call.script;
  const source = call.source === undefined ? '' : `${call.source}: `;
  const what = call.script === undefined ? '' : `script ${call.script}: `;
  if (UNAVAILABLE.test(message)) {
    if (/Command timed out/i.test(message)) context.mayHaveRun = true;
    return new BackendUnavailableError(`${source}${what}redis is unavailable: ${message}`, {
      cause: error,
      context,
    });
  }
  if (/^OOM\b/.test(message)) {
    return new BackendOutOfMemoryError(`${source}${what}redis is out of memory: ${message}`, {
      cause: error,
      context,
    });
  }
  if (message.startsWith('WRONGTYPE')) {
    return new StoreCommandError(
      ErrorCode.WRONG_TYPE,
      `${source}${what}operation against a key holding the wrong kind of value`,
      { cause: error, context },
    );
  }
  if (/not an integer or out of range|would overflow/.test(message)) {
    return new StoreCommandError(
      ErrorCode.NOT_AN_INTEGER,
      `${source}${what}${message.replace(/^ERR /, '')}`,
      { cause: error, context },
    );
  }
  if (call.script !== undefined) {
    if (message.startsWith('CROSSSLOT')) {
      return new ScriptError(
        `${source}script ${call.script}: its keys are in different cluster slots (CROSSSLOT); all KEYS of a script must share one hash tag`,
        { cause: error, context },
      );
    }
    return new ScriptError(`${source}script ${call.script} failed: ${message}`, {
      cause: error,
      context,
    });
  }
  return new StoreCommandError(ErrorCode.STORE_COMMAND_FAILED, `${source}${message}`, {
    cause: error,
    context,
  });
}
