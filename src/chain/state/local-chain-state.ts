/**
 * The chain state machine in TypeScript over a synchronous store: each method runs the local
 * twin of its transition (`transitions/`) from its first read to its last write without
 * awaiting, so it is atomic within the process — the same guarantee a Lua script gives on
 * Redis. Codes match `RedisChainState` exactly.
 */
import { ChainKeyBuilder } from '../../keys/chain-key-builder.js';
import { ChainStateDispatcher } from './dispatcher.js';
import type { SyncStore } from './sync-store.js';
import {
  prefixKeys,
  type Transition,
  type TransitionContext,
  type TransitionKeys,
} from './transition.js';

/** Options shared by both chain state implementations. */
export interface ChainStateOptions {
  /** Key layout. @defaultValue new ChainKeyBuilder() */
  keys?: ChainKeyBuilder;
  /** TTL of every state key, in ms. @defaultValue 7 days */
  stateTtlMs?: number;
  /**
   * TTL of a run's state once the run has finished, in ms (at most `stateTtlMs`).
   * @defaultValue 1 day
   */
  finishedRunTtlMs?: number;
  /** Called when a transition of this store finished a run (to clean it up, wake waiters). */
  onRunFinished?: (taskId: string, runId: string) => void;
}

/** Options of {@link LocalChainState}. */
export interface LocalChainStateOptions extends ChainStateOptions {
  /**
   * Runs each transition — all its reads and writes — inside it, e.g. one write transaction of
   * a durable store, so that a transition is stored whole or not at all. `run` is synchronous.
   * @defaultValue runs the transition as is (the in-process store needs nothing more)
   */
  transaction?: <T>(run: () => T) => T;
}

/** What {@link LocalChainState} needs of its backend: a synchronous store and a key prefix. */
export interface SyncBackend {
  /** The store the twins read and write (a `LocalBackend`'s `store`). */
  readonly store: SyncStore;
  /** Prefix of every key, as the backend's own calls add it. */
  readonly keyPrefix: string;
}

const DAY = 86_400_000;

/**
 * {@link ChainStateStore} on a {@link LocalBackend} (single-node mode), or on any
 * {@link SyncBackend}.
 *
 * @example
 * ```ts
 * const state = new LocalChainState(new LocalBackend());
 * const claim = await state.claim({ node, owner: 'w1', leaseMs: 30_000, epoch: 0, root: true });
 * ```
 */
export class LocalChainState extends ChainStateDispatcher {
  readonly #keys: ChainKeyBuilder;
  readonly #store: SyncStore;
  readonly #prefix: string;
  readonly #ctx: TransitionContext;
  readonly #transaction: (<T>(run: () => T) => T) | undefined;

  constructor(backend: SyncBackend, options: LocalChainStateOptions = {}) {
    const keys = options.keys ?? new ChainKeyBuilder();
    super(keys);
    this.#keys = keys;
    this.#store = backend.store;
    this.#prefix = backend.keyPrefix;
    const ttlMs = options.stateTtlMs ?? 7 * DAY;
    const onFinished = options.onRunFinished;
    this.#ctx = {
      ttlMs,
      now: '',
      keys: this.#keys,
      finishedTtlMs: Math.min(ttlMs, options.finishedRunTtlMs ?? DAY),
      // after the twin's synchronous block: a listener never runs inside a transition
      finished: (taskId, runId) => {
        if (onFinished) queueMicrotask(() => onFinished(taskId, runId));
      },
    };
    // a durable store's transaction, else the in-process store's one time per transition
    const store = this.#store;
    this.#transaction =
      options.transaction ??
      (store.atomic === undefined ? undefined : <T>(run: () => T): T => store.atomic!(run));
  }

  /**
   * Runs a transition's local twin over the store, synchronously (atomic in the process); its
   * result (or what it threw) comes back as a settled promise, as from a script.
   */
  protected run<I, K extends TransitionKeys, R>(
    transition: Transition<I, K, R>,
    input: I,
  ): Promise<R> {
    try {
      const keys = prefixKeys(this.#prefix, transition.keys(this.#keys, input));
      const store = this.#store;
      const ctx = this.#ctx;
      const transaction = this.#transaction;
      return Promise.resolve(
        transaction === undefined
          ? transition.local(store, keys, input, ctx)
          : transaction(() => transition.local(store, keys, input, ctx)),
      );
    } catch (error) {
      return Promise.reject(error);
    }
  }
}
