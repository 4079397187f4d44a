/**
 * Model test of the durable queue across crashes: random pushes, receives, acks, releases,
 * clock ticks and "crashes" (the store closed with deliveries still held, then reopened). At the
 * end every accepted message has been acknowledged, and a message was delivered more than once
 * only when a delivery of it was cut off (a crash, a release, or a lease that ran out).
 */
import fc from 'fast-check';
import { afterAll, expect, it } from 'vitest';
import { DurableQueue } from '../../../src/chain/durable-queue.js';
import type { Delivery } from '../../../src/chain/queue.js';
import { ManualClock } from '../../../src/internal/clock.js';
import { DurableBackend } from '../../../src/store/durable/durable-backend.js';
import { removeTempDataDirs, tempDataDir } from '../../helpers/durable.js';

afterAll(removeTempDataDirs);

type Op =
  | { t: 'push' }
  | { t: 'receive' }
  | { t: 'ack'; i: number }
  | { t: 'release'; i: number }
  | { t: 'tick'; ms: number }
  | { t: 'crash' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.constant<Op>({ t: 'push' }), weight: 3 },
  { arbitrary: fc.constant<Op>({ t: 'receive' }), weight: 3 },
  { arbitrary: fc.nat(10).map<Op>((i) => ({ t: 'ack', i })), weight: 2 },
  fc.nat(10).map<Op>((i) => ({ t: 'release', i })),
  fc.constantFrom(30, 100).map<Op>((ms) => ({ t: 'tick', ms })),
  fc.constant<Op>({ t: 'crash' }),
);

const VISIBILITY = 100;

it('nothing accepted is lost across crashes; redeliveries only of cut-off deliveries', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(op, { maxLength: 60 }), async (ops) => {
      const clock = new ManualClock(1_000);
      const path = tempDataDir('crash');
      const open = async (): Promise<[DurableBackend, DurableQueue<number>]> => {
        const store = await DurableBackend.open({ path, clock, sweepIntervalMs: 0 });
        const q = new DurableQueue<number>({
          store,
          name: 'q',
          capacity: 8,
          visibilityMs: VISIBILITY,
          maxDeliveries: 1_000,
        });
        return [store, q];
      };
      let [store, q] = await open();
      let next = 0;
      const accepted = new Set<number>();
      const acked = new Set<number>();
      const cutOff = new Set<number>(); // delivered, then released, crashed away or expired
      let held: { d: Delivery<number>; at: number }[] = [];
      const deliveries = new Map<number, number>();
      try {
        for (const o of ops) {
          if (o.t === 'push') {
            if (q.tryPush(next)) accepted.add(next);
            next++;
          } else if (o.t === 'receive') {
            if (q.size() > 0) {
              const d = (await q.receive())!;
              deliveries.set(d.message, (deliveries.get(d.message) ?? 0) + 1);
              held.push({ d, at: clock.now() });
            }
          } else if ((o.t === 'ack' || o.t === 'release') && held.length > 0) {
            const { d } = held.splice(o.i % held.length, 1)[0]!;
            if (o.t === 'ack') {
              await d.ack();
              acked.add(d.message);
            } else {
              await d.release();
              cutOff.add(d.message);
            }
          } else if (o.t === 'tick') {
            clock.advance(o.ms);
            for (const h of held) if (clock.now() >= h.at + VISIBILITY) cutOff.add(h.d.message);
          } else if (o.t === 'crash') {
            for (const h of held) cutOff.add(h.d.message);
            held = [];
            await store.close();
            [store, q] = await open();
          }
        }
        // drain: let every lease run out, then receive and ack everything
        for (const h of held) cutOff.add(h.d.message);
        held = [];
        clock.advance(VISIBILITY);
        while (q.size() + q.inFlight() > 0) {
          const d = (await q.receive())!;
          deliveries.set(d.message, (deliveries.get(d.message) ?? 0) + 1);
          await d.ack();
          acked.add(d.message);
        }
        expect(q.inFlight()).toBe(0);
        expect([...accepted].filter((m) => !acked.has(m))).toEqual([]);
        for (const [m, n] of deliveries)
          if (n > 1) expect(cutOff.has(m), `message ${m}`).toBe(true);
      } finally {
        await store.close();
      }
    }),
    { numRuns: 150 },
  );
});
