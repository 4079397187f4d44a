/**
 * PluginCache: ten concurrent requests for one profile trigger one upstream call
 * (singleflight); object keys in any field order hit the same entry; invalidatePlugin drops
 * exactly one plugin's entries.
 *
 *   npx tsx examples/cache.ts
 */
import { PluginCache } from 'mocra';

let upstreamCalls = 0;
async function fetchProfile(user: string): Promise<{ user: string; followers: number }> {
  upstreamCalls++;
  await new Promise((r) => setTimeout(r, 50)); // a slow upstream
  return { user, followers: user.length * 100 };
}

const cache = new PluginCache<{ user: string; followers: number }>({
  ttlMs: 60_000,
  ttiMs: 30_000,
  maxEntries: 1_000,
});

// 1. a stampede of 10 concurrent misses → 1 upstream call
const results = await Promise.all(
  Array.from({ length: 10 }, () =>
    cache.getOrCompute('github', { user: 'ada', fields: ['followers'] }, () => fetchProfile('ada')),
  ),
);
console.log(`10 concurrent requests → ${upstreamCalls} upstream call; all got`, results[9]);

// 2. the same key with fields in another order is a hit
await cache.getOrCompute('github', { fields: ['followers'], user: 'ada' }, () =>
  fetchProfile('ada'),
);
console.log(`same key, other field order → still ${upstreamCalls} upstream call`);

// 3. per-plugin invalidation really removes entries
await cache.getOrCompute('gitlab', 'ada', () => fetchProfile('ada'));
await cache.getOrCompute('gitlab', 'grace', () => fetchProfile('grace'));
console.log(
  `invalidatePlugin('gitlab') removed ${cache.invalidatePlugin('gitlab')} entries; github kept:`,
  cache.get('github', { user: 'ada', fields: ['followers'] }) !== undefined,
);

// 4. failures are not cached
let attempt = 0;
const flaky = () =>
  ++attempt === 1 ? Promise.reject(new Error('upstream 503')) : fetchProfile('linus');
await cache
  .getOrCompute('github', 'linus', flaky)
  .catch((e: Error) => console.log('first load failed:', e.message));
console.log('second load:', await cache.getOrCompute('github', 'linus', flaky));
console.log('stats:', cache.stats());
