/**
 * The ingress: every delivery, whatever its kind, goes NormalizeInput → LoadTask →
 * ThresholdPreCheck → BuildModules → ModuleDispatch (for a node message the threshold check is
 * part of its claim). A task message stores its record and
 * dispatches each module's first node; a node message runs in its module's processor; an
 * error message goes to the error-task room. The answer is a {@link Disposition}: the ingress
 * never throws.
 */
import { isClosedError, isMocraError } from '../../errors.js';
import {
  encodeMessage,
  normalizeMessage,
  type ChainInput,
  type ParserTaskModel,
  type TaskModel,
} from '../messages.js';
import { nodeEventId } from '../node-id.js';
import type { Delivery, ChainQueue } from '../queue.js';
import { TerminatedCode, type ChainStateStore, type RunDispatchModule } from '../state/index.js';
import {
  ACK,
  LEAVE,
  StageError,
  atStage,
  setAside,
  stageOf,
  type Disposition,
} from './disposition.js';
import type { ErrorTaskHandler } from './error-task.js';
import { redactText } from './redact.js';
import type { ModuleProcessorWithChain, NodeOutcome } from './processor.js';
import type { RunRegistry } from './runs.js';
import { TaskNotFound, type TaskRecords } from './task-records.js';
import type { EngineTelemetry } from './telemetry.js';
import type { ChainQueues } from './types.js';

/**
 * Deliveries of a message whose handling a user hook (`loadLoginInfo`) or another non-mocra
 * error interrupted before it is dead-lettered: a failure of a moment is tried again.
 */
const USER_ERROR_TRIES = 3;

/** The message of a thrown value (an Error's, else its text). */
function describeError(error: unknown): string {
  return (error as Error)?.message ?? String(error);
}

/** Options of {@link Ingress}. @internal */
export interface IngressOptions {
  state: ChainStateStore;
  queues: ChainQueues;
  processors: ReadonlyMap<string, ModuleProcessorWithChain>;
  tasks: TaskRecords;
  errors: Pick<ErrorTaskHandler, 'handle'>;
  runs: Pick<RunRegistry, 'indexed'>;
  workerId: string;
  leaseMs: number;
  /** Queues shared with other processes. */
  sharedQueues: boolean;
  /** The queue whose deliveries a commit acknowledges itself (see stream-hand-off.ts), if any. */
  handOffQueue?: ChainQueue<string>;
  /** Whether the commit of a node of `taskId` may acknowledge `delivery` of the hand-off queue. */
  handOffAccepts?(delivery: Delivery<string>, taskId: string): boolean;
  /** Aborted when the engine abandons in-flight work. */
  workSignal: AbortSignal;
  /** Records that a task is active (for the sweeps). */
  touch(taskId: string): void;
  /** The ingress is done with a message (`outcome` for a node): see HandOffs.settled. */
  settled?(input: ChainInput, outcome?: NodeOutcome): void;
  telemetry: EngineTelemetry;
}

/** Turns a delivery into a disposition. @internal */
export class Ingress {
  readonly #o: IngressOptions;

  constructor(options: IngressOptions) {
    this.#o = options;
  }

  /** Runs one delivery through the ingress. Never throws. */
  async handle(queue: ChainQueue<string>, delivery: Delivery<string>): Promise<Disposition> {
    const disposition = await this.#dispatch(queue, delivery);
    if ('deadLetter' in disposition)
      this.#o.telemetry.ingressFailed(disposition.stage ?? stageOf(disposition.deadLetter));
    return disposition;
  }

  async #dispatch(queue: ChainQueue<string>, delivery: Delivery<string>): Promise<Disposition> {
    let input: ChainInput;
    try {
      input = normalizeMessage(delivery.message); // NormalizeInput
    } catch (error) {
      return { deadLetter: `NormalizeInput: ${(error as Error).message}` };
    }
    try {
      switch (input.kind) {
        case 'task':
          return this.#settled(input, await this.#task(input.task, delivery.message));
        case 'parser_task':
          return await this.#node(input.node, queue, delivery);
        case 'error_task':
          return this.#settled(input, await this.#o.errors.handle(input.node));
      }
    } catch (caught) {
      const failure =
        caught instanceof StageError ? caught : new StageError('ModuleDispatch', caught);
      return this.#interrupted(queue, delivery, failure, false);
    }
  }

  /** A task or error message handled for good (not released): tell whoever tracks it. */
  #settled(input: ChainInput, disposition: Disposition): Disposition {
    if ('ack' in disposition || 'deadLetter' in disposition) this.#o.settled?.(input);
    return disposition;
  }

  /** A message whose handling threw: released to be tried again, or dead-lettered. */
  #interrupted(
    queue: ChainQueue<string>,
    delivery: Delivery<string>,
    failure: StageError,
    leaseHeld: boolean,
  ): Disposition {
    const error = failure.error;
    // stopping, or a queue of this process already closed: leave the message to others
    if (this.#o.workSignal.aborted || isClosedError(error)) return this.#stopping();
    // a retryable error (e.g. Redis unavailable), or one from user code (a loadLoginInfo whose
    // secrets manager failed for a moment) on its first tries: nothing was committed, so the
    // message is tried again later; a user error that keeps coming is dead-lettered below
    const userError = !isMocraError(error);
    if (
      (isMocraError(error) && error.retryable) ||
      (userError && delivery.deliveries < USER_ERROR_TRIES)
    ) {
      this.#o.telemetry.ingressFailed(failure.stage);
      this.#o.telemetry.log('warn', 'message will be retried: a retryable error interrupted it', {
        queue: queue.name,
        error: redactText(
          userError
            ? `${(error as Error)?.name ?? 'Error'}: ${describeError(error)}`
            : error.message,
        ),
        code: userError ? 'USER_ERROR' : error.code,
        deliveries: delivery.deliveries,
      });
      const delayMs = Math.min(5000, 100 * 2 ** Math.min(delivery.deliveries, 6));
      // A shared queue re-adds a released message under a new id, so its next claim comes
      // from another owner. If this delivery holds the node's lease, that claim would meet
      // LOCKED_BY_OTHER and the copy would be dropped, leaving the node processing with no
      // message: keep it until the lease has run out (or leave it pending when stopping).
      return leaseHeld && this.#o.sharedQueues
        ? { release: true, delayMs: Math.max(delayMs, this.#o.leaseMs), leaveOnStop: true }
        : { release: true, delayMs };
    }
    // the error may come from user code that handles credentials (loadLoginInfo, a store):
    // anything that looks like one stays out of the dead letter, its event and the logs
    return {
      deadLetter: redactText(`${(error as Error)?.name ?? 'Error'}: ${describeError(error)}`),
      stage: failure.stage,
    };
  }

  async #task(task: TaskModel & { runId: string }, raw: string): Promise<Disposition> {
    const { state, queues, telemetry } = this.#o;
    // LoadTask: the task record every later message of the task is loaded from
    await atStage('LoadTask', this.#o.tasks.save(task));
    this.#o.touch(task.taskId);
    const plan: RunDispatchModule[] = [];
    for (const moduleId of new Set(task.modules)) {
      // BuildModules
      if (!this.#o.processors.has(moduleId)) {
        const reason = `BuildModules: module ${JSON.stringify(moduleId)} is not registered`;
        telemetry.ingressFailed('BuildModules');
        await setAside(telemetry, 'task', queues.task, raw, reason);
        plan.push({ moduleId, state: 'skipped' });
        continue;
      }
      // ThresholdPreCheck
      const t = await atStage(
        'ThresholdPreCheck',
        state.terminated(task.taskId, task.runId, moduleId),
      );
      if (t.code !== TerminatedCode.ACTIVE) {
        telemetry.skipped(
          t.code === TerminatedCode.TASK_TERMINATED ? 'task_terminated' : 'module_terminated',
        );
        plan.push({ moduleId, state: 'terminated' });
        continue;
      }
      plan.push({ moduleId, state: 'running' });
    }
    // the run counts its first nodes queued before any can be claimed (once, whatever the
    // deliveries of this message)
    await atStage('ModuleDispatch', this.#o.runs.indexed(task.taskId, task.runId));
    await atStage('ModuleDispatch', state.runDispatch(task.taskId, task.runId, plan));
    for (const { moduleId, state: s } of plan) {
      if (s !== 'running') continue;
      // ModuleDispatch: the module's first node
      const root: ParserTaskModel = {
        taskId: task.taskId,
        runId: task.runId,
        account: task.account,
        platform: task.platform,
        moduleId,
        stepIdx: 0,
        prefixRequest: '',
      };
      if (task.metadata !== undefined) root.metadata = task.metadata;
      await atStage(
        'ModuleDispatch',
        queues.parser.push(encodeMessage({ kind: 'parser_task', body: root }), {
          signal: this.#o.workSignal,
        }),
      );
      telemetry.emit('ParserTaskProduced', {
        type: 'ParserTaskProduced',
        ...nodeEventId(root),
        source: 'root',
      });
      telemetry.parserTaskProduced('root');
    }
    return ACK;
  }

  async #node(
    ptm: ParserTaskModel,
    queue: ChainQueue<string>,
    delivery: Delivery<string>,
  ): Promise<Disposition> {
    const { telemetry } = this.#o;
    // LoadTask
    let record;
    try {
      record = await this.#o.tasks.load(ptm.taskId);
    } catch (error) {
      if (!(error instanceof TaskNotFound)) throw new StageError('LoadTask', error);
      telemetry.stateExpired();
      return {
        deadLetter: `LoadTask: task ${JSON.stringify(ptm.taskId)} not found (never submitted to this store, or expired)`,
      };
    }
    // ThresholdPreCheck: the node's claim checks the task's and the module's terminate marks
    // atomically (a terminated node is STALE_STEP), so no separate round trip before it
    // BuildModules
    const processor = this.#o.processors.get(ptm.moduleId);
    if (!processor)
      return {
        deadLetter: `BuildModules: module ${JSON.stringify(ptm.moduleId)} is not registered`,
      };
    if (ptm.stepIdx >= processor.module.steps.length)
      return {
        deadLetter: `BuildModules: module ${JSON.stringify(ptm.moduleId)} has no step ${ptm.stepIdx}`,
      };
    const info = await atStage('BuildModules', this.#o.tasks.taskInfo(record, ptm));
    // ModuleDispatch
    const handOff =
      queue === this.#o.handOffQueue && this.#o.handOffAccepts?.(delivery, ptm.taskId) !== false
        ? delivery.id
        : undefined;
    const run = await processor.run(
      ptm,
      info,
      `${this.#o.workerId}/${delivery.id}`,
      // each lease renewal also keeps the delivery this consumer's (a long step is not taken over)
      delivery.touch ? () => delivery.touch!() : undefined,
      handOff,
    );
    if ('error' in run)
      return this.#interrupted(
        queue,
        delivery,
        new StageError('ModuleDispatch', run.error),
        run.leaseHeld,
      );
    this.#o.settled?.({ kind: 'parser_task', node: ptm }, run.outcome);
    // the commit acknowledged the delivery itself: nothing left to send
    if (handOff !== undefined && run.outcome === 'committed') delivery.acknowledged?.();
    return this.#afterNode(run.outcome);
  }

  /**
   * A message interrupted by stop(). In-memory queues get it back at once. A shared queue does
   * not: the node's lease is still held by this worker, so another worker would only meet
   * LOCKED_BY_OTHER now. Left unacknowledged, the queue hands it over once it has been idle for
   * the queue's claim time, which is set longer than the lease: the node is claimable by then.
   */
  #stopping(): Disposition {
    return this.#o.sharedQueues ? LEAVE : { release: true, delayMs: 0 };
  }

  #afterNode(outcome: NodeOutcome): Disposition {
    switch (outcome) {
      case 'released':
        return this.#stopping();
      case 'committed':
      case 'replayed':
        return ACK;
      case 'failed':
        return ACK;
      case 'commit_rejected':
        // the claim was lost (lease expired, recovered or taken over): deliver the message again
        // — a live owner's copy is then LOCKED_BY_OTHER or DUPLICATE_DONE, a recovered node runs
        this.#o.telemetry.skipped(outcome);
        return { release: true, delayMs: 0 };
      default:
        this.#o.telemetry.skipped(outcome);
        return ACK;
    }
  }
}
