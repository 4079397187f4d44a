import { expect, it } from 'vitest';
import {
  RedisBackend,
  createChainEngine,
  createRedisStreamQueues,
  defineModule,
  type ChainEngine,
  type RedisStreamQueues,
} from '../../../src/index.js';
import { describeRedis, useRedis } from '../../helpers/redis.js';

async function until(condition: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const noop = defineModule({
  id: 'noop',
  steps: [{ name: 'only', generate: () => [], parse: () => ({}) }],
});

describeRedis('createRedisStreamQueues', () => {
  const redis = useRedis();

  function setup(consumer = 'w1'): {
    queues: RedisStreamQueues;
    engine: ChainEngine;
    store: RedisBackend;
  } {
    const store = new RedisBackend({ redis: redis.client(), keyPrefix: redis.prefix });
    const queues = createRedisStreamQueues({
      client: redis.client(),
      keyPrefix: redis.prefix,
      consumer,
      blockMs: 50,
    });
    const engine = createChainEngine({ modules: [noop], store, queues, workerId: consumer });
    return { queues, engine, store };
  }

  async function teardown(parts: ReturnType<typeof setup>): Promise<void> {
    await parts.engine.stop();
    await Promise.all(Object.values(parts.queues).map((q) => q.shutdown()));
  }

  it('keeps the streams under the deployment prefix, without a task hash tag', async () => {
    const parts = setup();
    await parts.queues.parser.push('x');
    const admin = redis.client();
    expect(await admin.type(`${redis.prefix}chain:queue:parser`)).toBe('stream');
    expect(
      (await admin.xinfo('GROUPS', `${redis.prefix}chain:queue:parser`)) as unknown[],
    ).toHaveLength(1);
    await teardown(parts);
  });

  it("the engine's dead letters go to the queue's dead-letter stream too", async () => {
    const parts = setup();
    await parts.engine.start();
    await parts.engine.publish('{ not json');
    await parts.engine.publish({
      kind: 'parser_task',
      body: {
        taskId: 'never-submitted',
        runId: 'r1',
        account: 'a',
        platform: 'p',
        moduleId: 'noop',
        stepIdx: 0,
        prefixRequest: '',
      },
    });
    await parts.engine.submit({ taskId: 't1', account: 'a', platform: 'p', modules: ['ghost'] });
    await until(async () => (await parts.queues.task.deadLetters()).length >= 2);
    await until(async () => (await parts.queues.parser.deadLetters()).length >= 1);
    const task = await parts.queues.task.deadLetters();
    expect(task.map((d) => d.reason)).toEqual([
      expect.stringMatching(/^NormalizeInput:/),
      expect.stringMatching(/^BuildModules: module "ghost"/),
    ]);
    expect(task[0]!.payload).toBe('{ not json');
    expect(task[0]!.originalId).not.toBe('');
    const parser = await parts.queues.parser.deadLetters();
    expect(parser[0]!.reason).toMatch(/^LoadTask: task "never-submitted" not found/);
    expect(parts.engine.stats().deadLettered).toBe(3);
    expect(parts.engine.stats().received.task).toBe(2);
    // the dead-lettered deliveries were removed from their streams
    expect(await parts.queues.parser.length()).toBe(0);
    await teardown(parts);
  });

  it('shutdown ends waiting receives, hands back unread entries and leaves the group clean', async () => {
    const parts = setup('leaving');
    const q = parts.queues.parser;
    const waiting = q.receive();
    await new Promise((r) => setTimeout(r, 30));
    const started = performance.now();
    await q.shutdown();
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(await waiting).toBeNull();
    const admin = redis.client();
    const consumers = (await admin.xinfo(
      'CONSUMERS',
      `${redis.prefix}chain:queue:parser`,
      'mocra-chain',
    )) as unknown[];
    expect(consumers).toHaveLength(0);
    // a message pushed now is there for the next worker
    const other = setup('next');
    await other.queues.parser.push('m');
    const d = await other.queues.parser.receive();
    expect(d?.message).toBe('m');
    expect(d?.deliveries).toBe(1);
    await d!.ack();
    await teardown(parts);
    await teardown(other);
  });

  it('a delivery dead-lettered by its receiver leaves the stream with its reason', async () => {
    const { queues, engine } = setup();
    await queues.error.push('payload-1');
    const d = await queues.error.receive();
    await d!.deadLetter!('cannot be processed');
    await d!.ack(); // settling twice is a no-op
    expect(await queues.error.length()).toBe(0);
    const dead = await queues.error.deadLetters();
    expect(dead).toEqual([
      expect.objectContaining({
        reason: 'cannot be processed',
        payload: 'payload-1',
        deliveries: 1,
      }),
    ]);
    await engine.stop();
    await Promise.all(Object.values(queues).map((q) => q.shutdown()));
  });

  it('a node aborted by stop() stays pending and is taken over once its lease is over (no sweep: the claim takes the expired lease over)', async () => {
    let block = true;
    const slow = defineModule({
      id: 'slow',
      steps: [
        {
          name: 'only',
          generate: async (ctx) => {
            if (block)
              await new Promise((_, reject) =>
                ctx.signal.addEventListener('abort', () => reject(new Error('aborted'))),
              );
            return [];
          },
          parse: () => ({}),
        },
      ],
    });
    const make = (consumer: string): { engine: ChainEngine; queues: RedisStreamQueues } => {
      const queues = createRedisStreamQueues({
        client: redis.client(),
        keyPrefix: redis.prefix,
        consumer,
        blockMs: 50,
        claimIdleMs: 500,
      });
      const store = new RedisBackend({ redis: redis.client(), keyPrefix: redis.prefix });
      const engine = createChainEngine({
        modules: [slow],
        store,
        queues,
        workerId: consumer,
        leaseMs: 300,
        stopTimeoutMs: 20,
      });
      return { engine, queues };
    };
    const a = make('a');
    await a.engine.start();
    await a.engine.submit({ taskId: 't', account: 'x', platform: 'y', modules: ['slow'] });
    await until(async () => a.engine.stats().claims.EXECUTE === 1);
    await a.engine.stop();
    await Promise.all(Object.values(a.queues).map((q) => q.shutdown()));
    const admin = redis.client();
    const parserKey = `${redis.prefix}chain:queue:parser`;
    const pending = (await admin.xpending(parserKey, 'mocra-chain')) as [number, ...unknown[]];
    expect(pending[0]).toBe(1); // left unacknowledged, not released to meet LOCKED_BY_OTHER
    block = false;
    const b = make('b');
    await b.engine.start();
    await until(async () => b.engine.stats().commits.COMMIT_OK === 1, 5_000);
    expect(b.engine.stats().claims.LOCKED_BY_OTHER ?? 0).toBe(0);
    expect(b.engine.stats().zombiesRecovered).toBe(1); // a's expired lease, taken over
    await b.engine.stop();
    await Promise.all(Object.values(b.queues).map((q) => q.shutdown()));
    expect(await admin.xlen(parserKey)).toBe(0);
  });

  it("a retry scheduled by a worker that stopped is promoted by another worker's sweep", async () => {
    let calls = 0;
    const flaky = defineModule({
      id: 'flaky',
      steps: [
        {
          name: 'only',
          generate: () => {
            if (++calls === 1) throw new Error('first try fails');
            return [];
          },
          parse: () => ({}),
        },
      ],
    });
    const make = (consumer: string): { engine: ChainEngine; queues: RedisStreamQueues } => {
      const queues = createRedisStreamQueues({
        client: redis.client(),
        keyPrefix: redis.prefix,
        consumer,
        blockMs: 50,
      });
      const store = new RedisBackend({ redis: redis.client(), keyPrefix: redis.prefix });
      const engine = createChainEngine({
        modules: [flaky],
        store,
        queues,
        workerId: consumer,
        nodeRetry: { initialDelayMs: 300, jitter: 0 },
        stopTimeoutMs: 3_000,
        sweepIntervalMs: 50,
      });
      return { engine, queues };
    };
    const a = make('a');
    await a.engine.start();
    await a.engine.submit({ taskId: 't', account: 'x', platform: 'y', modules: ['flaky'] });
    await until(async () => a.engine.stats().retriesScheduled === 1);
    await a.engine.stop(); // the retry is not due yet: it stays in Redis, not in the stream
    await Promise.all(Object.values(a.queues).map((q) => q.shutdown()));
    expect(await redis.client().xlen(`${redis.prefix}chain:queue:parser`)).toBe(0);
    expect(a.engine.stats().commits.COMMIT_OK ?? 0).toBe(0);
    const b = make('b');
    await b.engine.start();
    // b never scheduled it: only its sweep can find the task and promote the due retry
    await until(async () => b.engine.stats().commits.COMMIT_OK === 1, 5_000);
    expect(b.engine.stats().retriesScheduled).toBe(0);
    await b.engine.stop();
    await Promise.all(Object.values(b.queues).map((q) => q.shutdown()));
  });
});
