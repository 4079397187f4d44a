import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DurableQueue } from '../../../src/chain/durable-queue.js';
import { ManualClock } from '../../../src/internal/clock.js';
import { DurableBackend } from '../../../src/store/durable/durable-backend.js';
import { runChainQueueConformance } from '../../conformance/chain-queue.js';
import { removeTempDataDirs, tempDataDir } from '../../helpers/durable.js';

let shared: DurableBackend;
let seq = 0;
beforeAll(async () => {
  shared = await DurableBackend.open({ path: tempDataDir('queue'), sweepIntervalMs: 0 });
});
afterAll(async () => {
  await shared.close();
  removeTempDataDirs();
});

// every queue in a namespace of its own in one shared store
runChainQueueConformance(
  'DurableQueue',
  (options) => new DurableQueue({ ...options, keyPrefix: `t${seq++}`, store: shared }),
);

describe('DurableQueue', () => {
  it('what was pushed and not acknowledged is there after a reopen; in-flight comes back after its lease', async () => {
    const path = tempDataDir();
    const clock = new ManualClock(10_000);
    let store = await DurableBackend.open({ path, clock, sweepIntervalMs: 0 });
    let q = new DurableQueue<string>({ store, name: 'q', visibilityMs: 1_000 });
    for (const m of ['a', 'b', 'c', 'd']) await q.push(m);
    const a = (await q.receive())!;
    await a.ack();
    const b = (await q.receive())!;
    expect(b.message).toBe('b'); // in flight when the process "dies"
    await store.close();

    store = await DurableBackend.open({ path, clock, sweepIntervalMs: 0 });
    q = new DurableQueue<string>({ store, name: 'q', visibilityMs: 1_000 });
    expect(q.size()).toBe(2);
    expect(q.inFlight()).toBe(1);
    clock.advance(500);
    expect((await q.receive())!.message).toBe('c');
    clock.advance(500);
    const again = (await q.receive())!;
    expect(again.message).toBe('b'); // its lease ended: back at the head
    expect(again.deliveries).toBe(2);
    expect((await q.receive())!.message).toBe('d');
    await store.close();
  });

  it('a delivery whose lease keeps running out is dead-lettered after maxDeliveries', async () => {
    const clock = new ManualClock(0);
    const store = await DurableBackend.open({ path: tempDataDir(), clock, sweepIntervalMs: 0 });
    const q = new DurableQueue<string>({
      store,
      name: 'q',
      visibilityMs: 10,
      maxDeliveries: 2,
      capacity: 1,
    });
    await q.push('poison');
    expect((await q.receive())!.deliveries).toBe(1);
    clock.advance(10);
    expect((await q.receive())!.deliveries).toBe(2);
    clock.advance(10);
    expect(q.tryPush('next')).toBe(false); // the worn-out delivery still holds the one slot
    const waiting = q.receive();
    await q.push('next'); // the receive reclaimed the slot: this one fits
    expect((await waiting)!.message).toBe('next');
    expect(q.deadLetters()).toMatchObject([
      { payload: '"poison"', deliveries: 2, reason: expect.stringContaining('lease expired') },
    ]);
    await store.close();
  });

  it('a waiting receiver gets a delivery whose lease ends while it waits', async () => {
    const store = await DurableBackend.open({ path: tempDataDir(), sweepIntervalMs: 0 });
    const q = new DurableQueue<string>({ store, name: 'q', visibilityMs: 20, pollMs: 5 });
    await q.push('x');
    const first = (await q.receive())!;
    const second = (await q.receive())!; // waits: x is leased
    expect(second.message).toBe('x');
    expect(second.deliveries).toBe(2);
    await first.ack(); // a late ack still removes the message: it was processed
    await second.ack();
    expect(q.size() + q.inFlight()).toBe(0);
    await store.close();
  });

  it('undecodable messages and deadLetter() go to the dead letters, bounded', async () => {
    const store = await DurableBackend.open({ path: tempDataDir(), sweepIntervalMs: 0 });
    const q = new DurableQueue<number>({ store, name: 'q', maxDeadLetters: 2 });
    store.store.transaction(() => {
      // a message written by something else, not JSON
      store.store.set('mocra:queue:{q}:m:900', JSON.stringify({ p: '{not json', d: 0 }));
      store.store.zadd('mocra:queue:{q}:ready', 0, '900');
    });
    await q.push(1);
    expect((await q.receive())!.message).toBe(1);
    const d = (await q.receive({ signal: AbortSignal.timeout(50) }).catch(() => null)) ?? null;
    expect(d).toBeNull();
    await q.deadLetter(7, 'could not publish');
    await q.push(2);
    await (await q.receive())!.deadLetter!('handler says no');
    const letters = q.deadLetters();
    expect(letters.map((l) => l.reason)).toEqual(['could not publish', 'handler says no']);
    expect(letters.map((l) => l.payload)).toEqual(['7', '2']);
    await store.close();
  });

  it('replayDeadLetter puts a dead letter back at the tail as a new message, in one transaction', async () => {
    const path = tempDataDir();
    let store = await DurableBackend.open({ path, sweepIntervalMs: 0 });
    let q = new DurableQueue<string>({ store, name: 'q', capacity: 2 });
    await q.push('a');
    await (await q.receive())!.deadLetter!('broke');
    await q.push('b');
    await q.push('c'); // full
    const [letter] = q.deadLetters();
    expect(letter).toMatchObject({ payload: '"a"', reason: 'broke', deliveries: 1 });
    const id = q.replayDeadLetter(letter!.id);
    expect(id).not.toBeNull();
    expect(id).not.toBe(letter!.id);
    expect(q.replayDeadLetter(letter!.id)).toBeNull(); // gone from the dead letters
    expect(q.deadLetters()).toEqual([]);
    expect(q.size()).toBe(3); // a replay does not wait for room
    await store.close();
    // committed: after a reopen it is there, last, its deliveries counted from 0
    store = await DurableBackend.open({ path, sweepIntervalMs: 0 });
    q = new DurableQueue<string>({ store, name: 'q', capacity: 2 });
    const got: string[] = [];
    for (let d = await q.receive(); d; d = q.size() > 0 ? await q.receive() : null) {
      got.push(d.message);
      if (d.message === 'a') expect(d.deliveries).toBe(1);
      await d.ack();
    }
    expect(got).toEqual(['b', 'c', 'a']);
    q.close();
    expect(() => q.replayDeadLetter('1')).toThrow(/closed/);
    await store.close();
  });

  it('validates options', async () => {
    const store = await DurableBackend.open({ path: tempDataDir(), sweepIntervalMs: 0 });
    expect(() => new DurableQueue({ store, name: '' })).toThrow(/`name`/);
    expect(() => new DurableQueue({ store: {} as never, name: 'q' })).toThrow(/`store`/);
    expect(() => new DurableQueue({ store, name: 'q', visibilityMs: 0 })).toThrow(/`visibilityMs`/);
    expect(() => new DurableQueue({ store, name: 'q', capasity: 2 } as never)).toThrow(
      /unknown option `capasity`/,
    );
    await store.close();
  });
});
