/**
 * The run slots of the parser stage, and the claim that rides on a commit. At most `size` nodes
 * run at once (claimed and not yet settled); a node read while every slot is taken waits here
 * for one. A running node that commits hands its slot to the first waiting node its commit can
 * claim (on a Cluster only a node of the same task: its keys are in the commit's slot), and the
 * commit claims that node in the same script: one round trip per node instead of two. A slot
 * given back (a node that failed, was not claimed, or committed with nobody waiting) goes to the
 * first waiting node, which claims by itself.
 *
 * The consumer keeps more deliveries in hand than there are slots, so a committing node usually
 * finds one waiting: as many as wait about {@link WAIT_TARGET_MS} for a slot at the pace nodes
 * hold one (many for short nodes, one for nodes of seconds: a worker does not sit on messages
 * other workers could run).
 */
import { isMocraError } from '../../errors.js';
import type { ClaimInput, ClaimResult } from '../state/index.js';

/** How long a node should wait for a slot, at most, as the number of waiting nodes is set. @internal */
export const WAIT_TARGET_MS = 100;

/** How fast the mean time a node holds its slot follows the latest (exponential moving average). */
const HOLD_WEIGHT = 0.05;

/** A running node's hold on its slot. @internal */
export interface RunSlot {
  /**
   * Hands the slot to the first waiting node whose claim the commit of a node of `taskId` can
   * make, or answers `undefined` when none waits (the slot stays this node's). After a hand-over
   * {@link RunSlot.release} does nothing.
   */
  handOver(taskId: string): SlotHandOver | undefined;
  /** Gives the slot back (once; nothing after a hand-over). */
  release(): void;
}

/** A slot handed over with the commit that claims its new node. @internal */
export interface SlotHandOver {
  /** The claim the commit makes. */
  readonly input: ClaimInput;
  /** The commit answered: the claim it made, or `undefined` when it made none (claim it yourself). */
  settle(claimed: ClaimResult | undefined): void;
  /**
   * The commit failed. When its outcome is unknown (a retryable error: the script may have run),
   * the node gets the error (it may hold the lease: the ingress keeps its message until the
   * lease ends); otherwise the script claimed nothing and the node claims by itself.
   */
  fail(error: unknown): void;
}

/** What a node waiting for a slot gets: its slot, and the claim a commit made for it (if one did). @internal */
export interface AcquiredSlot {
  readonly slot: RunSlot;
  readonly claimed?: ClaimResult | undefined;
}

interface Waiter {
  readonly input: ClaimInput;
  resolve(acquired: AcquiredSlot): void;
  reject(error: unknown): void;
}

/** The slots of one engine's parser stage. @internal */
export class ClaimSlots {
  readonly #size: number;
  #free: number;
  readonly #waiting: Waiter[] = [];
  readonly #sameTask: boolean;
  readonly #signal: AbortSignal;
  /** The mean time a node holds its slot, ms (0 until one was given back). */
  #holdMs = 0;

  /**
   * @param size - the nodes that may run at once
   * @param sameTask - a commit claims only a node of its own task (a Cluster)
   * @param signal - aborted when the engine abandons its work: waiting nodes get its reason
   */
  constructor(size: number, sameTask: boolean, signal: AbortSignal) {
    this.#size = size;
    this.#free = size;
    this.#sameTask = sameTask;
    this.#signal = signal;
    signal.addEventListener(
      'abort',
      () => {
        const reason: unknown = signal.reason;
        for (const w of this.#waiting.splice(0)) w.reject(reason);
      },
      { once: true },
    );
  }

  /** Nodes waiting for a slot. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * How many deliveries beyond the slots the consumer should keep in hand: as many as wait about
   * {@link WAIT_TARGET_MS} at the pace nodes have been holding their slots, at least one and at
   * most `max` (one until a node has given its slot back: nodes may be slow).
   */
  extra(max: number): number {
    if (this.#holdMs <= 0) return 1;
    const n = Math.floor((this.#size * WAIT_TARGET_MS) / this.#holdMs);
    return Math.max(1, Math.min(max, n));
  }

  /** A slot for the node `input` claims: at once when one is free, else when one is handed over or given back. */
  acquire(input: ClaimInput): Promise<AcquiredSlot> {
    if (this.#signal.aborted) return Promise.reject(this.#signal.reason);
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve({ slot: this.#slot() });
    }
    return new Promise<AcquiredSlot>((resolve, reject) => {
      this.#waiting.push({ input, resolve, reject });
    });
  }

  #slot(): RunSlot {
    let held = true;
    const since = performance.now();
    return {
      handOver: (taskId) => {
        if (!held) return undefined;
        const waiter = this.#take(taskId);
        if (waiter === undefined) return undefined;
        held = false;
        this.#held(since);
        return this.#handOver(waiter);
      },
      release: () => {
        if (!held) return;
        held = false;
        this.#held(since);
        const waiter = this.#waiting.shift();
        if (waiter === undefined) this.#free++;
        else waiter.resolve({ slot: this.#slot() });
      },
    };
  }

  #held(since: number): void {
    const ms = performance.now() - since;
    this.#holdMs = this.#holdMs === 0 ? ms : this.#holdMs + HOLD_WEIGHT * (ms - this.#holdMs);
  }

  /** The first waiting node a commit of `taskId` can claim. */
  #take(taskId: string): Waiter | undefined {
    const waiting = this.#waiting;
    if (waiting.length === 0) return undefined;
    if (!this.#sameTask) return waiting.shift();
    const i = waiting.findIndex((w) => w.input.node.taskId === taskId);
    return i === -1 ? undefined : waiting.splice(i, 1)[0];
  }

  #handOver(waiter: Waiter): SlotHandOver {
    let done = false;
    return {
      input: waiter.input,
      settle: (claimed) => {
        if (done) return;
        done = true;
        waiter.resolve({ slot: this.#slot(), claimed });
      },
      fail: (error) => {
        if (done) return;
        done = true;
        if (isMocraError(error) && !error.retryable) {
          waiter.resolve({ slot: this.#slot() });
          return;
        }
        // the node does not run: its slot goes on
        waiter.reject(error);
        this.#slot().release();
      },
    };
  }
}
