import { Cluster, Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveOptions } from '../../../src/chain/engine/options.js';
import {
  ChainKeyBuilder,
  ConfigError,
  RedisStreamQueue,
  createRedisStreamQueues,
} from '../../../src/index.js';

describe('createRedisStreamQueues', () => {
  // never connects: the queues only talk to Redis on their first push or receive
  const client = new Redis({ lazyConnect: true });
  afterAll(() => client.disconnect());

  it('makes the three queues of a deployment, named by role', () => {
    const queues = createRedisStreamQueues({ client });
    expect(Object.keys(queues).sort()).toEqual(['error', 'parser', 'task']);
    for (const role of ['task', 'parser', 'error'] as const) {
      expect(queues[role]).toBeInstanceOf(RedisStreamQueue);
      expect(queues[role].name).toBe(role);
    }
  });

  it("one claimIdleMs default everywhere, 30 s, above the engine's default lease (a dead worker's node runs again within 30 s)", () => {
    const queues = createRedisStreamQueues({ client });
    for (const role of ['task', 'parser', 'error'] as const)
      expect(queues[role].claimIdleMs).toBe(30_000);
    const one = new RedisStreamQueue<string>({
      client,
      name: 'q',
      key: 'q',
      deadLetterKey: 'q:dead',
      group: 'g',
      consumer: 'c',
      encode: (s) => s,
      decode: (s) => s,
    });
    expect(one.claimIdleMs).toBe(30_000);
    const { leaseMs } = resolveOptions({
      modules: [{ id: 'm', steps: [{ name: 's', generate: () => [], parse: () => ({}) }] }],
    });
    expect(leaseMs).toBeLessThan(30_000);
  });

  it('validates every option with ConfigError naming the field', () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ client: undefined }, /`client`/],
      [{ client: {} }, /`client`/],
      [{ keys: { prefix: 'x' } }, /`keys`/],
      [{ keyPrefix: 3 }, /`keyPrefix`/],
      [{ group: '' }, /`group`/],
      [{ consumer: '' }, /`consumer`/],
      [{ capacity: 0 }, /`capacity`/],
      [{ claimIdleMs: -1 }, /`claimIdleMs`/],
      [{ maxDeliveries: 1.5 }, /`maxDeliveries`/],
      [{ blockMs: 0 }, /`blockMs`/],
      [{ pollMs: 'fast' }, /`pollMs`/],
      [{ metrics: {} }, /`metrics`/],
      [{ extra: 1 }, /unknown option `extra`/],
    ];
    for (const [override, message] of bad) {
      const call = (): unknown => createRedisStreamQueues({ client, ...override } as never);
      expect(call).toThrow(ConfigError);
      expect(call).toThrow(message);
    }
    expect(() => createRedisStreamQueues(undefined as never)).toThrow(ConfigError);
  });

  it('accepts an ioredis Cluster as its client', () => {
    const cluster = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true });
    try {
      const queues = createRedisStreamQueues({ client: cluster, consumer: 'w1' });
      expect(queues.task).toBeInstanceOf(RedisStreamQueue);
    } finally {
      cluster.disconnect();
    }
  });

  it('accepts a key builder and a prefix', () => {
    const queues = createRedisStreamQueues({
      client,
      keys: new ChainKeyBuilder({ prefix: 'crawl' }),
      keyPrefix: 'app:',
      group: 'g',
      consumer: 'w1',
      capacity: Infinity,
    });
    expect(queues.parser.name).toBe('parser');
  });
});
