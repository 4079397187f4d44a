/**
 * PluginCache: an async cache keyed by (pluginId, key), its options and counters, and its loads:
 * one computation per key at a time (singleflight), read through the optional shared second
 * tier, never written back once its key was invalidated or set. The entries themselves live in
 * its local tier (local-tier.ts).
 */
import { coarseMonotonicClock, type Clock } from '../internal/clock.js';
import {
  invalid,
  optionalClock,
  optionalNumber,
  optionalString,
  readOptions,
  requireFunction,
  requireString,
} from '../internal/validate.js';
import type { CacheService } from '../store/types.js';
import { MetricName } from '../observe/metric-names.js';
import { readMetrics, type Metrics } from '../observe/metrics.js';
import { canonicalKey } from './canonical-key.js';
import { LocalTier } from './local-tier.js';
import { Tier2 } from './tier2.js';

/** Options of {@link PluginCache}. */
export interface PluginCacheOptions {
  /** Time to live from when a value is stored, in ms (Infinity: none). @defaultValue 300000 */
  ttlMs?: number;
  /** Time to idle: expiry after this long without a read, in ms (Infinity: none). @defaultValue 120000 */
  ttiMs?: number;
  /** Most entries kept; the least recently used goes first. @defaultValue 10000 */
  maxEntries?: number;
  /** A shared second tier (e.g. a RedisBackend): values as JSON, read on a local miss before computing. */
  tier2?: CacheService;
  /** TTL of second-tier values, in ms. @defaultValue ttlMs, or 1 hour when ttlMs is Infinity */
  tier2TtlMs?: number;
  /**
   * Time source. @defaultValue performance.now, read at most about once per millisecond (an
   * entry may outlive its TTL or TTI by about a millisecond, as with lru-cache's `ttlResolution`)
   */
  clock?: Clock;
  /** Where hits and misses are counted (`cache_hit_total`, `cache_miss_total`). @defaultValue none */
  metrics?: Metrics;
  /** The `cache` label of its metrics. @defaultValue 'plugin_cache' */
  name?: string;
}

/** Options of {@link PluginCache.getOrCompute}. */
export interface GetOrComputeOptions {
  /** Recompute even when a fresh value is cached (joins a computation already running). @defaultValue false */
  force?: boolean;
}

/** Counters of a {@link PluginCache}. */
export interface CacheStats {
  /** Lookups that found a fresh value. */
  hits: number;
  /** Lookups that did not (including forced ones). */
  misses: number;
  /** Computations started. */
  loads: number;
  /** Computations that failed (nothing was cached). */
  loadErrors: number;
  /** Live entries pushed out by `maxEntries`. */
  evictions: number;
  /** Entries found expired and removed. */
  expirations: number;
  /** Entries held now (expired ones are removed when met or by `prune()`). */
  size: number;
  /** hits / (hits + misses), 0 before any lookup. */
  hitRate: number;
  /** Local misses answered by the second tier. */
  tier2Hits: number;
  /** Second-tier reads or writes that failed (the cache went on without it). */
  tier2Errors: number;
}

interface Flight<V> {
  promise: Promise<V>;
  stale: boolean;
}

const W = 'PluginCache';

/**
 * An async cache keyed by `(pluginId, key)`.
 *
 * - An entry expires at whichever comes first: `ttlMs` after it was stored, `ttiMs` after it was
 *   last read. No timer per entry: expired entries are dropped when met, pushed out by LRU, or
 *   removed by {@link PluginCache.prune}.
 * - `getOrCompute` runs one computation per key at a time (singleflight); a failure is not
 *   cached and every waiter sees it; a computation whose key was invalidated (or set) while it
 *   ran does not write its value back.
 * - `invalidatePlugin` removes exactly that plugin's entries, in time proportional to their number.
 * - Keys may be objects: they are serialised canonically (see {@link canonicalKey}).
 *
 * @example
 * ```ts
 * const cache = new PluginCache<Profile>({ ttlMs: 60_000, maxEntries: 5_000 });
 * const profile = await cache.getOrCompute('github', { user: 'ada' }, () => fetchProfile('ada'));
 * cache.invalidatePlugin('github');
 * ```
 */
export class PluginCache<V = unknown> {
  readonly #entries: LocalTier<V>;
  readonly #tier2: Tier2 | undefined;
  readonly #flights = new Map<string, Map<string, Flight<V>>>();
  readonly #metrics: Metrics | undefined;
  readonly #labels: { cache: string };
  #hits = 0;
  #misses = 0;
  #loads = 0;
  #loadErrors = 0;

  /** @throws {@link ConfigError} naming an invalid option. */
  constructor(options: PluginCacheOptions = {}) {
    const o = readOptions(W, options, [
      'ttlMs',
      'ttiMs',
      'maxEntries',
      'tier2',
      'tier2TtlMs',
      'clock',
      'metrics',
      'name',
    ]);
    this.#metrics = readMetrics(W, o.metrics);
    this.#labels = { cache: optionalString(W, 'name', o.name, 'plugin_cache') };
    const ttl = optionalNumber(W, 'ttlMs', o.ttlMs, 300_000, {
      greaterThan: 0,
      allowInfinity: true,
    });
    const tti = optionalNumber(W, 'ttiMs', o.ttiMs, 120_000, {
      greaterThan: 0,
      allowInfinity: true,
    });
    const max = optionalNumber(W, 'maxEntries', o.maxEntries, 10_000, { integer: true, min: 1 });
    const clock = optionalClock(W, 'clock', o.clock, coarseMonotonicClock);
    this.#entries = new LocalTier<V>(ttl, tti, max, clock);
    let service: CacheService | undefined;
    if (o.tier2 !== undefined) {
      const t = o.tier2 as CacheService | null;
      if (
        t === null ||
        typeof t !== 'object' ||
        typeof t.get !== 'function' ||
        typeof t.set !== 'function'
      ) {
        invalid(W, 'tier2', 'a CacheService', t);
      }
      service = t;
    }
    const tier2Ttl = optionalNumber(
      W,
      'tier2TtlMs',
      o.tier2TtlMs,
      Number.isFinite(ttl) ? Math.ceil(ttl) : 3_600_000,
      { integer: true, min: 1 },
    );
    this.#tier2 = service === undefined ? undefined : new Tier2(service, tier2Ttl);
  }

  /** The fresh value cached for `(pluginId, key)`, or undefined. Counts a hit or a miss. */
  get(pluginId: string, key: unknown): V | undefined {
    const slot = this.#entries.lookup(pluginId, canonicalKey(key));
    if (slot >= 0) {
      this.#hits++;
      if (this.#metrics) this.#metrics.increment(MetricName.CACHE_HIT, this.#labels);
      return this.#entries.valueAt(slot);
    }
    this.#misses++;
    if (this.#metrics) this.#metrics.increment(MetricName.CACHE_MISS, this.#labels);
    return undefined;
  }

  /** Stores a value (and in the second tier, in the background). A computation running for the key will not overwrite it. */
  set(pluginId: string, key: unknown, value: V): void {
    requireString(`${W}.set`, 'pluginId', pluginId);
    const k = canonicalKey(key);
    this.#markStale(pluginId, k);
    this.#entries.store(pluginId, k, value);
    this.#tier2?.write(pluginId, k, value);
  }

  /**
   * The cached value, or the result of `compute` (stored on success). Concurrent calls for one
   * key share one computation; a failure is not cached and reaches every waiter.
   */
  async getOrCompute(
    pluginId: string,
    key: unknown,
    compute: () => Promise<V> | V,
    options: GetOrComputeOptions = {},
  ): Promise<V> {
    requireString(`${W}.getOrCompute`, 'pluginId', pluginId);
    requireFunction(`${W}.getOrCompute`, 'compute', compute);
    const force = options?.force === true;
    const k = canonicalKey(key);
    if (!force) {
      const slot = this.#entries.lookup(pluginId, k);
      if (slot >= 0) {
        this.#hits++;
        if (this.#metrics) this.#metrics.increment(MetricName.CACHE_HIT, this.#labels);
        return this.#entries.valueAt(slot);
      }
    }
    this.#misses++;
    if (this.#metrics) this.#metrics.increment(MetricName.CACHE_MISS, this.#labels);
    let flights = this.#flights.get(pluginId);
    const running = flights?.get(k);
    if (running) return running.promise;
    if (!flights) this.#flights.set(pluginId, (flights = new Map()));
    const flight: Flight<V> = { promise: undefined as unknown as Promise<V>, stale: false };
    this.#loads++;
    flight.promise = this.#load(pluginId, k, compute, flight, !force);
    flights.set(k, flight);
    const done = (): void => {
      const map = this.#flights.get(pluginId);
      if (map?.get(k) === flight) {
        map.delete(k);
        if (map.size === 0) this.#flights.delete(pluginId);
      }
    };
    flight.promise.then(done, done);
    return flight.promise;
  }

  /** Removes one entry; true when there was one. A computation running for it will not write back. */
  invalidate(pluginId: string, key: unknown): boolean {
    const k = canonicalKey(key);
    this.#markStale(pluginId, k);
    if (!this.#entries.delete(pluginId, k)) return false;
    this.#tier2?.delete(pluginId, k);
    return true;
  }

  /** Removes every entry of `pluginId`; returns how many. Running computations of the plugin will not write back. */
  invalidatePlugin(pluginId: string): number {
    const flights = this.#flights.get(pluginId);
    if (flights) {
      for (const f of flights.values()) f.stale = true;
      this.#flights.delete(pluginId);
    }
    const n = this.#entries.deletePlugin(pluginId);
    this.#tier2?.deletePlugin(pluginId);
    return n;
  }

  /** Removes everything. Running computations will not write back. */
  clear(): void {
    for (const flights of this.#flights.values()) for (const f of flights.values()) f.stale = true;
    this.#flights.clear();
    this.#entries.clear();
  }

  /** Removes every expired entry now (O(size)); returns how many. */
  prune(): number {
    return this.#entries.prune();
  }

  /** Counters and size. */
  stats(): CacheStats {
    const lookups = this.#hits + this.#misses;
    return {
      hits: this.#hits,
      misses: this.#misses,
      loads: this.#loads,
      loadErrors: this.#loadErrors,
      evictions: this.#entries.evictions,
      expirations: this.#entries.expirations,
      size: this.#entries.size,
      hitRate: lookups === 0 ? 0 : this.#hits / lookups,
      tier2Hits: this.#tier2?.hits ?? 0,
      tier2Errors: this.#tier2?.errors ?? 0,
    };
  }

  async #load(
    pluginId: string,
    k: string,
    compute: () => Promise<V> | V,
    flight: Flight<V>,
    useTier2: boolean,
  ): Promise<V> {
    if (useTier2 && this.#tier2) {
      const found = await this.#tier2.read<V>(pluginId, k);
      if (found !== undefined) {
        if (!flight.stale) this.#entries.store(pluginId, k, found.value);
        return found.value;
      }
    }
    let value: V;
    try {
      value = await compute();
    } catch (error) {
      this.#loadErrors++;
      throw error;
    }
    if (!flight.stale) {
      this.#entries.store(pluginId, k, value);
      this.#tier2?.write(pluginId, k, value);
    }
    return value;
  }

  #markStale(pluginId: string, k: string): void {
    const flights = this.#flights.get(pluginId);
    const f = flights?.get(k);
    if (f) {
      f.stale = true;
      flights!.delete(k);
      if (flights!.size === 0) this.#flights.delete(pluginId);
    }
  }
}
