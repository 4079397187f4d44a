/**
 * bench/cache: PluginCache beside lru-cache (with ttl) and mnemonist's LRUMap, in one process.
 * 20,000 keys, 90% hits: get, set and a 90/10 mixed workload; then the workload of issue 20
 * (20,000 distinct keys over a cache of 10,000 holding 7,500 hot keys: 90% of gets on the hot
 * keys, 10% uniform over all 20,000, TTL and TTI 60 s) against lru-cache with and without
 * `updateAgeOnGet`; then retained bytes per entry.
 *
 *   node --expose-gc --import tsx bench/cache/index.ts
 */
import { LRUCache } from 'lru-cache';
import { LRUMap } from 'mnemonist';
import { PluginCache } from '../../src/index.js';
import { compareThroughput, printCase, retainedBytes, writeResults, fmt } from '../lib/harness.js';

const KEYS = 20_000;
const OPS = Number(process.env.BENCH_CACHE_OPS ?? 1_000_000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 7);
const keys = Array.from({ length: KEYS }, (_, i) => `key-${i}`);
const missKeys = Array.from({ length: KEYS }, (_, i) => `miss-${i}`);
// a fixed sequence: 90% of reads hit
let seed = 7;
const rand = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
const reads = Array.from(
  { length: 1 << 16 },
  () => (rand() < 0.9 ? keys : missKeys)[Math.floor(rand() * KEYS)]!,
);
const MASK = reads.length - 1;

const plugin = new PluginCache<number>({ maxEntries: KEYS, ttlMs: 300_000, ttiMs: 120_000 });
const lru = new LRUCache<string, number>({ max: KEYS, ttl: 300_000, updateAgeOnGet: true });
const lruNoTtl = new LRUCache<string, number>({ max: KEYS });
const mnemonist = new LRUMap<string, number>(KEYS);
for (let i = 0; i < KEYS; i++) {
  plugin.set('p', keys[i]!, i);
  lru.set(keys[i]!, i);
  lruNoTtl.set(keys[i]!, i);
  mnemonist.set(keys[i]!, i);
}

let sink = 0;
const getCase = await compareThroughput(
  `get, ${fmt(KEYS)} keys, 90% hits`,
  [
    {
      name: 'mocra PluginCache (TTL + TTI)',
      round: () => {
        for (let i = 0; i < OPS; i++) sink += plugin.get('p', reads[i & MASK]!) ?? 0;
        return OPS;
      },
    },
    {
      name: 'lru-cache (ttl, updateAgeOnGet)',
      round: () => {
        for (let i = 0; i < OPS; i++) sink += lru.get(reads[i & MASK]!) ?? 0;
        return OPS;
      },
    },
    {
      name: 'lru-cache (no ttl)',
      round: () => {
        for (let i = 0; i < OPS; i++) sink += lruNoTtl.get(reads[i & MASK]!) ?? 0;
        return OPS;
      },
    },
    {
      name: 'mnemonist LRUMap (no ttl)',
      round: () => {
        for (let i = 0; i < OPS; i++) sink += mnemonist.get(reads[i & MASK]!) ?? 0;
        return OPS;
      },
    },
  ],
  { rounds },
);
printCase(getCase, 'lru-cache (ttl, updateAgeOnGet)');

const setCase = await compareThroughput(
  `set (overwrite), ${fmt(KEYS)} keys`,
  [
    {
      name: 'mocra PluginCache (TTL + TTI)',
      round: () => {
        for (let i = 0; i < OPS; i++) plugin.set('p', keys[i % KEYS]!, i);
        return OPS;
      },
    },
    {
      name: 'lru-cache (ttl, updateAgeOnGet)',
      round: () => {
        for (let i = 0; i < OPS; i++) lru.set(keys[i % KEYS]!, i);
        return OPS;
      },
    },
    {
      name: 'mnemonist LRUMap (no ttl)',
      round: () => {
        for (let i = 0; i < OPS; i++) mnemonist.set(keys[i % KEYS]!, i);
        return OPS;
      },
    },
  ],
  { rounds },
);
printCase(setCase, 'lru-cache (ttl, updateAgeOnGet)');

const mixedCase = await compareThroughput(
  `mixed 90% get / 10% set, ${fmt(KEYS)} keys`,
  [
    {
      name: 'mocra PluginCache (TTL + TTI)',
      round: () => {
        for (let i = 0; i < OPS; i++) {
          const k = reads[i & MASK]!;
          if (i % 10 === 0) plugin.set('p', k, i);
          else sink += plugin.get('p', k) ?? 0;
        }
        return OPS;
      },
    },
    {
      name: 'lru-cache (ttl, updateAgeOnGet)',
      round: () => {
        for (let i = 0; i < OPS; i++) {
          const k = reads[i & MASK]!;
          if (i % 10 === 0) lru.set(k, i);
          else sink += lru.get(k) ?? 0;
        }
        return OPS;
      },
    },
    {
      name: 'mnemonist LRUMap (no ttl)',
      round: () => {
        for (let i = 0; i < OPS; i++) {
          const k = reads[i & MASK]!;
          if (i % 10 === 0) mnemonist.set(k, i);
          else sink += mnemonist.get(k) ?? 0;
        }
        return OPS;
      },
    },
  ],
  { rounds },
);
printCase(mixedCase, 'lru-cache (ttl, updateAgeOnGet)');

// the workload users run (issue 20): a cache of 10,000 holding 7,500 hot keys, 90% of gets on
// them, 10% uniform over 20,000 keys (mostly misses); TTL and TTI 60 s
const MAX = 10_000;
const HOT = 7_500;
const hotReads = Array.from({ length: 1 << 16 }, () =>
  rand() < 0.9 ? keys[Math.floor(rand() * HOT)]! : keys[Math.floor(rand() * KEYS)]!,
);
const userPlugin = new PluginCache<number>({ maxEntries: MAX, ttlMs: 60_000, ttiMs: 60_000 });
const userLruAge = new LRUCache<string, number>({ max: MAX, ttl: 60_000, updateAgeOnGet: true });
const userLru = new LRUCache<string, number>({ max: MAX, ttl: 60_000 });
for (let i = 0; i < HOT; i++) {
  userPlugin.set('p', keys[i]!, i);
  userLruAge.set(keys[i]!, i);
  userLru.set(keys[i]!, i);
}
const USER_MOCRA = 'mocra PluginCache (TTL + TTI 60 s)';
const USER_AGE = 'lru-cache (ttl, updateAgeOnGet)';
const USER_TTL = 'lru-cache (ttl only)';
const userCase = await compareThroughput(
  `get, ${fmt(KEYS)} keys over max ${fmt(MAX)}, ${fmt(HOT)} hot (90%), TTL/TTI 60 s`,
  [
    {
      name: USER_MOCRA,
      round: () => {
        for (let i = 0; i < OPS; i++) sink += userPlugin.get('p', hotReads[i & MASK]!) ?? 0;
        return OPS;
      },
    },
    {
      name: USER_AGE,
      round: () => {
        for (let i = 0; i < OPS; i++) sink += userLruAge.get(hotReads[i & MASK]!) ?? 0;
        return OPS;
      },
    },
    {
      name: USER_TTL,
      round: () => {
        for (let i = 0; i < OPS; i++) sink += userLru.get(hotReads[i & MASK]!) ?? 0;
        return OPS;
      },
    },
  ],
  { rounds },
);
printCase(userCase, USER_MOCRA);
const userRow = (name: string): number => userCase.rows.find((r) => r.name === name)!.median;

const pluginBytes = await retainedBytes(KEYS, (n) => {
  const c = new PluginCache<number>({ maxEntries: n });
  for (let i = 0; i < n; i++) c.set('p', keys[i]!, i);
  return c;
});
const lruBytes = await retainedBytes(KEYS, (n) => {
  const c = new LRUCache<string, number>({ max: n, ttl: 300_000 });
  for (let i = 0; i < n; i++) c.set(keys[i]!, i);
  return c;
});
console.log(
  `\nretained bytes per entry: mocra ${fmt(pluginBytes)}, lru-cache (ttl) ${fmt(lruBytes)}  (sink ${sink > 0})`,
);

const ratio = (c: typeof getCase): number =>
  c.rows.find((r) => r.name.startsWith('mocra'))!.median /
  c.rows.find((r) => r.name === 'lru-cache (ttl, updateAgeOnGet)')!.median;
console.log(
  `issue 20 workload: mocra / lru-cache (updateAgeOnGet) ${(userRow(USER_MOCRA) / userRow(USER_AGE)).toFixed(2)}, mocra / lru-cache (ttl only) ${(userRow(USER_MOCRA) / userRow(USER_TTL)).toFixed(2)}`,
);
writeResults('cache', [getCase, setCase, mixedCase, userCase], {
  'PluginCache get / lru-cache(ttl) get': Number(ratio(getCase).toFixed(2)),
  'users workload: PluginCache / lru-cache (ttl, updateAgeOnGet) (target >= 1)': Number(
    (userRow(USER_MOCRA) / userRow(USER_AGE)).toFixed(2),
  ),
  'users workload: PluginCache / lru-cache (ttl only) (target >= 0.8)': Number(
    (userRow(USER_MOCRA) / userRow(USER_TTL)).toFixed(2),
  ),
  'retained bytes per entry, mocra': Math.round(pluginBytes),
  'retained bytes per entry, lru-cache (ttl)': Math.round(lruBytes),
});
