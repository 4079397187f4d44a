/**
 * The runs room: a run's status (one read of the record its transitions keep), waiting for a
 * run to finish from any process, cancelling it, the per-run abort signals of the nodes in
 * flight here, and the clean-up of a run once a transition of this process finished it.
 */
import {
  RunNotFoundError,
  TaskCancelledError,
  TaskTimeoutError,
  isMocraError,
} from '../../errors.js';
import { invalid, optionalNumber, optionalSignal, readOptions } from '../../internal/validate.js';
import type { ChainKeyBuilder } from '../../keys/chain-key-builder.js';
import type { CacheService } from '../../store/types.js';
import { RunCancelCode, type ChainStateStore, type RunSnapshot } from '../state/index.js';
import type { EngineTelemetry } from './telemetry.js';
import type { RunStatus } from './types.js';

/** The name errors of `waitForRun`'s arguments start with. */
const WAIT = 'waitForRun';
/** Index entries visited per clean-up step. */
const CLEANUP_BATCH = 300;
/** First and longest pause between two looks of {@link RunRegistry.wait}, in ms. */
const WAIT_FIRST_MS = 10;
const WAIT_MAX_MS = 500;

/** Options of {@link RunRegistry}. @internal */
export interface RunRegistryOptions {
  state: ChainStateStore;
  store: CacheService;
  keys: ChainKeyBuilder;
  /** TTL of a run's state while it runs, in ms. */
  stateTtlMs: number;
  /** TTL of a run's state once finished, in ms. */
  finishedRunTtlMs: number;
  telemetry: EngineTelemetry;
}

/** The RunStatus of a record: totals summed over the modules. @internal */
export function toRunStatus(snap: RunSnapshot): RunStatus {
  const nodes = { queued: 0, running: 0, done: 0, failed: 0 };
  let items = 0;
  let errors = 0;
  const modules: RunStatus['modules'] = {};
  for (const [id, m] of Object.entries(snap.modules)) {
    nodes.queued += m.nodes.queued;
    nodes.running += m.nodes.running;
    nodes.done += m.nodes.done;
    nodes.failed += m.nodes.failed;
    items += m.items;
    errors += m.errors;
    modules[id] = { state: m.state, nodes: { ...m.nodes }, items: m.items, errors: m.errors };
  }
  const status: RunStatus = {
    runId: snap.runId,
    taskId: snap.taskId,
    state: snap.state,
    nodes,
    items,
    errors,
    modules,
    startedAt: snap.startedAt,
    updatedAt: snap.updatedAt,
  };
  if (snap.finishedAt !== undefined) status.finishedAt = snap.finishedAt;
  return status;
}

/** Runs whose node signal is kept while none of their nodes is in flight (see nodeSignal). */
const KEPT_RUN_SIGNALS = 256;

/** Runs as this engine sees and controls them. @internal */
export class RunRegistry {
  readonly #o: RunRegistryOptions;
  /** Runs seen here lately, with their nodes in flight: one controller per run aborts them all. */
  readonly #inFlight = new Map<
    string,
    { controller: AbortController; signal: AbortSignal; nodes: number; finished: boolean }
  >();
  /** Local waiters, woken when a transition of this process finishes their run. */
  readonly #wakers = new Map<string, Set<() => void>>();
  readonly #cleanups = new Set<Promise<void>>();

  constructor(options: RunRegistryOptions) {
    this.#o = options;
  }

  /** Records a run about to be submitted (its status can be read from then on). */
  async started(taskId: string, runId: string, modules: readonly string[]): Promise<void> {
    await this.#indexed(taskId, runId);
    await this.#o.state.runStart(taskId, runId, modules);
  }

  /** Makes a run findable by its id alone (idempotent; a run dispatched without submit). */
  async indexed(taskId: string, runId: string): Promise<void> {
    await this.#indexed(taskId, runId);
  }

  async #indexed(taskId: string, runId: string): Promise<void> {
    const { store, keys, stateTtlMs } = this.#o;
    const until = Date.now() + stateTtlMs;
    // two deployment-wide keys, on any cluster node: a connection still opening answers
    // BACKEND_UNAVAILABLE (retryable): both writes are idempotent, try them again (bounded)
    for (let attempt = 1; ; attempt++) {
      try {
        await Promise.all([
          store.set(keys.runIndex(runId), taskId, { ttlMs: stateTtlMs }),
          store.zadd(keys.runs(), until, runId),
        ]);
        return;
      } catch (error) {
        if (attempt >= 5 || !isMocraError(error) || !error.retryable) throw error;
        await new Promise((r) => setTimeout(r, 50 * attempt));
      }
    }
  }

  /** The task of a run, from its index entry. */
  async #taskOf(runId: string): Promise<string> {
    // not a string is bad input; the empty string names no run
    if (typeof runId !== 'string') invalid('ChainEngine', 'runId', 'a string', runId);
    if (runId.length === 0)
      throw new RunNotFoundError('runId must be a non-empty string', {
        context: { field: 'runId' },
      });
    const taskId = await this.#o.store.get(this.#o.keys.runIndex(runId));
    if (taskId === null) throw notFound(runId);
    return taskId;
  }

  /**
   * The run's status: one read of its record.
   * @throws {@link RunNotFoundError} when no run has that id in this store.
   */
  async status(runId: string): Promise<RunStatus> {
    const taskId = await this.#taskOf(runId);
    const snap = await this.#o.state.runRead(taskId, runId);
    if (snap === null) throw notFound(runId);
    return toRunStatus(snap);
  }

  /**
   * Resolves with the run's final status once it is done, terminated or cancelled (looking
   * again with a growing pause, or at once when this process finishes it).
   */
  async wait(runId: string, options?: { signal?: AbortSignal; timeoutMs?: number }) {
    const o = readOptions(WAIT, options, ['signal', 'timeoutMs']);
    const signal = optionalSignal(WAIT, 'signal', o.signal);
    const timeoutMs = optionalNumber(WAIT, 'timeoutMs', o.timeoutMs, undefined, {
      min: 0,
      allowInfinity: true,
    });
    const started = Date.now();
    let pause = WAIT_FIRST_MS;
    for (;;) {
      if (signal?.aborted) throw cancelled(runId, signal.reason);
      const status = await this.status(runId);
      if (status.state !== 'running') {
        if (status.finishedAt !== undefined) this.#cleanup(status.taskId, runId);
        return status;
      }
      const left = timeoutMs === undefined ? Infinity : timeoutMs - (Date.now() - started);
      if (left <= 0)
        throw new TaskTimeoutError(
          `run ${JSON.stringify(runId)} still running after ${timeoutMs} ms`,
          {
            context: { field: 'timeoutMs' },
          },
        );
      await this.#pause(runId, Math.min(pause, left), signal);
      pause = Math.min(WAIT_MAX_MS, Math.ceil(pause * 1.5));
    }
  }

  /** Sleeps up to `ms`; wakes early when this process finishes the run or the signal aborts. */
  #pause(runId: string, ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      let wakers = this.#wakers.get(runId);
      if (!wakers) this.#wakers.set(runId, (wakers = new Set()));
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        wakers.delete(done);
        if (wakers.size === 0) this.#wakers.delete(runId);
        resolve();
      };
      const timer = setTimeout(done, ms);
      wakers.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /**
   * Cancels a run: no node of it is claimed any more (here or in any process sharing the
   * store), and its nodes in flight here see their signal aborted. Idempotent.
   * @throws {@link RunNotFoundError} when no run has that id in this store.
   */
  async cancel(runId: string): Promise<void> {
    const taskId = await this.#taskOf(runId);
    const code = await this.#o.state.runCancel(taskId, runId);
    if (code === RunCancelCode.NOT_FOUND) throw notFound(runId);
    this.#inFlight
      .get(runId)
      ?.controller.abort(new TaskCancelledError(`run ${JSON.stringify(runId)} was cancelled`));
    if (code === RunCancelCode.CANCELLED)
      this.#o.telemetry.log('info', 'run cancelled', { run_id: runId, task_id: taskId });
  }

  /**
   * The abort signal of a node of `runId` starting here: aborted by `stopping` or by a cancel
   * of its run. Call `release()` when the node ends.
   */
  nodeSignal(runId: string, stopping: AbortSignal): { signal: AbortSignal; release(): void } {
    let entry = this.#inFlight.get(runId);
    if (!entry) {
      // one signal per run seen here lately, shared by its nodes (kept while the run has none in
      // flight too: a run's nodes often come one at a time, and a composite signal costs ~20 µs)
      if (this.#inFlight.size >= KEPT_RUN_SIGNALS) this.#forgetIdle();
      const controller = new AbortController();
      entry = {
        controller,
        signal: AbortSignal.any([stopping, controller.signal]),
        nodes: 0,
        finished: false,
      };
      this.#inFlight.set(runId, entry);
    }
    entry.nodes++;
    const e = entry;
    let released = false;
    return {
      signal: e.signal,
      release: () => {
        if (released) return;
        released = true;
        // a finished run is forgotten with its last node (it usually finishes in that node's commit)
        if (--e.nodes === 0 && e.finished && this.#inFlight.get(runId) === e)
          this.#inFlight.delete(runId);
      },
    };
  }

  /** Forgets the signals of the runs with no node in flight here. */
  #forgetIdle(): void {
    for (const [runId, e] of this.#inFlight) if (e.nodes === 0) this.#inFlight.delete(runId);
  }

  /** A transition of this process finished the run: wake its waiters and clean it up. */
  finished(taskId: string, runId: string): void {
    const e = this.#inFlight.get(runId);
    if (e !== undefined) {
      e.finished = true;
      if (e.nodes === 0) this.#inFlight.delete(runId);
    }
    for (const wake of [...(this.#wakers.get(runId) ?? [])]) wake();
    this.#cleanup(taskId, runId);
  }

  /** Resolves once every clean-up started here has ended. */
  async settled(): Promise<void> {
    while (this.#cleanups.size > 0) await Promise.allSettled([...this.#cleanups]);
  }

  /** Shortens the TTL of everything the run wrote to `finishedRunTtlMs` (idempotent). */
  #cleanup(taskId: string, runId: string): void {
    const { state, store, keys, finishedRunTtlMs, telemetry } = this.#o;
    const job = (async () => {
      while ((await state.runCleanup(taskId, runId, CLEANUP_BATCH)) === CLEANUP_BATCH) {
        /* next batch */
      }
      await Promise.all([
        store.expire(keys.runIndex(runId), finishedRunTtlMs),
        store.zadd(keys.runs(), Date.now() + finishedRunTtlMs, runId),
      ]);
    })().catch((error: unknown) =>
      telemetry.log('warn', 'run clean-up failed; its keys keep their TTL', {
        run_id: runId,
        task_id: taskId,
        error: String(error),
      }),
    );
    this.#cleanups.add(job);
    void job.finally(() => this.#cleanups.delete(job));
  }
}

function notFound(runId: string): RunNotFoundError {
  return new RunNotFoundError(
    `run ${JSON.stringify(runId)} not found (never submitted to this store, or its record expired)`,
    { context: { field: 'runId' } },
  );
}

function cancelled(runId: string, reason: unknown): TaskCancelledError {
  return new TaskCancelledError(`waiting for run ${JSON.stringify(runId)} was aborted`, {
    cause: reason,
  });
}
