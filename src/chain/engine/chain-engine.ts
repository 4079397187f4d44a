/**
 * The chain engine's public interface, {@link ChainEngine}; engine.ts implements it.
 */
import type { TaskModel } from '../messages.js';
import type {
  ChainDeadLetter,
  ChainEngineStats,
  ChainEventMap,
  ChainEventName,
  RunStatus,
  SubmittedRun,
} from './types.js';

/** The running engine. Create it with `createChainEngine`. */
export interface ChainEngine {
  /** `'distributed'` on a Redis store, else `'single_node'`. */
  readonly runtimeMode: 'single_node' | 'distributed';
  /**
   * Starts the consumers. Idempotent.
   * @throws {@link ClosedError} after `stop()` (an engine is not restarted: create a new one).
   */
  start(): Promise<void>;
  /**
   * Submits a task: each of its modules runs from its first step. Without a `runId` each call
   * starts a new run with a fresh id; with one, submitting the same run again is idempotent
   * (nodes already done are not run again). Resolves with the task id and the run id, whose
   * status can be read (`runStatus`) from then on.
   * @throws {@link MessageInvalidError} when the task is malformed (naming the field).
   * @throws {@link ClosedError} after `stop()`.
   */
  submit(task: TaskModel): Promise<SubmittedRun>;
  /**
   * A run's status: its state and node, item and error counters, overall and per module, as
   * every process sharing the store sees them (one read of the record the transitions keep).
   * @throws {@link RunNotFoundError} (`RUN_NOT_FOUND`) when no run has that id in the store.
   */
  runStatus(runId: string): Promise<RunStatus>;
  /**
   * Resolves with the run's final status once it is done, terminated or cancelled, whichever
   * process ran it (it looks again with a growing pause, up to 0.5 s).
   * @throws {@link TaskCancelledError} (`TASK_CANCELLED`) when `signal` aborts.
   * @throws {@link TaskTimeoutError} (`TASK_TIMEOUT`) when the run is still running after `timeoutMs`.
   * @throws {@link RunNotFoundError} (`RUN_NOT_FOUND`) when no run has that id in the store.
   * @throws {@link ConfigError} (`CONFIG_INVALID`) for a `runId` that is not a string, an
   * unknown option, a `signal` that is not an AbortSignal or a `timeoutMs` that is not a number
   * >= 0 (or Infinity).
   */
  waitForRun(
    runId: string,
    options?: { signal?: AbortSignal; timeoutMs?: number },
  ): Promise<RunStatus>;
  /**
   * Cancels a run: no node of it is claimed any more, by any process sharing the store; its
   * nodes in flight in this process see their signal aborted (those in other processes end
   * their step). Idempotent; a finished run is left as it is.
   * @throws {@link RunNotFoundError} (`RUN_NOT_FOUND`) when no run has that id in the store.
   */
  cancelRun(runId: string): Promise<void>;
  /**
   * Puts a raw message (any of the three kinds, as an object or JSON text) through the ingress.
   * A malformed message is dead-lettered with its reason, never thrown. A task message without
   * a `runId` gets a fresh one (as with `submit`); its `loginInfo` is kept in this process and
   * never put on the queue.
   */
  publish(message: unknown): Promise<void>;
  /**
   * Resolves when nothing is queued, running, waiting to be relayed or waiting for a retry in
   * this process, and the queues that count their messages anywhere (Redis Streams) hold none:
   * no message waits to be read and none is being handled by any worker. With several workers
   * it says nothing about what another worker holds outside the queues (an outbox it has not
   * relayed yet, a retry not yet due): wait for your own end condition there (e.g. every
   * expected item produced).
   */
  onIdle(): Promise<void>;
  /**
   * Stops gracefully: stops reading, lets in-flight messages finish (up to `stopTimeoutMs`;
   * the rest are aborted and released back to their queue), waits until what they committed is
   * published (outbox relay) and any due retry in hand is queued, then closes what the engine
   * created. Queues and a store passed in are left open: close them after this resolves.
   *
   * With shared queues (passed in, on a Redis store) a message aborted here is left
   * unacknowledged rather than released (its node's lease is still held; the queue hands it to
   * another worker after its claim time, which must exceed `leaseMs`). Node retries not yet due
   * stay in Redis: any worker's sweep promotes them when they fall due.
   *
   * Bounded: up to `stopTimeoutMs` for in-flight messages to finish, then up to `stopTimeoutMs`
   * for aborted ones to settle and the outbox to be published — about twice `stopTimeoutMs` at
   * most, even when user code ignores its abort signal. Such code is left running; its delivery
   * stays unacknowledged and nothing it returns later is committed. While stopping, a ref'd
   * timer keeps the process alive.
   */
  stop(): Promise<void>;
  /**
   * `stop()`, then waits for the clean-up of the runs it finished and closes what the engine
   * created: its queues and its store (and their Redis clients). Queues, a store or clients
   * passed in are left open. Idempotent.
   */
  close(): Promise<void>;
  /** Subscribes to an event; returns the unsubscribe function. */
  on<K extends ChainEventName>(event: K, listener: (event: ChainEventMap[K]) => void): () => void;
  /** Counters since creation. */
  stats(): ChainEngineStats;
  /**
   * Messages set aside by this process, with their reasons (most recent 1000). Queues that keep
   * dead letters durably (Redis Streams) also get them: read those with the queue's own API.
   */
  deadLetters(): readonly ChainDeadLetter[];
}
