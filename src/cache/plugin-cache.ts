/**
 * PluginCache: an in-process async cache keyed by (pluginId, key) with TTL, TTI, LRU eviction,
 * singleflight loads, real per-plugin invalidation and an optional shared second tier.
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
  readonly #ttl: number;
  readonly #tti: number;
  readonly #max: number;
  readonly #clock: Clock;
  readonly #tier2: Tier2 | undefined;
  /** plugin → key → slot. */
  readonly #index = new Map<string, Map<string, number>>();
  readonly #flights = new Map<string, Map<string, Flight<V>>>();
  /** The plugin of the last lookup and its map: most callers use one plugin at a time. */
  #lastPlugin: string | undefined = undefined;
  #lastMap: Map<string, number> | undefined = undefined;
  // Entries live in slots (0 … capacity-1) of parallel arrays; the LRU order is a doubly linked
  // list of slot numbers in typed arrays, most recent at the head.
  #keys: (string | undefined)[] = [];
  #owners: (string | undefined)[] = [];
  #values: (V | undefined)[] = [];
  /** created + ttl: the entry's hard deadline. */
  #hard = new Float64Array(0);
  /** min(created + ttl, last read + tti): the entry is expired at or after this time. */
  #deadline = new Float64Array(0);
  #prev = new Int32Array(0); // towards most recent, -1 at the head
  #next = new Int32Array(0); // towards least recent, -1 at the tail
  #head = -1;
  #tail = -1;
  /** Slots handed out so far (the rest of the capacity was never used). */
  #used = 0;
  /** Slots given back, reused first. */
  #free: number[] = [];
  #size = 0;
  readonly #metrics: Metrics | undefined;
  readonly #labels: { cache: string };
  #hits = 0;
  #misses = 0;
  #loads = 0;
  #loadErrors = 0;
  #evictions = 0;
  #expirations = 0;

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
    this.#clock = optionalClock(W, 'clock', o.clock, coarseMonotonicClock);
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
      Number.isFinite(this.#ttl) ? Math.ceil(this.#ttl) : 3_600_000,
      { integer: true, min: 1 },
    );
    this.#tier2 = service === undefined ? undefined : new Tier2(service, tier2Ttl);
  }

  /** The fresh value cached for `(pluginId, key)`, or undefined. Counts a hit or a miss. */
  get(pluginId: string, key: unknown): V | undefined {
    const slot = this.#lookup(pluginId, canonicalKey(key));
    if (slot >= 0) {
      this.#hits++;
      if (this.#metrics) this.#metrics.increment(MetricName.CACHE_HIT, this.#labels);
      return this.#values[slot];
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
      const slot = this.#lookup(pluginId, k);
      if (slot >= 0) {
        this.#hits++;
        if (this.#metrics) this.#metrics.increment(MetricName.CACHE_HIT, this.#labels);
        return this.#values[slot]!;
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
    const slot = this.#index.get(pluginId)?.get(k);
    if (slot === undefined) return false;
    this.#remove(slot);
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
    const map = this.#index.get(pluginId);
    let n = 0;
    if (map) {
      n = map.size;
      for (const slot of map.values()) {
        this.#unlink(slot);
        this.#release(slot);
      }
      this.#size -= n;
      this.#dropPlugin(pluginId);
    }
    this.#tier2?.deletePlugin(pluginId);
    return n;
  }

  /** Removes everything. Running computations will not write back. */
  clear(): void {
    for (const flights of this.#flights.values()) for (const f of flights.values()) f.stale = true;
    this.#flights.clear();
    this.#index.clear();
    this.#lastPlugin = this.#lastMap = undefined;
    this.#keys = [];
    this.#owners = [];
    this.#values = [];
    this.#hard = new Float64Array(0);
    this.#deadline = new Float64Array(0);
    this.#prev = new Int32Array(0);
    this.#next = new Int32Array(0);
    this.#head = this.#tail = -1;
    this.#used = 0;
    this.#free = [];
    this.#size = 0;
  }

  /** Removes every expired entry now (O(size)); returns how many. */
  prune(): number {
    const now = this.#clock.now();
    const deadline = this.#deadline;
    let n = 0;
    for (let slot = this.#tail; slot >= 0;) {
      const prev = this.#prev[slot]!;
      if (deadline[slot]! <= now) {
        this.#remove(slot);
        this.#expirations++;
        n++;
      }
      slot = prev;
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
        if (!flight.stale) this.#store(pluginId, k, found.value);
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
      this.#store(pluginId, k, value);
      this.#tier2?.write(pluginId, k, value);
    }
    return value;
  }

  /** The plugin's key map, remembered for the next call. */
  #mapOf(pluginId: string): Map<string, number> | undefined {
    if (pluginId === this.#lastPlugin) return this.#lastMap;
    const map = this.#index.get(pluginId);
    if (map !== undefined) {
      this.#lastPlugin = pluginId;
      this.#lastMap = map;
    }
    return map;
  }

  /** The slot of a fresh entry (now the most recent, its idle time restarted), or -1. */
  #lookup(pluginId: string, k: string): number {
    const slot = this.#mapOf(pluginId)?.get(k);
    if (slot === undefined) return -1;
    const now = this.#clock.now();
    const deadline = this.#deadline;
    if (deadline[slot]! <= now) {
      this.#remove(slot);
      this.#expirations++;
      return -1;
    }
    const idle = now + this.#tti;
    const hard = this.#hard[slot]!;
    deadline[slot] = idle < hard ? idle : hard;
    if (slot !== this.#head) {
      this.#unlink(slot);
      this.#pushHead(slot);
    }
    return slot;
  }

  #store(pluginId: string, k: string, value: V): void {
    const now = this.#clock.now();
    let map = this.#mapOf(pluginId);
    if (map === undefined) {
      map = new Map();
      this.#index.set(pluginId, map);
      this.#lastPlugin = pluginId;
      this.#lastMap = map;
    }
    const hard = now + this.#ttl;
    const idle = now + this.#tti;
    const existing = map.get(k);
    if (existing !== undefined) {
      this.#values[existing] = value;
      this.#hard[existing] = hard;
      this.#deadline[existing] = idle < hard ? idle : hard;
      if (existing !== this.#head) {
        this.#unlink(existing);
        this.#pushHead(existing);
      }
      return;
    }
    // make room first, so that the slots never outnumber maxEntries; the victim is the least
    // recent entry, as it would be after the insert
    while (this.#size >= this.#max && this.#tail >= 0) {
      const victim = this.#tail;
      if (this.#deadline[victim]! <= now) this.#expirations++;
      else this.#evictions++;
      this.#remove(victim);
    }
    // the victim may have been this plugin's last entry
    if (map.size === 0 && this.#index.get(pluginId) !== map) {
      this.#index.set(pluginId, map);
      this.#lastPlugin = pluginId;
      this.#lastMap = map;
    }
    const slot = this.#allocate();
    this.#keys[slot] = k;
    this.#owners[slot] = pluginId;
    this.#values[slot] = value;
    this.#hard[slot] = hard;
    this.#deadline[slot] = idle < hard ? idle : hard;
    map.set(k, slot);
    this.#pushHead(slot);
    this.#size++;
  }

  /** A free slot, growing the arrays (doubling, up to maxEntries) when none is left. */
  #allocate(): number {
    const reused = this.#free.pop();
    if (reused !== undefined) return reused;
    const slot = this.#used++;
    if (slot >= this.#hard.length) {
      const capacity = Math.min(this.#max, Math.max(64, this.#hard.length * 2));
      this.#hard = grow(this.#hard, new Float64Array(capacity));
      this.#deadline = grow(this.#deadline, new Float64Array(capacity));
      this.#prev = grow(this.#prev, new Int32Array(capacity));
      this.#next = grow(this.#next, new Int32Array(capacity));
    }
    return slot;
  }

  /** Removes the entry in `slot` from its plugin's map, the LRU list and the count. */
  #remove(slot: number): void {
    const plugin = this.#owners[slot]!;
    const map = this.#index.get(plugin);
    if (map === undefined || map.get(this.#keys[slot]!) !== slot) return;
    map.delete(this.#keys[slot]!);
    if (map.size === 0) this.#dropPlugin(plugin);
    this.#unlink(slot);
    this.#release(slot);
    this.#size--;
  }

  #dropPlugin(pluginId: string): void {
    this.#index.delete(pluginId);
    if (this.#lastPlugin === pluginId) this.#lastPlugin = this.#lastMap = undefined;
  }

  /** Gives a slot back (its references dropped so the GC can take them). */
  #release(slot: number): void {
    this.#keys[slot] = undefined;
    this.#owners[slot] = undefined;
    this.#values[slot] = undefined;
    this.#free.push(slot);
  }

  #pushHead(slot: number): void {
    this.#prev[slot] = -1;
    this.#next[slot] = this.#head;
    if (this.#head >= 0) this.#prev[this.#head] = slot;
    this.#head = slot;
    if (this.#tail < 0) this.#tail = slot;
  }

  #unlink(slot: number): void {
    const prev = this.#prev[slot]!;
    const next = this.#next[slot]!;
    if (prev >= 0) this.#next[prev] = next;
    else if (this.#head === slot) this.#head = next;
    if (next >= 0) this.#prev[next] = prev;
    else if (this.#tail === slot) this.#tail = prev;
    this.#prev[slot] = this.#next[slot] = -1;
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

function grow<T extends Float64Array | Int32Array>(from: T, to: T): T {
  to.set(from as never);
  return to;
}
