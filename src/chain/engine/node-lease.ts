/**
 * The lease heartbeat of a running node: from its claim until it settles, the node's owner
 * renews the lease (`ptm_renew_lease`, fenced by owner and version) every third of `leaseMs`,
 * so a node slower than its lease runs and commits once while its process lives. The same tick
 * keeps the node's queue delivery its own (`Delivery.touch`), so no other consumer takes it over
 * as abandoned. A renewal refused by fencing (the claim was recovered or taken over) aborts the
 * node's signal: its work stops and commits nothing. The node's one AbortSignal also follows
 * the engine's (stop).
 */
import { setMaxListeners } from 'node:events';
import { onAbort } from '../../internal/abort.js';
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
  /** The engine's work signal: its abort aborts the node's. */
  parent: AbortSignal;
  /** Keeps the node's queue delivery from being taken over (optional). */
  keepAlive?: (() => Promise<void>) | undefined;
  /** Where a refused renewal (warn: the node is abandoned) and a failed one (warn) are logged. */
  log(level: 'warn', message: string, fields: LogFields): void;
  /** The node's log fields. */
  fields: LogFields;
}

/** The signal and heartbeat of one running node. @internal */
export class NodeLease {
  readonly #o: NodeLeaseOptions;
  readonly #controller = new AbortController();
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #dispose: () => void;
  #renewing = false;
  #lost = false;

  constructor(options: NodeLeaseOptions) {
    this.#o = options;
    // every node in flight listens to the engine's signal until it settles (lifted once)
    if (!LIFTED.has(options.parent)) {
      setMaxListeners(0, options.parent);
      LIFTED.add(options.parent);
    }
    this.#dispose = onAbort(options.parent, () => this.#controller.abort(options.parent.reason));
    this.#timer = setInterval(() => void this.#renew(), Math.max(1, options.leaseMs / 3));
    this.#timer.unref?.();
  }

  /** The node's signal: aborted when the engine stops or the lease is lost. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Whether a renewal was refused by fencing. */
  get lost(): boolean {
    return this.#lost;
  }

  /** The node settled: no more renewals. */
  stop(): void {
    clearInterval(this.#timer);
    this.#dispose();
  }

  async #renew(): Promise<void> {
    if (this.#renewing || this.#lost) return;
    this.#renewing = true;
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
