/**
 * The chain engine's lifecycle: it builds its rooms from the resolved options and starts and
 * stops them. The rooms: options.ts (read and validate the options), consumer.ts (receive and
 * settle deliveries), ingress.ts (NormalizeInput → LoadTask → ThresholdPreCheck → BuildModules
 * → ModuleDispatch), processor.ts (one node in its module), error-task.ts (thresholds, node
 * retries), relay.ts (the outbox relay), retry-pump.ts (due node retries), sweeper.ts (what a
 * dead process left behind), telemetry.ts (stats, metrics, events and logs together), runs.ts
 * (run status, wait, cancel and clean-up), front-door.ts (submit and publish), resume.ts (start-up
 * on a durable store), idle.ts (onIdle), waits.ts; its interface is in chain-engine.ts.
 */
import { ClosedError } from '../../errors.js';
import { unrefInterval } from '../../internal/clock.js';
import type { TaskModel } from '../messages.js';
import type { ModuleDefinition } from '../module.js';
import type { ChainEngine } from './chain-engine.js';
import { ClaimSlots } from './claim-slots.js';
import { Consumer } from './consumer.js';
import { FrontDoor } from './front-door.js';
import { queuesQuiet, waitForIdle } from './idle.js';
import { resumeFromStore } from './resume.js';
import { until, within } from './waits.js';
import { DownloadPath } from './download.js';
import { ErrorTaskHandler } from './error-task.js';
import { HandOffs } from './hand-offs.js';
import { Ingress } from './ingress.js';
import { resolveOptions, W, type ResolvedOptions } from './options.js';
import { LeaseHeartbeat } from './node-lease.js';
import { ModuleProcessorWithChain, type ProcessorHost } from './processor.js';
import { OutboxRelay } from './relay.js';
import { ItemHandOver } from './item-hand-over.js';
import { ItemRelay } from './item-relay.js';
import { streamHandOff } from './stream-hand-off.js';
import { RetryPump } from './retry-pump.js';
import { RunRegistry } from './runs.js';
import { Sweeper } from './sweeper.js';
import { TaskRecords } from './task-records.js';
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

/** Most deliveries a parser consumer keeps waiting for a run slot (see claim-slots.ts). */
const PREFETCH_MAX = 64;

export type { ChainEngine } from './chain-engine.js';

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
  /** Reads the items stream where commits hand off by themselves. */
  readonly #itemRelay: ItemRelay | undefined;
  readonly #slots: ClaimSlots | undefined;
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
  /** submit() and publish(): onto the queues. */
  readonly #door: FrontDoor;

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
    // queues on Redis Streams beside the state (one standalone Redis, or a Cluster with per-task
    // streams): commits hand off by themselves (successors and items to the streams, the
    // delivery acknowledged)
    const handOff = streamHandOff(o.state, queues.parser, o.keys);
    this.#itemRelay = handOff
      ? new ItemRelay({
          handOff,
          telemetry,
          items: new ItemHandOver({
            telemetry,
            onItem: o.onItem,
            deadLetters: queues.parser,
            itemRetry: { policy: o.itemRetry, maxRetries: o.maxItemRetries },
            secrets: (runId) => this.#tasks.secrets(runId),
          }),
        })
      : undefined;
    this.#tasks = new TaskRecords({
      store: o.store,
      keys: o.keys,
      ttlMs: o.stateTtlMs,
      loadLoginInfo: o.loadLoginInfo,
      metrics: telemetry.measured ? o.metrics : undefined,
    });
    this.#door = new FrontDoor({ queues, tasks: this.#tasks, telemetry, runs: this.#runs });
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
      heartbeat: new LeaseHeartbeat(o.leaseMs),
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
      ...(handOff
        ? {
            // commits claim the next node (one script per node): see claim-slots.ts
            slots: (this.#slots = new ClaimSlots(
              o.concurrency.parser,
              handOff.commit.perTask === true,
              this.#workAbort.signal,
            )),
            handOff: handOff.commit,
            handedOff: (taskId: string, successors: number, items: number) => {
              handOff.handedOff(taskId, successors, items);
              if (items > 0) this.#itemRelay?.wake(taskId);
            },
          }
        : {}),
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
      ...(handOff ? { handOffQueue: handOff.parser, handOffAccepts: handOff.accepts } : {}),
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

  /**
   * Queues whose deliveries another worker takes over (`claimIdleMs`) no later than the node
   * lease runs out: a dead worker's node would be taken over while its lease still holds, meet
   * LOCKED_BY_OTHER and be dropped (docs/chain.md, "Settings that must agree"). Said once, at
   * start, naming both.
   */
  #warnClaimIdle(): void {
    const leaseMs = this.#o.leaseMs;
    for (const role of ['task', 'parser', 'error'] as const) {
      const claimIdleMs = (this.#o.queues[role] as { claimIdleMs?: unknown }).claimIdleMs;
      if (typeof claimIdleMs !== 'number' || claimIdleMs > leaseMs) continue;
      this.#telemetry.log(
        'warn',
        "the queues' claimIdleMs is not above leaseMs: a dead worker's node may be dropped instead of run again (set claimIdleMs to about 1.5 × leaseMs)",
        { queue: role, claim_idle_ms: claimIdleMs, lease_ms: leaseMs },
      );
      return;
    }
  }

  async start(): Promise<void> {
    if (this.#stopped)
      throw new ClosedError(`${W}: start() after stop()`, { context: { field: 'start' } });
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
    this.#warnClaimIdle();
    this.#loops = (['task', 'parser', 'error'] as const).map((role) =>
      this.#consumer.consume(role, this.#queues[role], this.#inHand(role)),
    );
    // durable store: what an earlier process left (unpublished outboxes, due retries) goes on
    // now; its in-flight messages come back from the queues after their lease (and their claims
    // take the expired node leases over)
    if (this.#o.durable) void this.#resume();
    else this.#sweeper.start();
    this.#pruneTimer = unrefInterval(() => this.#pruneLogins(), 1000);
    this.#itemRelay?.start();
    // work a dead process handed to its in-memory queues and never settled is queued again
    void this.#handOffs?.recover();
  }

  /**
   * The deliveries a consumer keeps in hand: its stage's concurrency, and for the parser stage
   * with run slots some more, waiting for a slot (a committing node claims one of them; see
   * ClaimSlots.extra).
   */
  #inHand(role: 'task' | 'parser' | 'error'): number | (() => number) {
    const n = this.#o.concurrency[role];
    const slots = this.#slots;
    if (role !== 'parser' || slots === undefined) return n;
    const max = Math.min(3 * n, PREFETCH_MAX);
    return () => n + slots.extra(max);
  }

  async submit(task: TaskModel): Promise<SubmittedRun> {
    if (this.#stopped)
      throw new ClosedError(`${W}: submit() after stop()`, { context: { field: 'submit' } });
    return this.#door.submit(task);
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
    return this.#door.publish(message);
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
    await waitForIdle(
      () => this.#isIdle(),
      this.#o.queues,
      this.#telemetry,
      this.#itemRelay ? [this.#itemRelay] : [],
    );
    this.#pruneLogins();
  }

  /**
   * Forgets the login info of runs that ended here. With in-process queues, once nothing is
   * queued, running, waiting to be relayed or retried, every run this process holds has ended.
   * Otherwise (and in between), a run's login info unused for `sweepWindowMs` is dropped.
   */
  #pruneLogins(): void {
    if (!this.#tasks.holdsAny || this.#door.pushing > 0) return;
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
    this.#itemRelay?.pause();
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
    // the items of the last commits are handed over here too (then no more tries are made)
    const settled = drained
      .then(() => this.#itemRelay?.flush())
      .then(() => this.#itemRelay?.stop())
      .then(() => until(() => !this.#relay.busy && !this.#itemRelay?.busy && !this.#pump.running));
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

  /** Durable store, new process: see resume.ts; the periodic sweeps start after it. */
  async #resume(): Promise<void> {
    this.#resuming = true;
    try {
      await resumeFromStore(this.#o, this.#sweeper, this.#telemetry);
    } finally {
      this.#resuming = false;
      this.#sweeper.start();
    }
  }

  #isIdle(): boolean {
    return (
      !this.#resuming &&
      this.#consumer.handlers === 0 &&
      !this.#relay.busy &&
      !this.#itemRelay?.busy &&
      !this.#pump.running &&
      !this.#pump.watching &&
      !this.#handOffs?.busy &&
      queuesQuiet(this.#o.queues)
    );
  }
}
