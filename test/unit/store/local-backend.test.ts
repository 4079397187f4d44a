import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/internal/clock.js';
import { LocalBackend } from '../../../src/store/local-backend.js';
import { createCacheService } from '../../../src/store/create.js';
import { runCacheServiceConformance } from '../../conformance/cache-service.js';

runCacheServiceConformance('LocalBackend', async () => {
  const clock = new ManualClock(1_000_000);
  const service = new LocalBackend({ keyPrefix: 'conf:', clock, sweepIntervalMs: 0 });
  return {
    service,
    elapse: async (ms) => void clock.advance(ms),
    cleanup: () => service.close(),
  };
});

describe('LocalBackend specifics', () => {
  it('the sweep removes expired keys without any access, in bounded batches', () => {
    const clock = new ManualClock(0);
    const backend = new LocalBackend({ clock, sweepIntervalMs: 0 });
    const store = backend.store;
    for (let i = 0; i < 2500; i++) store.set(`k${i}`, 'v', 10);
    store.set('forever', 'v');
    clock.advance(20);
    expect(store.rawSize).toBe(2501);
    expect(store.sweep()).toBe(1000);
    expect(store.sweep()).toBe(1000);
    expect(store.sweep()).toBe(500);
    expect(store.rawSize).toBe(1);
    expect(store.get('forever')).toBe('v');
  });

  it('an overwrite replaces the TTL both ways and the value of another type', async () => {
    const clock = new ManualClock(0);
    const backend = new LocalBackend({ clock, sweepIntervalMs: 0 });
    await backend.set('a', '1', { ttlMs: 10 });
    await backend.set('a', '2'); // drops the TTL
    await backend.set('b', '1');
    await backend.set('b', '2', { ttlMs: 10 }); // gains one
    await backend.zadd('z', 1, 'm');
    await backend.set('z', 'now a string');
    expect(await backend.ttl('a')).toBe(-1);
    expect(await backend.ttl('b')).toBe(10);
    clock.advance(10);
    expect(backend.store.sweep()).toBe(1);
    expect(await backend.get('a')).toBe('2');
    expect(await backend.get('b')).toBeNull();
    expect(await backend.get('z')).toBe('now a string');
    await expect(backend.set('a', 2 as unknown as string)).rejects.toThrow(/value/);
    await backend.close();
    await expect(backend.set('a', 'x')).rejects.toThrow(/closed/);
    await expect(backend.get('a')).rejects.toThrow(/closed/);
  });

  it('the periodic sweep timer runs and is unref’d', async () => {
    const backend = new LocalBackend({ sweepIntervalMs: 5 });
    backend.store.set('x', 'v', 1);
    await new Promise((r) => setTimeout(r, 40));
    expect(backend.store.rawSize).toBe(0);
    await backend.close();
  });

  it('prefixes keys, exposes the synchronous store, refuses calls after close', async () => {
    const backend = new LocalBackend({ keyPrefix: 'p:' });
    await backend.set('a', '1');
    expect(backend.store.get('p:a')).toBe('1');
    expect(backend.mode).toBe('single_node');
    await backend.close();
    await expect(backend.get('a')).rejects.toThrow(/closed/);
  });

  it('createCacheService without redis gives the local backend and logs the mode', async () => {
    const lines: unknown[] = [];
    const logger = {
      debug() {},
      info: (f: unknown, m: string) => lines.push([m, f]),
      warn() {},
      error() {},
    };
    const service = await createCacheService({ logger, keyPrefix: 'x:' });
    expect(service.mode).toBe('single_node');
    expect(lines).toEqual([
      ['mocra cache service started', { mode: 'single_node', keyPrefix: 'x:' }],
    ]);
    await service.close();
    await expect(createCacheService({ redsi: 'x' } as never)).rejects.toThrow(
      /unknown option `redsi`/,
    );
  });

  it('validates options', () => {
    expect(() => new LocalBackend({ sweepIntervalMs: -1 })).toThrow(/`sweepIntervalMs`/);
    expect(() => new LocalBackend({ clock: {} as never })).toThrow(/`clock`/);
  });
});
