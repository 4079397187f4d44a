/**
 * The state store on both backends: the same calls, the same answers. Runs on the in-process
 * backend; set REDIS_URL=redis://127.0.0.1:6379 to run it on Redis too.
 *
 *   npx tsx examples/store.ts
 */
import { createCacheService, isMocraError, jsonStore, type CacheService } from 'mocra';

async function tour(service: CacheService): Promise<void> {
  console.log(`\n# ${service.mode}`);
  await service.set('greeting', 'hello', { ttlMs: 60_000 });
  console.log('get greeting        ->', await service.get('greeting'));
  console.log('ttl greeting (ms)   ->', await service.ttl('greeting'));
  console.log('setNX lock (1st)    ->', await service.setNX('lock', 'worker-1', { ttlMs: 5_000 }));
  console.log('setNX lock (2nd)    ->', await service.setNX('lock', 'worker-2', { ttlMs: 5_000 }));
  console.log('incr hits by 5      ->', await service.incr('hits', 5));

  // a delayed-job zset: members due by now
  const now = Date.now();
  await service.zadd('due', now - 1_000, 'job-a');
  await service.zadd('due', now + 60_000, 'job-later');
  await service.zadd('due', now - 10, 'job-b');
  console.log('due now             ->', await service.zrangeByScore('due', -Infinity, now));

  // typed JSON on top
  const sessions = jsonStore<{ user: string; roles: string[] }>(service);
  await sessions.set('session:1', { user: 'ada', roles: ['admin'] }, { ttlMs: 60_000 });
  console.log('json session        ->', await sessions.get('session:1'));

  // Redis' error behaviour on both backends
  try {
    await service.incr('greeting');
  } catch (error) {
    if (isMocraError(error)) console.log('incr a non-integer  ->', error.code);
  }
  await service.del('greeting', 'lock', 'hits', 'due', 'session:1');
  await service.close();
}

await tour(await createCacheService({ keyPrefix: 'example:' }));
if (process.env.REDIS_URL)
  await tour(await createCacheService({ redis: process.env.REDIS_URL, keyPrefix: 'example:' }));
