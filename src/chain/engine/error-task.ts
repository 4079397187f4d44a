/**
 * The error-task room: an ErrorTaskModel goes through the threshold transition (counted once
 * per failure, atomically with the threshold check); past a threshold its module or task is
 * terminated (the decision writes the marks), otherwise the node is retried after a backoff (a delayed ParserTaskModel in the
 * retry set, promoted by the retry pump) or given up.
 */
import { ErrorCode } from '../../errors.js';
import type { ChainKeyBuilder } from '../../keys/chain-key-builder.js';
import type { RetryPolicy } from '../../retry/index.js';
import { encodeMessage, type ErrorTaskModel, type ParserTaskModel } from '../messages.js';
import type { ModuleDefinition } from '../module.js';
import { nodeEventId, toNodeId } from '../node-id.js';
import {
  RetryScheduleCode,
  TerminatedCode,
  ThresholdCode,
  type ChainStateStore,
} from '../state/index.js';
import { ACK, StageError, atStage, type Disposition } from './disposition.js';
import { OUTBOX_RETRY } from './outbox.js';
import type { RetryPump } from './retry-pump.js';
import { THRESHOLD_NAMES, type EngineTelemetry } from './telemetry.js';
import { TaskNotFound, type TaskRecords } from './task-records.js';

/** Options of {@link ErrorTaskHandler}. @internal */
export interface ErrorTaskHandlerOptions {
  state: ChainStateStore;
  keys: ChainKeyBuilder;
  modules: ReadonlyMap<string, ModuleDefinition>;
  tasks: TaskRecords;
  moduleThreshold: number;
  taskThreshold: number;
  nodeRetry: RetryPolicy;
  maxNodeRetries: number;
  pump: Pick<RetryPump, 'scheduled'>;
  /** Records that a task is active (for the sweeps). */
  touch(taskId: string): void;
  telemetry: EngineTelemetry;
}

/** Decides what an ErrorTaskModel leads to. @internal */
export class ErrorTaskHandler {
  readonly #o: ErrorTaskHandlerOptions;

  constructor(options: ErrorTaskHandlerOptions) {
    this.#o = options;
  }

  /** LoadTask → BuildModules → threshold decision → terminate, retry or give up. */
  async handle(etm: ErrorTaskModel): Promise<Disposition> {
    const { state, telemetry } = this.#o;
    // LoadTask
    try {
      await this.#o.tasks.load(etm.taskId);
    } catch (error) {
      if (!(error instanceof TaskNotFound)) throw new StageError('LoadTask', error);
      telemetry.stateExpired();
      return {
        deadLetter: `LoadTask: task ${JSON.stringify(etm.taskId)} not found (never submitted to this store, or expired)`,
      };
    }
    // BuildModules
    const module = this.#o.modules.get(etm.moduleId);
    if (!module)
      return {
        deadLetter: `BuildModules: module ${JSON.stringify(etm.moduleId)} is not registered`,
      };
    // ThresholdPreCheck + decision, in one atomic transition
    const d = await atStage(
      'ThresholdPreCheck',
      state.thresholdDecide({
        taskId: etm.taskId,
        runId: etm.runId,
        moduleId: etm.moduleId,
        moduleThreshold: module.errorThreshold ?? this.#o.moduleThreshold,
        taskThreshold: this.#o.taskThreshold,
        retryAfterMs: etm.error.retryAfterMs ?? 0,
        // a duplicate delivery of this ErrorTaskModel is counted once
        failureId: `${this.#o.keys.ptmKey(toNodeId(etm))}@${etm.attempt}`,
      }),
    );
    const decision = THRESHOLD_NAMES[d.code];
    telemetry.errorTaskDecided(decision);
    const fields = {
      run_id: etm.runId,
      task_id: etm.taskId,
      module_id: etm.moduleId,
      step_idx: etm.stepIdx,
      prefix_request: etm.prefixRequest,
      decision: decision.toLowerCase(),
      module_errors: d.moduleErrors,
      task_errors: d.taskErrors,
    };
    if (d.code === ThresholdCode.TERMINATE_MODULE || d.code === ThresholdCode.TERMINATE_TASK) {
      // the decision wrote the marks it reached (module first, then task): report each once
      for (const scope of d.marked) {
        telemetry.terminated(scope);
        telemetry.log('warn', `${scope} terminated by its error threshold`, fields);
        telemetry.emit('TaskTerminatedByThreshold', {
          type: 'TaskTerminatedByThreshold',
          taskId: etm.taskId,
          runId: etm.runId,
          moduleId: etm.moduleId,
          scope,
          moduleErrors: d.moduleErrors,
          taskErrors: d.taskErrors,
        });
      }
      // the failed node is not retried: its run counts it failed for good
      await state.giveUp(toNodeId(etm), etm.attempt);
      return ACK;
    }
    return this.#retryOrGiveUp(etm, fields);
  }

  async #retryOrGiveUp(etm: ErrorTaskModel, fields: Record<string, unknown>): Promise<Disposition> {
    const { telemetry } = this.#o;
    const retry: ParserTaskModel = { ...toNodeId(etm), epoch: etm.attempt };
    if (etm.data !== undefined) retry.data = etm.data;
    if (etm.metadata !== undefined) retry.metadata = etm.metadata;
    if (etm.routeDepth !== undefined) retry.routeDepth = etm.routeDepth;
    const delayMs = this.#o.nodeRetry.delayFor(
      etm.attempt,
      etm.error.retryAfterMs === undefined ? undefined : { retryAfterMs: etm.error.retryAfterMs },
    );
    const node = toNodeId(retry);
    const r = await this.#o.state.retrySchedule({
      node,
      attempt: etm.attempt,
      maxRetries: this.#o.maxNodeRetries,
      delayMs,
      message: OUTBOX_RETRY + encodeMessage({ kind: 'parser_task', body: retry }),
      allowed: etm.error.retryable !== false,
    });
    if (r === RetryScheduleCode.RETRY_SCHEDULED) {
      if (this.#o.pump.scheduled(node, etm.attempt, delayMs)) telemetry.retryScheduled();
      this.#o.touch(etm.taskId);
      telemetry.log('info', `retry ${etm.attempt} scheduled in ${delayMs} ms`, fields);
      return ACK;
    }
    if (r === RetryScheduleCode.RETRY_NOT_ALLOWED && etm.error.retryable !== false)
      return this.#obsolete(etm, fields);
    const reason = r === RetryScheduleCode.MAX_RETRY_EXCEEDED ? 'max_retries' : 'not_retryable';
    // the node is not retried: its run counts it failed for good
    await this.#o.state.giveUp(node, etm.attempt);
    telemetry.givenUp(reason);
    telemetry.log('warn', `node given up (${reason})`, {
      ...fields,
      decision: `give_up:${reason}`,
    });
    telemetry.emit('NodeFailed', {
      type: 'NodeFailed',
      ...nodeEventId(etm),
      attempt: etm.attempt,
      reason,
      error: etm.error,
    });
    // a step that routed what it may not is a bug in the module: keep its failure, with the reason
    if (etm.error.code === ErrorCode.ROUTE_INVALID)
      return { deadLetter: `ROUTE_INVALID: ${etm.error.message}` };
    return ACK;
  }

  /**
   * A retryable failure whose retry the state refused: its task or module was terminated since,
   * or the node is no longer failed — a retry of it committed or holds a live claim (this is a
   * duplicate ErrorTaskModel), or its state expired. Nothing to give up: the message is obsolete.
   */
  async #obsolete(etm: ErrorTaskModel, fields: Record<string, unknown>): Promise<Disposition> {
    const { telemetry } = this.#o;
    const t = await this.#o.state.terminated(etm.taskId, etm.runId, etm.moduleId);
    const reason =
      t.code === TerminatedCode.TASK_TERMINATED
        ? 'task_terminated'
        : t.code === TerminatedCode.MODULE_TERMINATED
          ? 'module_terminated'
          : 'error_task_obsolete';
    telemetry.skipped(reason);
    telemetry.log('debug', 'obsolete error task skipped', { ...fields, decision: reason });
    return ACK;
  }
}
