/**
 * Model-based test: random interleavings of submit / settle / cancel / pause / resume / tick,
 * with or without a rate limiter (whose waits are granted or refused at random), never exceed
 * the concurrency bound, never lose or double-run a task, keep the counters consistent after
 * every step, and never leave a task that may start waiting while a slot is free.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createScheduler,
  type Priority,
  type SchedulerRateLimiter,
  type TaskHandle,
} from '../../../src/index.js';

type Op =
  | {
      t: 'submit';
      prio: Priority;
      kind: 'sync' | 'throw' | 'async';
      key: string | undefined;
      timeout: boolean;
    }
  | { t: 'settle'; i: number; ok: boolean }
  | { t: 'cancel'; i: number }
  | { t: 'grant'; i: number; ok: boolean }
  | { t: 'pause' }
  | { t: 'resume' }
  | { t: 'tick' };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      t: fc.constant('submit' as const),
      prio: fc.constantFrom<Priority>('low', 'normal', 'high', 'critical'),
      kind: fc.constantFrom('sync' as const, 'throw' as const, 'async' as const, 'async' as const),
      key: fc.constantFrom(undefined, 'a', 'b'),
      timeout: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ t: fc.constant('settle' as const), i: fc.nat(50), ok: fc.boolean() }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('cancel' as const), i: fc.nat(50) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('grant' as const),
      i: fc.nat(50),
      ok: fc.constantFrom(true, true, true, false),
    }),
  },
  { weight: 1, arbitrary: fc.constant<Op>({ t: 'pause' }) },
  { weight: 1, arbitrary: fc.constant<Op>({ t: 'resume' }) },
  { weight: 2, arbitrary: fc.constant<Op>({ t: 'tick' }) },
);

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

/** One rate-limiter wait of the model: task `id` (passed as its cost, minus one). */
interface Wait {
  id: number;
  key: string;
  live: boolean;
  granted: boolean;
  resolve: () => void;
  reject: (error: unknown) => void;
}

describe('TaskScheduler (model)', () => {
  it('keeps its promises under random interleavings', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 0, max: 6 }),
        fc.constantFrom(0, 1),
        fc.constantFrom(false, true, true),
        fc.array(op, { maxLength: 60 }),
        async (maxConcurrent, queueCapacity, keyConcurrency, limited, ops) => {
          const waits: Wait[] = [];
          const waitOf = new Map<number, Wait>();
          const rateLimiter: SchedulerRateLimiter = {
            acquire: (key, options) =>
              new Promise<void>((resolve, reject) => {
                const wait: Wait = {
                  id: (options?.cost ?? 1) - 1,
                  key,
                  live: true,
                  granted: false,
                  resolve,
                  reject,
                };
                options?.signal?.addEventListener('abort', () => {
                  wait.live = false;
                  reject(options.signal!.reason);
                });
                waits.push(wait);
                waitOf.set(wait.id, wait);
              }),
          };
          const liveWaits = (): Wait[] => waits.filter((w) => w.live);
          const s = createScheduler({
            maxConcurrent,
            queueCapacity,
            ...(keyConcurrency ? { keyConcurrency } : {}),
            ...(limited ? { rateLimiter } : {}),
          });
          const keys: (string | undefined)[] = [];
          const executingByKey = new Map<string, number>();
          let executing = 0;
          let peak = 0;
          const runs = new Map<number, number>();
          const pending: { resolve: () => void; reject: () => void; id: number }[] = [];
          const handles: TaskHandle<unknown>[] = [];
          const check = (): void => {
            const st = s.stats();
            const settled = st.succeeded + st.failed + st.cancelled + st.timedOut;
            expect(st.submitted).toBe(st.rejected + st.queued + st.running + settled);
            expect(st.activeSlots).toBeLessThanOrEqual(maxConcurrent);
            expect(executing).toBeLessThanOrEqual(maxConcurrent);
            expect(st.activeSlots).toBe(executing);
            expect(st.queued).toBe(handles.filter((h) => h.state === 'queued').length);
            expect(st.running).toBe(handles.filter((h) => h.state === 'running').length);
            expect(st.queued).toBeLessThanOrEqual(queueCapacity);
            for (const n of runs.values()) expect(n).toBe(1);
            if (!s.isPaused && executing < maxConcurrent) {
              // a slot is free: every waiting task is at the limiter or held back by a full key
              for (const [i, h] of handles.entries()) {
                if (h.state !== 'queued') continue;
                const wait = waitOf.get(i);
                if (wait?.live) continue;
                expect(wait?.granted, `task ${i} let through but not started`).not.toBe(true);
                const key = keys[i];
                const keyFull =
                  keyConcurrency > 0 &&
                  key !== undefined &&
                  (executingByKey.get(key) ?? 0) +
                    liveWaits().filter((w) => w.key === key).length >=
                    keyConcurrency;
                const limitFull =
                  limited &&
                  liveWaits().filter((w) => w.key === (key ?? 'default')).length >= maxConcurrent;
                expect(keyFull || limitFull, `task ${i} waits with a slot free`).toBe(true);
              }
            }
          };
          const grant = (wait: Wait, ok: boolean): void => {
            wait.live = false;
            if (ok) {
              wait.granted = true;
              wait.resolve();
            } else wait.reject(new Error(`refused ${wait.id}`));
          };
          for (const o of ops) {
            if (o.t === 'submit') {
              const id = handles.length;
              keys.push(o.key);
              const task = (): unknown => {
                runs.set(id, (runs.get(id) ?? 0) + 1);
                executing++;
                peak = Math.max(peak, executing);
                const key = o.key;
                if (key !== undefined) executingByKey.set(key, (executingByKey.get(key) ?? 0) + 1);
                const done = (): void => {
                  if (key !== undefined)
                    executingByKey.set(key, (executingByKey.get(key) ?? 0) - 1);
                };
                if (o.kind === 'sync') {
                  executing--;
                  done();
                  return id;
                }
                if (o.kind === 'throw') {
                  executing--;
                  done();
                  throw new Error(`task ${id}`);
                }
                return new Promise<number>((resolve, reject) => {
                  pending.push({
                    id,
                    resolve: () => {
                      executing--;
                      done();
                      resolve(id);
                    },
                    reject: () => {
                      executing--;
                      done();
                      reject(new Error(`task ${id}`));
                    },
                  });
                });
              };
              handles.push(
                s.submit(task, {
                  priority: o.prio,
                  ...(o.key ? { key: o.key } : {}),
                  ...(o.timeout ? { timeoutMs: 60_000 } : {}),
                  ...(limited ? { cost: id + 1 } : {}),
                }),
              );
            } else if (o.t === 'settle' && pending.length > 0) {
              const p = pending.splice(o.i % pending.length, 1)[0]!;
              if (o.ok) p.resolve();
              else p.reject();
            } else if (o.t === 'cancel' && handles.length > 0) {
              handles[o.i % handles.length]!.cancel('model');
            } else if (o.t === 'grant' && liveWaits().length > 0) {
              const live = liveWaits();
              grant(live[o.i % live.length]!, o.ok);
            } else if (o.t === 'pause') s.pause();
            else if (o.t === 'resume') s.resume();
            await flush();
            check();
          }
          // finish: resume, let every function return, and wait for idle
          s.resume();
          for (
            let guard = 0;
            guard < 1000 && (pending.length > 0 || s.stats().queued > 0);
            guard++
          ) {
            for (const p of pending.splice(0)) p.resolve();
            for (const wait of liveWaits()) grant(wait, true);
            await flush();
          }
          // nothing may be left stuck (checked before onIdle, which would never resolve)
          expect(s.stats().queued).toBe(0);
          await s.onIdle();
          check();
          const st = s.stats();
          expect(st.queued + st.running).toBe(0);
          for (const h of handles)
            expect(['succeeded', 'failed', 'cancelled', 'timed_out']).toContain(h.state);
          // every task that started ran exactly once; tasks cancelled while queued never ran
          expect(runs.size).toBe(st.started);
          for (const [i, h] of handles.entries()) {
            if (h.state === 'succeeded' || (h.state === 'failed' && runs.has(i)))
              expect(runs.get(i)).toBe(1);
          }
          expect(peak).toBeLessThanOrEqual(maxConcurrent);
          await Promise.allSettled(handles.map((h) => h.result));
        },
      ),
      { numRuns: 1000 },
    );
  });
});
