/**
 * Two OS processes, each with its own limiter and Redis connection, share one budget: together
 * they are granted exactly what the buckets hold.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { describeRedis, useRedis } from '../../helpers/redis.js';

const child = fileURLToPath(new URL('./fixtures/limiter-process.ts', import.meta.url));

function run(env: Record<string, string>): Promise<{ granted: number }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', child], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    proc.stdout.on('data', (c) => (out += c));
    proc.stderr.on('data', (c) => (err += c));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(JSON.parse(out.trim()) as { granted: number });
      else reject(new Error(`child exited ${code}: ${err}`));
    });
  });
}

describeRedis('RateLimiter across processes', () => {
  const redis = useRedis();

  it('two processes on one Redis are granted exactly one budget between them', async () => {
    const env = { RL_REDIS_URL: redis.url, RL_PREFIX: redis.prefix, RL_ATTEMPTS: '200' };
    const [a, b] = await Promise.all([run(env), run(env)]);
    // per-key 30 each for k0..k2 (90) but the global bucket holds 50: 50 in all
    expect(a.granted + b.granted).toBe(50);
    const keys = await redis.client().keys(`${redis.prefix}*`);
    expect(keys.sort()).toEqual(
      [
        `${redis.prefix}rl:{two-processes}:global`,
        `${redis.prefix}rl:{two-processes}:key:k0`,
        `${redis.prefix}rl:{two-processes}:key:k1`,
        `${redis.prefix}rl:{two-processes}:key:k2`,
      ].sort(),
    );
  });
});
