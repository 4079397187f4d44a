/**
 * The shared second tier of a {@link PluginCache}: values as JSON in a {@link CacheService}
 * (e.g. a RedisBackend) under hashed keys, read on a local miss and written in the background.
 * Failures are counted, never thrown: the cache goes on without the tier.
 * @internal
 */
import { createHash } from 'node:crypto';
import type { CacheService } from '../store/types.js';

/** A PluginCache's second tier. @internal */
export class Tier2 {
  readonly #service: CacheService;
  readonly #ttlMs: number;
  #hits = 0;
  #errors = 0;

  constructor(service: CacheService, ttlMs: number) {
    this.#service = service;
    this.#ttlMs = ttlMs;
  }

  /** Local misses answered by the tier. */
  get hits(): number {
    return this.#hits;
  }

  /** Reads or writes that failed. */
  get errors(): number {
    return this.#errors;
  }

  /** The value stored for `(pluginId, k)`, or `undefined` when absent or unreadable. */
  async read<V>(pluginId: string, k: string): Promise<{ value: V } | undefined> {
    try {
      const text = await this.#service.get(this.#key(pluginId, k));
      if (text === null) return undefined;
      const value = JSON.parse(text) as V;
      this.#hits++;
      return { value };
    } catch {
      this.#errors++;
      return undefined;
    }
  }

  /** Stores `value` in the background; a value JSON cannot hold counts as an error. */
  write(pluginId: string, k: string, value: unknown): void {
    let text: string | undefined;
    try {
      text = JSON.stringify(value);
    } catch {
      text = undefined;
    }
    if (text === undefined) {
      this.#errors++;
      return;
    }
    this.#service
      .set(this.#key(pluginId, k), text, { ttlMs: this.#ttlMs })
      .catch(() => void this.#errors++);
  }

  /** Deletes one value in the background. */
  delete(pluginId: string, k: string): void {
    this.#service.del(this.#key(pluginId, k)).catch(() => void this.#errors++);
  }

  /** Deletes the plugin's values, for every process (in the background). */
  deletePlugin(pluginId: string): void {
    const service = this.#service;
    void (async () => {
      for await (const key of service.scan(prefix(pluginId))) await service.del(key);
    })().catch(() => void this.#errors++);
  }

  #key(pluginId: string, k: string): string {
    return prefix(pluginId) + createHash('sha256').update(k).digest('hex').slice(0, 40);
  }
}

function prefix(pluginId: string): string {
  return `plugin-cache:${pluginId.length}:${pluginId}:`;
}
