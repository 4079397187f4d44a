/**
 * The interface between the engine and its module processors ({@link ProcessorHost}), and what
 * a processor answers for one node.
 * @internal
 */
import type { ChainKeyBuilder } from '../../keys/chain-key-builder.js';
import type { CacheService } from '../../store/index.js';
import type { ChainStateStore } from '../state/index.js';
import type { CommitHandOff } from '../state/commit-hand-off.js';
import type { DownloadPath } from './download.js';
import type { ClaimSlots } from './claim-slots.js';
import type { LeaseHeartbeat } from './node-lease.js';
import type { NodeTelemetry } from './telemetry.js';

/** How one node's processing ended. */
export type NodeOutcome =
  | 'committed'
  | 'replayed'
  | 'failed'
  | 'duplicate_done'
  | 'stale_step'
  | 'out_of_order'
  | 'locked_by_other'
  | 'commit_rejected'
  | 'error_already_emitted'
  | 'released';

/**
 * What one node's processing came to: an outcome, or an error that interrupted it (e.g. the
 * store unavailable), with whether this message may hold the node's lease at that point (a
 * claim whose reply was lost may have run). @internal
 */
export type NodeRun = { outcome: NodeOutcome } | { error: unknown; leaseHeld: boolean };

/** Everything the processor needs from its engine: the one interface between them. @internal */
export interface ProcessorHost {
  /** The chain state machine. */
  readonly state: ChainStateStore;
  /** The store persisted requests live in (for the fallback). */
  readonly store: CacheService;
  /** Key layout. */
  readonly keys: ChainKeyBuilder;
  /** The download path (limits, retries). */
  readonly downloads: DownloadPath;
  /** Lease of a claimed node, in ms. */
  readonly leaseMs: number;
  /** The one timer that renews the leases of the nodes in flight. @defaultValue one per node */
  readonly heartbeat?: LeaseHeartbeat;
  /** TTL of persisted requests, in ms. */
  readonly stateTtlMs: number;
  /** Whether the fallback gate is on. */
  readonly fallback: boolean;
  /** Aborted when the engine abandons in-flight work. */
  readonly signal: AbortSignal;
  /**
   * The signal of one node of a run (aborted with `signal`, or when the run is cancelled);
   * `release()` when the node ends. Without it, nodes use `signal`.
   */
  readonly runSignal?: (runId: string) => { signal: AbortSignal; release(): void };
  /** Where the processor reports. */
  readonly telemetry: NodeTelemetry;
  /** The values of a run's login info, redacted from failure messages. @defaultValue none */
  secrets?(runId: string): string[];
  /** A commit wrote to the task's outbox (successors, items, an ErrorTaskModel): publish it. */
  outboxWritten(taskId: string): void;
  /**
   * Where commits hand off by themselves (queues on Redis Streams beside the state: one
   * standalone Redis, or a Cluster with per-task streams): the successors go to the parser
   * stream, the items to the items stream.
   */
  readonly handOff?: Omit<CommitHandOff, 'delivery'>;
  /**
   * The run slots of the parser stage: a node takes one before its claim, and a commit hands
   * its slot, with the claim of the next node, to a node waiting for one (see claim-slots.ts).
   * Without them, nodes claim at once.
   */
  readonly slots?: ClaimSlots;
  /** A commit of `taskId` added `successors` to the parser stream and `items` to the items stream. */
  handedOff?(taskId: string, successors: number, items: number): void;
}
