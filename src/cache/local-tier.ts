/**
 * The local tier of a {@link PluginCache}: its entries in this process, keyed by
 * `(pluginId, key)`, each expiring at its TTL or TTI, the least recently used pushed out past
 * `maxEntries`. No timer per entry: expired entries are dropped when met, evicted, or pruned.
 * @internal
 */
import type { Clock } from '../internal/clock.js';

/** A PluginCache's entries in this process. @internal */
export class LocalTier<V> {
  readonly #ttl: number;
  readonly #tti: number;
  readonly #max: number;
  readonly #clock: Clock;
  /** plugin → key → slot. */
  readonly #index = new Map<string, Map<string, number>>();
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
  #evictions = 0;
  #expirations = 0;

  /** `ttlMs` and `ttiMs` may be Infinity; `maxEntries` is an integer >= 1. */
  constructor(ttlMs: number, ttiMs: number, maxEntries: number, clock: Clock) {
    this.#ttl = ttlMs;
    this.#tti = ttiMs;
    this.#max = maxEntries;
    this.#clock = clock;
  }

  /** Entries held now (expired ones until they are met or pruned). */
  get size(): number {
    return this.#size;
  }

  /** Live entries pushed out by `maxEntries`. */
  get evictions(): number {
    return this.#evictions;
  }

  /** Entries found expired and removed. */
  get expirations(): number {
    return this.#expirations;
  }

  /** The slot of a fresh entry (now the most recent, its idle time restarted), or -1. */
  lookup(pluginId: string, k: string): number {
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

  /** The value in a slot {@link LocalTier.lookup} returned. */
  valueAt(slot: number): V {
    return this.#values[slot]!;
  }

  /** Stores a value as the most recent entry, its TTL and TTI starting now. */
  store(pluginId: string, k: string, value: V): void {
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

  /** Removes one entry; true when there was one. */
  delete(pluginId: string, k: string): boolean {
    const slot = this.#index.get(pluginId)?.get(k);
    if (slot === undefined) return false;
    this.#remove(slot);
    return true;
  }

  /** Removes every entry of `pluginId`; returns how many. */
  deletePlugin(pluginId: string): number {
    const map = this.#index.get(pluginId);
    if (!map) return 0;
    const n = map.size;
    for (const slot of map.values()) {
      this.#unlink(slot);
      this.#release(slot);
    }
    this.#size -= n;
    this.#dropPlugin(pluginId);
    return n;
  }

  /** Removes everything (the counters stay). */
  clear(): void {
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
}

function grow<T extends Float64Array | Int32Array>(from: T, to: T): T {
  to.set(from as never);
  return to;
}
