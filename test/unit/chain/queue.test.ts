import { describe, expect, it } from 'vitest';
import { MemoryQueue } from '../../../src/chain/queue.js';
import { ClosedError, QueueFullError, TaskCancelledError } from '../../../src/errors.js';
import { InMemoryMetrics } from '../../../src/observe/metrics.js';

describe('MemoryQueue', () => {
  it('delivers FIFO and acks remove messages', async () => {
    const q = new MemoryQueue<number>({ name: 'q', capacity: 10 });
    await q.push(1);
    await q.push(2);
    expect(q.size()).toBe(2);
    const a = (await q.receive())!;
    const b = (await q.receive())!;
    expect([a.message, b.message]).toEqual([1, 2]);
    expect(q.inFlight()).toBe(2);
    await a.ack();
    await b.ack();
    expect(q.inFlight()).toBe(0);
    expect(q.size()).toBe(0);
  });

  it('producers wait when full and are admitted in order as room appears; waits are counted', async () => {
    const metrics = new InMemoryMetrics();
    const q = new MemoryQueue<number>({ name: 'parser', capacity: 1, metrics });
    await q.push(1);
    const order: number[] = [];
    const p2 = q.push(2).then(() => order.push(2));
    const p3 = q.push(3).then(() => order.push(3));
    expect(q.tryPush(4)).toBe(false);
    expect(
      metrics.counter('queue_backpressure_total', { queue: 'parser', reason: 'full_wait' }),
    ).toBe(2);
    expect(
      metrics.counter('queue_backpressure_total', { queue: 'parser', reason: 'full_refused' }),
    ).toBe(1);
    const got: number[] = [];
    for (let i = 0; i < 3; i++) {
      const d = (await q.receive())!;
      got.push(d.message);
      await d.ack();
    }
    await Promise.all([p2, p3]);
    expect(got).toEqual([1, 2, 3]);
    expect(order).toEqual([2, 3]);
  });

  it('a consumer waiting on an empty queue gets the next message', async () => {
    const q = new MemoryQueue<string>({ name: 'q' });
    const pending = q.receive();
    await q.push('x');
    expect((await pending)!.message).toBe('x');
  });

  it('release puts a message back at the head and counts deliveries', async () => {
    const q = new MemoryQueue<string>({ name: 'q' });
    await q.push('a');
    await q.push('b');
    const first = (await q.receive())!;
    await first.release();
    await first.release(); // idempotent
    const again = (await q.receive())!;
    expect(again.message).toBe('a');
    expect(again.deliveries).toBe(2);
    expect(q.size()).toBe(1);
  });

  it('maxWaitMs rejects with QueueFullError and abort rejects with the signal reason', async () => {
    const metrics = new InMemoryMetrics();
    const q = new MemoryQueue<number>({ name: 'q', capacity: 1, metrics });
    await q.push(1);
    await expect(q.push(2, { maxWaitMs: 10 })).rejects.toBeInstanceOf(QueueFullError);
    await expect(q.push(2, { maxWaitMs: 0 })).rejects.toBeInstanceOf(QueueFullError);
    const controller = new AbortController();
    const pending = q.push(3, { signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(TaskCancelledError);
    expect(
      metrics.counter('queue_backpressure_total', { queue: 'q', reason: 'full_timeout' }),
    ).toBe(1);
    expect(metrics.counter('queue_backpressure_total', { queue: 'q', reason: 'aborted' })).toBe(1);
    // the aborted and timed-out messages never entered
    const d = (await q.receive())!;
    await d.ack();
    expect(q.size()).toBe(0);
  });

  it('close refuses producers, lets consumers drain, then returns null', async () => {
    const q = new MemoryQueue<number>({ name: 'q', capacity: 1 });
    await q.push(1);
    const waiting = q.push(2);
    q.close();
    await expect(waiting).rejects.toBeInstanceOf(ClosedError);
    await expect(q.push(3)).rejects.toThrow(/closed/);
    expect(q.tryPush(4)).toBe(false);
    expect((await q.receive())!.message).toBe(1);
    expect(await q.receive()).toBeNull();
  });

  it('validates options', () => {
    expect(() => new MemoryQueue({ name: '' })).toThrow(/`name`/);
    expect(() => new MemoryQueue({ name: 'q', capacity: 0 })).toThrow(/`capacity`/);
    expect(() => new MemoryQueue({ name: 'q', capasity: 2 } as never)).toThrow(
      /unknown option `capasity`/,
    );
  });
});
