/**
 * The lease heartbeat of a running node: from its claim until it settles, the node's owner
 * renews the lease (`ptm_renew_lease`, fenced by owner and version) every third of `leaseMs`,
 * so a node slower than its lease runs and commits once while its process lives. The same tick
 * keeps the node's queue delivery its own (`Delivery.touch`), so no other consumer takes it over
 * as abandoned. A renewal refused by fencing (the claim was recovered or taken over) aborts the
 * node's signal: its work stops and commits nothing. The node's one AbortSignal also follows
 * the engine's (stop).
 *
 * The nodes of one engine share one {@link LeaseHeartbeat} (one timer, whatever the nodes in
 * flight), and the nodes that follow one parent signal share one listener on it: a node costs
 * an AbortController and two set entries, no timer and no listener of its own.
 */
import { setMaxListeners } from 'node:events';
import type { LogFields } from '../../observe/logger.js';
import { RenewCode, type ChainStateStore, type NodeAddress } from '../state/index.js';

/** Signals whose listener warning is lifted already. */
const LIFTED = new WeakSet<AbortSignal>();

/** Options of {@link NodeLease}. @internal */
export interface NodeLeaseOptions {
  state: ChainStateStore;
  node: NodeAddress;
  owner: string;
  version: number;
  leaseMs: number;
  /** When the claim's lease ends (ms, the store's clock): {@link NodeLease.storeNow} counts from it. */
  leaseUntil?: number | undefined;
  /** The engine's work signal: its abort aborts the node's. */
  parent: AbortSignal;
  /** Keeps the node's queue delivery from being taken over (optional). */
  keepAlive?: (() => Promise<void>) | undefined;
  /** Where a refused renewal (warn: the node is abandoned) and a failed one (warn) are logged. */
  log(level: 'warn', message: string, fields: LogFields): void;
  /** The node's log fields. */
  fields: LogFields;
  /** The heartbeat the lease joins. @defaultValue one of its own */
  heartbeat?: LeaseHeartbeat | undefined;
}

/**
 * One timer for the leases of an engine: every sixth of the lease it renews each lease whose
 * last renewal (or claim) is a third of the lease old, so a lease is renewed between a third
 * and half of `leaseMs` after the last. The timer runs while leases are held (unref'd).
 * @internal
 */
export class LeaseHeartbeat {
  readonly #leaseMs: number;
  readonly #leases = new Set<NodeLease>();
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(leaseMs: number) {
    this.#leaseMs = leaseMs;
  }

  /** The lease renews from now on. */
  add(lease: NodeLease): void {
    this.#leases.add(lease);
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#tick(), Math.max(1, this.#leaseMs / 6));
      this.#timer.unref?.();
    }
  }

  /** The lease renews no more. */
  delete(lease: NodeLease): void {
    this.#leases.delete(lease);
  }

  #tick(): void {
    if (this.#leases.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      return;
    }
    const due = performance.now() - this.#leaseMs / 3;
    for (const lease of this.#leases) lease.beat(due);
  }
}

/** The leases that follow one parent signal, and the one listener that aborts them all. */
class Followers {
  readonly leases = new Set<NodeLease>();
  readonly #parent: AbortSignal;
  readonly #onAbort = (): void => {
    const reason: unknown = this.#parent.reason;
    for (const lease of [...this.leases]) lease.abort(reason);
  };

  constructor(parent: AbortSignal) {
    this.#parent = parent;
    parent.addEventListener('abort', this.#onAbort, { once: true });
  }

  dispose(): void {
    this.#parent.removeEventListener('abort', this.#onAbort);
  }
}

/** The followers of each parent signal with a lease in flight. */
const FOLLOWING = new WeakMap<AbortSignal, Followers>();

/** The signal and heartbeat of one running node. @internal */
export class NodeLease {
  readonly #o: NodeLeaseOptions;
  readonly #controller = new AbortController();
  readonly #heartbeat: LeaseHeartbeat;
  /** When the lease was last claimed or renewed (performance.now()). */
  #renewedAt = performance.now();
  /** When the claim answered (performance.now()). */
  readonly #claimedAt = this.#renewedAt;
  #renewing = false;
  #lost = false;
  #stopped = false;

  constructor(options: NodeLeaseOptions) {
    this.#o = options;
    const parent = options.parent;
    // every node in flight may listen to the engine's signal until it settles (lifted once)
    if (!LIFTED.has(parent)) {
      setMaxListeners(0, parent);
      LIFTED.add(parent);
    }
    if (parent.aborted) this.#controller.abort(parent.reason);
    else {
      let followers = FOLLOWING.get(parent);
      if (followers === undefined) {
        followers = new Followers(parent);
        FOLLOWING.set(parent, followers);
      }
      followers.leases.add(this);
    }
    this.#heartbeat = options.heartbeat ?? new LeaseHeartbeat(options.leaseMs);
    this.#heartbeat.add(this);
  }

  /** The node's signal: aborted when the engine stops or the lease is lost. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /**
   * The store's clock now, as this worker knows it: the claim's time (its lease end less
   * `leaseMs`) plus the time since, on this process's monotonic clock; undefined without
   * `leaseUntil`. For bookkeeping times only (a run's `updated`), never for a lease.
   */
  storeNow(): number | undefined {
    const { leaseUntil, leaseMs } = this.#o;
    if (leaseUntil === undefined) return undefined;
    return leaseUntil - leaseMs + (performance.now() - this.#claimedAt);
  }

  /** Whether a renewal was refused by fencing. */
  get lost(): boolean {
    return this.#lost;
  }

  /** The node settled: no more renewals. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#heartbeat.delete(this);
    const parent = this.#o.parent;
    const followers = FOLLOWING.get(parent);
    if (followers?.leases.delete(this) && followers.leases.size === 0) {
      followers.dispose();
      FOLLOWING.delete(parent);
    }
  }

  /** Aborts the node's signal (its parent aborted). @internal */
  abort(reason: unknown): void {
    this.#controller.abort(reason);
  }

  /** A tick of the heartbeat: renews when the last renewal is older than `due`. @internal */
  beat(due: number): void {
    if (this.#renewedAt <= due) void this.#renew();
  }

  async #renew(): Promise<void> {
    if (this.#renewing || this.#lost || this.#stopped) return;
    this.#renewing = true;
    this.#renewedAt = performance.now();
    const { state, node, owner, version, leaseMs } = this.#o;
    try {
      this.#o.keepAlive?.().catch(() => {}); // best effort: the lease is what fences
      const r = await state.renewLease({ node, owner, version, leaseMs });
      if (r.code === RenewCode.FENCED) {
        this.#lost = true;
        this.stop();
        this.#o.log('warn', 'lease lost while running: the node is abandoned', {
          ...this.#o.fields,
          decision: 'lease_lost',
        });
        this.#controller.abort(new Error('the node lease was lost (recovered or taken over)'));
      }
    } catch (error) {
      // e.g. Redis unavailable: the next tick tries again
      this.#o.log('warn', 'lease renewal failed; will retry', {
        ...this.#o.fields,
        error: String(error),
      });
    } finally {
      this.#renewing = false;
    }
  }
}
