import {
  BrokenCircuitError,
  ConsecutiveBreaker,
  TimeoutStrategy,
  bulkhead,
  circuitBreaker,
  handleAll,
  timeout,
} from 'cockatiel';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ConfigError,
  RetryPolicy,
  TaskCancelledError,
  TaskTimeoutError,
  isRetryableError,
} from '../../../src/index.js';

const httpError = (status: number, extra: object = {}) =>
  Object.assign(new Error(`HTTP ${status}`), { status, ...extra });

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('RetryPolicy', () => {
  it('retries transient failures with exponential delays and succeeds', async () => {
    const policy = new RetryPolicy({ initialDelayMs: 100, jitter: 0 });
    const delays: number[] = [];
    policy.on('retry', (e) => delays.push(e.delayMs));
    let calls = 0;
    const pending = policy.execute(({ attempt }) => {
      calls++;
      expect(attempt).toBe(calls);
      if (calls < 3) throw httpError(503);
      return 'ok';
    });
    await vi.advanceTimersByTimeAsync(99);
    expect(calls).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toBe(2);
    await vi.advanceTimersByTimeAsync(200);
    expect(await pending).toBe('ok');
    expect(delays).toEqual([100, 200]);
    expect(policy.stats()).toEqual({
      attempts: 3,
      retries: 2,
      successes: 1,
      giveUps: 0,
      aborted: 0,
    });
  });

  it('maxRetries 3 means 4 calls, then the last error', async () => {
    const policy = new RetryPolicy({ initialDelayMs: 10, jitter: 0 });
    let calls = 0;
    const pending = policy.execute(() => {
      calls++;
      throw httpError(500, { n: calls });
    });
    pending.catch(() => {});
    await vi.advanceTimersByTimeAsync(10_000);
    await expect(pending).rejects.toMatchObject({ status: 500, n: 4 });
    expect(calls).toBe(4);
    expect(policy.stats()).toMatchObject({ attempts: 4, retries: 3, giveUps: 1 });
  });

  it('delays are capped at maxDelayMs before jitter, and jitter stays within ±jitter', async () => {
    const policy = new RetryPolicy({
      initialDelayMs: 100,
      maxDelayMs: 300,
      multiplier: 2,
      jitter: 0.2,
    });
    for (let n = 1; n <= 6; n++) {
      const base = Math.min(100 * 2 ** (n - 1), 300);
      for (let i = 0; i < 50; i++) {
        const d = policy.delayFor(n);
        expect(d).toBeGreaterThanOrEqual(Math.floor(base * 0.8));
        expect(d).toBeLessThanOrEqual(Math.ceil(base * 1.2));
      }
    }
    expect(new RetryPolicy({ jitterKind: 'none', initialDelayMs: 5 }).delayFor(3)).toBe(20);
    const full = new RetryPolicy({ jitterKind: 'full', initialDelayMs: 100 });
    expect(full.delayFor(1)).toBeLessThanOrEqual(100);
    const half = new RetryPolicy({ jitterKind: 'half', initialDelayMs: 100 });
    expect(half.delayFor(1)).toBeGreaterThanOrEqual(50);
    const dec = new RetryPolicy({
      jitterKind: 'decorrelated',
      initialDelayMs: 100,
      maxDelayMs: 1000,
    });
    const d = dec.delayFor(2, undefined, 200);
    expect(d).toBeGreaterThanOrEqual(100);
    expect(d).toBeLessThanOrEqual(600);
  });

  it('honours a retryAfterMs hint, capped by maxRetryAfterMs', async () => {
    const policy = new RetryPolicy({ initialDelayMs: 10, jitter: 0, maxRetryAfterMs: 5_000 });
    expect(policy.delayFor(1, httpError(429, { retryAfterMs: 2_000 }))).toBe(2_000);
    expect(policy.delayFor(1, httpError(429, { retryAfterMs: 99_000 }))).toBe(5_000);
    expect(policy.delayFor(1, httpError(429, { retryAfterMs: 1 }))).toBe(10);
    let calls = 0;
    const pending = policy.execute(() => {
      if (++calls === 1) throw httpError(429, { retryAfterMs: 1_500 });
      return calls;
    });
    await vi.advanceTimersByTimeAsync(1_499);
    expect(calls).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(await pending).toBe(2);
  });

  it.each<[string, unknown]>([
    ['ConfigError', new ConfigError('bad')],
    ['TaskCancelledError', new TaskCancelledError()],
    ['retryable: false', Object.assign(new Error('no'), { retryable: false })],
    ['404', httpError(404)],
    ['a plain Error', new Error('bug')],
    ['a string', 'oops'],
    ['an AbortError', Object.assign(new Error('aborted'), { name: 'AbortError' })],
    ['BrokenCircuitError', new BrokenCircuitError()],
  ])('does not retry %s', async (_name, error) => {
    const policy = new RetryPolicy({ initialDelayMs: 1 });
    let calls = 0;
    const pending = policy.execute(() => {
      calls++;
      throw error;
    });
    await expect(pending).rejects.toBe(error);
    expect(calls).toBe(1);
  });

  it.each<[string, unknown]>([
    ['retryable: true', Object.assign(new Error('yes'), { retryable: true })],
    ['408', httpError(408)],
    ['429', httpError(429)],
    ['502 via statusCode', Object.assign(new Error('x'), { statusCode: 502 })],
    ['ECONNRESET', Object.assign(new Error('reset'), { code: 'ECONNRESET' })],
    [
      'fetch failed with a network cause',
      new TypeError('fetch failed', {
        cause: Object.assign(new Error('c'), { code: 'ECONNREFUSED' }),
      }),
    ],
    ['TaskTimeoutError', new TaskTimeoutError()],
    ['a TimeoutError', Object.assign(new Error('t'), { name: 'TimeoutError' })],
  ])('retries %s by default', (_name, error) => {
    expect(isRetryableError(error)).toBe(true);
  });

  it('a custom classifier overrides the default', async () => {
    const policy = new RetryPolicy({
      initialDelayMs: 1,
      jitter: 0,
      isRetryable: (e) => (e as Error).message === 'again',
    });
    let calls = 0;
    const pending = policy.execute(() => {
      if (++calls < 3) throw new Error('again');
      return 'done';
    });
    await vi.advanceTimersByTimeAsync(10);
    expect(await pending).toBe('done');
  });

  it('abort during a backoff wait rejects at once with the reason, and fn is never called again', async () => {
    const policy = new RetryPolicy({ initialDelayMs: 10_000, jitter: 0 });
    const controller = new AbortController();
    let calls = 0;
    const pending = policy.execute(
      () => {
        calls++;
        throw httpError(503);
      },
      { signal: controller.signal },
    );
    await vi.advanceTimersByTimeAsync(100);
    const reason = new Error('user gave up');
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(calls).toBe(1);
    expect(policy.stats()).toMatchObject({ aborted: 1, giveUps: 0 });
  });

  it('an aborted signal refuses before the first call; fn sees the caller’s signal', async () => {
    const policy = new RetryPolicy();
    const controller = new AbortController();
    controller.abort();
    const fn = vi.fn();
    await expect(policy.execute(fn, { signal: controller.signal })).rejects.toBeInstanceOf(
      TaskCancelledError,
    );
    expect(fn).not.toHaveBeenCalled();
    const live = new AbortController();
    let seen: AbortSignal | undefined;
    await policy.execute(({ signal }) => void (seen = signal), { signal: live.signal });
    live.abort();
    expect(seen?.aborted).toBe(true);
  });

  it('composes with a cockatiel circuit breaker: an open circuit stops the retries', async () => {
    const breaker = circuitBreaker(handleAll, {
      halfOpenAfter: 60_000,
      breaker: new ConsecutiveBreaker(2),
    });
    const policy = new RetryPolicy({
      maxRetries: 5,
      initialDelayMs: 10,
      jitter: 0,
      policy: breaker,
    });
    let calls = 0;
    const pending = policy.execute(() => {
      calls++;
      throw httpError(503);
    });
    pending.catch(() => {});
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(pending).rejects.toBeInstanceOf(BrokenCircuitError);
    expect(calls).toBe(2); // the third attempt met the open circuit, which is not retried
    expect(policy.stats()).toMatchObject({ attempts: 3, retries: 2, giveUps: 1 });
  });

  it('composes with a cockatiel timeout: a timed-out attempt is retried as TaskTimeoutError', async () => {
    const policy = new RetryPolicy({
      maxRetries: 2,
      initialDelayMs: 10,
      jitter: 0,
      policy: timeout(50, TimeoutStrategy.Aggressive),
    });
    let calls = 0;
    const pending = policy.execute(({ signal }) => {
      calls++;
      if (calls < 3)
        return new Promise((_, reject) =>
          signal.addEventListener('abort', () => reject(signal.reason)),
        );
      return 'third time';
    });
    await vi.advanceTimersByTimeAsync(500);
    expect(await pending).toBe('third time');
    expect(calls).toBe(3);
  });

  it('composes with a cockatiel bulkhead: a rejection is not retried', async () => {
    const gate = bulkhead(1, 0);
    const policy = new RetryPolicy({ initialDelayMs: 1, policy: gate });
    let release!: () => void;
    const first = policy.execute(() => new Promise<void>((r) => (release = r)));
    await vi.advanceTimersByTimeAsync(0);
    const second = vi.fn(() => 'second');
    await expect(policy.execute(second)).rejects.toMatchObject({ isBulkheadRejectedError: true });
    expect(second).not.toHaveBeenCalled();
    expect(policy.stats()).toMatchObject({ giveUps: 1, retries: 0 });
    release();
    await first;
  });

  it('emits success and giveUp events', async () => {
    const policy = new RetryPolicy({ maxRetries: 0 });
    const events: string[] = [];
    policy.on('success', (e) => events.push(`success:${e.attempts}`));
    policy.on('giveUp', (e) => events.push(`giveUp:${e.attempts}`));
    await policy.execute(() => 1);
    await policy.execute(() => Promise.reject(httpError(503))).catch(() => {});
    expect(events).toEqual(['success:1', 'giveUp:1']);
  });

  it.each<[string, object, RegExp]>([
    ['negative retries', { maxRetries: -1 }, /`maxRetries`/],
    ['fractional retries', { maxRetries: 1.5 }, /`maxRetries`/],
    ['jitter 1', { jitter: 1 }, /`jitter` to be a finite number >= 0 < 1/],
    ['multiplier 0.5', { multiplier: 0.5 }, /`multiplier`/],
    [
      'maxDelay < initial',
      { initialDelayMs: 500, maxDelayMs: 100 },
      /`maxDelayMs` \(100\) must be >= `initialDelayMs` \(500\)/,
    ],
    ['delay past 2^31', { maxDelayMs: 2 ** 31 }, /`maxDelayMs`/],
    ['bad jitterKind', { jitterKind: 'random' }, /`jitterKind`/],
    ['bad policy', { policy: {} }, /`policy`/],
    ['unknown option', { retries: 3 }, /unknown option `retries`/],
  ])('rejects %s with ConfigError', (_name, options, message) => {
    expect(() => new RetryPolicy(options as never)).toThrow(ConfigError);
    expect(() => new RetryPolicy(options as never)).toThrow(message);
  });
});
