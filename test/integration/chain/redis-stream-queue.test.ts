import { expect, it } from 'vitest';
import {
  RedisStreamQueue,
  type RedisStreamQueueOptions,
} from '../../../src/chain/redis-stream-queue.js';
import { ClosedError, QueueFullError, TaskCancelledError } from '../../../src/errors.js';
import { InMemoryMetrics } from '../../../src/observe/metrics.js';
import { RedisBackend } from '../../../src/store/redis-backend.js';
import { describeRedis, useRedis } from '../../helpers/redis.js';

interface Msg {
  n: number;
}

describeRedis('RedisStreamQueue', () => {
  const redis = useRedis();
  const queues: RedisStreamQueue<Msg>[] = [];

  function queue(overrides: Partial<RedisStreamQueueOptions<Msg>> = {}): RedisStreamQueue<Msg> {
    const q = new RedisStreamQueue<Msg>({
      client: redis.client(),
      name: 'parser',
      key: `${redis.prefix}q:{run}:parser`,
      deadLetterKey: `${redis.prefix}q:{run}:dead`,
      group: 'workers',
      consumer: `c${queues.length}`,
      encode: (m) => JSON.stringify(m),
      decode: (p) => {
        const v = JSON.parse(p) as Msg;
        if (typeof v.n !== 'number') throw new Error('n is not a number');
        return v;
      },
      blockMs: 50,
      ...overrides,
    });
    queues.push(q);
    return q;
  }

  it('gives a blocking read blockMs more than commandTimeoutMs on a client with an ioredis commandTimeout', async () => {
    // the client a RedisBackend creates (the engine's default queues use it): its blocking
    // reads go through a duplicate, which must not inherit the per-command commandTimeout
    const backend = new RedisBackend({ redis: redis.url, commandTimeoutMs: 100 });
    await backend.connect();
    try {
      const q = queue({ client: backend.client, blockMs: 1_000, commandTimeoutMs: 100 });
      await q.start();
      const received = q.receive();
      // the read blocks past commandTimeoutMs, then this push answers it
      await new Promise((resolve) => setTimeout(resolve, 400));
      await q.push({ n: 7 });
      const d = await received;
      expect(d?.message).toEqual({ n: 7 });
      await d?.ack();
      q.close();
    } finally {
      await backend.close();
    }
  });

  it('keeps the dead-letter stream bounded in length and in age', async () => {
    const short = queue({ deadLetterMaxLen: 3 });
    for (let n = 0; n < 6; n++) await short.deadLetter({ n }, `reason ${n}`);
    const kept = await short.deadLetters();
    expect(kept.map((d) => d.reason)).toEqual(['reason 3', 'reason 4', 'reason 5']);
    short.close();
    // an age of 1 ms: each new dead letter trims those added before it (ids are ms times)
    const brief = queue({
      deadLetterKey: `${redis.prefix}q:{run}:dead-aged`,
      deadLetterMaxAgeMs: 1,
    });
    await brief.deadLetter({ n: 1 }, 'old');
    await new Promise((resolve) => setTimeout(resolve, 20));
    await brief.deadLetter({ n: 2 }, 'new');
    expect((await brief.deadLetters()).map((d) => d.reason)).toEqual(['new']);
    brief.close();
    expect(() => queue({ deadLetterMaxLen: 0 })).toThrow(/deadLetterMaxLen/);
  });

  it('delivers pushed messages once across two consumers of one group, in order per consumer', async () => {
    const a = queue();
    const b = queue();
    for (let n = 0; n < 40; n++) await a.push({ n });
    const seen: number[] = [];
    const drain = async (q: RedisStreamQueue<Msg>): Promise<void> => {
      for (;;) {
        if (seen.length >= 40) return;
        const controller = new AbortController();
        const timer = setTimeout(() => controller.abort(), 300);
        const d = await q.receive({ signal: controller.signal }).catch(() => null);
        clearTimeout(timer);
        if (!d) return;
        seen.push(d.message.n);
        expect(d.deliveries).toBe(1);
        await d.ack();
      }
    };
    await Promise.all([drain(a), drain(b)]);
    expect([...seen].sort((x, y) => x - y)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(await a.length()).toBe(0); // acked entries are deleted
    a.close();
    b.close();
  });

  it('an abandoned delivery is reclaimed by another consumer after claimIdleMs, with its count', async () => {
    const metrics = new InMemoryMetrics();
    const dying = queue({ claimIdleMs: 100 });
    const survivor = queue({ claimIdleMs: 100, metrics });
    await dying.push({ n: 7 });
    const first = await dying.receive();
    expect(first?.message.n).toBe(7);
    // the first consumer "dies": never acks
    await new Promise((r) => setTimeout(r, 150));
    const again = await survivor.receive();
    expect(again?.message.n).toBe(7);
    expect(again?.deliveries).toBe(2);
    await again!.ack();
    expect(metrics.counter('queue_reclaimed_total', { queue: 'parser' })).toBe(1);
    dying.close();
    survivor.close();
  });

  it('release makes a message available again with its delivery count carried along', async () => {
    const q = queue();
    await q.push({ n: 1 });
    const d1 = await q.receive();
    await d1!.release();
    const d2 = await q.receive();
    expect(d2!.message.n).toBe(1);
    expect(d2!.deliveries).toBe(2);
    await d2!.ack();
    q.close();
  });

  it('dead-letters a malformed payload with its reason and keeps serving the next message', async () => {
    const q = queue();
    await redis.client().xadd(`${redis.prefix}q:{run}:parser`, '*', 'p', '{"n":"oops"}', 'd', '0');
    await q.push({ n: 2 });
    const d = await q.receive();
    expect(d!.message.n).toBe(2);
    await d!.ack();
    await new Promise((r) => setTimeout(r, 20));
    const dead = await q.deadLetters();
    expect(dead).toHaveLength(1);
    expect(dead[0]!.reason).toContain('n is not a number');
    expect(dead[0]!.payload).toBe('{"n":"oops"}');
    q.close();
  });

  it('dead-letters a message delivered more than maxDeliveries times', async () => {
    const q = queue({ maxDeliveries: 2 });
    await q.push({ n: 3 });
    for (let i = 0; i < 2; i++) await (await q.receive())!.release();
    await q.push({ n: 4 });
    const d = await q.receive();
    expect(d!.message.n).toBe(4);
    await new Promise((r) => setTimeout(r, 20));
    const dead = await q.deadLetters();
    expect(dead.map((x) => x.reason)).toEqual([expect.stringContaining('delivered 3 times')]);
    expect(dead[0]!.deliveries).toBe(3);
    q.close();
  });

  it('producers wait for room (counted), and time out with QueueFullError', async () => {
    const metrics = new InMemoryMetrics();
    const q = queue({ capacity: 2, metrics, pollMs: 5 });
    await q.push({ n: 1 });
    await q.push({ n: 2 });
    expect(await q.offer({ n: 99 })).toBe(false);
    await expect(q.push({ n: 3 }, { maxWaitMs: 30 })).rejects.toBeInstanceOf(QueueFullError);
    const waiting = q.push({ n: 3 });
    const d = await q.receive();
    await d!.ack();
    await waiting;
    expect(await q.length()).toBe(2);
    expect(
      metrics.counter('queue_backpressure_total', { queue: 'parser', reason: 'full_wait' }),
    ).toBe(2);
    expect(
      metrics.counter('queue_backpressure_total', { queue: 'parser', reason: 'full_timeout' }),
    ).toBe(1);
    expect(
      metrics.counter('queue_backpressure_total', { queue: 'parser', reason: 'full_refused' }),
    ).toBe(1);
    q.close();
  });

  it('an aborted receive rejects promptly; close resolves waiting receivers with null', async () => {
    const q = queue({ blockMs: 5_000 });
    const controller = new AbortController();
    const started = performance.now();
    const pending = q.receive({ signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expect(pending).rejects.toBeInstanceOf(TaskCancelledError);
    expect(performance.now() - started).toBeLessThan(1_000);
    const waiting = q.receive();
    q.close();
    expect(await waiting).toBeNull();
    expect(await q.receive()).toBeNull();
    await expect(q.push({ n: 1 })).rejects.toBeInstanceOf(ClosedError);
  });

  it('validates options', () => {
    expect(() => queue({ capacity: 0 })).toThrow(/`capacity`/);
    expect(() => queue({ client: {} as never })).toThrow(/`client`/);
    expect(() => queue({ extra: 1 } as never)).toThrow(/unknown option `extra`/);
  });

  it('receiveBatch reads as many messages as asked for at once; acks of one tick settle together', async () => {
    const q = queue();
    for (let n = 0; n < 10; n++) await q.push({ n });
    const first = await q.receiveBatch(4);
    expect(first?.map((d) => d.message.n)).toEqual([0, 1, 2, 3]);
    const rest = await q.receiveBatch(10);
    expect(rest?.map((d) => d.message.n)).toEqual([4, 5, 6, 7, 8, 9]);
    await Promise.all([...first!, ...rest!].map((d) => d.ack()));
    expect(await q.length()).toBe(0);
    const pending = (await redis.client().xpending(`${redis.prefix}q:{run}:parser`, 'workers')) as [
      number,
    ];
    expect(pending[0]).toBe(0);
    q.close();
  });

  it('pushes of one tick are all added, and a full stream refuses those past its capacity', async () => {
    const q = queue({ capacity: 5 });
    const offered = await Promise.all(Array.from({ length: 8 }, (_, n) => q.offer({ n })));
    expect(offered.filter(Boolean)).toHaveLength(5);
    expect(await q.length()).toBe(5);
    q.close();
  });

  it('touch keeps a delivery its own: its idle time starts again', async () => {
    const q = queue({ claimIdleMs: 100 });
    await q.push({ n: 1 });
    const d = await q.receive();
    await new Promise((r) => setTimeout(r, 150));
    await d!.touch!();
    const [[, , idle] = ['', '', Infinity]] = (await redis
      .client()
      .xpending(`${redis.prefix}q:{run}:parser`, 'workers', '-', '+', 1)) as [
      string,
      string,
      number,
    ][];
    expect(idle).toBeLessThan(150);
    await d!.ack();
    q.close();
  });

  it('a consumer that is gone (idle, nothing pending) is removed from the group', async () => {
    const dying = queue({ claimIdleMs: 100, consumer: 'dying' });
    const survivor = queue({ claimIdleMs: 100, consumer: 'survivor' });
    await dying.push({ n: 3 });
    expect((await dying.receive())?.message.n).toBe(3); // then "dies" holding it
    const consumers = async (): Promise<string[]> =>
      (
        (await redis
          .client()
          .xinfo('CONSUMERS', `${redis.prefix}q:{run}:parser`, 'workers')) as unknown[][]
      ).map((row) => String(row[1]));
    expect(await consumers()).toContain('dying');
    const again = await survivor.receive();
    await again!.ack();
    // the survivor's reads go on; one of them, past claimIdleMs, removes the dead consumer
    for (let i = 0; i < 20 && (await consumers()).includes('dying'); i++) {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 100);
      await survivor.receive({ signal: controller.signal }).catch(() => null);
    }
    expect(await consumers()).not.toContain('dying');
    expect(await consumers()).toContain('survivor');
    survivor.close();
    dying.close();
  });
});
