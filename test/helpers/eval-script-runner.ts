/**
 * TEMPORARY test double (rate-limit branch): a distributed "CacheService" whose only working
 * method is runScript, which EVALs the compiled LUA_SCRIPTS on a real Redis. It stands in for
 * RedisBackend until the store branch lands; delete it then.
 */
import type { Redis } from 'ioredis';
import { LUA_SCRIPTS, type LuaScriptName } from '../../src/store/lua-scripts.generated.js';
import type { CacheService, ScriptReply, ScriptRunner } from '../../src/store/types.js';

export type EvalStore = CacheService & ScriptRunner;

export function evalScriptStore(client: Redis, keyPrefix: string): EvalStore {
  const unsupported = (): never => {
    throw new Error('evalScriptStore supports runScript only');
  };
  return {
    mode: 'distributed',
    keyPrefix,
    get: unsupported,
    set: unsupported,
    setNX: unsupported,
    del: unsupported,
    incr: unsupported,
    mget: unsupported,
    expire: unsupported,
    ttl: unsupported,
    zadd: unsupported,
    zrangeByScore: unsupported,
    zremRangeByScore: unsupported,
    scan: unsupported,
    close: async () => {},
    async runScript(name, keys, args): Promise<ScriptReply> {
      const script = LUA_SCRIPTS[name as LuaScriptName];
      if (!script) throw new Error(`unknown script ${name}`);
      const reply = (await client.eval(
        script.source,
        keys.length,
        ...keys.map((k) => keyPrefix + k),
        ...args.map(String),
      )) as unknown[];
      const [code, msg, ...payload] = reply;
      return { code: Number(code), msg: String(msg), payload: payload as (string | number)[] };
    },
  };
}
