/**
 * Engine-level regressions of the state machine on both stores (issue 17 items 1 and 2):
 * - a node with 8,200 successors (past Lua's unpack limit) commits whole and every successor
 *   runs — on Redis the commit used to fail after marking the node done, losing the subtree;
 * - one failure that reaches the module and the task threshold terminates the module and then
 *   the task, and the engine reports both.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  createChainEngine,
  defineModule,
  LocalBackend,
  RedisBackend,
  type CacheService,
  type ChainEventMap,
} from '../../../src/index.js';
import { redisUrl } from '../../helpers/redis.js';

const FANOUT = 8_200;

interface Store {
  store: CacheService;
  cleanup(): Promise<void>;
}

const stores: [string, () => Promise<Store>][] = [
  [
    'LocalBackend',
    async () => {
      const store = new LocalBackend();
      return { store, cleanup: async () => store.close() };
    },
  ],
];
if (redisUrl()) {
  stores.push([
    'RedisBackend',
    async () => {
      const store = new RedisBackend({
        redis: redisUrl()!,
        keyPrefix: `mocra-test:${randomBytes(6).toString('hex')}:`,
      });
      await store.connect();
      return {
        store,
        cleanup: async () => {
          for await (const key of store.scan('')) await store.del(key);
          await store.close();
        },
      };
    },
  ]);
}

const ok = async () => ({ status: 200, headers: {}, body: '{}' });

describe.each(stores)('chain engine on %s', (_name, open) => {
  it(`a node with ${FANOUT} successors commits whole: every successor runs once`, async () => {
    const { store, cleanup } = await open();
    const ran = new Set<number>();
    const engine = createChainEngine({
      store,
      downloader: ok,
      rateLimit: { global: false, perKey: { rate: 100_000, intervalMs: 1_000, burst: 10_000 } },
      concurrency: { parser: 64 },
      modules: [
        defineModule({
          id: 'wide',
          steps: [
            {
              name: 'seed',
              generate: () => [{ url: 'http://wide.test/seed' }],
              parse: () => ({ next: Array.from({ length: FANOUT }, (_, i) => i) }),
            },
            {
              name: 'leaf',
              generate: (ctx) => {
                ran.add(ctx.input as number);
                return [];
              },
              parse: () => ({}),
            },
          ],
        }),
      ],
    });
    try {
      await engine.start();
      await engine.submit({ taskId: 'wide', account: 'a', platform: 'p', modules: ['wide'] });
      await engine.onIdle();
      expect(ran.size).toBe(FANOUT);
      expect(engine.stats().commits).toEqual({ COMMIT_OK: FANOUT + 1 });
    } finally {
      await engine.stop();
      await cleanup();
    }
  }, 120_000);

  it('one failure reaching both thresholds terminates the module, then the task, and reports both', async () => {
    const { store, cleanup } = await open();
    const engine = createChainEngine({
      store,
      downloader: ok,
      moduleErrorThreshold: 3,
      taskErrorThreshold: 3,
      nodeRetry: { maxRetries: 10, initialDelayMs: 1, maxDelayMs: 2, jitter: 0 },
      retryPollMs: 5,
      modules: [
        defineModule({
          id: 'broken',
          steps: [
            {
              name: 'seed',
              generate: () => [{ url: 'http://broken.test/seed' }],
              parse: () => {
                throw new Error('never parses');
              },
            },
          ],
        }),
      ],
    });
    const terminated: ChainEventMap['TaskTerminatedByThreshold'][] = [];
    engine.on('TaskTerminatedByThreshold', (e) => terminated.push(e));
    try {
      await engine.start();
      await engine.submit({ taskId: 'tb', account: 'a', platform: 'p', modules: ['broken'] });
      await engine.onIdle();
      expect(terminated.map((e) => [e.scope, e.moduleErrors, e.taskErrors])).toEqual([
        ['module', 3, 3],
        ['task', 3, 3],
      ]);
      const stats = engine.stats();
      expect(stats.modulesTerminated).toBe(1);
      expect(stats.tasksTerminated).toBe(1);
    } finally {
      await engine.stop();
      await cleanup();
    }
  }, 60_000);
});
