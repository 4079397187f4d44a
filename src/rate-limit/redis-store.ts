/**
 * The Redis GCRA store: each decision takes both buckets at once, with time from the Redis server
 * so that processes with skewed clocks share one budget. A decision made while no other is in
 * flight is sent at once (lua/rate_limit_gcra.lua); decisions that arrive while one is in flight
 * are batched into one call of lua/rate_limit_gcra_batch.lua, applied in arrival order — one
 * round trip for many decisions under load, no added latency when idle. On a Redis Cluster a
 * batch only holds decisions whose keys share one hash slot.
 * @internal
 */
import { ScriptError } from '../errors.js';
import { keySlot } from '../store/key-slot.js';
import type { ScriptReply, ScriptRunner } from '../store/types.js';
import type { ResolvedBucket } from './options.js';
import type { RateDecision, RateStore } from './types.js';

/** The script's name in the registry (lua/rate_limit_gcra.lua). */
export const GCRA_SCRIPT = 'rate_limit_gcra';
/** The batch script's name in the registry (lua/rate_limit_gcra_batch.lua). */
export const GCRA_BATCH_SCRIPT = 'rate_limit_gcra_batch';
/** Most decisions in one batch call. */
export const MAX_BATCH = 128;

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

interface Pending {
  keys: string[];
  /** cost, g_em, g_tol, k_em, k_tol, g_ttl, k_ttl */
  args: (string | number)[];
  slot: number;
  resolve: (d: RateDecision) => void;
  reject: (e: unknown) => void;
}

/** Bucket state in Redis through a {@link ScriptRunner}. @internal */
export class RedisRateStore implements RateStore {
  readonly #runner: ScriptRunner;
  readonly #name: string;
  readonly #args = new WeakMap<ResolvedBucket, BucketArgs>();
  /** Test only: supplies the script's now (ms) instead of the Redis server's TIME. */
  readonly #testNowMs: (() => number) | undefined;
  readonly #cluster: boolean;
  readonly #prefix: string;
  readonly #batching: boolean;
  #pending: Pending[] = [];
  #inFlight = 0;
  #scheduled = false;

  constructor(
    runner: ScriptRunner,
    name: string,
    testNowMs?: () => number,
    options: { batching?: boolean } = {},
  ) {
    this.#runner = runner;
    this.#name = name;
    this.#testNowMs = testNowMs;
    const r = runner as { isCluster?: unknown; keyPrefix?: unknown };
    this.#cluster = r.isCluster === true;
    this.#prefix = typeof r.keyPrefix === 'string' ? r.keyPrefix : '';
    this.#batching = options.batching ?? true;
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
    const args = [cost, g[0], g[1], k[0], k[1], g[2], k[2]];
    if (!this.#batching || (this.#inFlight === 0 && this.#pending.length === 0)) {
      return this.#single(keys, args);
    }
    return new Promise<RateDecision>((resolve, reject) => {
      const slot = this.#cluster ? keySlot(this.#prefix + keys[0]!) : 0;
      this.#pending.push({ keys, args, slot, resolve, reject });
      this.#schedule();
    });
  }

  #now(): string {
    return this.#testNowMs === undefined ? '' : String(this.#testNowMs());
  }

  #single(keys: string[], args: (string | number)[]): Promise<RateDecision> {
    this.#inFlight++;
    const done = (): void => this.#settled();
    return this.#runner.runScript(GCRA_SCRIPT, keys, [this.#now(), ...args]).then(
      (reply) => {
        done();
        return decodeReply(reply);
      },
      (error: unknown) => {
        done();
        throw error;
      },
    );
  }

  /** A call came back: the decisions that waited for it go next. */
  #settled(): void {
    this.#inFlight--;
    if (this.#pending.length > 0) this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      // one batch in flight at a time: what arrives meanwhile forms the next batch
      if (this.#inFlight === 0) this.#flush();
    });
  }

  #flush(): void {
    while (this.#pending.length > 0) {
      const first = this.#pending[0]!;
      const batch: Pending[] = [];
      const rest: Pending[] = [];
      for (const p of this.#pending) {
        if (batch.length < MAX_BATCH && p.slot === first.slot) batch.push(p);
        else rest.push(p);
      }
      this.#pending = rest;
      this.#sendBatch(batch);
    }
  }

  #sendBatch(batch: Pending[]): void {
    if (batch.length === 1) {
      const p = batch[0]!;
      this.#single(p.keys, p.args).then(p.resolve, p.reject);
      return;
    }
    const keys: string[] = [];
    const argv: (string | number)[] = [this.#now(), batch.length];
    for (const p of batch) {
      keys.push(...p.keys);
      argv.push(p.keys.length, ...p.args);
    }
    this.#inFlight++;
    const done = (): void => this.#settled();
    this.#runner.runScript(GCRA_BATCH_SCRIPT, keys, argv, { crossSlot: true }).then(
      (reply) => {
        done();
        let decisions: RateDecision[];
        try {
          decisions = decodeBatchReply(reply, batch.length);
        } catch (error) {
          for (const p of batch) p.reject(error);
          return;
        }
        batch.forEach((p, i) => p.resolve(decisions[i]!));
      },
      (error: unknown) => {
        done();
        for (const p of batch) p.reject(error);
      },
    );
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

/** Turns the batch script's reply into one decision per batched call. @internal */
export function decodeBatchReply(reply: ScriptReply, n: number): RateDecision[] {
  if (reply.code !== 0 || reply.payload.length !== 3 * n) {
    throw new ScriptError(
      `${GCRA_BATCH_SCRIPT} returned ${reply.code} ${reply.msg} with ${reply.payload.length} values for ${n} decisions`,
      { context: { script: GCRA_BATCH_SCRIPT, code: reply.code } },
    );
  }
  const out: RateDecision[] = [];
  for (let i = 0; i < n; i++) {
    const code = Number(reply.payload[3 * i]);
    out.push(
      decodeReply({
        code,
        msg: code === 0 ? 'ALLOWED' : code === 1 ? 'THROTTLED' : 'BAD_ARGS',
        payload: [reply.payload[3 * i + 1]!, reply.payload[3 * i + 2]!],
      }),
    );
  }
  return out;
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
