import { expect, it } from 'vitest';
import { describeRedis, redisUrl, useRedis } from '../helpers/redis.js';

it('a Redis is available under CI (never skipped there)', () => {
  if (process.env.CI === 'true' || process.env.CI === '1')
    expect(redisUrl()).toMatch(/^redis:\/\//);
  else expect(redisUrl() === null || /^rediss?:\/\//.test(redisUrl()!)).toBe(true);
});

describeRedis('test harness', () => {
  const redis = useRedis();

  it('talks to a real server that answers correctly', async () => {
    const client = redis.client();
    expect(await client.ping()).toBe('PONG');
    const key = `${redis.prefix}counter`;
    expect(await client.incrby(key, 41)).toBe(41);
    expect(await client.incr(key)).toBe(42);
    await client.set(`${redis.prefix}s`, 'hello', 'PX', 60_000);
    expect(await client.get(`${redis.prefix}s`)).toBe('hello');
    const pttl = await client.pttl(`${redis.prefix}s`);
    expect(pttl).toBeGreaterThan(59_000);
    expect(pttl).toBeLessThanOrEqual(60_000);
    const info = await client.info('server');
    const version = /redis_version:(\d+)\./.exec(info)?.[1];
    expect(Number(version)).toBeGreaterThanOrEqual(6);
  });

  it('gives each test its own prefix', async () => {
    const client = redis.client();
    expect(redis.prefix).toMatch(/^mocra-test-[0-9a-f]{12}:$/);
    expect(await client.get(`${redis.prefix}counter`)).toBeNull();
  });

  it('runs Lua on the server', async () => {
    const client = redis.client();
    const result = await client.eval(
      'return {tonumber(ARGV[1]) + 1, KEYS[1]}',
      1,
      `${redis.prefix}k`,
      '1',
    );
    expect(result).toEqual([2, `${redis.prefix}k`]);
  });
});
