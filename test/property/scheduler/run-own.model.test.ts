/**
 * Model-based test of TaskScheduler._runOwn (the engine's own tasks, which race their signal
 * themselves): under random interleavings of submits on a few shared signals, aborts and
 * settlements, the bound holds, no task runs twice or after its signal aborted while it waited,
 * every task of an aborted signal ends, the counters stay consistent, and the scheduler holds a
 * listener on a signal only while a task of it waits (one however many).
 */
import { getEventListeners } from 'node:events';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createScheduler } from '../../../src/index.js';

type Op =
  | { t: 'submit'; signal: number }
  | { t: 'settle'; i: number; ok: boolean }
  | { t: 'abort'; signal: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ t: fc.constant('submit' as const), signal: fc.nat(2) }) },
  {
    weight: 4,
    arbitrary: fc.record({ t: fc.constant('settle' as const), i: fc.nat(40), ok: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('abort' as const), signal: fc.nat(2) }) },
);

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('TaskScheduler._runOwn (model)', () => {
  it('keeps its promises and holds a listener only while a task waits', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3 }),
        fc.array(op, { maxLength: 50 }),
        async (max, ops) => {
          const s = createScheduler({ maxConcurrent: max });
          const controllers = [0, 1, 2].map(() => new AbortController());
          const signalOf: number[] = [];
          const started: number[] = []; // times run, by task
          const settled: boolean[] = [];
          const finish: ((ok: boolean) => void)[] = [];
          const ownListeners = [0, 0, 0]; // the running tasks' own listeners, by signal
          let running = 0;
          const check = async (): Promise<void> => {
            await flush();
            const st = s.stats();
            const done = st.succeeded + st.failed + st.cancelled + st.timedOut;
            expect(st.submitted).toBe(st.rejected + st.queued + st.running + done);
            expect(running).toBeLessThanOrEqual(max);
            for (const n of started) expect(n).toBeLessThanOrEqual(1);
            for (let k = 0; k < 3; k++) {
              const signal = controllers[k]!.signal;
              const waiting = signalOf.some(
                (sig, i) => sig === k && started[i] === 0 && !settled[i],
              );
              const expected = signal.aborted ? 0 : ownListeners[k]! + (waiting ? 1 : 0);
              expect(getEventListeners(signal, 'abort')).toHaveLength(expected);
              // every task of an aborted signal has ended
              if (signal.aborted)
                for (const [i, sig] of signalOf.entries())
                  if (sig === k) expect(settled[i]).toBe(true);
            }
          };
          for (const o of ops) {
            if (o.t === 'submit') {
              const i = signalOf.length;
              const k = o.signal;
              const signal = controllers[k]!.signal;
              signalOf.push(k);
              started.push(0);
              settled.push(false);
              finish.push(() => {});
              const task = (): Promise<number> =>
                new Promise<number>((resolve, reject) => {
                  expect(signal.aborted).toBe(false); // never started after its signal aborted
                  started[i]!++;
                  running++;
                  ownListeners[k]!++;
                  let over = false;
                  const end = (ok: boolean, reason?: unknown): void => {
                    if (over) return;
                    over = true;
                    running--;
                    ownListeners[k]!--;
                    signal.removeEventListener('abort', onAbort);
                    if (ok) resolve(i);
                    else reject(reason ?? new Error(`task ${i}`));
                  };
                  const onAbort = (): void => end(false, signal.reason);
                  signal.addEventListener('abort', onAbort, { once: true });
                  finish[i] = (ok) => end(ok);
                });
              s._runOwn(task, undefined, signal).then(
                () => (settled[i] = true),
                () => (settled[i] = true),
              );
            } else if (o.t === 'settle') {
              finish[o.i % Math.max(1, finish.length)]?.(o.ok);
            } else {
              controllers[o.signal]!.abort(new Error(`abort ${o.signal}`));
            }
            await check();
          }
          // end everything: tasks that were waiting start as slots free
          while (s.stats().running + s.stats().queued > 0) {
            for (const f of finish) f(true);
            await flush();
          }
          await check();
          expect(settled.every(Boolean)).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });
});
