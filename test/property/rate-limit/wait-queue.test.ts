/**
 * The waiting structures against plain-array models: the timer heap pops live entries in time
 * order (dead ones never fire, compaction loses nothing), and the FIFO keeps order.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Fifo, TimerHeap, type TimerEntry } from '../../../src/rate-limit/wait-queue.js';

type Op =
  { kind: 'push'; at: number } | { kind: 'kill'; pick: number } | { kind: 'pop'; now: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('push' as const), at: fc.integer({ min: 0, max: 1_000 }) }),
  fc.record({ kind: fc.constant('kill' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('pop' as const), now: fc.integer({ min: 0, max: 1_000 }) }),
);

describe('wait-queue structures', () => {
  it('TimerHeap fires exactly the live due entries, earliest first', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 400 }), (ops) => {
        const heap = new TimerHeap();
        let live: TimerEntry[] = [];
        const fired: TimerEntry[] = [];
        for (const op of ops) {
          if (op.kind === 'push') {
            const entry: TimerEntry = { at: op.at, dead: false, fire: () => fired.push(entry) };
            heap.push(entry);
            live.push(entry);
          } else if (op.kind === 'kill') {
            if (live.length === 0) continue;
            const victim = live[op.pick % live.length]!;
            heap.kill(victim);
            live = live.filter((e) => e !== victim);
          } else {
            const due = live.filter((e) => e.at <= op.now).map((e) => e.at);
            const got: number[] = [];
            for (let e = heap.popDue(op.now); e !== undefined; e = heap.popDue(op.now)) {
              got.push(e.at);
              live = live.filter((x) => x !== e);
              e.fire();
            }
            expect(got).toEqual([...due].sort((a, b) => a - b));
          }
          expect(heap.size).toBe(live.length);
          const top = heap.peek();
          expect(top?.at).toBe(live.length ? Math.min(...live.map((e) => e.at)) : undefined);
        }
        // a fired entry is dead: killing it later changes nothing
        for (const e of fired) heap.kill(e);
        expect(heap.size).toBe(live.length);
      }),
      { numRuns: 300 },
    );
  });

  it('Fifo keeps insertion order across growth and compaction', () => {
    fc.assert(
      // mostly pushes, long runs: the head index passes the compaction threshold (1,024)
      fc.property(
        fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 3_000, maxLength: 6_000 }),
        (ops) => {
          const fifo = new Fifo<number>();
          const model: number[] = [];
          let n = 0;
          for (const op of ops) {
            if (op < 6 || model.length === 0) {
              fifo.push(n);
              model.push(n++);
            } else {
              expect(fifo.shift()).toBe(model.shift());
            }
            expect(fifo.length).toBe(model.length);
            expect(fifo.peek()).toBe(model[0]);
          }
        },
      ),
      { numRuns: 20 },
    );
  });
});
