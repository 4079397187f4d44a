import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RateLimitedError, TaskCancelledError, isMocraError } from '../../../src/errors.js';
import { RateLimiter, type RateLimiterOptions } from '../../../src/rate-limit/index.js';

// vi fake timers move Date.now and setTimeout together
const clock = { now: () => Date.now() };

function make(options: RateLimiterOptions = {}): RateLimiter {
  return new RateLimiter({ clock, ...options });
}

/** Records the order and time at which promises settle. */
function track(label: string, promise: Promise<unknown>, log: string[], start: number) {
  promise.then(
    () => log.push(`${label}@${Date.now() - start}`),
    (e: unknown) =>
      log.push(`${label}!${(e as { code?: string }).code ?? e}@${Date.now() - start}`),
  );
}

describe('RateLimiter.acquire', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('resolves at once while tokens last, then waits exactly retryAfterMs', async () => {
    const l = make({ global: false, perKey: { rate: 10, burst: 2 } });
    const start = Date.now();
    await l.acquire('k');
    await l.acquire('k');
    const log: string[] = [];
    track('third', l.acquire('k'), log, start);
    await vi.advanceTimersByTimeAsync(99);
    expect(log).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(log).toEqual(['third@100']);
    expect(l.stats()).toMatchObject({
      allowed: 3,
      throttled: 1,
      waits: 1,
      totalWaitMs: 100,
      waiting: 0,
    });
  });

  it('serves the waiters of one key in FIFO order, even when a later one is cheaper', async () => {
    const l = make({ global: false, perKey: { rate: 10, burst: 3 } });
    const start = Date.now();
    await l.acquire('k', { cost: 3 });
    const log: string[] = [];
    track('A3', l.acquire('k', { cost: 3 }), log, start);
    track('B1', l.acquire('k', { cost: 1 }), log, start);
    track('C2', l.acquire('k', { cost: 2 }), log, start);
    await vi.advanceTimersByTimeAsync(2_000);
    // B1 could have gone at 100 ms but waits behind A3 (300 ms); then B1 at 400, C2 at 600
    expect(log).toEqual(['A3@300', 'B1@400', 'C2@600']);
    expect(l.stats()).toMatchObject({ allowed: 4, waits: 3, throttled: 3 });
  });

  it('keys wait independently; the global bucket is shared', async () => {
    const l = make({ global: { rate: 10, burst: 2 }, perKey: { rate: 1, burst: 1 } });
    const start = Date.now();
    const log: string[] = [];
    track('a1', l.acquire('a'), log, start);
    track('b1', l.acquire('b'), log, start);
    track('c1', l.acquire('c'), log, start);
    track('a2', l.acquire('a'), log, start);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(log).toEqual(['a1@0', 'b1@0', 'c1@100', 'a2@1000']);
  });

  it('uses one timer for any number of waiters', async () => {
    const l = make({ global: false, perKey: { rate: 1, burst: 1 } });
    const pending: Promise<void>[] = [];
    for (let k = 0; k < 50; k++) {
      for (let i = 0; i < 4; i++) pending.push(l.acquire(`key-${k}`, { maxWaitMs: 60_000 }));
    }
    expect(l.stats().waiting).toBe(150);
    // one wake-up timer, plus the store's drain timer while it holds buckets
    expect(vi.getTimerCount()).toBe(2);
    await vi.advanceTimersByTimeAsync(1_500);
    expect(vi.getTimerCount()).toBe(2);
    expect(l.stats().waiting).toBe(100);
    await vi.advanceTimersByTimeAsync(3_000);
    await Promise.all(pending);
    expect(l.stats()).toMatchObject({ allowed: 200, waiting: 0, waits: 150 });
    // the buckets go once they have been full for a second, and the drain timer with them
    await vi.advanceTimersByTimeAsync(2_000);
    expect(l.stats().trackedKeys).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('adds jitter in [0, jitterMs) to each wake-up', async () => {
    const l = make({
      global: false,
      perKey: { rate: 10, burst: 1 },
      jitterMs: 40,
      random: () => 0.5,
    });
    const start = Date.now();
    await l.acquire('k');
    const log: string[] = [];
    track('second', l.acquire('k'), log, start);
    await vi.advanceTimersByTimeAsync(119);
    expect(log).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(log).toEqual(['second@120']);
  });

  it('aborts promptly with TaskCancelledError, and the next waiter moves up', async () => {
    const l = make({ global: false, perKey: { rate: 1, burst: 1 } });
    const start = Date.now();
    await l.acquire('k');
    const controller = new AbortController();
    const log: string[] = [];
    const first = l.acquire('k', { signal: controller.signal });
    track('first', first, log, start);
    track('second', l.acquire('k'), log, start);
    await vi.advanceTimersByTimeAsync(10);
    controller.abort();
    await vi.advanceTimersByTimeAsync(0);
    await expect(first).rejects.toBeInstanceOf(TaskCancelledError);
    expect(log).toEqual(['first!TASK_CANCELLED@10']);
    await vi.advanceTimersByTimeAsync(990);
    expect(log).toEqual(['first!TASK_CANCELLED@10', 'second@1000']);
    expect(l.stats()).toMatchObject({ cancelled: 1, waiting: 0, allowed: 2 });
  });

  it('aborting the costly head lets a cheaper next waiter go at once', async () => {
    const l = make({ global: false, perKey: { rate: 10, burst: 5 } });
    const start = Date.now();
    await l.acquire('k', { cost: 4 });
    const controller = new AbortController();
    const log: string[] = [];
    track('big', l.acquire('k', { cost: 5, signal: controller.signal }), log, start);
    track('small', l.acquire('k', { cost: 1 }), log, start);
    await vi.advanceTimersByTimeAsync(5);
    controller.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(log).toEqual(['big!TASK_CANCELLED@5', 'small@5']);
  });

  it("rejects with the signal's reason when it is an Error, also when already aborted", async () => {
    const l = make({ global: false, perKey: { rate: 1, burst: 1 } });
    await l.acquire('k');
    const reason = new RangeError('shutting down');
    const controller = new AbortController();
    const pending = l.acquire('k', { signal: controller.signal });
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    await expect(l.acquire('k', { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(l.stats().waiting).toBe(0);
  });

  it('removes its abort listener once settled', async () => {
    const l = make({ global: false, perKey: { rate: 1, burst: 1 } });
    const controller = new AbortController();
    const remove = vi.spyOn(controller.signal, 'removeEventListener');
    await l.acquire('k');
    const pending = l.acquire('k', { signal: controller.signal });
    await vi.advanceTimersByTimeAsync(1_000);
    await pending;
    expect(remove).toHaveBeenCalledTimes(1);
  });

  it('many waiters sharing one signal use one listener, and all reject on abort', async () => {
    const l = make({ global: false, perKey: { rate: 1, burst: 1 } });
    await l.acquire('a');
    await l.acquire('b');
    const controller = new AbortController();
    const add = vi.spyOn(controller.signal, 'addEventListener');
    const remove = vi.spyOn(controller.signal, 'removeEventListener');
    const pending = Array.from({ length: 30 }, (_, i) =>
      l.acquire(i % 2 ? 'a' : 'b', { signal: controller.signal }).then(
        () => 'granted',
        (e: unknown) => (e as { code: string }).code,
      ),
    );
    expect(add).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(500);
    controller.abort();
    expect(await Promise.all(pending)).toEqual(Array(30).fill('TASK_CANCELLED'));
    expect(l.stats()).toMatchObject({ cancelled: 30, waiting: 0, allowed: 2 });
    // a signal that outlives its waiters is left without our listener
    const keep = new AbortController();
    const removeKeep = vi.spyOn(keep.signal, 'removeEventListener');
    const one = l.acquire('c', { signal: keep.signal });
    const two = l.acquire('c', { signal: keep.signal });
    await vi.advanceTimersByTimeAsync(1_000);
    await Promise.all([one, two]);
    expect(removeKeep).toHaveBeenCalledTimes(1);
    expect(remove).toHaveBeenCalledTimes(0);
  });

  it('rejects at once with RateLimitedError when the wait would exceed maxWaitMs', async () => {
    const l = make({ global: false, perKey: { rate: 1, burst: 1 } });
    await l.acquire('k');
    const error = await l.acquire('k', { maxWaitMs: 999 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(isMocraError(error, 'RATE_LIMITED')).toBe(true);
    expect((error as RateLimitedError).retryAfterMs).toBe(1000);
    expect((error as RateLimitedError).key).toBe('k');
    // exactly enough is fine
    const ok = l.acquire('k', { maxWaitMs: 1000 });
    await vi.advanceTimersByTimeAsync(1000);
    await expect(ok).resolves.toBeUndefined();
    expect(l.stats()).toMatchObject({ rejected: 1, waits: 1 });
  });

  it('rejects a queued waiter at its maxWaitMs deadline', async () => {
    const l = make({ global: false, perKey: { rate: 1, burst: 1 } });
    const start = Date.now();
    await l.acquire('k');
    const log: string[] = [];
    track('head', l.acquire('k'), log, start);
    track('impatient', l.acquire('k', { maxWaitMs: 500 }), log, start);
    track('hopeless', l.acquire('k', { maxWaitMs: 1500 }), log, start);
    track('patient', l.acquire('k', { maxWaitMs: 5000 }), log, start);
    await vi.advanceTimersByTimeAsync(5_000);
    // 'impatient' is rejected at its deadline while queued; 'hopeless' as soon as it reaches the
    // head at 1000 and learns it would need until 2000
    expect(log).toEqual([
      'impatient!RATE_LIMITED@500',
      'head@1000',
      'hopeless!RATE_LIMITED@1000',
      'patient@2000',
    ]);
    expect(l.stats()).toMatchObject({ rejected: 2, waits: 4, allowed: 3 });
  });

  it('a head whose next try would pass its deadline is rejected when it learns so', async () => {
    const l = make({ global: { rate: 1, burst: 1 }, perKey: false });
    const start = Date.now();
    await l.acquire('x');
    const log: string[] = [];
    track('a', l.acquire('a', { maxWaitMs: 1200 }), log, start);
    // another key takes the global token first: 'a' would now need until 2000
    await vi.advanceTimersByTimeAsync(1000);
    expect(log).toEqual(['a@1000']);
    track('b', l.acquire('b', { maxWaitMs: 500 }), log, start);
    await vi.advanceTimersByTimeAsync(0);
    expect(log).toEqual(['a@1000', 'b!RATE_LIMITED@1000']);
  });

  it('validates its options', async () => {
    const l = make();
    await expect(l.acquire('k', { cost: -1 })).rejects.toMatchObject({ field: 'cost' });
    await expect(l.acquire('k', { maxWaitMs: -5 })).rejects.toMatchObject({ field: 'maxWaitMs' });
    await expect(l.acquire('k', { signal: {} as AbortSignal })).rejects.toMatchObject({
      field: 'signal',
    });
    await expect(l.acquire('k', { wait: 1 } as never)).rejects.toMatchObject({ field: 'wait' });
  });

  it('many waiters on many keys all complete, counters add up', async () => {
    const l = make({
      global: { rate: 200, burst: 20 },
      perKey: { rate: 20, burst: 2 },
      jitterMs: 5,
    });
    const controllers: AbortController[] = [];
    const results: Promise<string>[] = [];
    for (let i = 0; i < 400; i++) {
      const c = new AbortController();
      controllers.push(c);
      results.push(
        l.acquire(`k${i % 7}`, { cost: 1 + (i % 2), signal: c.signal, maxWaitMs: 1_500 }).then(
          () => 'ok',
          (e: unknown) => (e as { code: string }).code,
        ),
      );
    }
    for (let i = 0; i < 400; i += 13) controllers[i]!.abort();
    await vi.advanceTimersByTimeAsync(3_000);
    const outcomes = await Promise.all(results);
    const count = (s: string) => outcomes.filter((o) => o === s).length;
    const stats = l.stats();
    expect(count('ok') + count('TASK_CANCELLED') + count('RATE_LIMITED')).toBe(400);
    expect(stats.allowed).toBe(count('ok'));
    expect(stats.cancelled).toBe(count('TASK_CANCELLED'));
    expect(stats.rejected).toBe(count('RATE_LIMITED'));
    expect(stats.waiting).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('RateLimiter._acquireOne (the engine’s acquire of one token, its arguments unchecked)', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('takes one token as acquire(key) does, and waits for the next one in line', async () => {
    const l = make({ global: false, perKey: { rate: 10, burst: 1 } });
    const start = Date.now();
    // taken at once: nothing to wait for
    expect(l._acquireOne('k', undefined)).toBeUndefined();
    const log: string[] = [];
    const second = l._acquireOne('k', new AbortController().signal);
    expect(second).toBeInstanceOf(Promise);
    track('second', second!, log, start);
    track('third', l.acquire('k'), log, start);
    await vi.advanceTimersByTimeAsync(200);
    expect(log).toEqual(['second@100', 'third@200']);
    expect(l.stats()).toMatchObject({ allowed: 3, waits: 2 });
  });

  it('refuses an aborted signal, and stops waiting with the reason when the signal aborts', async () => {
    const l = make({ global: false, perKey: { rate: 1, burst: 1 } });
    const gone = new AbortController();
    gone.abort();
    await expect(l._acquireOne('k', gone.signal)).rejects.toBeInstanceOf(TaskCancelledError);
    await l._acquireOne('k', undefined);
    const node = new AbortController();
    const waiting = l._acquireOne('k', node.signal);
    const reason = new Error('stop');
    node.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    expect(l.stats()).toMatchObject({ allowed: 1, cancelled: 1, waiting: 0 });
  });
});
