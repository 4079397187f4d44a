/**
 * The chain state machine: the transitions every state change of a node goes through, with the
 * result codes of DESIGN §3.3. Two implementations keep the same contract: `LocalChainState`
 * (TypeScript over the in-process store) and `RedisChainState` (one Lua script per transition).
 */
import type { CommitHandOff } from './commit-hand-off.js';
import type { PtmIdentity } from '../../keys/chain-key-builder.js';
import type { RunCancelCode, RunDispatchModule, RunSnapshot } from './run-types.js';

/** Result codes of `ptm_claim`. */
export const ClaimCode = {
  /** Claimed (or replayed by the same owner within its lease): run the node. */
  EXECUTE: 0,
  /** The node is done: acknowledge the message and do nothing. */
  DUPLICATE_DONE: 1,
  /** Obsolete: task/module terminated, an older retry epoch, or the node failed in this epoch. */
  STALE_STEP: 2,
  /** The node does not exist yet (its parent has not committed) or the message is from a newer epoch. */
  OUT_OF_ORDER: 3,
  /** Another owner holds a live lease. */
  LOCKED_BY_OTHER: 4,
} as const;

/** Result codes of `ptm_commit_success`. */
export const CommitCode = {
  /** Done: successors created and queued with the items, once. */
  COMMIT_OK: 0,
  /** The owner/version is not the node's current claim. */
  FENCING_REJECT: 1,
  /** The claim was recovered as a zombie (or the advance gate is already set). */
  CAS_CONFLICT: 2,
  /** A replay of a commit that already succeeded: nothing written again. */
  ALREADY_COMMITTED: 3,
} as const;

/** Result codes of `ptm_commit_error`. */
export const CommitErrorCode = {
  /** Failure recorded (and its ErrorTaskModel queued in the outbox, when one was given). */
  ERROR_EMIT_OK: 0,
  /** This failure was recorded before: emit nothing. */
  ERROR_ALREADY_EMITTED: 1,
  /** Not the node's current claim, or the node is not processing. */
  FENCING_REJECT: 2,
} as const;

/** Result codes of `ptm_renew_lease` ({@link ChainStateStore.renewLease}). */
export const RenewCode = {
  /** The lease was extended. */
  RENEWED: 0,
  /** The node is no longer this owner's claim (done, failed, recovered or claimed again): stop. */
  FENCED: 1,
} as const;

/** Result codes of `ptm_recover_zombie`. */
export const RecoverCode = {
  /** The expired lease was released: the node can be claimed again. */
  RECOVERED: 0,
  /** The lease is still live. */
  NOT_EXPIRED: 1,
  /** The node is not being processed. */
  NOT_PROCESSING: 2,
} as const;

/** Result codes of `etm_threshold_decide`. */
export const ThresholdCode = {
  /** Below both thresholds: retry. */
  CONTINUE: 0,
  /** Below both thresholds, with a cool-down hint: retry later. */
  RETRY_AFTER: 1,
  /** The module reached its threshold (or was terminated): stop that module only. */
  TERMINATE_MODULE: 2,
  /**
   * The task reached its threshold (or was terminated): stop the task. When the module reached
   * its threshold with the same failure, its mark is written too (see `ThresholdResult.marked`).
   */
  TERMINATE_TASK: 3,
} as const;

/** What a terminate mark stops: one module of a task, or the whole task. */
export type TerminateScope = 'module' | 'task';

/** Result codes of `etm_retry_schedule`. */
export const RetryScheduleCode = {
  /** Scheduled (or already scheduled for this attempt). */
  RETRY_SCHEDULED: 0,
  /** Not retryable, terminated, node missing or done, or a live claim holds it. */
  RETRY_NOT_ALLOWED: 1,
  /** The attempt is past maxRetries. */
  MAX_RETRY_EXCEEDED: 2,
} as const;

/** Result codes of `etm_terminate_mark`. */
export const TerminateCode = {
  /** First terminate mark. */
  TERMINATED: 0,
  /** Was terminated before (idempotent). */
  ALREADY_TERMINATED: 1,
} as const;

/** Result codes of `ptm_fallback_gate`. */
export const FallbackCode = {
  /** The first fallback of this node: rebuild from the prefix request. */
  ALLOWED: 0,
  /** A fallback already happened: refuse (no loop). */
  REFUSED: 1,
} as const;

/** Result codes of `chain_terminated` (the read-only ThresholdPreCheck). */
export const TerminatedCode = {
  /** Neither the task nor the module is terminated. */
  ACTIVE: 0,
  /** The task is terminated. */
  TASK_TERMINATED: 1,
  /** The module is terminated (the task goes on). */
  MODULE_TERMINATED: 2,
} as const;

/** Result of {@link ChainStateStore.terminated}. */
export interface TerminatedResult {
  /** One of {@link TerminatedCode}. */
  code: (typeof TerminatedCode)[keyof typeof TerminatedCode];
  /** The reason recorded with the terminate mark ('' when active). */
  reason: string;
}

/**
 * The version of the state layout and of the scripts' contract; recorded in every node record.
 * A run must be finished by processes of the version that started it (see docs/chain-protocol.md,
 * "Schema versioning").
 */
export const CHAIN_SCHEMA_VERSION = 3;

/** A node of a task: its task and its identity. */
export interface NodeAddress extends PtmIdentity {
  /** The task the node belongs to (the hash tag of its keys). */
  taskId: string;
}

/** A successor created by a success commit. */
export interface Successor {
  /** The successor node. */
  node: NodeAddress;
  /** The message to publish for it (opaque to the state machine). */
  message: string;
  /**
   * A de-duplication key, unique within the successor's run and module: when a node was already
   * created with this key (by any commit, from any branch or worker), this successor is neither
   * created nor queued, and the commit reports it in {@link CommitSuccessResult.duplicates}.
   */
  key?: string;
}

/** Result of {@link ChainStateStore.commitSuccessDetailed}. */
export interface CommitSuccessResult {
  /** One of {@link CommitCode}. */
  code: (typeof CommitCode)[keyof typeof CommitCode];
  /** Successors created by this commit (COMMIT_OK). */
  created: number;
  /**
   * Indexes (into `successors`) of the keyed successors not created because their key was
   * taken before, or earlier in the same list (COMMIT_OK; empty otherwise).
   */
  duplicates: number[];
  /**
   * True when a hand-off added the successors and items to the streams (nothing of this commit
   * waits in the outbox); false when they went to the outbox.
   */
  handedOff?: boolean;
  /** The claim of {@link CommitSuccessInput.claim}, when the commit made it. @internal */
  claimed?: ClaimResult;
}

/** Input of {@link ChainStateStore.claim}. */
export interface ClaimInput {
  /** The node. */
  node: NodeAddress;
  /** Who claims (unique per worker). */
  owner: string;
  /** Lease length in ms. */
  leaseMs: number;
  /** The retry epoch the message carries (0 for a first delivery). */
  epoch: number;
  /** True for a module's first node, which no parent creates. */
  root: boolean;
}

/** Result of {@link ChainStateStore.claim}. */
export interface ClaimResult {
  /** One of {@link ClaimCode}. */
  code: (typeof ClaimCode)[keyof typeof ClaimCode];
  /** The fencing version to commit with (EXECUTE), or the node's current version. */
  version: number;
  /** When the lease ends, in store time ms (EXECUTE and LOCKED_BY_OTHER). */
  leaseUntil: number;
  /**
   * Why, for STALE_STEP: 'cancelled', 'terminated', 'old_epoch' or 'failed'; for EXECUTE,
   * 'expired' when the claim took over a lease that had run out (its holder died or stalled:
   * the new version fences it), else ''.
   */
  reason: string;
}

/** Input of {@link ChainStateStore.commitSuccess}. */
export interface CommitSuccessInput {
  /** The node. */
  node: NodeAddress;
  /** The claiming owner. */
  owner: string;
  /** The fencing version from the claim. */
  version: number;
  /** Successor nodes to create and publish (at most once). */
  successors: Successor[];
  /** Output items to publish (at most once), opaque strings. */
  items: string[];
  /**
   * Redis only: the commit hands its successors and items to the streams itself and
   * acknowledges the node's delivery (see {@link CommitHandOff}). @internal
   */
  handOff?: CommitHandOff;
  /**
   * The store's clock as the caller knows it, in ms (its claim's time plus the time it has
   * spent since): the run's `updated`/`finished` take it, so the Redis script reads no `TIME`
   * of its own. Only those bookkeeping times use it; leases and fencing keep the store's clock.
   * @internal
   */
  at?: number;
  /**
   * The next node the caller runs: the commit claims it too, right after committing (on Redis in
   * the same script: one round trip for both). {@link CommitSuccessResult.claimed} says what came
   * of it; without it the node was not claimed (the commit was not COMMIT_OK, or the claim met an
   * error) and the caller claims it by itself. @internal
   */
  claim?: ClaimInput;
}

/** Input of {@link ChainStateStore.commitError}. */
export interface CommitErrorInput {
  /** The node. */
  node: NodeAddress;
  /** The claiming owner. */
  owner: string;
  /** The fencing version from the claim. */
  version: number;
  /** Stable hash of the failure. */
  errorHash: string;
  /**
   * An opaque entry (the ErrorTaskModel to publish) queued in the task's outbox when, and only
   * when, the failure is recorded (`ERROR_EMIT_OK`).
   */
  message?: string;
}

/** Input of {@link ChainStateStore.thresholdDecide}. */
export interface ThresholdInput {
  /** The task. */
  taskId: string;
  /** The run: failures are counted, and marks written, per run; a terminate mark settles its
   * modules in the run's record. */
  runId: string;
  /** The module that failed. */
  moduleId: string;
  /** Failures of the module at which it is terminated (>=). */
  moduleThreshold: number;
  /** Failures of the task at which it is terminated (>=). */
  taskThreshold: number;
  /** Cool-down hint of the failure in ms (> 0 gives RETRY_AFTER). */
  retryAfterMs: number;
  /**
   * Identifies the failure (e.g. node key + attempt). When given, a failure decided twice — a
   * duplicate delivery of its ErrorTaskModel — is counted once and gets the same decision.
   */
  failureId?: string;
}

/** Result of {@link ChainStateStore.thresholdDecide}. */
export interface ThresholdResult {
  /** One of {@link ThresholdCode}. */
  code: (typeof ThresholdCode)[keyof typeof ThresholdCode];
  /** The module's failure count after this one. */
  moduleErrors: number;
  /** The task's failure count after this one. */
  taskErrors: number;
  /**
   * The terminate marks this decision wrote, module first: `['module']` with TERMINATE_MODULE,
   * `['task']` or `['module', 'task']` (both thresholds reached by this failure) with
   * TERMINATE_TASK, and `[]` when nothing was terminated by this call (below the thresholds, an
   * earlier mark, or a failure decided before).
   */
  marked: TerminateScope[];
}

/** Input of {@link ChainStateStore.retrySchedule}. */
export interface RetryScheduleInput {
  /** The node to run again. */
  node: NodeAddress;
  /** The retry number (1 for the first retry); becomes the node's epoch. */
  attempt: number;
  /** Most retries allowed. */
  maxRetries: number;
  /** Wait before the retry is due, in ms. */
  delayMs: number;
  /** The message to publish when due (it must carry `attempt` as its epoch). */
  message: string;
  /** Whether the failure may be retried at all. */
  allowed: boolean;
}

/** Input of {@link ChainStateStore.renewLease}. */
export interface RenewLeaseInput {
  /** The node. */
  node: NodeAddress;
  /** The owner its claim named. */
  owner: string;
  /** The fencing version its claim got. */
  version: number;
  /** The new lease runs this long from now, in ms. */
  leaseMs: number;
}

/** Result of {@link ChainStateStore.renewLease}. */
export interface RenewLeaseResult {
  /** One of {@link RenewCode}. */
  code: (typeof RenewCode)[keyof typeof RenewCode];
  /** When the lease now ends, in store time ms (RENEWED), else 0. */
  leaseUntil: number;
}

export * from './run-types.js';

/** The transitions of the chain state machine. Each one is atomic. */
export interface ChainStateStore {
  /** Claims a node for execution, with a lease and a fencing version. */
  claim(input: ClaimInput): Promise<ClaimResult>;
  /**
   * Extends the lease of a node its owner is running (fenced by owner and version): the
   * heartbeat of a running node. FENCED when the claim is no longer its owner's.
   */
  renewLease(input: RenewLeaseInput): Promise<RenewLeaseResult>;
  /** Marks a node done, creates its successors and queues them and its items in the outbox, at most once. */
  commitSuccess(input: CommitSuccessInput): Promise<(typeof CommitCode)[keyof typeof CommitCode]>;
  /**
   * {@link ChainStateStore.commitSuccess} with what it did: the successors it created and the
   * keyed successors it skipped as duplicates.
   */
  commitSuccessDetailed(input: CommitSuccessInput): Promise<CommitSuccessResult>;
  /** Marks a node failed and records the failure at most once, queueing `message` (the ErrorTaskModel) in the outbox with it. */
  commitError(
    input: CommitErrorInput,
  ): Promise<(typeof CommitErrorCode)[keyof typeof CommitErrorCode]>;
  /**
   * The zombie sweep of a task: every node (at most `max`) whose lease ran out while it was
   * processing goes back to `pending`; returns how many were recovered.
   * @deprecated The engine no longer calls it, and a store need not implement it: a claim takes
   * over an expired lease by itself (see {@link ClaimResult.reason}), and the queues deliver a
   * dead worker's message again. The built-in stores keep no lease index since key layout 3 and
   * return 0.
   */
  recoverExpired?(taskId: string, max: number): Promise<number>;
  /**
   * Returns a node whose lease expired to `pending` (the old owner's late commit then meets
   * CAS_CONFLICT). The engine does not need it: a claim takes over an expired lease by itself.
   */
  recoverZombie(node: NodeAddress): Promise<(typeof RecoverCode)[keyof typeof RecoverCode]>;
  /**
   * Counts a failure at module and task level, decides, and writes the terminate marks the
   * decision reaches (module first, then task), in one step.
   */
  thresholdDecide(input: ThresholdInput): Promise<ThresholdResult>;
  /** Schedules a retry of a failed node into the task's delayed set. */
  retrySchedule(
    input: RetryScheduleInput,
  ): Promise<(typeof RetryScheduleCode)[keyof typeof RetryScheduleCode]>;
  /**
   * Moves up to `max` due retry messages into the task's outbox (each exactly once, whoever
   * polls) and returns them; they are then published from the outbox.
   */
  promoteDueRetries(taskId: string, max: number): Promise<string[]>;
  /** Records that a task is active, so that sweeps visit it. */
  touchTask(taskId: string): Promise<void>;
  /** Tasks active within `windowMs` (most recent first, at most `max`); drops older ones from the index. */
  activeTasks(windowMs: number, max: number): Promise<string[]>;
  /** Takes or renews a named lock for `ttlMs`; true when `owner` holds it. */
  tryLock(name: string, owner: string, ttlMs: number): Promise<boolean>;
  /**
   * Marks a run of a task (no moduleId) or a module in it terminated, idempotently. Marks are
   * per run: a new run of the task starts unterminated.
   */
  terminateMark(
    taskId: string,
    runId: string,
    moduleId: string | undefined,
    reason: string,
  ): Promise<(typeof TerminateCode)[keyof typeof TerminateCode]>;
  /** Reads the terminate marks of a run and one of its modules (run first); writes nothing. */
  terminated(taskId: string, runId: string, moduleId: string): Promise<TerminatedResult>;
  /** Allows the fallback of a node once; later calls are refused. */
  tryAllowFallbackOnce(
    node: NodeAddress,
  ): Promise<(typeof FallbackCode)[keyof typeof FallbackCode]>;
  /**
   * Leases up to `max` outbox entries for `leaseMs`: first entries whose lease ran out, then new
   * ones in commit order. Acknowledge each with {@link ChainStateStore.ackOutbox} once
   * published; an entry not acknowledged in time is handed out again (at-least-once). Entries
   * are identified by their text: keep them unique (the engine's carry node keys, item ids and
   * retry attempts), as two identical entries share one lease.
   */
  takeOutbox(taskId: string, max: number, leaseMs: number): Promise<string[]>;
  /**
   * Forgets published outbox entries; returns how many were still leased. `runs[i]` names the
   * run of `entries[i]` when that entry is an item its run waits for (counted once, when its
   * lease is removed); leave it undefined otherwise.
   */
  ackOutbox(
    taskId: string,
    entries: string[],
    runs?: readonly (string | undefined)[],
  ): Promise<number>;
  /**
   * Records a run submitted with its modules (running, waiting for its task message to be
   * dispatched); does nothing when the run has a record. True when it was created.
   */
  runStart(taskId: string, runId: string, modules: readonly string[]): Promise<boolean>;
  /**
   * The task message of a run was dispatched: its running modules' first nodes are queued, the
   * others settled. Counted once: a duplicate delivery changes nothing. Creates the record when
   * the run was not started with {@link ChainStateStore.runStart}.
   */
  runDispatch(taskId: string, runId: string, modules: readonly RunDispatchModule[]): Promise<void>;
  /** Cancels a running run (no node of it is claimed any more); idempotent. */
  runCancel(
    taskId: string,
    runId: string,
  ): Promise<(typeof RunCancelCode)[keyof typeof RunCancelCode]>;
  /** Reads a run's record; null when there is none. Writes nothing. */
  runRead(taskId: string, runId: string): Promise<RunSnapshot | null>;
  /**
   * A failed node whose failure was decided not to be retried (given up, or stopped by a
   * threshold) is counted failed for good, once. `attempt` is its ErrorTaskModel's attempt.
   */
  giveUp(node: NodeAddress, attempt: number): Promise<boolean>;
  /**
   * One step of the clean-up of a finished run: shortens the TTL of up to `max` keys the run
   * wrote to the finished-run TTL, then, when none is left, its task's keys too if the task has
   * no other unfinished run. Returns how many keys it visited (0: the clean-up is complete).
   */
  runCleanup(taskId: string, runId: string, max: number): Promise<number>;
  /**
   * Adds keys a node of the run wrote outside the transitions (its persisted requests) to the
   * run's key index, so its clean-up finds them; nothing when the run has no record.
   */
  indexRunKeys(taskId: string, runId: string, keys: readonly string[]): Promise<void>;
}
