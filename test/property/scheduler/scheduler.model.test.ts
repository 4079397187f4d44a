/**
 * Model-based test: random interleavings of submit / settle / cancel / pause / resume / tick
 * never exceed the concurrency bound, never lose or double-run a task, and keep the counters
 * consistent after every step.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createScheduler, type Priority, type TaskHandle } from '../../../src/index.js';

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
  { weight: 1, arbitrary: fc.constant<Op>({ t: 'pause' }) },
  { weight: 1, arbitrary: fc.constant<Op>({ t: 'resume' }) },
  { weight: 2, arbitrary: fc.constant<Op>({ t: 'tick' }) },
);

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('TaskScheduler (model)', () => {
  it('keeps its promises under random interleavings', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 0, max: 6 }),
        fc.constantFrom(0, 1),
        fc.array(op, { maxLength: 60 }),
        async (maxConcurrent, queueCapacity, keyConcurrency, ops) => {
          const s = createScheduler({
            maxConcurrent,
            queueCapacity,
            ...(keyConcurrency ? { keyConcurrency } : {}),
          });
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
          };
          for (const o of ops) {
            if (o.t === 'submit') {
              const id = handles.length;
              const task = (): unknown => {
                runs.set(id, (runs.get(id) ?? 0) + 1);
                executing++;
                peak = Math.max(peak, executing);
                if (o.kind === 'sync') {
                  executing--;
                  return id;
                }
                if (o.kind === 'throw') {
                  executing--;
                  throw new Error(`task ${id}`);
                }
                return new Promise<number>((resolve, reject) => {
                  pending.push({
                    id,
                    resolve: () => {
                      executing--;
                      resolve(id);
                    },
                    reject: () => {
                      executing--;
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
                }),
              );
            } else if (o.t === 'settle' && pending.length > 0) {
              const p = pending.splice(o.i % pending.length, 1)[0]!;
              if (o.ok) p.resolve();
              else p.reject();
            } else if (o.t === 'cancel' && handles.length > 0) {
              handles[o.i % handles.length]!.cancel('model');
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
            await flush();
          }
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
      { numRuns: 300 },
    );
  });
});
