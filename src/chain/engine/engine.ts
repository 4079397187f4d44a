/**
 * The chain engine's lifecycle: it builds its rooms from the resolved options and starts and
 * stops them. The rooms: options.ts (read and validate the options), consumer.ts (receive and
 * settle deliveries), ingress.ts (NormalizeInput → LoadTask → ThresholdPreCheck → BuildModules
 * → ModuleDispatch), processor.ts (one node in its module), error-task.ts (thresholds, node
 * retries), relay.ts (the outbox relay), retry-pump.ts (due node retries), sweeper.ts (what a
 * dead process left behind), telemetry.ts (stats, metrics, events and logs together), runs.ts
 * (run status, wait, cancel and clean-up).
 */
import { ClosedError, ConfigError } from '../../errors.js';
import { unrefInterval, unrefTimeout } from '../../internal/clock.js';
import { DurableChainState } from '../durable-chain-state.js';
import { encodeMessage, normalizeMessage, type TaskModel } from '../messages.js';
import type { ModuleDefinition } from '../module.js';
import { Consumer } from './consumer.js';
import { DownloadPath } from './download.js';
import { ErrorTaskHandler } from './error-task.js';
import { HandOffs } from './hand-offs.js';
import { Ingress } from './ingress.js';
import { resolveOptions, W, type ResolvedOptions } from './options.js';
import { ModuleProcessorWithChain, type ProcessorHost } from './processor.js';
import { OutboxRelay } from './relay.js';
import { RetryPump } from './retry-pump.js';
import { RunRegistry } from './runs.js';
import { Sweeper } from './sweeper.js';
import { TaskRecords } from './task-records.js';
import { newRunId } from './run-id.js';
import { timedState } from './timed-state.js';
import { EngineTelemetry } from './telemetry.js';
import type {
  ChainDeadLetter,
  ChainQueues,
  ChainEngineOptions,
  ChainEngineStats,
  ChainEventMap,
  ChainEventName,
  RunStatus,
  SubmittedRun,
} from './types.js';

/** The running engine. Create it with {@link createChainEngine}. */
export interface ChainEngine {
  /** `'distributed'` on a Redis store, else `'single_node'`. */
  readonly runtimeMode: 'single_node' | 'distributed';
  /** Starts the consumers. Idempotent. */
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

/**
 * Creates a chain engine over the given modules.
 *
 * @throws {@link ConfigError} naming the first invalid option.
 * @example
 * ```ts
 * const engine = createChainEngine({ modules: [shop], onItem: (i) => save(i.item) });
 * await engine.start();
 * await engine.submit({ taskId: 't1', account: 'acme', platform: 'web', modules: ['shop'] });
 * await engine.onIdle();
 * await engine.stop();
 * ```
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function createChainEngine<M extends ModuleDefinition<any, string> = ModuleDefinition>(
  options: ChainEngineOptions<M>,
): ChainEngine {
  return new ChainEngineImpl(options as unknown as ChainEngineOptions);
}

class ChainEngineImpl implements ChainEngine {
  readonly runtimeMode: 'single_node' | 'distributed';
  readonly #o: ResolvedOptions;
  readonly #telemetry: EngineTelemetry;
  readonly #tasks: TaskRecords;
  readonly #downloads: DownloadPath;
  readonly #pump: RetryPump;
  readonly #relay: OutboxRelay;
  readonly #sweeper: Sweeper;
  readonly #consumer: Consumer;
  /** Set with in-memory queues over a store that outlives the process. */
  readonly #handOffs: HandOffs | undefined;
  readonly #queues: ChainQueues;
  readonly #runs: RunRegistry;
  readonly #readAbort = new AbortController();
  readonly #workAbort = new AbortController();
  #started = false;
  #stopped = false;
  #loops: Promise<void>[] = [];
  #resuming = false;
  #pruneTimer: ReturnType<typeof setInterval> | undefined;
  /** submit() and publish() calls still pushing their message. */
  #submitting = 0;

  constructor(options: ChainEngineOptions) {
    // a transition finished a run: known once the registry exists (transitions start later)
    const o = resolveOptions(options, (taskId, runId) => this.#runs.finished(taskId, runId));
    this.#o = o;
    this.runtimeMode = o.runtimeMode;
    const telemetry = new EngineTelemetry({
      logger: o.logger,
      logs: o.logs,
      metrics: o.metrics,
      runtimeMode: o.runtimeMode,
    });
    this.#telemetry = telemetry;
    const log = telemetry.log.bind(telemetry);
    this.#runs = new RunRegistry({
      state: o.state,
      store: o.store,
      keys: o.keys,
      stateTtlMs: o.stateTtlMs,
      finishedRunTtlMs: o.finishedRunTtlMs,
      telemetry,
    });
    const state = telemetry.measured ? timedState(o.state, telemetry) : o.state;
    // in-memory queues over a store that outlives the process: every push is written down first
    this.#handOffs = o.recordHandOffs
      ? new HandOffs({
          store: o.store,
          state: o.state,
          keys: o.keys,
          ttlMs: o.stateTtlMs,
          leaseMs: o.leaseMs,
          windowMs: o.sweepWindowMs,
          relayLeaseMs: o.relayLeaseMs,
          relay: (taskId) => this.#relay.relay(taskId),
          telemetry,
        })
      : undefined;
    const queues = this.#handOffs?.guard(o.queues) ?? o.queues;
    this.#queues = queues;
    this.#tasks = new TaskRecords({
      store: o.store,
      keys: o.keys,
      ttlMs: o.stateTtlMs,
      loadLoginInfo: o.loadLoginInfo,
      metrics: telemetry.measured ? o.metrics : undefined,
    });
    this.#pump = new RetryPump({
      state,
      keys: o.keys,
      pollMs: o.retryPollMs,
      forgetAfterMs: o.relayLeaseMs,
      sharedQueues: o.sharedQueues,
      relay: (taskId) => this.#relay.relay(taskId),
      log,
    });
    this.#relay = new OutboxRelay({
      state,
      queues,
      leaseMs: o.relayLeaseMs,
      telemetry,
      onItem: o.onItem,
      retries: this.#pump,
      itemRetry: { policy: o.itemRetry, maxRetries: o.maxItemRetries },
      secrets: (runId) => this.#tasks.secrets(runId),
    });
    this.#sweeper = new Sweeper({
      state,
      workerId: o.workerId,
      intervalMs: o.sweepIntervalMs,
      windowMs: o.sweepWindowMs,
      enabled: o.sharedQueues || o.durable || o.recordHandOffs,
      telemetry,
      promote: (taskId) => this.#pump.promote(taskId),
      relay: (taskId) => this.#relay.relay(taskId),
    });
    o.downloadRetry.on('retry', () => telemetry.downloadRetry());
    this.#downloads = new DownloadPath({
      downloader: o.downloader,
      limiter: o.limiter,
      retry: o.downloadRetry,
      concurrency: o.concurrency.download,
      metrics: telemetry.measured ? o.metrics : undefined,
      timeoutMs: o.downloadTimeoutMs,
      onTry: (moduleId) => telemetry.download(moduleId),
    });
    const host: ProcessorHost = {
      state,
      store: o.store,
      keys: o.keys,
      downloads: this.#downloads,
      leaseMs: o.leaseMs,
      stateTtlMs: o.stateTtlMs,
      fallback: o.fallback,
      signal: this.#workAbort.signal,
      runSignal: (runId) => this.#runs.nodeSignal(runId, this.#workAbort.signal),
      telemetry,
      secrets: (runId) => this.#tasks.secrets(runId),
      outboxWritten: (taskId) => {
        this.#sweeper.touch(taskId);
        this.#relay.relay(taskId);
      },
    };
    const processors = new Map<string, ModuleProcessorWithChain>();
    for (const m of o.modules.values()) processors.set(m.id, new ModuleProcessorWithChain(m, host));
    const touch = (taskId: string): void => this.#sweeper.touch(taskId);
    const ingress = new Ingress({
      state,
      queues,
      processors,
      tasks: this.#tasks,
      errors: new ErrorTaskHandler({
        state,
        keys: o.keys,
        modules: o.modules,
        tasks: this.#tasks,
        moduleThreshold: o.moduleErrorThreshold,
        taskThreshold: o.taskErrorThreshold,
        nodeRetry: o.nodeRetry,
        maxNodeRetries: o.maxNodeRetries,
        pump: this.#pump,
        touch,
        telemetry,
      }),
      runs: this.#runs,
      workerId: o.workerId,
      leaseMs: o.leaseMs,
      sharedQueues: o.sharedQueues,
      workSignal: this.#workAbort.signal,
      touch,
      ...(this.#handOffs ? { settled: this.#handOffs.settled.bind(this.#handOffs) } : {}),
      telemetry,
    });
    this.#consumer = new Consumer({
      handle: (queue, delivery) => ingress.handle(queue, delivery),
      readSignal: this.#readAbort.signal,
      telemetry,
    });
  }

  async start(): Promise<void> {
    if (this.#stopped)
      throw new ConfigError(`${W}: start() after stop()`, { context: { field: 'start' } });
    if (this.#started) return;
    this.#started = true;
    const c = this.#o.concurrency;
    this.#telemetry.log('info', 'chain engine started', {
      worker_id: this.#o.workerId,
      modules: [...this.#o.modules.keys()].join(','),
      // the limits in force, once: a crawl slower than expected is usually one of these
      rate_limits: this.#o.limits,
      concurrency: { task: c.task, parser: c.parser, error_task: c.error, downloads: c.download },
      queues: this.#o.sharedQueues ? 'shared' : this.#o.volatileQueues ? 'in-memory' : 'durable',
    });
    this.#loops = (['task', 'parser', 'error'] as const).map((role) =>
      this.#consumer.consume(role, this.#queues[role], this.#o.concurrency[role]),
    );
    // durable store: what an earlier process left (unpublished outboxes, due retries, expired
    // leases) goes on now; its in-flight messages come back from the queues after their lease
    if (this.#o.durable) void this.#resume();
    else this.#sweeper.start();
    this.#pruneTimer = unrefInterval(() => this.#pruneLogins(), 1000);
    // work a dead process handed to its in-memory queues and never settled is queued again
    void this.#handOffs?.recover();
  }

  async submit(task: TaskModel): Promise<SubmittedRun> {
    if (this.#stopped)
      throw new ClosedError(`${W}: submit() after stop()`, { context: { field: 'submit' } });
    const input = normalizeMessage({ kind: 'task', body: task });
    if (input.kind !== 'task') throw new Error('unreachable');
    const { loginInfo, ...body } = input.task;
    // without a runId, each submit is a new run (the normalised default, the task id, is not)
    if (task.runId === undefined) body.runId = newRunId();
    if (loginInfo !== undefined) this.#tasks.rememberLogin(body.runId, loginInfo);
    this.#telemetry.taskSubmitted();
    // the run's record first, so its status can be read as soon as this resolves
    await this.#runs.started(body.taskId, body.runId, body.modules);
    // login info never travels on a queue
    this.#submitting++;
    try {
      await this.#queues.task.push(encodeMessage({ kind: 'task', body }));
    } finally {
      this.#submitting--;
    }
    return { taskId: body.taskId, runId: body.runId };
  }

  runStatus(runId: string): Promise<RunStatus> {
    return this.#runs.status(runId);
  }

  waitForRun(
    runId: string,
    options?: { signal?: AbortSignal; timeoutMs?: number },
  ): Promise<RunStatus> {
    return this.#runs.wait(runId, options);
  }

  cancelRun(runId: string): Promise<void> {
    return this.#runs.cancel(runId);
  }

  async close(): Promise<void> {
    await this.stop();
    await this.#runs.settled();
  }

  async publish(message: unknown): Promise<void> {
    if (this.#stopped)
      throw new ClosedError(`${W}: publish() after stop()`, { context: { field: 'publish' } });
    let text: string;
    try {
      text = typeof message === 'string' ? message : JSON.stringify(message);
      if (typeof text !== 'string') text = String(message);
    } catch {
      text = String(message);
    }
    let parsed: { kind?: unknown; body?: unknown } | null = null;
    try {
      const value = JSON.parse(text) as unknown;
      if (typeof value === 'object' && value !== null && !Array.isArray(value))
        parsed = value as { kind?: unknown; body?: unknown };
    } catch {
      parsed = null;
    }
    const kind = parsed?.kind;
    if (kind === 'task' && parsed !== null) text = this.#prepareTask(parsed);
    const q = this.#queues;
    const queue = kind === 'parser_task' ? q.parser : kind === 'error_task' ? q.error : q.task;
    this.#submitting++;
    try {
      await queue.push(text);
    } finally {
      this.#submitting--;
    }
  }

  /**
   * A published task message, ready for the queue: a fresh run id when it has none, and its
   * login info (valid or not) taken off and, when the task is valid, kept in this process.
   */
  #prepareTask(message: { kind?: unknown; body?: unknown }): string {
    const body = message.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      return JSON.stringify(message);
    const { loginInfo, ...rest } = body as Record<string, unknown>;
    if (rest.runId === undefined) rest.runId = newRunId();
    if (loginInfo !== undefined) {
      try {
        const input = normalizeMessage({ kind: 'task', body: { ...rest, loginInfo } });
        if (input.kind === 'task' && input.task.loginInfo !== undefined)
          this.#tasks.rememberLogin(input.task.runId, input.task.loginInfo);
      } catch {
        // malformed: the consumer dead-letters it (without its login info) with its reason
      }
    }
    return JSON.stringify({ ...message, body: rest });
  }

  on<K extends ChainEventName>(event: K, listener: (event: ChainEventMap[K]) => void): () => void {
    return this.#telemetry.on(event, listener);
  }

  stats(): ChainEngineStats {
    this.#pruneLogins();
    return this.#telemetry.stats(this.#tasks.cacheStats(), this.#tasks.loginsHeld);
  }

  deadLetters(): readonly ChainDeadLetter[] {
    return this.#telemetry.deadLetters();
  }

  async onIdle(): Promise<void> {
    for (;;) {
      // two quiet looks in a row: a hand-off between stages is never mistaken for idleness; a
      // ref'd timer: a script that awaits onIdle() stays alive until the work is done
      let quiet = 0;
      await until(() => (quiet = this.#isIdle() ? quiet + 1 : 0) >= 2, { keepAlive: true });
      // a shared queue may hold messages this process has not read (or another one holds)
      if (await this.#sharedQueuesEmpty()) {
        this.#pruneLogins();
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Whether the queues that count their messages anywhere (Redis Streams) hold none. */
  async #sharedQueuesEmpty(): Promise<boolean> {
    const q = this.#o.queues;
    try {
      const lengths = await Promise.all(
        [q.task, q.parser, q.error].map((queue) => queue.length?.() ?? 0),
      );
      return lengths.every((n) => n === 0);
    } catch (error) {
      this.#telemetry.log('warn', 'onIdle: could not read the queue lengths; will look again', {
        error: String(error),
      });
      return false;
    }
  }

  /**
   * Forgets the login info of runs that ended here. With in-process queues, once nothing is
   * queued, running, waiting to be relayed or retried, every run this process holds has ended.
   * Otherwise (and in between), a run's login info unused for `sweepWindowMs` is dropped.
   */
  #pruneLogins(): void {
    if (this.#tasks.loginsHeld === 0 || this.#submitting > 0) return;
    if (!this.#o.sharedQueues && this.#isIdle()) this.#tasks.pruneLogins();
    else this.#tasks.pruneLogins(this.#o.sweepWindowMs);
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    // a ref'd timer while stopping: a script whose last act is `await engine.stop()` stays alive
    // until the stop is done, even when everything it waits for runs on unref'd timers
    const keepAlive = setInterval(() => {}, 1000);
    try {
      await this.#stop();
    } finally {
      clearInterval(keepAlive);
    }
  }

  async #stop(): Promise<void> {
    const o = this.#o;
    const limit = o.stopTimeoutMs;
    clearInterval(this.#pruneTimer);
    this.#readAbort.abort();
    this.#relay.stop();
    this.#pump.stop();
    this.#sweeper.stop();
    this.#handOffs?.stop();
    const drained = Promise.all(this.#loops).then(() => until(() => this.#consumer.handlers === 0));
    if (!(await within(drained, limit))) {
      this.#telemetry.log('warn', 'stop: aborting in-flight nodes (their leases will expire)', {
        in_flight: this.#consumer.handlers,
      });
    }
    this.#workAbort.abort();
    // from here on, every wait shares one more `limit`
    const deadline = performance.now() + limit;
    const left = (): number => Math.max(1, deadline - performance.now());
    // what the last commits wrote is published before the queues and the store may be closed;
    // code that ignores its abort signal is not waited for past the limit: its delivery stays
    // unacknowledged (nothing it does later is committed: the node was abandoned)
    const settled = drained.then(() => until(() => !this.#relay.busy && !this.#pump.running));
    if (!(await within(settled, left()))) {
      this.#telemetry.log(
        'warn',
        'stop: gave up waiting (user code ignoring its abort signal, or the relay publishing to a full queue); what still runs is left unacknowledged',
        { worker_id: o.workerId, in_flight: this.#consumer.handlers, relay_busy: this.#relay.busy },
      );
    }
    await within(this.#downloads.close(), left());
    // the clean-up of the runs finished here needs the store
    await within(this.#runs.settled(), left());
    if (o.ownsQueues) {
      // queues made by the engine: stream queues hand back what they read but did not hand out
      await Promise.all(
        [o.queues.task, o.queues.parser, o.queues.error].map((q) =>
          'shutdown' in q && typeof q.shutdown === 'function'
            ? (q.shutdown as () => Promise<void>)()
            : q.close(),
        ),
      );
    }
    if (o.ownsStore) await within(o.store.close(), left());
    this.#telemetry.log('info', 'chain engine stopped', { worker_id: o.workerId });
  }

  /**
   * Durable store, new process: the relay leases an earlier process held end now (it is gone:
   * one process per data directory), then one sweep over every task the store still holds
   * promotes due retries, recovers expired node leases and publishes the outboxes.
   */
  async #resume(): Promise<void> {
    this.#resuming = true;
    const o = this.#o;
    try {
      const tasks = await o.state.activeTasks(o.stateTtlMs, 10_000);
      let released = 0;
      if (o.state instanceof DurableChainState)
        for (const taskId of tasks) released += await o.state.expireOutboxLeases(taskId);
      this.#telemetry.log('info', 'resuming from the durable store', {
        worker_id: o.workerId,
        tasks: tasks.length,
        outbox_leases_released: released,
      });
      await this.#sweeper.sweep({ windowMs: o.stateTtlMs, lock: false });
    } catch (error) {
      this.#telemetry.log('warn', 'resume sweep failed; the periodic sweeps go on', {
        error: String(error),
      });
    } finally {
      this.#resuming = false;
      this.#sweeper.start();
    }
  }

  #isIdle(): boolean {
    const q = this.#o.queues;
    return (
      !this.#resuming &&
      this.#consumer.handlers === 0 &&
      !this.#relay.busy &&
      !this.#pump.running &&
      !this.#pump.watching &&
      !this.#handOffs?.busy &&
      q.task.size() + q.parser.size() + q.error.size() === 0 &&
      q.task.inFlight() + q.parser.inFlight() + q.error.inFlight() === 0
    );
  }
}

/** Whether `promise` settled within `ms` (it may go on after that; a rejection counts as settled). */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = unrefTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves once `condition()` holds (checked every 5 ms; `keepAlive` refs the timer). */
function until(condition: () => boolean, { keepAlive = false } = {}): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (condition()) resolve();
      else if (keepAlive) setTimeout(check, 5);
      else unrefTimeout(check, 5);
    };
    check();
  });
}
