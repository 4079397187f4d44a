/**
 * How a {@link RedisBackend} runs mocra's compiled scripts (`lua/`): EVALSHA, reloading on
 * NOSCRIPT and retrying once, its KEYS checked to share one cluster slot, its reply decoded.
 * @internal
 */
import type { Cluster, Redis } from 'ioredis';
import { ScriptError } from '../errors.js';
import { invalid } from '../internal/validate.js';
import type { Logger } from '../observe/logger.js';
import type { StoreArgs } from './args.js';
import type { CommandDeadline } from './command-deadline.js';
import { keySlot } from './key-slot.js';
import { LUA_SCRIPTS, type LuaScriptSource } from './lua-scripts.generated.js';
import { classifyRedisError } from './redis-errors.js';
import { redisMasters } from './redis-connection.js';
import type { RunScriptOptions, ScriptReply } from './types.js';
import { WriteCoalescer } from './write-coalescer.js';

/** What a {@link RedisScripts} shares with its backend. @internal */
export interface RedisScriptsContext {
  readonly client: Redis | Cluster;
  readonly isCluster: boolean;
  /** The backend's argument checks (open, key prefix). */
  readonly args: StoreArgs;
  /** Bounds calls through a client passed in. */
  readonly deadline: CommandDeadline;
  readonly logger: Logger;
  /** Reject KEYS in more than one slot (always checked on a cluster). */
  readonly assertSameSlot: boolean;
}

/** The script runner of one Redis backend. @internal */
export class RedisScripts {
  readonly #shared: RedisScriptsContext;
  readonly #coalescer = new WriteCoalescer();

  constructor(context: RedisScriptsContext) {
    this.#shared = context;
  }

  /** See {@link RedisBackend.runScript}. */
  async run(
    name: string,
    keys: string[],
    args: (string | number)[],
    options?: RunScriptOptions,
  ): Promise<ScriptReply> {
    const c = this.#shared;
    c.args.open();
    const script = Object.hasOwn(LUA_SCRIPTS, name)
      ? (LUA_SCRIPTS as Record<string, LuaScriptSource>)[name]
      : undefined;
    if (!script)
      throw new ScriptError(`unknown script ${JSON.stringify(String(name))}`, {
        context: { script: String(name) },
      });
    const full = c.args.keys('runScript', keys);
    // KEYS then ARGV in one array, passed as one argument: ioredis flattens it, so no spread
    // call and no further copy of a commit's many arguments on our side
    const keysAndArgs = scriptArgs(args, full);
    if (((c.assertSameSlot && options?.crossSlot !== true) || c.isCluster) && full.length > 1) {
      // fast path: keys that share one non-empty hash tag are in one slot, no CRC needed
      const tag = hashTag(full[0]!);
      const slot = tag !== null && full.every((k) => hasTag(k, tag)) ? -1 : keySlot(full[0]!);
      const other = slot === -1 ? undefined : full.find((k) => keySlot(k) !== slot);
      if (other !== undefined) {
        throw new ScriptError(
          `script ${name}: keys ${JSON.stringify(full[0])} and ${JSON.stringify(other)} are in different cluster slots (${slot} and ${keySlot(other)}); all KEYS of a script must share one hash tag`,
          { context: { script: name, slots: [slot, keySlot(other)] } },
        );
      }
    }
    let reply: unknown;
    try {
      this.#coalesce();
      reply = await c.deadline.run(() => c.client.evalsha(script.sha1, full.length, keysAndArgs));
    } catch (error) {
      if (!String((error as Error)?.message).startsWith('NOSCRIPT'))
        throw classifyRedisError(error, { script: name });
      c.logger.info({ script: name }, 'mocra: reloading script after NOSCRIPT');
      try {
        await c.deadline.run(() => this.#loadScript(script.source));
        reply = await c.deadline.run(() => c.client.evalsha(script.sha1, full.length, keysAndArgs));
      } catch (retryError) {
        throw classifyRedisError(retryError, { script: name });
      }
    }
    return decodeReply(name, reply);
  }

  /**
   * Loads a script after NOSCRIPT. A script cache is per server: on a cluster, load it on every
   * master (a master that fails here is left to the retry, which reports its own error).
   */
  async #loadScript(source: string): Promise<void> {
    const { client, isCluster } = this.#shared;
    if (!isCluster) {
      await client.script('LOAD', source);
      return;
    }
    const results = await Promise.allSettled(
      redisMasters(client, isCluster).map((node) => node.script('LOAD', source)),
    );
    if (results.every((r) => r.status === 'rejected')) {
      throw (results[0] as PromiseRejectedResult).reason;
    }
  }

  /** Scripts written in one tick share socket writes (see WriteCoalescer); one server only. */
  #coalesce(): void {
    if (this.#shared.isCluster) return;
    const client = this.#shared.client as Redis;
    this.#coalescer.beforeWrite(client.status === 'ready' ? client.stream : null);
  }
}

/** Decodes a `[code, msg, ...payload]` reply; anything else is a ScriptError. */
export function decodeReply(name: string, reply: unknown): ScriptReply {
  if (
    !Array.isArray(reply) ||
    reply.length < 2 ||
    typeof reply[0] !== 'number' ||
    typeof reply[1] !== 'string'
  ) {
    throw new ScriptError(
      `script ${name} returned a malformed reply: ${JSON.stringify(reply)?.slice(0, 200)}`,
      {
        context: { script: name },
      },
    );
  }
  const payload = reply.slice(2) as unknown[];
  for (const item of payload) {
    if (typeof item !== 'number' && typeof item !== 'string') {
      throw new ScriptError(
        `script ${name} returned a non-scalar payload item: ${JSON.stringify(item)}`,
        {
          context: { script: name },
        },
      );
    }
  }
  return { code: reply[0], msg: reply[1], payload: payload as (string | number)[] };
}

/** A script's full KEYS, then its ARGV checked (strings and finite numbers), in one array. */
function scriptArgs(args: unknown, keys: readonly string[]): string[] {
  if (!Array.isArray(args))
    invalid('RedisBackend.runScript', 'args', 'an array of strings and numbers', args);
  const n = keys.length;
  const out = new Array<string>(n + args.length);
  for (let i = 0; i < n; i++) out[i] = keys[i]!;
  for (let i = 0; i < args.length; i++) {
    const a: unknown = args[i];
    if (typeof a === 'string') out[n + i] = a;
    else if (typeof a === 'number' && Number.isFinite(a)) out[n + i] = String(a);
    else invalid('RedisBackend.runScript', `args[${i}]`, 'a string or a finite number', a);
  }
  return out;
}

/** Whether the hash tag of `key` is `tag` (see {@link hashTag}), without slicing the key. */
function hasTag(key: string, tag: string): boolean {
  // `tag` (a hash tag) holds no `}`: the `}` after it is the first one
  const open = key.indexOf('{');
  return (
    open >= 0 && key.startsWith(tag, open + 1) && key.charCodeAt(open + 1 + tag.length) === 125 // `}`
  );
}

/** The hash tag of a key (the text between its first `{` and the next `}`), or null if none. */
function hashTag(key: string): string | null {
  const open = key.indexOf('{');
  if (open < 0) return null;
  const close = key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : null;
}
