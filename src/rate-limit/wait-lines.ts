/**
 * The `acquire` calls of a {@link RateLimiter} that wait: one line per key, served first come,
 * first served, its head tried again when the store says its tokens are due (plus jitter),
 * each call bounded by its `maxWaitMs` and its signal. One timer serves every line.
 * @internal
 */
import { RateLimitedError } from '../errors.js';
import { abortError } from '../internal/abort.js';
import { unrefTimeout } from '../internal/clock.js';
import { SignalWatchers } from '../internal/signal-watchers.js';
import type { ResolvedBucket, ResolvedRateLimiterOptions } from './options.js';
import type { RateDecision, RateLimiterStats, RateStore } from './types.js';
import type { TimerEntry } from './wait-queue.js';
import { Fifo, TimerHeap } from './wait-queue.js';

/** A limiter's counters, shared by its calls and its lines (its stats but `trackedKeys`). @internal */
export type RateCounters = Omit<RateLimiterStats, 'trackedKeys'>;

/** One `acquire` call waiting for its tokens. */
interface Waiter {
  readonly key: string;
  readonly cost: number;
  readonly perKey: ResolvedBucket | null;
  /** The line it waits in. */
  readonly line: Line;
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

/** The waiters of one key, served in order. */
interface Line {
  readonly key: string;
  readonly waiters: Fifo<Waiter>;
  /** A store decision for the head is in flight (Redis). */
  busy: boolean;
  /** The head's next try. */
  wake: TimerEntry | null;
}

/** The error of a call whose wait would outlast its `maxWaitMs`. @internal */
export function waitTooLong(
  key: string,
  cost: number,
  maxWaitMs: number,
  retryAfterMs: number,
): RateLimitedError {
  return new RateLimitedError(
    `rate limit for key ${JSON.stringify(key)}: waiting would take longer than maxWaitMs (${maxWaitMs} ms)`,
    { context: { key, cost, maxWaitMs, retryAfterMs } },
  );
}

/** The waiting calls of one limiter, by key. @internal */
export class WaitLines {
  readonly #options: ResolvedRateLimiterOptions;
  readonly #store: RateStore;
  readonly #counters: RateCounters;
  readonly #lines = new Map<string, Line>();
  readonly #timers = new TimerHeap();
  /** One abort listener per signal, however many waiters share it. */
  readonly #watchers = new SignalWatchers<Waiter>((waiter) =>
    this.#abort(waiter.line, waiter, waiter.signal!),
  );
  #timer: ReturnType<typeof setTimeout> | null = null;
  #timerAt = Infinity;

  /** `counters` is the limiter's own object: the lines count into it. */
  constructor(options: ResolvedRateLimiterOptions, store: RateStore, counters: RateCounters) {
    this.#options = options;
    this.#store = store;
    this.#counters = counters;
  }

  /** Whether calls for `key` are waiting (a new call for it queues behind them). */
  has(key: string): boolean {
    return this.#lines.has(key);
  }

  /**
   * Queues a call for `cost` tokens of `key`; resolves when it got them. `firstRetryMs` >= 0:
   * the store refused it already and said when to try again; -1: it is decided in its turn.
   */
  wait(
    key: string,
    cost: number,
    perKey: ResolvedBucket | null,
    signal: AbortSignal | undefined,
    maxWaitMs: number,
    firstRetryMs: number,
  ): Promise<void> {
    const now = this.#options.clock.now();
    return new Promise<void>((resolve, reject) => {
      let line = this.#lines.get(key);
      const queuedBehind = line !== undefined;
      if (line === undefined) {
        line = { key, waiters: new Fifo<Waiter>(), busy: false, wake: null };
        this.#lines.set(key, line);
      }
      const own = line;
      const waiter: Waiter = {
        key,
        cost,
        perKey,
        line: own,
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
      const counters = this.#counters;
      counters.waiting++;
      own.waiters.push(waiter);
      if (queuedBehind || firstRetryMs >= 0) {
        waiter.waited = true;
        counters.waits++;
        if (queuedBehind) counters.throttled++;
      }
      if (Number.isFinite(maxWaitMs)) {
        waiter.deadlineEntry = {
          at: waiter.deadline,
          dead: false,
          fire: () => this.#expire(own, waiter),
        };
        this.#timers.push(waiter.deadlineEntry);
      }
      if (signal !== undefined) waiter.disposeAbort = this.#watchers.watch(waiter, signal);
      if (firstRetryMs >= 0) this.#scheduleWake(own, this.#wakeAt(now, firstRetryMs, waiter));
      else if (!queuedBehind) this.#pump(own);
      this.#arm();
    });
  }

  /** The first waiter of `line` still waiting; drops settled ones and retires an empty line. */
  #head(line: Line): Waiter | undefined {
    let head = line.waiters.peek();
    while (head !== undefined && (head.settled || head.signal?.aborted === true)) {
      // a waiter whose signal fired is never served, even before its listener ran
      if (!head.settled) {
        this.#counters.cancelled++;
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
    const counters = this.#counters;
    if (decision.allowed) {
      line.waiters.shift();
      counters.allowed++;
      this.#settle(head, undefined);
      return true;
    }
    const now = this.#options.clock.now();
    const fits = now + decision.retryAfterMs <= head.deadline;
    if (!head.waited) {
      head.waited = true;
      counters.throttled++;
      if (fits) counters.waits++;
    }
    if (!fits) {
      line.waiters.shift();
      counters.rejected++;
      this.#settle(head, waitTooLong(head.key, head.cost, head.maxWaitMs, decision.retryAfterMs));
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
      this.#counters.rejected++;
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
    this.#counters.rejected++;
    const wait =
      line.wake === null ? 0 : Math.max(0, Math.ceil(line.wake.at - this.#options.clock.now()));
    this.#settle(waiter, waitTooLong(waiter.key, waiter.cost, waiter.maxWaitMs, wait));
  }

  #abort(line: Line, waiter: Waiter, signal: AbortSignal): void {
    if (waiter.settled) return;
    let front = line.waiters.peek();
    while (front !== undefined && front.settled) {
      line.waiters.shift();
      front = line.waiters.peek();
    }
    const wasHead = !line.busy && front === waiter;
    this.#counters.cancelled++;
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
    if (--this.#counters.waiting === 0) this.#timer?.unref();
    waiter.disposeAbort();
    if (waiter.deadlineEntry !== null) this.#timers.kill(waiter.deadlineEntry);
    if (error !== undefined) {
      waiter.reject(error);
      return;
    }
    if (waiter.waited)
      this.#counters.totalWaitMs += Math.max(0, this.#options.clock.now() - waiter.startedAt);
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
    if (this.#counters.waiting > 0) this.#timer.ref();
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
