/**
 * The chain state machine on the durable store: the local transition twins (the same code and
 * the same codes as the Lua scripts, through {@link LocalChainState}) run over the LMDB-backed
 * {@link SyncStore}, each transition inside one LMDB write transaction. A transition commits
 * all its writes or none, and once it has returned, a kill -9 does not undo it.
 */
import { ChainKeyBuilder } from '../keys/chain-key-builder.js';
import type { DurableBackend } from '../store/durable/durable-backend.js';
import type { DurableStore } from '../store/durable/durable-store.js';
import { LocalChainState, type ChainStateOptions } from './state/local-chain-state.js';

/**
 * {@link ChainStateStore} on a {@link DurableBackend} (durable single-node mode): a
 * {@link LocalChainState} whose every transition runs inside one LMDB write transaction. The
 * engine picks it by itself when its store is durable.
 *
 * @example
 * ```ts
 * const store = await DurableBackend.open({ path: './mocra-data' });
 * const state = new DurableChainState(store);
 * ```
 */
export class DurableChainState extends LocalChainState {
  readonly #store: DurableStore;
  readonly #prefix: string;
  readonly #keys: ChainKeyBuilder;

  constructor(backend: DurableBackend, options: ChainStateOptions = {}) {
    // a store error inside a transition (wrong type, not an integer) rolls the whole of it back
    super(backend, { ...options, transaction: (run) => backend.store.transaction(run) });
    this.#store = backend.store;
    this.#prefix = backend.keyPrefix;
    this.#keys = options.keys ?? new ChainKeyBuilder();
  }

  /**
   * Ends the lease of every outbox entry of `taskId` now, so the next take hands them out
   * again. For a resume only: one process per data directory, so entries leased by an earlier
   * process were leased by a process that is gone. Returns how many there were.
   */
  async expireOutboxLeases(taskId: string): Promise<number> {
    const key = this.#prefix + this.#keys.outboxLeases(taskId);
    return this.#store.transaction(() => {
      const s = this.#store;
      const leased = s.zrangeByScore(key, -Infinity, Infinity);
      const now = s.now();
      for (const entry of leased) if ((s.zscore(key, entry) ?? 0) > now) s.zadd(key, now, entry);
      return leased.length;
    });
  }
}
