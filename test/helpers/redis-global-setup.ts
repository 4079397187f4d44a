/**
 * Vitest global setup: provides `redisUrl` to tests. REDIS_URL wins; else a private
 * redis-server is started on a free loopback port and stopped after the run. Without a
 * redis-server, tests that need Redis skip loudly — except under CI=true, where that fails.
 */
import type { TestProject } from 'vitest/node';
import { redisServerBinary, startRedisServer, type RedisServer } from './redis-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string | null;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const fromEnv = process.env.REDIS_URL;
  if (fromEnv) {
    project.provide('redisUrl', fromEnv);
    return async () => {};
  }
  if (!redisServerBinary()) {
    const message =
      'redis-server is not installed and REDIS_URL is not set: tests that need a real Redis cannot run.';
    if (process.env.CI === 'true' || process.env.CI === '1') {
      throw new Error(
        `${message} Under CI this is a failure (install the Debian package redis-server).`,
      );
    }
    const bar = '!'.repeat(100);
    console.warn(
      `\n${bar}\n!! ${message}\n!! They are SKIPPED. Install redis-server or set REDIS_URL to run them.\n${bar}\n`,
    );
    project.provide('redisUrl', null);
    return async () => {};
  }
  let server: RedisServer | null = await startRedisServer();
  project.provide('redisUrl', server.url);
  return async () => {
    await server?.stop();
    server = null;
  };
}
