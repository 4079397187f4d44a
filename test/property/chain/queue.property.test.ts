import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DurableQueue } from '../../../src/chain/durable-queue.js';
import { MemoryQueue, type Delivery } from '../../../src/chain/queue.js';
import { DurableBackend } from '../../../src/store/durable/durable-backend.js';
import type { TestQueue } from '../../conformance/chain-queue.js';
import { removeTempDataDirs, tempDataDir } from '../../helpers/durable.js';

type Op =
  | { t: 'push' }
  | { t: 'offer' }
  | { t: 'receive' }
  | { t: 'ack'; i: number }
  | { t: 'release'; i: number }
  | { t: 'tick' };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.constant<Op>({ t: 'push' }),
  fc.constant<Op>({ t: 'offer' }),
  fc.constant<Op>({ t: 'receive' }),
  fc.nat(20).map<Op>((i) => ({ t: 'ack', i })),
  fc.nat(20).map<Op>((i) => ({ t: 'release', i })),
  fc.constant<Op>({ t: 'tick' }),
);

let durable: DurableBackend;
let seq = 0;
beforeAll(async () => {
  durable = await DurableBackend.open({ path: tempDataDir('queue-model'), sweepIntervalMs: 0 });
});
afterAll(async () => {
  await durable.close();
  removeTempDataDirs();
});

const queues: [string, (capacity: number) => TestQueue<number>][] = [
  ['MemoryQueue', (capacity) => new MemoryQueue<number>({ name: 'q', capacity })],
  [
    'DurableQueue',
    (capacity) =>
      new DurableQueue<number>({ store: durable, name: 'q', keyPrefix: `m${seq++}`, capacity }),
  ],
];

describe.each(queues)('%s (model)', (_, make) => {
  it('never exceeds capacity, never loses or duplicates a message, keeps FIFO among first deliveries', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.array(op, { maxLength: 80 }),
        async (capacity, ops) => {
          const q = make(capacity);
          let next = 0;
          let pushesSettled = 0;
          const accepted = new Set<number>(); // entered the queue (push resolved or offer true)
          const pushes: Promise<void>[] = [];
          const held: Delivery<number>[] = [];
          const acked: number[] = [];
          const firstDeliveries: number[] = [];
          const take = async (): Promise<Delivery<number>> => {
            const d = (await q.receive())!;
            if (d.deliveries === 1) firstDeliveries.push(d.message);
            return d;
          };
          for (const o of ops) {
            if (o.t === 'push') {
              const n = next++;
              pushes.push(
                q.push(n).then(() => {
                  accepted.add(n);
                  pushesSettled++;
                }),
              );
            } else if (o.t === 'offer') {
              if (q.tryPush(next)) accepted.add(next++);
            } else if (o.t === 'receive') {
              if (q.size() > 0) held.push(await take());
            } else if (o.t === 'ack' && held.length > 0) {
              const d = held.splice(o.i % held.length, 1)[0]!;
              await d.ack();
              acked.push(d.message);
            } else if (o.t === 'release' && held.length > 0) {
              const d = held.splice(o.i % held.length, 1)[0]!;
              await d.release();
            } else {
              await new Promise((r) => setImmediate(r));
            }
            expect(q.size() + q.inFlight()).toBeLessThanOrEqual(capacity);
            expect(q.inFlight()).toBe(held.length);
          }
          // drain: ack what is held, then receive and ack until every push has settled
          for (const d of held.splice(0)) {
            await d.ack();
            acked.push(d.message);
          }
          for (let guard = 0; guard < 10_000; guard++) {
            while (q.size() > 0) {
              const d = await take();
              await d.ack();
              acked.push(d.message);
            }
            if (pushesSettled === pushes.length) break;
            await new Promise((r) => setImmediate(r));
          }
          expect(pushesSettled).toBe(pushes.length);
          expect(q.size()).toBe(0);
          expect(q.inFlight()).toBe(0);
          expect(new Set(acked).size).toBe(acked.length); // no duplicates
          expect([...acked].sort((a, b) => a - b)).toEqual([...accepted].sort((a, b) => a - b)); // none lost
          expect(firstDeliveries).toEqual([...firstDeliveries].sort((a, b) => a - b)); // FIFO
        },
      ),
      { numRuns: 300 },
    );
  });
});
