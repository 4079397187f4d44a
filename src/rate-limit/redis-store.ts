/**
 * The Redis GCRA store: one call of lua/rate_limit_gcra.lua per decision, both buckets at once,
 * time taken from the Redis server so that processes with skewed clocks share one budget.
 * @internal
 */
import { ScriptError } from '../errors.js';
import type { ScriptReply, ScriptRunner } from '../store/types.js';
import type { ResolvedBucket } from './options.js';
import type { RateDecision, RateStore } from './types.js';

/** The script's name in the registry (lua/rate_limit_gcra.lua). */
export const GCRA_SCRIPT = 'rate_limit_gcra';

/** Reply codes of the script. */
export const GcraCode = { ALLOWED: 0, THROTTLED: 1, BAD_ARGS: 2 } as const;

/**
 * Keys of one limiter's buckets, relative to the store's prefix. With a global bucket, every key
 * carries the hash tag `{name}` so the global and the per-key bucket live in one Redis Cluster
 * slot (one script touches both). Without one, each per-key bucket is tagged by its own key so
 * keys spread over the cluster.
 * @internal
 */
export function bucketKeys(name: string, key: string, withGlobal: boolean): [string, string] {
  return withGlobal
    ? [`rl:{${name}}:global`, `rl:{${name}}:key:${key}`]
    : [`rl:${name}:global`, `rl:${name}:key:{${key}}`];
}

/** The script arguments of one bucket, as strings computed once: emission, tolerance, TTL. */
type BucketArgs = readonly [string, string, string];
const NO_BUCKET: BucketArgs = ['0', '0', '0'];

/** Bucket state in Redis through a {@link ScriptRunner}. @internal */
export class RedisRateStore implements RateStore {
  readonly #runner: ScriptRunner;
  readonly #name: string;
  readonly #args = new WeakMap<ResolvedBucket, BucketArgs>();
  /** Test only: supplies the script's now (ms) instead of the Redis server's TIME. */
  readonly #testNowMs: (() => number) | undefined;

  constructor(runner: ScriptRunner, name: string, testNowMs?: () => number) {
    this.#runner = runner;
    this.#name = name;
    this.#testNowMs = testNowMs;
  }

  get size(): number {
    return 0;
  }

  decide(
    key: string,
    cost: number,
    global: ResolvedBucket | null,
    perKey: ResolvedBucket | null,
  ): Promise<RateDecision> {
    if (global === null && perKey === null) {
      return Promise.resolve({ allowed: true, retryAfterMs: 0, remaining: Infinity });
    }
    const [globalKey, perKeyKey] = bucketKeys(this.#name, key, global !== null);
    const keys =
      global === null ? [perKeyKey] : perKey === null ? [globalKey] : [globalKey, perKeyKey];
    const g = global === null ? NO_BUCKET : this.#bucketArgs(global);
    const k = perKey === null ? NO_BUCKET : this.#bucketArgs(perKey);
    const now = this.#testNowMs === undefined ? '' : String(this.#testNowMs());
    return this.#runner
      .runScript(GCRA_SCRIPT, keys, [now, cost, g[0], g[1], k[0], k[1], g[2], k[2]])
      .then(decodeReply);
  }

  #bucketArgs(bucket: ResolvedBucket): BucketArgs {
    let args = this.#args.get(bucket);
    if (args === undefined) {
      args = [
        String(bucket.emissionUs),
        String(bucket.toleranceUs),
        String(Math.max(1, Math.ceil(bucket.toleranceUs / 1000))),
      ];
      this.#args.set(bucket, args);
    }
    return args;
  }
}

/** Turns the script's reply into a decision; anything unexpected is a ScriptError. @internal */
export function decodeReply(reply: ScriptReply): RateDecision {
  const retryUs = Number(reply.payload[0]);
  const remaining = Number(reply.payload[1]);
  const wellFormed =
    reply.payload.length >= 2 &&
    Number.isInteger(retryUs) &&
    retryUs >= 0 &&
    Number.isInteger(remaining) &&
    remaining >= 0;
  if (reply.code === GcraCode.ALLOWED && wellFormed) {
    return { allowed: true, retryAfterMs: 0, remaining };
  }
  if (reply.code === GcraCode.THROTTLED && wellFormed) {
    return { allowed: false, retryAfterMs: Math.ceil(retryUs / 1000), remaining };
  }
  throw new ScriptError(
    `${GCRA_SCRIPT} returned ${reply.code} ${reply.msg} [${reply.payload.join(', ')}]`,
    { context: { script: GCRA_SCRIPT, code: reply.code } },
  );
}
