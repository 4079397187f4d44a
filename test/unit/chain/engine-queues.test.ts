/**
 * The engine's queues follow its store: what the store keeps across a crash, the queues keep
 * too; a mix that loses queued work on a crash is refused unless the user accepts it. And
 * `start()` says once which limits are in force.
 */
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ConfigError,
  createChainEngine,
  defineModule,
  LocalBackend,
  LocalChainState,
  MemoryQueue,
  RedisBackend,
  RedisStreamQueue,
  type CacheService,
  type ChainEngineOptions,
  type ChainQueues,
  type LogFields,
  type Logger,
} from '../../../src/index.js';
import { resolveOptions } from '../../../src/chain/engine/options.js';

const module = defineModule({
  id: 'm',
  steps: [{ name: 'only', generate: () => [{ url: 'http://fake/' }], parse: () => ({}) }],
});
const memoryQueues = (): ChainQueues => ({
  task: new MemoryQueue<string>({ name: 'task' }),
  parser: new MemoryQueue<string>({ name: 'parser' }),
  error: new MemoryQueue<string>({ name: 'error' }),
});

const clients: Redis[] = [];
/** A Redis store whose client never connects (nothing here sends a command). */
function redisStore(): RedisBackend {
  const client = new Redis({ lazyConnect: true, port: 1 });
  clients.push(client);
  return new RedisBackend({ redis: client, keyPrefix: 'q:' });
}
/** An in-process store that says it is durable (what the LMDB store says). */
function durableStore(): CacheService {
  return Object.assign(new LocalBackend(), { durable: true });
}

function refusal(options: ChainEngineOptions): ConfigError {
  try {
    resolveOptions(options);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

afterEach(() => {
  for (const c of clients.splice(0)) c.disconnect();
});

describe('the default queues follow the store', () => {
  it('gives a Redis store Redis Stream queues, shared, on its keyPrefix, with the worker as consumer', () => {
    const o = resolveOptions({ modules: [module], store: redisStore(), workerId: 'w-1' });
    for (const q of [o.queues.task, o.queues.parser, o.queues.error])
      expect(q).toBeInstanceOf(RedisStreamQueue);
    expect(o.sharedQueues).toBe(true);
    expect(o.ownsQueues).toBe(true);
    expect(o.recordHandOffs).toBe(false);
  });

  it("gives the Redis store queues that take a dead worker's deliveries over after 30 s (1.5 × a longer lease)", () => {
    const place = (o: ReturnType<typeof resolveOptions>): number =>
      (o.queues.parser as RedisStreamQueue<string>).place.claimIdleMs;
    expect(place(resolveOptions({ modules: [module], store: redisStore() }))).toBe(30_000);
    expect(place(resolveOptions({ modules: [module], store: redisStore(), leaseMs: 40_000 }))).toBe(
      60_000,
    );
  });

  it('gives the in-process store in-memory queues', () => {
    const o = resolveOptions({ modules: [module], store: new LocalBackend() });
    expect(o.queues.parser).toBeInstanceOf(MemoryQueue);
    expect(o.sharedQueues).toBe(false);
    expect(o.recordHandOffs).toBe(false);
  });

  it('refuses a durable store without durable queues, naming `queues` and the way out', () => {
    const store = durableStore();
    const error = refusal({
      modules: [module],
      store,
      state: new LocalChainState(store as LocalBackend),
    });
    expect(error.context).toMatchObject({ field: 'queues' });
    expect(error.message).toMatch(/durable store needs durable queues/);
    expect(error.message).toMatch(/allowVolatileQueues/);
  });
});

describe('a mix that loses queued work on a crash', () => {
  it('is refused: in-memory queues over a Redis store', () => {
    const error = refusal({ modules: [module], store: redisStore(), queues: memoryQueues() });
    expect(error.context).toMatchObject({ field: 'queues' });
    expect(error.message).toMatch(/in-memory queues over a Redis store/);
  });

  it('is refused: in-memory queues over a durable store', () => {
    const store = durableStore();
    const error = refusal({
      modules: [module],
      store,
      state: new LocalChainState(store as LocalBackend),
      queues: memoryQueues(),
    });
    expect(error.message).toMatch(/in-memory queues over a durable store/);
  });

  it('is accepted with allowVolatileQueues, and its hand-offs are then recorded', () => {
    const o = resolveOptions({
      modules: [module],
      store: redisStore(),
      queues: memoryQueues(),
      allowVolatileQueues: true,
    });
    expect(o.sharedQueues).toBe(false);
    expect(o.recordHandOffs).toBe(true);
    const store = durableStore();
    expect(
      resolveOptions({
        modules: [module],
        store,
        state: new LocalChainState(store as LocalBackend),
        allowVolatileQueues: true,
      }).recordHandOffs,
    ).toBe(true);
  });

  it('rejects a non-boolean allowVolatileQueues, naming it', () => {
    const error = refusal({ modules: [module], allowVolatileQueues: 'yes' as never });
    expect(error.message).toMatch(/allowVolatileQueues/);
  });
});

describe('start() makes the limits visible', () => {
  const capture = () => {
    const lines: { level: string; message: string; fields: LogFields }[] = [];
    const logger: Logger = {
      debug: () => {},
      info: (fields, message) => lines.push({ level: 'info', message, fields }),
      warn: (fields, message) => lines.push({ level: 'warn', message, fields }),
      error: (fields, message) => lines.push({ level: 'error', message, fields }),
    };
    return { lines, logger };
  };

  it('logs the default rate limits and the concurrency once, at info', async () => {
    const { lines, logger } = capture();
    const engine = createChainEngine({ modules: [module], logger });
    await engine.start();
    await engine.start(); // idempotent: still one line
    await engine.stop();
    const started = lines.filter((l) => l.message === 'chain engine started');
    expect(started).toHaveLength(1);
    expect(started[0]).toMatchObject({
      level: 'info',
      fields: {
        rate_limits: { global: '100 per 1000 ms', per_module: '20 per 1000 ms' },
        concurrency: { task: 4, parser: 8, error_task: 2, downloads: 16 },
        queues: 'in-memory',
      },
    });
  });

  it('logs the limits given, a module’s own limit included', async () => {
    const { lines, logger } = capture();
    const own = defineModule({ ...module, id: 'own', rateLimit: { rate: 5, burst: 2 } });
    const engine = createChainEngine({
      modules: [module, own],
      logger,
      rateLimit: { global: false, perKey: { rate: 500, intervalMs: 1000 } },
      concurrency: { parser: 32 },
    });
    await engine.start();
    await engine.stop();
    expect(lines.find((l) => l.message === 'chain engine started')?.fields).toMatchObject({
      rate_limits: {
        global: 'none',
        per_module: '500 per 1000 ms',
        'module own': '5 per 1000 ms, burst 2',
      },
      concurrency: { parser: 32 },
    });
  });
});
