/**
 * Per-test Redis access. `useRedis()` gives each test its own key prefix and its own clients,
 * and deletes the prefix's keys and closes the clients after the test.
 */
import { randomBytes } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import { afterEach, beforeEach, describe, inject } from 'vitest';

/** The URL of the Redis the tests use, or null when none is available (never under CI). */
export function redisUrl(): string | null {
  return inject('redisUrl');
}

/** `describe` that runs only when a Redis is available (the global setup already warned loudly). */
export function describeRedis(name: string, fn: () => void): void {
  describe.skipIf(redisUrl() === null)(`${name} [redis]`, fn);
}

export interface RedisTestContext {
  /** The server URL. */
  readonly url: string;
  /** A key prefix unique to the current test, ending in ':'. */
  readonly prefix: string;
  /** A new client; closed after the test. */
  client(options?: RedisOptions): Redis;
}

/** Registers per-test set-up and clean-up; call inside a `describeRedis` block. */
export function useRedis(): RedisTestContext {
  const url = redisUrl();
  let prefix = '';
  const clients: Redis[] = [];
  beforeEach(() => {
    prefix = `mocra-test-${randomBytes(6).toString('hex')}:`;
  });
  afterEach(async () => {
    if (!url) return;
    const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await admin.connect();
      let cursor = '0';
      do {
        const [next, keys] = await admin.scan(
          cursor,
          'MATCH',
          `${escapeGlob(prefix)}*`,
          'COUNT',
          500,
        );
        cursor = next;
        if (keys.length > 0) await admin.del(...keys);
      } while (cursor !== '0');
    } finally {
      admin.disconnect();
      await Promise.all(clients.splice(0).map((c) => c.quit().catch(() => c.disconnect())));
    }
  });
  return {
    get url() {
      if (!url) throw new Error('no Redis available');
      return url;
    },
    get prefix() {
      return prefix;
    },
    client(options: RedisOptions = {}) {
      if (!url) throw new Error('no Redis available');
      const c = new Redis(url, { maxRetriesPerRequest: 1, ...options });
      clients.push(c);
      return c;
    },
  };
}

/** Escapes Redis glob metacharacters in a literal. */
export function escapeGlob(literal: string): string {
  return literal.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
