/**
 * The cases input fuzzing found, one by one: each is a MocraError naming the field (or, for a
 * missing header, no answer), never a TypeError, a wrong answer or a wedged scheduler.
 */
import { describe, expect, it } from 'vitest';
import { parseRetryAfter } from '../../src/chain/engine/download.js';
import { normalizeMessage } from '../../src/chain/messages.js';
import { MemoryQueue } from '../../src/chain/queue.js';
import { canonicalKey } from '../../src/cache/canonical-key.js';
import { ConfigError, MessageInvalidError } from '../../src/errors.js';
import { escapeKeyPart } from '../../src/keys/chain-key-builder.js';
import { InMemoryMetrics } from '../../src/observe/metrics.js';
import { RetryPolicy } from '../../src/retry/index.js';
import { createScheduler } from '../../src/scheduler/index.js';
import { jsonStore } from '../../src/store/json.js';
import { keySlot } from '../../src/store/key-slot.js';

function field(call: () => unknown): string | undefined {
  try {
    call();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).field;
  }
  throw new Error('expected a ConfigError');
}

describe('input the fuzzer found', () => {
  it('an inherited key is no priority, and the scheduler does not wedge', async () => {
    const scheduler = createScheduler();
    for (const priority of ['constructor', '__proto__', 'toString', Object.create(null)]) {
      expect(field(() => scheduler.submit(async () => 1, { priority }))).toBe('priority');
    }
    expect(field(() => scheduler.submit(async () => 1, { cost: 0.5 }))).toBe('cost');
    expect(field(() => scheduler.on('__proto__' as never, () => {}))).toBe('event');
    expect(field(() => scheduler.on('idle', 'not a function' as never))).toBe('listener');
    await scheduler.run(async () => 1, { priority: 'high' });
    await scheduler.onIdle();
    await scheduler.shutdown();
  });

  it('retry numbers, headers, key parts and slots', () => {
    const policy = new RetryPolicy({ maxRetries: 3 });
    expect(field(() => policy.delayFor(NaN))).toBe('n');
    expect(field(() => policy.delayFor(1, undefined, -1))).toBe('previousMs');
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(field(() => parseRetryAfter(42 as never))).toBe('value');
    expect(field(() => escapeKeyPart(Symbol('s') as never))).toBe('part');
    expect(field(() => keySlot(7 as never))).toBe('key');
  });

  it('stores, queues, metrics and cache keys', async () => {
    expect(field(() => jsonStore({} as never))).toBe('service');
    await expect(new MemoryQueue({ name: 'q' }).receive(null as never)).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
    });
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(field(() => new InMemoryMetrics().increment('c', { l: circular } as never))).toBe(
      'labels.l',
    );
    let deep: unknown[] = [];
    for (let i = 0; i < 20_000; i++) deep = [deep];
    expect(() => canonicalKey(deep)).toThrow(ConfigError);
  });

  it("a message whose getter or Proxy trap throws is MESSAGE_INVALID, not the trap's error", () => {
    const body = {
      get taskId(): string {
        throw new TypeError('getter broke');
      },
    };
    expect(() => normalizeMessage({ kind: 'task', body })).toThrow(MessageInvalidError);
    const proxy = new Proxy(
      {},
      {
        getPrototypeOf() {
          throw new Error('trap broke');
        },
      },
    );
    expect(() => normalizeMessage(proxy)).toThrow(MessageInvalidError);
  });
});
