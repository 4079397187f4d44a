/**
 * The run types of the chain state machine: a run's record as `ChainStateStore.runRead` returns
 * it, the modules a task message dispatches, and the codes of a run's cancellation.
 */
/** The state of a run: running until it finishes done, terminated or cancelled. */
export type RunRecordState = 'running' | 'done' | 'terminated' | 'cancelled';

/**
 * The state of one module of a run: running until it has nothing queued or running (done), or
 * its module or task was terminated (terminated), or it was not registered where the task was
 * dispatched (skipped).
 */
export type RunModuleState = 'running' | 'done' | 'terminated' | 'skipped';

/** The node counters of a run or of one of its modules. */
export interface RunNodeCounts {
  /** Created and not claimed yet (including retries scheduled and not yet due). */
  queued: number;
  /** Claimed and not finished, or failed with the failure not decided yet (retry or give up). */
  running: number;
  /** Committed. */
  done: number;
  /** Failed for good (given up, or stopped by a threshold). */
  failed: number;
}

/** One module of a run as {@link ChainStateStore.runRead} returns it. */
export interface RunModuleSnapshot {
  /** The module's state. */
  state: RunModuleState;
  /** Its nodes. */
  nodes: RunNodeCounts;
  /** Items its nodes committed. */
  items: number;
  /** Failures its nodes recorded (each failed attempt once). */
  errors: number;
}

/** A run's record, as {@link ChainStateStore.runRead} returns it. */
export interface RunSnapshot {
  /** The run. */
  runId: string;
  /** Its task. */
  taskId: string;
  /** Its state. */
  state: RunRecordState;
  /** Its modules. */
  modules: Record<string, RunModuleSnapshot>;
  /** Items committed and not yet handed over by the outbox relay. */
  itemsPending: number;
  /** When it started (ms since the epoch, store time). */
  startedAt: number;
  /** When it last changed (ms since the epoch, store time). */
  updatedAt: number;
  /** When it finished (ms since the epoch, store time); absent while running. */
  finishedAt?: number;
}

/** A module of a task message, as the ingress dispatched it. */
export interface RunDispatchModule {
  /** The module. */
  moduleId: string;
  /** 'running': its first node is queued; else why it does not run. */
  state: 'running' | 'terminated' | 'skipped';
}

/** Result codes of `chain_run_cancel`. */
export const RunCancelCode = {
  /** The run was running and is now cancelled. */
  CANCELLED: 0,
  /** The run had finished (or was cancelled before): nothing changed. */
  ALREADY_FINISHED: 1,
  /** No record of the run (never started, or expired). */
  NOT_FOUND: 2,
} as const;
