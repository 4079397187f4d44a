/**
 * RateLimiter: GCRA token buckets (one global, one per key), consumed together or not at all,
 * with FIFO waits per key served by one timer.
 */
import { ConfigError, RateLimitedError } from '../errors.js';
import { abortError } from '../internal/abort.js';
import { unrefTimeout } from '../internal/clock.js';
import { invalid, optionalNumber, optionalSignal, readOptions } from '../internal/validate.js';
import type { ScriptRunner } from '../store/types.js';
import { LocalRateStore } from './local-store.js';
import { meterRateLimiter } from './metered.js';
import type { RateLimiterOptions, ResolvedBucket, ResolvedRateLimiterOptions } from './options.js';
import { resolveRateLimiterOptions } from './options.js';
import { RedisRateStore } from './redis-store.js';
import type { AcquireOptions, RateDecision, RateLimiterStats, RateStore } from './types.js';
import type { TimerEntry } from './wait-queue.js';
import { Fifo, TimerHeap } from './wait-queue.js';

/** One `acquire` call waiting for its tokens. */
interface Waiter {
  readonly key: string;
  readonly cost: number;
  readonly perKey: ResolvedBucket | null;
  readonly startedAt: number;
  /** Clock time after which the caller no longer wants the tokens (`Infinity` for never). */
  readonly deadline: number;
  readonly maxWaitMs: number;
  readonly signal: AbortSignal | undefined;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
  settled: boolean;
  /** Whether this call could not go at once (counted in `throttled`). */
  waited: boolean;
  disposeAbort: () => void;
  deadlineEntry: TimerEntry | null;
}

/** The waiters sharing one AbortSignal, behind one listener. */
interface SignalWatch {
  readonly waiters: Map<Waiter, Line>;
  readonly listener: () => void;
}

/** The waiters of one key, served in order. */
interface Line {
  readonly key: string;
  readonly waiters: Fifo<Waiter>;
  /** A store decision for the head is in flight (Redis). */
  busy: boolean;
  /** The head's next try. */
  wake: TimerEntry | null;
}

const RESOLVED: Promise<void> = Promise.resolve();
const TRY = 'RateLimiter.tryAcquire';
const ACQUIRE = 'RateLimiter.acquire';

/**
 * A rate limiter with one global token bucket and one bucket per key (GCRA, the algorithm of
 * Rust's `governor`). A call takes its tokens from both buckets together or from neither.
 *
 * State lives in this process, or in Redis when `store` is a distributed CacheService: every
 * limiter with the same `name` on that Redis then shares one budget, decided by one Lua script
 * per call with time from the Redis server.
 *
 * @example
 * ```ts
 * const limiter = new RateLimiter({ global: { rate: 100 }, perKey: { rate: 20, burst: 5 } });
 * await limiter.acquire('api.example.com', { signal, maxWaitMs: 5_000 });
 * const res = await fetch('https://api.example.com/items');
 * ```
 */
export class RateLimiter {
  readonly #options: ResolvedRateLimiterOptions;
  readonly #local: LocalRateStore | null;
  readonly #store: RateStore;
  readonly #lines = new Map<string, Line>();
  readonly #timers = new TimerHeap();
  /** One abort listener per signal, however many waiters share it. */
  readonly #watches = new WeakMap<AbortSignal, SignalWatch>();
  #timer: ReturnType<typeof setTimeout> | null = null;
  #timerAt = Infinity;
  #allowed = 0;
  #throttled = 0;
  #waits = 0;
  #totalWaitMs = 0;
  #rejected = 0;
  #cancelled = 0;
  #waiting = 0;

  /**
   * @param options - buckets, jitter and store; see {@link RateLimiterOptions}.
   * @throws ConfigError (code `CONFIG_INVALID`) naming the field when an option is invalid.
   */
  constructor(options?: RateLimiterOptions) {
    this.#options = resolveRateLimiterOptions(options);
    const store = this.#options.store;
    if (store !== undefined && store.mode === 'distributed') {
      this.#local = null;
      this.#store = new RedisRateStore(store as unknown as ScriptRunner, this.#options.name);
    } else {
      this.#local = new LocalRateStore(this.#options.clock);
      this.#store = this.#local;
    }
    if (this.#options.metrics) meterRateLimiter(this, this.#options.metrics, this.#options.name);
  }

  /** Whether the budget is shared through a distributed store (Redis). */
  get distributed(): boolean {
    return this.#local === null;
  }

  /**
   * Takes `cost` tokens from the global bucket and from `key`'s bucket if both have them, else
   * takes none; never waits.
   *
   * @param key - the bucket key (for example a host or plugin id).
   * @param cost - tokens to take (integer >= 0). @defaultValue 1
   * @returns the decision: `allowed`, `retryAfterMs` (integer ms, 0 when allowed), `remaining`.
   * @throws ConfigError (as a rejection) when `cost` is not an integer >= 0 or is larger than the
   *   burst of a bucket it draws from (it could never be allowed).
   * @throws BackendUnavailableError or ScriptError (as a rejection) from a Redis store.
   * @example
   * ```ts
   * const { allowed, retryAfterMs } = await limiter.tryAcquire('tenant-42', 2);
   * if (!allowed) return reply(429, { retryAfterMs });
   * ```
   */
  tryAcquire(key: string, cost = 1): Promise<RateDecision> {
    let perKey: ResolvedBucket | null;
    try {
      perKey = this.#check(TRY, key, cost);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#local !== null) {
      const decision = this.#local.decide(key, cost, this.#options.global, perKey);
      if (decision.allowed) this.#allowed++;
      else this.#throttled++;
      return Promise.resolve(decision);
    }
    let pending: Promise<RateDecision>;
    try {
      pending = this.#store.decide(
        key,
        cost,
        this.#options.global,
        perKey,
      ) as Promise<RateDecision>;
    } catch (error) {
      return Promise.reject(error);
    }
    return pending.then((decision) => {
      if (decision.allowed) this.#allowed++;
      else this.#throttled++;
      return decision;
    });
  }

  /**
   * Waits until `cost` tokens can be taken from the global bucket and from `key`'s bucket, then
   * takes them. Waiters of one key are served first come, first served; each wake-up adds a
   * random delay of up to `jitterMs`. One timer serves every waiter.
   *
   * @param key - the bucket key.
   * @param options - `cost` (default 1), `signal`, `maxWaitMs` (default Infinity).
   * @throws ConfigError (as a rejection) when `cost` is invalid or larger than a bucket's burst.
   * @throws RateLimitedError (code `RATE_LIMITED`, `retryAfterMs` in its context) when the wait
   *   would exceed `maxWaitMs`.
   * @throws the signal's reason when it is an Error, else TaskCancelledError, when `signal`
   *   aborts first.
   * @example
   * ```ts
   * await limiter.acquire(host, { signal: AbortSignal.timeout(10_000), maxWaitMs: 2_000 });
   * ```
   */
  acquire(key: string, options?: AcquireOptions): Promise<void> {
    let cost: number;
    let signal: AbortSignal | undefined;
    let maxWaitMs: number;
    let perKey: ResolvedBucket | null;
    try {
      const raw = readOptions(ACQUIRE, options, ['cost', 'signal', 'maxWaitMs']);
      cost = raw.cost ?? 1;
      signal = optionalSignal(ACQUIRE, 'signal', raw.signal);
      maxWaitMs = optionalNumber(ACQUIRE, 'maxWaitMs', raw.maxWaitMs, Infinity, {
        min: 0,
        allowInfinity: true,
      });
      perKey = this.#check(ACQUIRE, key, cost);
    } catch (error) {
      return Promise.reject(error);
    }
    if (signal?.aborted) return Promise.reject(abortError(signal, 'rate limit wait was aborted'));

    const global = this.#options.global;
    let line = this.#lines.get(key);
    let firstRetryMs = -1;
    if (line === undefined && this.#local !== null) {
      // nobody waits for this key: decide at once, and queue only when throttled
      const decision = this.#local.decide(key, cost, global, perKey);
      if (decision.allowed) {
        this.#allowed++;
        return RESOLVED;
      }
      this.#throttled++;
      if (decision.retryAfterMs > maxWaitMs) {
        this.#rejected++;
        return Promise.reject(this.#tooLong(key, cost, maxWaitMs, decision.retryAfterMs));
      }
      firstRetryMs = decision.retryAfterMs;
    }

    const now = this.#options.clock.now();
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        key,
        cost,
        perKey,
        startedAt: now,
        deadline: now + maxWaitMs,
        maxWaitMs,
        signal,
        resolve,
        reject,
        settled: false,
        waited: false,
        disposeAbort: noop,
        deadlineEntry: null,
      };
      this.#waiting++;
      const queuedBehind = line !== undefined;
      if (line === undefined) {
        line = { key, waiters: new Fifo<Waiter>(), busy: false, wake: null };
        this.#lines.set(key, line);
      }
      const own = line;
      own.waiters.push(waiter);
      if (queuedBehind || firstRetryMs >= 0) {
        waiter.waited = true;
        this.#waits++;
        if (queuedBehind) this.#throttled++;
      }
      if (Number.isFinite(maxWaitMs)) {
        waiter.deadlineEntry = {
          at: waiter.deadline,
          dead: false,
          fire: () => this.#expire(own, waiter),
        };
        this.#timers.push(waiter.deadlineEntry);
      }
      if (signal !== undefined) {
        const s = signal;
        waiter.disposeAbort = this.#watch(s, own, waiter);
      }
      if (firstRetryMs >= 0) this.#scheduleWake(own, this.#wakeAt(now, firstRetryMs, waiter));
      else if (!queuedBehind) this.#pump(own);
      this.#arm();
    });
  }

  /**
   * The limiter's counters since it was created.
   *
   * @example
   * ```ts
   * const s = limiter.stats();
   * console.log(`${s.throttled} throttled, ${s.totalWaitMs / Math.max(1, s.waits)} ms mean wait`);
   * ```
   */
  stats(): RateLimiterStats {
    return {
      allowed: this.#allowed,
      throttled: this.#throttled,
      waits: this.#waits,
      totalWaitMs: this.#totalWaitMs,
      rejected: this.#rejected,
      cancelled: this.#cancelled,
      waiting: this.#waiting,
      trackedKeys: this.#store.size,
    };
  }

  /** Validates a call's key and cost; returns the key's bucket. */
  #check(where: string, key: string, cost: number): ResolvedBucket | null {
    if (typeof key !== 'string') invalid(where, 'key', 'a string', key);
    if (!Number.isInteger(cost) || cost < 0) invalid(where, 'cost', 'an integer >= 0', cost);
    const overrides = this.#options.overrides;
    const perKey =
      overrides.size > 0 ? (overrides.get(key) ?? this.#options.perKey) : this.#options.perKey;
    if (cost > 1) {
      const global = this.#options.global;
      if (global !== null && cost > global.burst)
        this.#neverFits(where, key, cost, 'global', global);
      if (perKey !== null && cost > perKey.burst)
        this.#neverFits(where, key, cost, 'per-key', perKey);
    }
    return perKey;
  }

  #neverFits(
    where: string,
    key: string,
    cost: number,
    which: string,
    bucket: ResolvedBucket,
  ): never {
    throw new ConfigError(
      `${where}: \`cost\` ${cost} is more than the burst (${bucket.burst}) of the ${which} bucket of key ${JSON.stringify(key)}, so it could never be allowed`,
      { context: { field: 'cost', key, value: cost, burst: bucket.burst } },
    );
  }

  #tooLong(key: string, cost: number, maxWaitMs: number, retryAfterMs: number): RateLimitedError {
    return new RateLimitedError(
      `rate limit for key ${JSON.stringify(key)}: waiting would take longer than maxWaitMs (${maxWaitMs} ms)`,
      { context: { key, cost, maxWaitMs, retryAfterMs } },
    );
  }

  /** The first waiter of `line` still waiting; drops settled ones and retires an empty line. */
  #head(line: Line): Waiter | undefined {
    let head = line.waiters.peek();
    while (head !== undefined && (head.settled || head.signal?.aborted === true)) {
      // a waiter whose signal fired is never served, even before its listener ran
      if (!head.settled) {
        this.#cancelled++;
        this.#settle(head, abortError(head.signal!, 'rate limit wait was aborted'));
      }
      line.waiters.shift();
      head = line.waiters.peek();
    }
    if (head === undefined && !line.busy) {
      if (line.wake !== null) this.#timers.kill(line.wake);
      line.wake = null;
      if (this.#lines.get(line.key) === line) this.#lines.delete(line.key);
    }
    return head;
  }

  /** Serves the waiters of `line` in order until one must wait. */
  #pump(line: Line): void {
    while (!line.busy) {
      const head = this.#head(line);
      if (head === undefined) return;
      let decision: RateDecision | Promise<RateDecision>;
      try {
        decision = this.#store.decide(head.key, head.cost, this.#options.global, head.perKey);
      } catch (error) {
        this.#fail(line, head, error);
        continue;
      }
      if (decision instanceof Promise) {
        line.busy = true;
        decision.then(
          (d) => {
            line.busy = false;
            if (this.#apply(line, head, d)) this.#pump(line);
            else this.#arm();
          },
          (error: unknown) => {
            line.busy = false;
            this.#fail(line, head, error);
            this.#pump(line);
          },
        );
        return;
      }
      if (!this.#apply(line, head, decision)) {
        this.#arm();
        return;
      }
    }
  }

  /** Applies a decision to the head; true when the next waiter may be served at once. */
  #apply(line: Line, head: Waiter, decision: RateDecision): boolean {
    // settled while the decision was in flight: its tokens (if any) are forfeit
    if (head.settled) return true;
    if (decision.allowed) {
      line.waiters.shift();
      this.#allowed++;
      this.#settle(head, undefined);
      return true;
    }
    const now = this.#options.clock.now();
    const fits = now + decision.retryAfterMs <= head.deadline;
    if (!head.waited) {
      head.waited = true;
      this.#throttled++;
      if (fits) this.#waits++;
    }
    if (!fits) {
      line.waiters.shift();
      this.#rejected++;
      this.#settle(head, this.#tooLong(head.key, head.cost, head.maxWaitMs, decision.retryAfterMs));
      return true;
    }
    this.#scheduleWake(line, this.#wakeAt(now, decision.retryAfterMs, head));
    return false;
  }

  #fail(line: Line, head: Waiter, error: unknown): void {
    if (head.settled) return;
    if (line.waiters.peek() === head) line.waiters.shift();
    this.#settle(head, error);
  }

  #wakeAt(now: number, retryAfterMs: number, head: Waiter): number {
    const jitterMs = this.#options.jitterMs;
    const at = now + retryAfterMs + (jitterMs > 0 ? this.#options.random() * jitterMs : 0);
    return at < head.deadline ? at : head.deadline;
  }

  #scheduleWake(line: Line, at: number): void {
    if (line.wake !== null) this.#timers.kill(line.wake);
    const entry: TimerEntry = {
      at,
      dead: false,
      fire: () => {
        if (line.wake === entry) line.wake = null;
        this.#pump(line);
      },
    };
    line.wake = entry;
    this.#timers.push(entry);
    this.#arm();
  }

  /** A waiter's maxWaitMs passed while it queued behind others, or while its decision was in flight. */
  #expire(line: Line, waiter: Waiter): void {
    if (waiter.settled) return;
    const head = this.#head(line) === waiter;
    if (head && line.busy) {
      // the store has not answered (e.g. Redis stalls): maxWaitMs bounds that wait too; the
      // decision, when it comes, is forfeit
      this.#rejected++;
      this.#settle(
        waiter,
        new RateLimitedError(
          `rate limit for key ${JSON.stringify(waiter.key)}: no decision within maxWaitMs (${waiter.maxWaitMs} ms)`,
          { context: { key: waiter.key, cost: waiter.cost, maxWaitMs: waiter.maxWaitMs } },
        ),
      );
      return;
    }
    // the head is woken no later than its deadline and decides for itself
    if (head) return;
    this.#rejected++;
    const wait =
      line.wake === null ? 0 : Math.max(0, Math.ceil(line.wake.at - this.#options.clock.now()));
    this.#settle(waiter, this.#tooLong(waiter.key, waiter.cost, waiter.maxWaitMs, wait));
  }

  /** Watches `signal` for `waiter`; returns the disposer. */
  #watch(signal: AbortSignal, line: Line, waiter: Waiter): () => void {
    let watch = this.#watches.get(signal);
    if (watch === undefined) {
      const waiters = new Map<Waiter, Line>();
      const listener = () => {
        this.#watches.delete(signal);
        for (const [w, l] of [...waiters]) this.#abort(l, w, signal);
      };
      watch = { waiters, listener };
      this.#watches.set(signal, watch);
      signal.addEventListener('abort', listener, { once: true });
    }
    const own = watch;
    own.waiters.set(waiter, line);
    return () => {
      own.waiters.delete(waiter);
      if (own.waiters.size === 0 && this.#watches.get(signal) === own) {
        this.#watches.delete(signal);
        signal.removeEventListener('abort', own.listener);
      }
    };
  }

  #abort(line: Line, waiter: Waiter, signal: AbortSignal): void {
    if (waiter.settled) return;
    let front = line.waiters.peek();
    while (front !== undefined && front.settled) {
      line.waiters.shift();
      front = line.waiters.peek();
    }
    const wasHead = !line.busy && front === waiter;
    this.#cancelled++;
    this.#settle(waiter, abortError(signal, 'rate limit wait was aborted'));
    if (wasHead) {
      if (line.wake !== null) this.#timers.kill(line.wake);
      line.wake = null;
      this.#pump(line);
    }
  }

  #settle(waiter: Waiter, error: unknown): void {
    waiter.settled = true;
    // nobody waits any more: what is left of the timer no longer holds the process
    if (--this.#waiting === 0) this.#timer?.unref();
    waiter.disposeAbort();
    if (waiter.deadlineEntry !== null) this.#timers.kill(waiter.deadlineEntry);
    if (error !== undefined) {
      waiter.reject(error);
      return;
    }
    if (waiter.waited)
      this.#totalWaitMs += Math.max(0, this.#options.clock.now() - waiter.startedAt);
    waiter.resolve();
  }

  /** Keeps the one timer set for the earliest live entry. */
  #arm(): void {
    const top = this.#timers.peek();
    if (top === undefined) {
      if (this.#timer !== null) clearTimeout(this.#timer);
      this.#timer = null;
      this.#timerAt = Infinity;
      return;
    }
    if (this.#timer === null || this.#timerAt > top.at) {
      if (this.#timer !== null) clearTimeout(this.#timer);
      this.#timerAt = top.at;
      this.#timer = unrefTimeout(() => this.#onTimer(), top.at - this.#options.clock.now());
    }
    // a caller waits on this timer: keep the process alive for it
    if (this.#waiting > 0) this.#timer.ref();
  }

  #onTimer(): void {
    this.#timer = null;
    this.#timerAt = Infinity;
    const now = this.#options.clock.now();
    for (
      let entry = this.#timers.popDue(now);
      entry !== undefined;
      entry = this.#timers.popDue(now)
    ) {
      entry.fire();
    }
    this.#arm();
  }
}

function noop(): void {}
