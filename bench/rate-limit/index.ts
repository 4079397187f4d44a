/**
 * RateLimiter benchmark: mocra's in-process tryAcquire vs rate-limiter-flexible's
 * RateLimiterMemory and `limiter` (TokenBucket / RateLimiter), on 1 key and on 1,000 keys, with
 * every call allowed (pure decision cost) and with most calls throttled; the workload of issue 20
 * (per-key bucket only, 10⁶/s with a burst of 10⁶, never reached, one awaited call at a time
 * over 1,000 keys); and mocra's Redis store
 * vs RateLimiterRedis at concurrency 100 on a private redis-server.
 *
 * Run: node --expose-gc --import tsx bench/rate-limit/index.ts  (BENCH_QUICK=1 for a short run;
 * REDIS_URL to use an existing disposable server instead of starting one).
 */
import { Redis } from 'ioredis';
import { RateLimiter as LimiterRateLimiter, TokenBucket } from 'limiter';
import { RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible';
import { RateLimiter, RedisBackend } from '../../src/index.js';
import { startRedisServer, type RedisServer } from '../../test/helpers/redis-server.js';
import { ManualClock } from '../../src/internal/clock.js';
import {
  compareThroughput,
  printCase,
  retainedBytes,
  writeResults,
  type CaseResult,
} from '../lib/harness.js';

const quick = process.env.BENCH_QUICK === '1';
const rounds = quick ? 3 : 7;
const OPS = quick ? 20_000 : 100_000;

const KEYS_1000 = Array.from({ length: 1000 }, (_, i) => `host-${i}.example.com`);
const ONE_KEY = ['api.example.com'];

/** Limits high enough that no call in the run is refused: measures the decision itself. */
const OPEN = { rate: 1_000_000, intervalMs: 1000, burst: 1_000_000_000 };
/** A realistic per-key limit: 10/s with bursts of 10; the run refuses most calls. */
const TIGHT = { rate: 10, intervalMs: 1000, burst: 10 };

function localCase(label: string, keys: string[], bucket: typeof OPEN) {
  const n = keys.length;
  const mocra = new RateLimiter({ global: false, perKey: bucket });
  const mocraBoth = new RateLimiter({ global: bucket, perKey: bucket });
  const rlm = new RateLimiterMemory({
    points: bucket.burst,
    duration: Math.max(1, Math.round((bucket.burst / bucket.rate) * (bucket.intervalMs / 1000))),
  });
  const buckets = new Map<string, TokenBucket>();
  const limiters = new Map<string, LimiterRateLimiter>();
  const tokenBucket = (key: string) => {
    let b = buckets.get(key);
    if (b === undefined) {
      b = new TokenBucket({
        bucketSize: bucket.burst,
        tokensPerInterval: bucket.rate,
        interval: bucket.intervalMs,
      });
      buckets.set(key, b);
    }
    return b;
  };
  const limiterRl = (key: string) => {
    let l = limiters.get(key);
    if (l === undefined) {
      l = new LimiterRateLimiter({ tokensPerInterval: bucket.burst, interval: bucket.intervalMs });
      limiters.set(key, l);
    }
    return l;
  };
  const allowed = { mocra: 0, rlm: 0, tokenBucket: 0, calls: 0 };
  return compareThroughput(
    label,
    [
      {
        name: 'mocra RateLimiter (per-key)',
        round: async () => {
          for (let i = 0; i < OPS; i++) {
            if ((await mocra.tryAcquire(keys[i % n]!)).allowed) allowed.mocra++;
          }
          allowed.calls += OPS;
          return OPS;
        },
      },
      {
        name: 'mocra RateLimiter (global+per-key)',
        round: async () => {
          for (let i = 0; i < OPS; i++) await mocraBoth.tryAcquire(keys[i % n]!);
          return OPS;
        },
      },
      {
        name: 'rate-limiter-flexible Memory',
        round: async () => {
          for (let i = 0; i < OPS; i++) {
            try {
              await rlm.consume(keys[i % n]!, 1);
              allowed.rlm++;
            } catch {
              // refused: RateLimiterMemory rejects
            }
          }
          return OPS;
        },
      },
      {
        name: 'limiter TokenBucket (sync)',
        round: () => {
          for (let i = 0; i < OPS; i++) {
            if (tokenBucket(keys[i % n]!).tryRemoveTokens(1)) allowed.tokenBucket++;
          }
          return OPS;
        },
      },
      {
        name: 'limiter RateLimiter (sync)',
        round: () => {
          for (let i = 0; i < OPS; i++) limiterRl(keys[i % n]!).tryRemoveTokens(1);
          return OPS;
        },
      },
    ],
    { rounds },
  ).then((result) => ({ result, allowed }));
}

/** As a user writes it: per-key buckets only, 10⁶/s, burst 10⁶, each call awaited in turn. */
async function userCase(): Promise<CaseResult> {
  const bucket = { rate: 1_000_000, intervalMs: 1000, burst: 1_000_000 };
  const mocra = new RateLimiter({ global: false, perKey: bucket });
  const rlm = new RateLimiterMemory({ points: bucket.burst, duration: 1 });
  return compareThroughput(
    'local tryAcquire awaited, 1,000 keys, per-key 10⁶/s burst 10⁶ (never reached)',
    [
      {
        name: 'mocra RateLimiter (per-key)',
        round: async () => {
          for (let i = 0; i < OPS; i++) await mocra.tryAcquire(KEYS_1000[i % 1000]!);
          return OPS;
        },
      },
      {
        name: 'rate-limiter-flexible Memory',
        round: async () => {
          for (let i = 0; i < OPS; i++) await rlm.consume(KEYS_1000[i % 1000]!, 1);
          return OPS;
        },
      },
    ],
    { rounds },
  );
}

/** mocra's real Redis backend on its own connection. */
function backend(client: Redis, keyPrefix: string): RedisBackend {
  return new RedisBackend({ redis: client, keyPrefix });
}

async function redisCase(url: string): Promise<CaseResult> {
  const CONCURRENCY = 100;
  const REDIS_OPS = quick ? 5_000 : 20_000;
  const clientA = new Redis(url);
  const clientB = new Redis(url);
  const clientC = new Redis(url);
  const store = backend(clientA, 'bench:mocra:');
  const mocra = new RateLimiter({ name: 'bench', global: false, perKey: OPEN, store });
  const mocraBoth = new RateLimiter({
    name: 'bench2',
    global: OPEN,
    perKey: OPEN,
    store: backend(clientC, 'bench:mocra2:'),
  });
  const rlr = new RateLimiterRedis({
    storeClient: clientB,
    keyPrefix: 'bench:rlf',
    points: OPEN.burst,
    duration: 1000,
  });
  const run = async (one: (key: string) => Promise<unknown>): Promise<number> => {
    let next = 0;
    const worker = async () => {
      while (next < REDIS_OPS) {
        const i = next++;
        await one(KEYS_1000[i % 1000]!);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    return REDIS_OPS;
  };
  try {
    return await compareThroughput(
      `Redis store, 1,000 keys, concurrency ${CONCURRENCY}`,
      [
        { name: 'mocra RateLimiter (per-key)', round: () => run((k) => mocra.tryAcquire(k)) },
        {
          name: 'mocra RateLimiter (global+per-key)',
          round: () => run((k) => mocraBoth.tryAcquire(k)),
        },
        {
          name: 'rate-limiter-flexible Redis',
          round: () => run((k) => rlr.consume(k, 1).catch(() => undefined)),
        },
      ],
      { rounds: quick ? 3 : 5, warmup: 1 },
    );
  } finally {
    for (const c of [clientA, clientB, clientC]) c.disconnect();
  }
}

/** Heap per tracked key, and the map size after a long stream of one-off keys. */
async function memory(): Promise<Record<string, unknown>> {
  const N = quick ? 20_000 : 100_000;
  const keys = Array.from({ length: N }, (_, i) => `client-${i}`);
  const perKey = { rate: 1, intervalMs: 60_000 };
  const mocraBytes = await retainedBytes(N, (n) => {
    const l = new RateLimiter({ global: false, perKey });
    for (let i = 0; i < n; i++) void l.tryAcquire(keys[i]!);
    return l;
  });
  const rlmBytes = await retainedBytes(N, (n) => {
    const r = new RateLimiterMemory({ points: 1, duration: 60 });
    for (let i = 0; i < n; i++) r.consume(keys[i]!).catch(() => undefined);
    return r;
  });
  const tbBytes = await retainedBytes(N, (n) => {
    const m = new Map<string, TokenBucket>();
    for (let i = 0; i < n; i++) {
      const b = new TokenBucket({ bucketSize: 1, tokensPerInterval: 1, interval: 60_000 });
      b.tryRemoveTokens(1);
      m.set(keys[i]!, b);
    }
    return m;
  });
  // one million distinct keys, 1,000 per simulated second, each bucket full again after 1 s
  const clock = new ManualClock(0);
  const stream = new RateLimiter({ clock, global: false, perKey: { rate: 1, intervalMs: 1000 } });
  const total = quick ? 200_000 : 1_000_000;
  let peak = 0;
  for (let i = 0; i < total; i++) {
    void stream.tryAcquire(`one-off-${i}`);
    clock.advance(1);
    if (i % 1000 === 0) peak = Math.max(peak, stream.stats().trackedKeys);
  }
  const result = {
    bytesPerKey: {
      mocra: Math.round(mocraBytes),
      rateLimiterFlexibleMemory: Math.round(rlmBytes),
      limiterTokenBucketInMap: Math.round(tbBytes),
    },
    distinctKeysStreamed: total,
    trackedKeysPeak: peak,
    trackedKeysAtEnd: stream.stats().trackedKeys,
  };
  console.log('\nmemory (bytes per live key; map size under a stream of one-off keys)');
  console.log(`  ${JSON.stringify(result)}`);
  return result;
}

async function main(): Promise<void> {
  const cases: CaseResult[] = [];
  const notes: Record<string, unknown> = { opsPerRound: OPS };
  for (const [label, keys, bucket] of [
    ['local tryAcquire, 1 key, all allowed', ONE_KEY, OPEN],
    ['local tryAcquire, 1,000 keys, all allowed', KEYS_1000, OPEN],
    ['local tryAcquire, 1 key, 10/s (mostly refused)', ONE_KEY, TIGHT],
    ['local tryAcquire, 1,000 keys, 10/s each (mostly refused)', KEYS_1000, TIGHT],
  ] as const) {
    const { result, allowed } = await localCase(label, [...keys], bucket);
    printCase(result, 'rate-limiter-flexible Memory');
    const share = (x: number) => `${((100 * x) / allowed.calls).toFixed(1)}%`;
    console.log(
      `  allowed: mocra ${share(allowed.mocra)}, rate-limiter-flexible ${share(allowed.rlm)}, limiter ${share(allowed.tokenBucket)}`,
    );
    notes[`allowed share: ${label}`] = {
      mocra: share(allowed.mocra),
      rateLimiterFlexible: share(allowed.rlm),
      limiterTokenBucket: share(allowed.tokenBucket),
    };
    cases.push(result);
  }
  const user = await userCase();
  printCase(user, 'rate-limiter-flexible Memory');
  cases.push(user);
  notes['users workload: RateLimiter / rate-limiter-flexible Memory (target >= 2)'] = Number(
    (user.rows[0]!.median / user.rows[1]!.median).toFixed(2),
  );
  notes.memory = await memory();
  let server: RedisServer | null = null;
  try {
    let url = process.env.REDIS_URL;
    if (!url) {
      server = await startRedisServer();
      url = server.url;
    }
    const result = await redisCase(url);
    printCase(result, 'rate-limiter-flexible Redis');
    cases.push(result);
  } catch (error) {
    console.log(`\nRedis case skipped: ${String(error)}`);
    notes.redisSkipped = String(error);
  } finally {
    await server?.stop();
  }
  notes.semantics =
    'mocra: GCRA, async API (each call awaited). rate-limiter-flexible: fixed window, rejects when refused. limiter: sync token bucket, no keys (one instance per key in a Map).';
  console.log(`\nwrote ${writeResults('rate-limit', cases, notes)}`);
  // rate-limiter-flexible's per-key timers are unref'd, but do not wait for anything else
  process.exit(0);
}

await main();
