/**
 * The engine's front door: `submit` and `publish` put a message on its queue (a fresh run id
 * when it has none, login info kept in this process and never queued). What a queued message
 * then goes through is the ingress (ingress.ts).
 */
import { encodeMessage, normalizeMessage, type TaskModel } from '../messages.js';
import { REDACTED } from './redact.js';
import { newRunId } from './run-id.js';
import type { RunRegistry } from './runs.js';
import type { TaskRecords } from './task-records.js';
import type { EngineTelemetry } from './telemetry.js';
import type { ChainQueues, SubmittedRun } from './types.js';

/** What the {@link FrontDoor} needs. */
export interface FrontDoorOptions {
  queues: ChainQueues;
  tasks: TaskRecords;
  telemetry: EngineTelemetry;
  /** Writes a submitted run's record (before its task is queued). */
  runs: Pick<RunRegistry, 'started'>;
}

/** `submit` and `publish` of the engine, after its closed check. */
export class FrontDoor {
  readonly #o: FrontDoorOptions;
  #pushing = 0;

  constructor(options: FrontDoorOptions) {
    this.#o = options;
  }

  /** How many submit() and publish() calls are still pushing their message. */
  get pushing(): number {
    return this.#pushing;
  }

  /** See `ChainEngine.submit`. */
  async submit(task: TaskModel): Promise<SubmittedRun> {
    const input = normalizeMessage({ kind: 'task', body: task });
    if (input.kind !== 'task') throw new Error('unreachable');
    const { loginInfo, ...body } = input.task;
    // without a runId, each submit is a new run (the normalised default, the task id, is not)
    if (task.runId === undefined) body.runId = newRunId();
    if (loginInfo !== undefined) this.#o.tasks.rememberLogin(body.runId, loginInfo);
    this.#o.telemetry.taskSubmitted();
    // the run's record first, so its status can be read as soon as this resolves
    await this.#o.runs.started(body.taskId, body.runId, body.modules);
    // login info never travels on a queue
    await this.#push(this.#o.queues.task, encodeMessage({ kind: 'task', body }));
    return { taskId: body.taskId, runId: body.runId };
  }

  /** See `ChainEngine.publish`. */
  async publish(message: unknown): Promise<void> {
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
    const q = this.#o.queues;
    await this.#push(
      kind === 'parser_task' ? q.parser : kind === 'error_task' ? q.error : q.task,
      text,
    );
  }

  async #push(queue: ChainQueues['task'], text: string): Promise<void> {
    this.#pushing++;
    try {
      await queue.push(text);
    } finally {
      this.#pushing--;
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
          this.#o.tasks.rememberLogin(input.task.runId, input.task.loginInfo);
      } catch {
        // malformed: the consumer dead-letters it with its reason. The login info stays off the
        // queue, but not without a trace: a task left without it would pass and run; the
        // marker (not a JSON object) fails it as malformed `loginInfo`, as submit() would
        return JSON.stringify({ ...message, body: { ...rest, loginInfo: REDACTED } });
      }
    }
    return JSON.stringify({ ...message, body: rest });
  }
}
