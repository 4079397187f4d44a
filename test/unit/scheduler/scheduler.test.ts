import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  ConfigError,
  QueueFullError,
  SchedulerClosedError,
  TaskCancelledError,
  TaskTimeoutError,
  createScheduler,
  type SchedulerRateLimiter,
  type SchedulerStats,
} from '../../../src/index.js';

function deferred<T = void>(): {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
} {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

function expectConsistent(s: SchedulerStats): void {
  const settled = s.succeeded + s.failed + s.cancelled + s.timedOut;
  expect(s.submitted).toBe(s.rejected + s.queued + s.running + settled);
  expect(
    s.queuedByPriority.low +
      s.queuedByPriority.normal +
      s.queuedByPriority.high +
      s.queuedByPriority.critical,
  ).toBe(s.queued);
}

afterEach(() => {
  vi.useRealTimers();
});

describe('TaskScheduler', () => {
  it('a burst of N > maxConcurrent tasks with no later submit all finish (never stuck)', async () => {
    const s = createScheduler({ maxConcurrent: 3, queueCapacity: Infinity });
    let running = 0;
    let peak = 0;
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        s.run(async () => {
          running++;
          peak = Math.max(peak, running);
          await tick();
          running--;
          return i;
        }),
      ),
    );
    expect(results).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(peak).toBe(3);
    const st = s.stats();
    expect(st).toMatchObject({
      submitted: 50,
      started: 50,
      succeeded: 50,
      queued: 0,
      running: 0,
      activeSlots: 0,
    });
    expectConsistent(st);
  });

  it('runs synchronous tasks of a 100,000 burst without recursion', async () => {
    const s = createScheduler({ maxConcurrent: 2, queueCapacity: Infinity });
    let n = 0;
    for (let i = 0; i < 100_000; i++) s.submit(() => void n++);
    await s.onIdle();
    expect(n).toBe(100_000);
  });

  it('serves priorities highest first, FIFO within a level', async () => {
    const s = createScheduler({ maxConcurrent: 1, queueCapacity: Infinity, paused: true });
    const order: string[] = [];
    const add = (name: string, priority: 'low' | 'normal' | 'high' | 'critical') =>
      s.run(() => void order.push(name), { priority });
    const all = [
      add('l1', 'low'),
      add('n1', 'normal'),
      add('h1', 'high'),
      add('c1', 'critical'),
      add('n2', 'normal'),
      add('c2', 'critical'),
      add('l2', 'low'),
    ];
    expect(s.stats().queuedByPriority).toEqual({ low: 2, normal: 2, high: 1, critical: 2 });
    s.resume();
    await Promise.all(all);
    expect(order).toEqual(['c1', 'c2', 'h1', 'n1', 'n2', 'l1', 'l2']);
  });

  it('queueCapacity rejects atomically with QueueFullError and counts it', async () => {
    const s = createScheduler({ maxConcurrent: 1, queueCapacity: 2 });
    const gate = deferred();
    const first = s.run(() => gate.promise);
    const q1 = s.run(() => 1);
    const q2 = s.run(() => 2);
    const over = s.submit(() => 3);
    await expect(over.result).rejects.toBeInstanceOf(QueueFullError);
    expect(over.state).toBe('failed');
    expect(s.stats()).toMatchObject({ rejected: 1, queued: 2, running: 1 });
    expectConsistent(s.stats());
    gate.resolve();
    await Promise.all([first, q1, q2]);
    expectConsistent(s.stats());
  });

  it('a throwing or rejecting task fails alone', async () => {
    const s = createScheduler({ maxConcurrent: 2 });
    const boom = new Error('boom');
    const settled = await s.submitMany([
      () => {
        throw boom;
      },
      async () => Promise.reject(boom),
      () => 'ok',
    ]);
    expect(settled).toEqual([
      { status: 'rejected', reason: boom },
      { status: 'rejected', reason: boom },
      { status: 'fulfilled', value: 'ok' },
    ]);
    expect(s.stats()).toMatchObject({ failed: 2, succeeded: 1, activeSlots: 0 });
    expect(await s.run(() => 'still works')).toBe('still works');
  });

  it('submitMany settles one result per input in order, including bad inputs', async () => {
    const s = createScheduler({ maxConcurrent: 1, queueCapacity: 1 });
    const settled = await s.submitMany([
      async () => tick().then(() => 'a'),
      'nope' as never,
      () => 'c',
      () => 'd',
    ]);
    expect(settled.map((r) => r.status)).toEqual([
      'fulfilled',
      'rejected',
      'fulfilled',
      'rejected',
    ]);
    expect((settled[1] as PromiseRejectedResult).reason).toBeInstanceOf(ConfigError);
    expect((settled[3] as PromiseRejectedResult).reason).toBeInstanceOf(QueueFullError);
    await expect(s.submitMany('x' as never)).rejects.toBeInstanceOf(ConfigError);
  });

  it('cancelling a queued task: it never starts, its result rejects, counters stay true', async () => {
    const s = createScheduler({ maxConcurrent: 1 });
    const gate = deferred();
    void s.run(() => gate.promise);
    const ran = vi.fn();
    const h = s.submit(ran);
    expect(h.cancel('changed my mind')).toBe(true);
    expect(h.cancel()).toBe(false);
    await expect(h.result).rejects.toBeInstanceOf(TaskCancelledError);
    expect(h.state).toBe('cancelled');
    gate.resolve();
    await s.onIdle();
    expect(ran).not.toHaveBeenCalled();
    expect(s.stats()).toMatchObject({ cancelled: 1, queued: 0 });
    expectConsistent(s.stats());
  });

  it('cancelling a running task aborts its signal and rejects at once; the slot frees when it returns', async () => {
    const s = createScheduler({ maxConcurrent: 1 });
    const gate = deferred();
    let seen: AbortSignal | undefined;
    const h = s.submit(async ({ signal }) => {
      seen = signal;
      await gate.promise;
      return 'late';
    });
    const next = s.submit(() => 'next');
    await tick();
    expect(h.state).toBe('running');
    h.cancel(new Error('stop'));
    await expect(h.result).rejects.toBeInstanceOf(TaskCancelledError);
    expect(seen!.aborted).toBe(true);
    expect(s.stats()).toMatchObject({ running: 0, activeSlots: 1, queued: 1 });
    expect(next.state).toBe('queued'); // the bound holds while the cancelled function still runs
    gate.resolve();
    expect(await next.result).toBe('next');
    expectConsistent(s.stats());
  });

  it('the caller’s signal cancels queued and running tasks, and an aborted signal is refused up front', async () => {
    const s = createScheduler({ maxConcurrent: 1 });
    const controller = new AbortController();
    const running = s.submit(
      ({ signal }) =>
        new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
      {
        signal: controller.signal,
      },
    );
    const queued = s.submit(() => 'x', { signal: controller.signal });
    controller.abort('bye');
    await expect(running.result).rejects.toBeInstanceOf(TaskCancelledError);
    await expect(queued.result).rejects.toBeInstanceOf(TaskCancelledError);
    const pre = s.submit(() => 'y', { signal: controller.signal });
    await expect(pre.result).rejects.toBeInstanceOf(TaskCancelledError);
    await s.onIdle();
    expect(s.stats()).toMatchObject({ cancelled: 3, started: 1 });
    expectConsistent(s.stats());
  });

  it('many tasks sharing one signal add one abort listener, and all are cancelled by it', async () => {
    const s = createScheduler({ maxConcurrent: 2, queueCapacity: Infinity });
    const controller = new AbortController();
    let listeners = 0;
    const add = controller.signal.addEventListener.bind(controller.signal);
    const remove = controller.signal.removeEventListener.bind(controller.signal);
    controller.signal.addEventListener = ((...a: Parameters<typeof add>) => {
      listeners++;
      add(...a);
    }) as typeof add;
    controller.signal.removeEventListener = ((...a: Parameters<typeof remove>) => {
      listeners--;
      remove(...a);
    }) as typeof remove;
    const gate = deferred();
    const handles = Array.from({ length: 50 }, () =>
      s.submit(() => gate.promise, { signal: controller.signal }),
    );
    expect(listeners).toBe(1);
    handles[10]!.cancel();
    expect(listeners).toBe(1);
    controller.abort('deadline');
    const outcomes = await Promise.allSettled(handles.map((h) => h.result));
    expect(
      outcomes.every((o) => o.status === 'rejected' && o.reason instanceof TaskCancelledError),
    ).toBe(true);
    gate.resolve();
    await s.onIdle();
    expect(s.stats()).toMatchObject({ cancelled: 50, started: 2 });
    const c2 = new AbortController();
    const done = [s.run(() => 1, { signal: c2.signal }), s.run(() => 2, { signal: c2.signal })];
    await Promise.all(done);
    // every task settled: the shared listener was removed
    expect(s.stats().cancelled).toBe(50);
  });

  it('timeouts reject with TaskTimeoutError and abort the signal (per task and default)', async () => {
    vi.useFakeTimers();
    const s = createScheduler({ maxConcurrent: 2, defaultTimeoutMs: 50 });
    let aborted: unknown;
    const untilAborted = (signal: AbortSignal) =>
      new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    const slow = s.submit(({ signal }) => {
      signal.addEventListener('abort', () => (aborted = signal.reason));
      return untilAborted(signal);
    });
    const custom = s.submit(({ signal }) => untilAborted(signal), { timeoutMs: 200 });
    const fast = s.submit(() => 'quick');
    await vi.advanceTimersByTimeAsync(60);
    await expect(slow.result).rejects.toBeInstanceOf(TaskTimeoutError);
    expect(aborted).toBeInstanceOf(TaskTimeoutError);
    expect(custom.state).toBe('running');
    await vi.advanceTimersByTimeAsync(150);
    await expect(custom.result).rejects.toMatchObject({
      code: 'TASK_TIMEOUT',
      context: { timeoutMs: 200 },
    });
    expect(await fast.result).toBe('quick');
    expect(s.stats()).toMatchObject({ timedOut: 2, running: 0, activeSlots: 0, succeeded: 1 });
    expectConsistent(s.stats());
  });

  it('a timed-out function that ignores its signal keeps its slot until it returns', async () => {
    vi.useFakeTimers();
    const s = createScheduler({ maxConcurrent: 1 });
    const gate = deferred();
    const stubborn = s.submit(() => gate.promise, { timeoutMs: 10 });
    const next = s.submit(() => 'next');
    await vi.advanceTimersByTimeAsync(20);
    await expect(stubborn.result).rejects.toBeInstanceOf(TaskTimeoutError);
    expect(next.state).toBe('queued');
    expect(s.stats()).toMatchObject({ activeSlots: 1, running: 0 });
    gate.resolve();
    expect(await next.result).toBe('next');
  });

  it('cancel racing a timeout and a completion: exactly one outcome each', async () => {
    vi.useFakeTimers();
    const s = createScheduler({ maxConcurrent: 3 });
    const gate = deferred<string>();
    const a = s.submit(() => gate.promise, { timeoutMs: 10 });
    const b = s.submit(() => gate.promise, { timeoutMs: 10 });
    await vi.advanceTimersByTimeAsync(10);
    expect(a.cancel()).toBe(false); // already timed out
    gate.resolve('done');
    await vi.advanceTimersByTimeAsync(1);
    expect(b.cancel()).toBe(false);
    await expect(a.result).rejects.toBeInstanceOf(TaskTimeoutError);
    await expect(b.result).rejects.toBeInstanceOf(TaskTimeoutError);
    expect(s.stats()).toMatchObject({ timedOut: 2, succeeded: 0, activeSlots: 0 });
    expectConsistent(s.stats());
  });

  it('pause/resume, onEmpty and onIdle', async () => {
    const s = createScheduler({ maxConcurrent: 1, paused: true });
    const gate = deferred();
    const done: string[] = [];
    void s.run(async () => {
      await gate.promise;
      done.push('a');
    });
    void s.run(() => void done.push('b'));
    await tick();
    expect(done).toEqual([]);
    expect(s.isPaused).toBe(true);
    s.resume();
    const empty = s.onEmpty().then(() => 'empty');
    const idle = s.onIdle().then(() => 'idle');
    await tick();
    expect(s.stats().queued).toBe(1);
    gate.resolve();
    expect(await empty).toBe('empty');
    expect(await idle).toBe('idle');
    expect(done).toEqual(['a', 'b']);
    s.pause();
    const held = s.run(() => 'later');
    await tick();
    expect(s.stats().queued).toBe(1);
    s.resume();
    expect(await held).toBe('later');
  });

  it('shutdown drain runs the queue, then refuses submits with SchedulerClosedError', async () => {
    const s = createScheduler({ maxConcurrent: 1 });
    const results = [s.run(() => 1), s.run(() => 2), s.run(() => 3)];
    await s.shutdown();
    expect(await Promise.all(results)).toEqual([1, 2, 3]);
    const late = s.submit(() => 4);
    await expect(late.result).rejects.toBeInstanceOf(SchedulerClosedError);
    expect(s.stats()).toMatchObject({ rejected: 1 });
    expectConsistent(s.stats());
  });

  it('shutdown cancel cancels queued and running tasks and waits for slots', async () => {
    const s = createScheduler({ maxConcurrent: 1 });
    const running = s.submit(
      ({ signal }) =>
        new Promise((_, reject) =>
          signal.addEventListener('abort', () => setTimeout(() => reject(signal.reason), 5)),
        ),
    );
    const queued = s.submit(() => 'never');
    await tick();
    await s.shutdown({ mode: 'cancel' });
    await expect(running.result).rejects.toBeInstanceOf(SchedulerClosedError);
    await expect(queued.result).rejects.toBeInstanceOf(SchedulerClosedError);
    expect(s.stats()).toMatchObject({ activeSlots: 0, cancelled: 2 });
    expectConsistent(s.stats());
  });

  it('aging serves a long-waiting low task before newer critical ones', async () => {
    vi.useFakeTimers({ toFake: ['performance', 'setTimeout', 'setImmediate', 'Date'] });
    const s = createScheduler({
      maxConcurrent: 1,
      queueCapacity: Infinity,
      agingMs: 100,
      paused: true,
    });
    const order: string[] = [];
    void s.run(() => void order.push('old-low'), { priority: 'low' });
    vi.advanceTimersByTime(350); // waited >= 3 levels: now as high as critical, and older
    void s.run(() => void order.push('new-critical'), { priority: 'critical' });
    s.resume();
    await s.onIdle();
    expect(order).toEqual(['old-low', 'new-critical']);
    const fresh = createScheduler({ maxConcurrent: 1, agingMs: 100, paused: true });
    const order2: string[] = [];
    void fresh.run(() => void order2.push('low'), { priority: 'low' });
    void fresh.run(() => void order2.push('critical'), { priority: 'critical' });
    fresh.resume();
    await fresh.onIdle();
    expect(order2).toEqual(['critical', 'low']);
  });

  it('keyConcurrency caps running tasks per key without blocking other keys', async () => {
    const s = createScheduler({ maxConcurrent: 4, keyConcurrency: 1, queueCapacity: Infinity });
    const running = new Map<string, number>();
    let peakA = 0;
    const gates = [deferred(), deferred(), deferred()];
    const task = (key: string, gate?: Promise<void>) => async () => {
      running.set(key, (running.get(key) ?? 0) + 1);
      if (key === 'a') peakA = Math.max(peakA, running.get(key)!);
      await (gate ?? tick());
      running.set(key, running.get(key)! - 1);
    };
    const a = [0, 1, 2].map((i) => s.run(task('a', gates[i]!.promise), { key: 'a' }));
    const b = s.run(task('b'), { key: 'b' });
    await b; // b is not blocked behind the parked a's
    expect(s.stats().queued).toBe(2);
    for (const g of gates) g.resolve();
    await Promise.all(a);
    expect(peakA).toBe(1);
    expectConsistent(s.stats());
  });

  it('waits for the rate limiter without holding a run slot, and a refusal fails the task', async () => {
    const waiting = new Map<string, { resolve: () => void; reject: (e: unknown) => void }[]>();
    const limiter: SchedulerRateLimiter = {
      acquire: (key) =>
        new Promise<void>((resolve, reject) => {
          if (key === 'free') return resolve();
          const list = waiting.get(key) ?? [];
          list.push({ resolve, reject });
          waiting.set(key, list);
        }),
    };
    const s = createScheduler({ maxConcurrent: 2, rateLimiter: limiter, queueCapacity: Infinity });
    const throttled = [s.run(() => 't1', { key: 'slow' }), s.run(() => 't2', { key: 'slow' })];
    const free = s.run(() => 'f', { key: 'free' });
    expect(await free).toBe('f'); // not stuck behind the throttled key
    expect(s.stats()).toMatchObject({ running: 0, queued: 2, activeSlots: 0 });
    waiting.get('slow')![0]!.resolve();
    expect(await throttled[0]).toBe('t1');
    waiting.get('slow')![1]!.reject(new Error('wait too long'));
    await expect(throttled[1]).rejects.toThrow('wait too long');
    const cancelMe = s.submit(() => 'x', { key: 'slow' });
    await tick();
    cancelMe.cancel();
    await expect(cancelMe.result).rejects.toBeInstanceOf(TaskCancelledError);
    await s.onIdle();
    expect(s.stats()).toMatchObject({ succeeded: 2, failed: 1, cancelled: 1 });
    expectConsistent(s.stats());
  });

  /** A limiter whose waits the test grants by key; an aborted wait rejects. */
  function manualLimiter(): {
    limiter: SchedulerRateLimiter;
    grant: (key: string) => void;
    asked: string[];
  } {
    const waits = new Map<string, (() => void)[]>();
    const asked: string[] = [];
    const limiter: SchedulerRateLimiter = {
      acquire: (key, options) =>
        new Promise<void>((resolve, reject) => {
          asked.push(key);
          options?.signal?.addEventListener('abort', () => reject(options.signal!.reason));
          const list = waits.get(key) ?? [];
          list.push(resolve);
          waits.set(key, list);
        }),
    };
    const grant = (key: string): void => waits.get(key)!.shift()!();
    return { limiter, grant, asked };
  }

  it('a cancelled task in the let-through line does not stop the loop: the next queued task starts', async () => {
    const { limiter, grant, asked } = manualLimiter();
    const s = createScheduler({ maxConcurrent: 1, rateLimiter: limiter });
    const gateC = deferred();
    const c = s.submit(() => gateC.promise.then(() => 'c'), { key: 'c' });
    const a = s.submit(() => 'a', { key: 'a' });
    await tick(); // both wait for the limiter
    grant('c');
    await tick();
    expect(c.state).toBe('running');
    grant('a');
    await tick();
    expect(a.state).toBe('queued'); // let through, waiting for the slot
    const b = s.submit(() => 'b', { key: 'b' });
    await tick();
    a.cancel();
    await expect(a.result).rejects.toBeInstanceOf(TaskCancelledError);
    gateC.resolve();
    expect(await c.result).toBe('c');
    await tick();
    expect(asked).toEqual(['c', 'a', 'b']); // B went on to the limiter once the slot freed
    grant('b');
    expect(await b.result).toBe('b');
    await s.onIdle();
    expect(s.stats()).toMatchObject({ succeeded: 2, cancelled: 1, queued: 0, activeSlots: 0 });
    expectConsistent(s.stats());
  });

  it('a task cancelled in the let-through line gives back its key slot (keyConcurrency)', async () => {
    const { limiter, grant, asked } = manualLimiter();
    const s = createScheduler({ maxConcurrent: 1, keyConcurrency: 1, rateLimiter: limiter });
    const gateC = deferred();
    const c = s.submit(() => gateC.promise.then(() => 'c'), { key: 'c' });
    const a = s.submit(() => 'a', { key: 'k' });
    await tick();
    grant('c');
    grant('k');
    await tick();
    expect(c.state).toBe('running');
    a.cancel();
    await expect(a.result).rejects.toBeInstanceOf(TaskCancelledError);
    gateC.resolve();
    expect(await c.result).toBe('c');
    const d = s.submit(() => 'd', { key: 'k' });
    await tick();
    expect(asked).toEqual(['c', 'k', 'k']); // D was not parked behind the cancelled A
    grant('k');
    expect(await d.result).toBe('d');
    expectConsistent(s.stats());
  });

  it('emits started/settled/idle events, isolates listener errors, costs nothing unsubscribed', async () => {
    const s = createScheduler({ maxConcurrent: 1 });
    const events: string[] = [];
    const errors: unknown[] = [];
    s.on('taskStarted', (e) => events.push(`start:${e.id}`));
    const off = s.on('taskSettled', (e) => events.push(`settled:${e.id}:${e.state}`));
    s.on('idle', () => events.push('idle'));
    s.on('taskStarted', () => {
      throw new Error('listener bug');
    });
    s.on('error', (e) => errors.push(e));
    await s.run(() => 1, { id: 'a' });
    await s.run(() => Promise.reject(new Error('x')), { id: 'b' }).catch(() => {});
    off();
    await s.run(() => 3, { id: 'c' });
    await s.onIdle();
    expect(events).toEqual([
      'start:a',
      'settled:a:succeeded',
      'idle',
      'start:b',
      'settled:b:failed',
      'idle',
      'start:c',
      'idle',
    ]);
    expect(errors).toHaveLength(3);
  });

  it('handles: ids, state, late result access, and fire-and-forget failures do not crash', async () => {
    const s = createScheduler();
    const h = s.submit(() => 'v', { id: 'mine' });
    expect(h.id).toBe('mine');
    const auto = s.submit(() => {
      throw new Error('nobody listens');
    });
    expect(auto.id).toMatch(/^task-\d+$/);
    await s.onIdle();
    expect(h.state).toBe('succeeded');
    expect(await h.result).toBe('v');
    expect(auto.state).toBe('failed');
    await expect(auto.result).rejects.toThrow('nobody listens');
  });

  it('stats keep wait and run time summaries', async () => {
    const s = createScheduler({ maxConcurrent: 1 });
    await Promise.all([s.run(() => new Promise((r) => setTimeout(r, 20))), s.run(() => 1)]);
    const st = s.stats();
    expect(st.totalRunMs).toBeGreaterThanOrEqual(15);
    expect(st.maxRunMs).toBeGreaterThanOrEqual(15);
    expect(st.maxWaitMs).toBeGreaterThanOrEqual(15);
  });

  it.each<[string, object]>([
    ['maxConcurrent 0', { maxConcurrent: 0 }],
    ['maxConcurrent 1.5', { maxConcurrent: 1.5 }],
    ['negative capacity', { queueCapacity: -1 }],
    ['NaN timeout', { defaultTimeoutMs: NaN }],
    ['agingMs 0', { agingMs: 0 }],
    ['keyConcurrency string', { keyConcurrency: '2' }],
    ['bad limiter', { rateLimiter: {} }],
    ['unknown option', { maxConcurency: 3 }],
  ])('rejects %s with ConfigError naming the field', (_name, options) => {
    expect(() => createScheduler(options as never)).toThrow(ConfigError);
  });

  it('rejects bad submits with ConfigError naming the field', () => {
    const s = createScheduler();
    expect(() => s.submit('x' as never)).toThrow(/`task` to be a function/);
    expect(() => s.submit(() => 1, { priority: 'urgent' as never })).toThrow(
      /`priority` to be one of 'low', 'normal', 'high', 'critical'/,
    );
    expect(() => s.submit(() => 1, { timeoutMs: -5 })).toThrow(/`timeoutMs`/);
    expect(() => s.submit(() => 1, { key: 5 as never })).toThrow(/`key`/);
    expect(() => s.submit(() => 1, { prio: 'high' } as never)).toThrow(/unknown option `prio`/);
    expect(s.stats().submitted).toBe(0);
  });
});
