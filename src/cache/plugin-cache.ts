/**
 * PluginCache: an in-process async cache keyed by (pluginId, key) with TTL, TTI, LRU eviction,
 * singleflight loads, real per-plugin invalidation and an optional shared second tier.
 */
import { createHash } from 'node:crypto';
import { monotonicClock, type Clock } from '../internal/clock.js';
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
  /** Time source. @defaultValue performance.now */
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

interface Entry<V> {
  plugin: string;
  key: string;
  value: V;
  created: number;
  touched: number;
  prev: Entry<V> | null; // towards most recent
  next: Entry<V> | null; // towards least recent
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
  readonly #ttl: number;
  readonly #tti: number;
  readonly #max: number;
  readonly #clock: Clock;
  readonly #tier2: CacheService | undefined;
  readonly #tier2Ttl: number;
  readonly #plugins = new Map<string, Map<string, Entry<V>>>();
  readonly #flights = new Map<string, Map<string, Flight<V>>>();
  #head: Entry<V> | null = null;
  #tail: Entry<V> | null = null;
  #size = 0;
  readonly #metrics: Metrics | undefined;
  readonly #labels: { cache: string };
  #hits = 0;
  #misses = 0;
  #loads = 0;
  #loadErrors = 0;
  #evictions = 0;
  #expirations = 0;
  #tier2Hits = 0;
  #tier2Errors = 0;

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
    this.#ttl = optionalNumber(W, 'ttlMs', o.ttlMs, 300_000, {
      greaterThan: 0,
      allowInfinity: true,
    });
    this.#tti = optionalNumber(W, 'ttiMs', o.ttiMs, 120_000, {
      greaterThan: 0,
      allowInfinity: true,
    });
    this.#max = optionalNumber(W, 'maxEntries', o.maxEntries, 10_000, { integer: true, min: 1 });
    this.#clock = optionalClock(W, 'clock', o.clock, monotonicClock);
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
      this.#tier2 = t;
    }
    this.#tier2Ttl = optionalNumber(
      W,
      'tier2TtlMs',
      o.tier2TtlMs,
      Number.isFinite(this.#ttl) ? Math.ceil(this.#ttl) : 3_600_000,
      { integer: true, min: 1 },
    );
  }

  /** The fresh value cached for `(pluginId, key)`, or undefined. Counts a hit or a miss. */
  get(pluginId: string, key: unknown): V | undefined {
    const entry = this.#lookup(pluginId, canonicalKey(key));
    if (entry) {
      this.#hits++;
      if (this.#metrics) this.#metrics.increment(MetricName.CACHE_HIT, this.#labels);
      return entry.value;
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
    this.#store(pluginId, k, value);
    this.#tier2Write(pluginId, k, value);
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
      const entry = this.#lookup(pluginId, k);
      if (entry) {
        this.#hits++;
        if (this.#metrics) this.#metrics.increment(MetricName.CACHE_HIT, this.#labels);
        return entry.value;
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
    const entry = this.#plugins.get(pluginId)?.get(k);
    if (!entry) return false;
    this.#remove(entry);
    this.#tier2Delete(pluginId, k);
    return true;
  }

  /** Removes every entry of `pluginId`; returns how many. Running computations of the plugin will not write back. */
  invalidatePlugin(pluginId: string): number {
    const flights = this.#flights.get(pluginId);
    if (flights) {
      for (const f of flights.values()) f.stale = true;
      this.#flights.delete(pluginId);
    }
    const map = this.#plugins.get(pluginId);
    if (!map) {
      this.#tier2DeletePlugin(pluginId);
      return 0;
    }
    const n = map.size;
    for (const entry of map.values()) {
      this.#unlink(entry);
      this.#size--;
    }
    this.#plugins.delete(pluginId);
    this.#tier2DeletePlugin(pluginId);
    return n;
  }

  /** Removes everything. Running computations will not write back. */
  clear(): void {
    for (const flights of this.#flights.values()) for (const f of flights.values()) f.stale = true;
    this.#flights.clear();
    this.#plugins.clear();
    this.#head = this.#tail = null;
    this.#size = 0;
  }

  /** Removes every expired entry now (O(size)); returns how many. */
  prune(): number {
    const now = this.#clock.now();
    let n = 0;
    for (let e = this.#tail; e;) {
      const prev = e.prev;
      if (this.#expired(e, now)) {
        this.#remove(e);
        this.#expirations++;
        n++;
      }
      e = prev;
    }
    return n;
  }

  /** Counters and size. */
  stats(): CacheStats {
    const lookups = this.#hits + this.#misses;
    return {
      hits: this.#hits,
      misses: this.#misses,
      loads: this.#loads,
      loadErrors: this.#loadErrors,
      evictions: this.#evictions,
      expirations: this.#expirations,
      size: this.#size,
      hitRate: lookups === 0 ? 0 : this.#hits / lookups,
      tier2Hits: this.#tier2Hits,
      tier2Errors: this.#tier2Errors,
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
      try {
        const text = await this.#tier2.get(this.#tier2Key(pluginId, k));
        if (text !== null) {
          const value = JSON.parse(text) as V;
          this.#tier2Hits++;
          if (!flight.stale) this.#store(pluginId, k, value);
          return value;
        }
      } catch {
        this.#tier2Errors++;
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
      this.#store(pluginId, k, value);
      this.#tier2Write(pluginId, k, value);
    }
    return value;
  }

  #lookup(pluginId: string, k: string): Entry<V> | undefined {
    const entry = this.#plugins.get(pluginId)?.get(k);
    if (!entry) return undefined;
    const now = this.#clock.now();
    if (entry.created + this.#ttl <= now || entry.touched + this.#tti <= now) {
      this.#remove(entry);
      this.#expirations++;
      return undefined;
    }
    entry.touched = now;
    if (entry !== this.#head) {
      this.#unlink(entry);
      this.#pushHead(entry);
    }
    return entry;
  }

  #expired(e: Entry<V>, now: number): boolean {
    return e.created + this.#ttl <= now || e.touched + this.#tti <= now;
  }

  #store(pluginId: string, k: string, value: V): void {
    const now = this.#clock.now();
    let map = this.#plugins.get(pluginId);
    if (!map) this.#plugins.set(pluginId, (map = new Map()));
    const existing = map.get(k);
    if (existing) {
      existing.value = value;
      existing.created = existing.touched = now;
      if (existing !== this.#head) {
        this.#unlink(existing);
        this.#pushHead(existing);
      }
      return;
    }
    const entry: Entry<V> = {
      plugin: pluginId,
      key: k,
      value,
      created: now,
      touched: now,
      prev: null,
      next: null,
    };
    map.set(k, entry);
    this.#pushHead(entry);
    this.#size++;
    while (this.#size > this.#max && this.#tail) {
      const victim = this.#tail;
      if (this.#expired(victim, now)) this.#expirations++;
      else this.#evictions++;
      this.#remove(victim);
    }
  }

  #remove(entry: Entry<V>): void {
    const map = this.#plugins.get(entry.plugin);
    if (map?.get(entry.key) !== entry) return;
    map.delete(entry.key);
    if (map.size === 0) this.#plugins.delete(entry.plugin);
    this.#unlink(entry);
    this.#size--;
  }

  #pushHead(entry: Entry<V>): void {
    entry.prev = null;
    entry.next = this.#head;
    if (this.#head) this.#head.prev = entry;
    this.#head = entry;
    if (!this.#tail) this.#tail = entry;
  }

  #unlink(entry: Entry<V>): void {
    if (entry.prev) entry.prev.next = entry.next;
    else if (this.#head === entry) this.#head = entry.next;
    if (entry.next) entry.next.prev = entry.prev;
    else if (this.#tail === entry) this.#tail = entry.prev;
    entry.prev = entry.next = null;
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

  #tier2Prefix(pluginId: string): string {
    return `plugin-cache:${pluginId.length}:${pluginId}:`;
  }

  #tier2Key(pluginId: string, k: string): string {
    return this.#tier2Prefix(pluginId) + createHash('sha256').update(k).digest('hex').slice(0, 40);
  }

  /** Deletes the plugin's values from the second tier, for every process (in the background). */
  #tier2DeletePlugin(pluginId: string): void {
    const tier2 = this.#tier2;
    if (!tier2) return;
    void (async () => {
      for await (const key of tier2.scan(this.#tier2Prefix(pluginId))) await tier2.del(key);
    })().catch(() => void this.#tier2Errors++);
  }

  #tier2Write(pluginId: string, k: string, value: V): void {
    if (!this.#tier2) return;
    let text: string | undefined;
    try {
      text = JSON.stringify(value);
    } catch {
      text = undefined;
    }
    if (text === undefined) {
      this.#tier2Errors++;
      return;
    }
    this.#tier2
      .set(this.#tier2Key(pluginId, k), text, { ttlMs: this.#tier2Ttl })
      .catch(() => void this.#tier2Errors++);
  }

  #tier2Delete(pluginId: string, k: string): void {
    if (!this.#tier2) return;
    this.#tier2.del(this.#tier2Key(pluginId, k)).catch(() => void this.#tier2Errors++);
  }
}
