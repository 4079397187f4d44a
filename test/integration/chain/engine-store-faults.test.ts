/**
 * The engine never dead-letters a message because of a retryable store or queue error: a
 * TaskModel whose push to the parser queue meets a disconnected Redis client is released and
 * tried again, not dead-lettered.
 */
import { expect, it } from 'vitest';
import { MemoryQueue } from '../../../src/chain/queue.js';
import { RedisStreamQueue } from '../../../src/chain/redis-stream-queue.js';
import {
  RedisBackend,
  createChainEngine,
  defineModule,
  type LogFields,
  type Logger,
} from '../../../src/index.js';
import { describeRedis, useRedis } from '../../helpers/redis.js';
import { offlineClient } from '../../helpers/redis-server.js';

describeRedis('engine and retryable Redis failures', () => {
  const redis = useRedis();

  it('a push that meets a disconnect releases the message instead of dead-lettering it', async () => {
    const lines: { message: string; fields: LogFields }[] = [];
    const note = (fields: LogFields, message: string) => lines.push({ message, fields });
    const logger: Logger = { debug: note, info: note, warn: note, error: note };
    // every command fails at once with "Stream isn't writeable and enableOfflineQueue options is false"
    const offline = await offlineClient();
    const parser = new RedisStreamQueue<string>({
      client: offline,
      name: 'parser',
      key: `${redis.prefix}parser`,
      deadLetterKey: `${redis.prefix}parser:dead`,
      group: 'g',
      consumer: 'c',
      encode: (s) => s,
      decode: (s) => s,
    });
    const store = new RedisBackend({ redis: redis.client(), keyPrefix: redis.prefix });
    const engine = createChainEngine({
      modules: [
        defineModule({
          id: 'm',
          steps: [{ name: 's', generate: () => [{ url: 'http://fake/' }], parse: () => ({}) }],
        }),
      ],
      store,
      queues: {
        task: new MemoryQueue<string>({ name: 'task' }),
        parser,
        error: new MemoryQueue<string>({ name: 'error' }),
      },
      logger,
    });
    await engine.start();
    try {
      await engine.submit({ taskId: 't', account: 'a', platform: 'p', modules: ['m'] });
      while (!lines.some((l) => l.message.startsWith('message will be retried')))
        await new Promise((r) => setTimeout(r, 10));
      const retried = lines.find((l) => l.message.startsWith('message will be retried'))!;
      expect(retried.fields).toMatchObject({ queue: 'task', code: 'BACKEND_UNAVAILABLE' });
      expect(engine.deadLetters()).toEqual([]);
      expect(lines.some((l) => l.message.includes('dead-lettered'))).toBe(false);
    } finally {
      await engine.stop();
      await parser.shutdown();
      offline.disconnect();
    }
  });
});
