/**
 * The three messages that drive the chain engine and their single normalised form.
 *
 * - {@link TaskModel}: start a task (run its modules from step 0).
 * - {@link ParserTaskModel} (PTM): run step `stepIdx` of module `moduleId` from `prefixRequest`.
 * - {@link ErrorTaskModel} (ETM): step `stepIdx` failed; stay on it (`stayCurrentStep: true`).
 *
 * All three enter through one ingress, which first calls {@link normalizeMessage}: anything
 * malformed becomes a {@link MessageInvalidError} naming the field, and is dead-lettered with
 * that reason rather than crashing a worker.
 */
import { MessageInvalidError } from '../errors.js';
import { describeValue } from '../internal/validate.js';
import type { NodeId } from './node-id.js';

/** A JSON value (what messages may carry). */
export type JsonValue =
  string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
/** A JSON object. */
export type JsonObject = { [key: string]: JsonValue };

/**
 * Identifies one node of a run's tree without its task: a {@link NodeId} without `taskId` (the
 * fields a node message shares with every node address).
 */
export type NodeRef = Omit<NodeId, 'taskId'>;

/** Starts a task: each listed module runs from its first step. */
export interface TaskModel {
  /** Stable id of the task. */
  taskId: string;
  /**
   * Id of this run. `submit()` and `publish()` give a task without one a fresh id (a new run
   * each time); a task message read from a queue without one runs as `runId = taskId`.
   */
  runId?: string;
  /** The account the task runs for. */
  account: string;
  /** The platform the task runs on. */
  platform: string;
  /** Ids of the modules to run (each must be registered with the engine). */
  modules: string[];
  /** Business metadata handed to every step. */
  metadata?: JsonObject;
  /** Credentials handed to the module; never logged, never put on a queue by the engine. */
  loginInfo?: JsonObject;
}

/** Runs one step of a module from a prefix request (produced by a successful parse). */
export interface ParserTaskModel extends NodeRef {
  /** The task this node belongs to. */
  taskId: string;
  /** The step's input: an item produced by the previous step's parse. */
  data?: JsonValue;
  /** Business metadata, passed through unchanged. */
  metadata?: JsonObject;
  /** The retry epoch: 0 for a first run, n for the n-th retry of a failed node. @defaultValue 0 */
  epoch?: number;
  /**
   * Routes without a de-duplication key on the path from the module's first node to this one
   * (checked against the module's `maxRouteDepth`). @defaultValue 0
   */
  routeDepth?: number;
}

/** The error part of an {@link ErrorTaskModel}. */
export interface ChainErrorInfo {
  /** Human-readable message. */
  message: string;
  /** A code, when the error had one. */
  code?: string;
  /** Stable hash identifying this failure (for emit-at-most-once). */
  hash: string;
  /** Whether the failure may succeed on retry. @defaultValue true */
  retryable?: boolean;
  /** Wait at least this long (ms) before the retry, e.g. from a Retry-After header. */
  retryAfterMs?: number;
}

/** A step failed: stay on the current step, keep module, step and prefix. */
export interface ErrorTaskModel extends NodeRef {
  /** The task this node belongs to. */
  taskId: string;
  /** Always true: the retry runs the same step again. */
  stayCurrentStep: true;
  /** What failed. */
  error: ChainErrorInfo;
  /** How many times this node has failed so far (1 for the first failure). */
  attempt: number;
  /** The step's input, kept so the retry can run the step again. */
  data?: JsonValue;
  /** Business metadata, passed through unchanged. */
  metadata?: JsonObject;
  /** The failed node's route depth, kept for its retry. @defaultValue 0 */
  routeDepth?: number;
}

/** A message as it travels on a queue: a kind tag and a body. */
export type ChainMessage =
  | {
      /** A TaskModel. */
      kind: 'task';
      /** The task. */
      body: TaskModel;
    }
  | {
      /** A ParserTaskModel. */
      kind: 'parser_task';
      /** The node to run. */
      body: ParserTaskModel;
    }
  | {
      /** An ErrorTaskModel. */
      kind: 'error_task';
      /** The failed node. */
      body: ErrorTaskModel;
    };

/** The one normalised input every message becomes at the ingress. */
export type ChainInput =
  | {
      /** A task to start. */
      kind: 'task';
      /** The task, with its run id filled in. */
      task: Required<Pick<TaskModel, 'runId'>> & TaskModel;
    }
  | {
      /** A node to run. */
      kind: 'parser_task';
      /** The node. */
      node: ParserTaskModel;
    }
  | {
      /** A failed node. */
      kind: 'error_task';
      /** The failure. */
      node: ErrorTaskModel;
    };

/** Current wire format version of {@link ChainMessage}. */
export const MESSAGE_VERSION = 1;

const MAX_ID_LENGTH = 1024;

class Reader {
  constructor(
    readonly where: string,
    readonly obj: Record<string, unknown>,
  ) {}

  fail(field: string, expected: string, value: unknown): never {
    // login info is a secret: its values are never echoed, only their type
    const got = /^loginInfo\b/.test(field)
      ? `a value of type ${value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value} (not shown: login info)`
      : describeValue(value);
    throw new MessageInvalidError(
      `${this.where}: expected \`${field}\` to be ${expected}, got ${got}`,
      {
        context: { field },
      },
    );
  }

  id(field: string): string {
    const v = this.obj[field];
    if (typeof v !== 'string' || v.length === 0 || v.length > MAX_ID_LENGTH) {
      this.fail(field, `a non-empty string of at most ${MAX_ID_LENGTH} characters`, v);
    }
    return v;
  }

  string(field: string, { optional = false, allowEmpty = true } = {}): string | undefined {
    const v = this.obj[field];
    if (v === undefined && optional) return undefined;
    if (typeof v !== 'string' || (!allowEmpty && v.length === 0) || v.length > 64 * 1024) {
      this.fail(field, allowEmpty ? 'a string' : 'a non-empty string', v);
    }
    return v;
  }

  stepIdx(field = 'stepIdx'): number {
    const v = this.obj[field];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 10_000) {
      this.fail(field, 'an integer from 0 to 10000', v);
    }
    return v;
  }

  nonNegativeInt(field: string): number {
    const v = this.obj[field];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
      this.fail(field, 'an integer >= 0', v);
    return v;
  }

  positiveInt(field: string): number {
    const v = this.obj[field];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)
      this.fail(field, 'an integer >= 1', v);
    return v;
  }

  object(field: string): JsonObject | undefined {
    const v = this.obj[field];
    if (v === undefined) return undefined;
    if (!isPlainObject(v)) this.fail(field, 'a plain JSON object', v);
    assertJson(this, field, v, 0);
    return v as JsonObject;
  }

  json(field: string): JsonValue | undefined {
    const v = this.obj[field];
    if (v === undefined) return undefined;
    assertJson(this, field, v, 0);
    return v as JsonValue;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * Whether `v` is JSON that {@link assertJson} accepts: the same checks without the paths it
 * names a failure with (a valid value, the common case, builds no text).
 */
function isJson(v: unknown, depth: number): boolean {
  if (depth > 64) return false;
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return true;
  if (typeof v === 'number') return Number.isFinite(v);
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (!isJson(v[i], depth + 1)) return false;
    return true;
  }
  if (isPlainObject(v)) {
    const keys = Object.keys(v);
    for (let i = 0; i < keys.length; i++) if (!isJson(v[keys[i]!], depth + 1)) return false;
    return true;
  }
  return false;
}

function assertJson(reader: Reader, field: string, v: unknown, depth: number): void {
  // the walk that names the failing path runs only once a failure is known
  if (depth === 0 && isJson(v, 0)) return;
  if (depth > 64) reader.fail(field, 'JSON nested at most 64 levels deep', '[too deep]');
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) reader.fail(field, 'JSON (finite numbers only)', v);
    return;
  }
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) assertJson(reader, `${field}[${i}]`, v[i], depth + 1);
    return;
  }
  if (isPlainObject(v)) {
    for (const [k, item] of Object.entries(v)) assertJson(reader, `${field}.${k}`, item, depth + 1);
    return;
  }
  reader.fail(field, 'a JSON value', v);
}

function readNode(reader: Reader): ParserTaskModel {
  const node: ParserTaskModel = {
    taskId: reader.id('taskId'),
    runId: reader.id('runId'),
    account: reader.id('account'),
    platform: reader.id('platform'),
    moduleId: reader.id('moduleId'),
    stepIdx: reader.stepIdx(),
    prefixRequest: reader.string('prefixRequest') as string,
  };
  const data = reader.json('data');
  if (data !== undefined) node.data = data;
  const metadata = reader.object('metadata');
  if (metadata !== undefined) node.metadata = metadata;
  if (reader.obj.epoch !== undefined) node.epoch = reader.nonNegativeInt('epoch');
  if (reader.obj.routeDepth !== undefined) node.routeDepth = reader.nonNegativeInt('routeDepth');
  return node;
}

/**
 * A task's login info: what a getter, a Proxy trap or a toJSON of it throws is never echoed nor
 * kept as the cause (it may quote the secret); only the field is named.
 */
function readLoginInfo(r: Reader): JsonObject | undefined {
  try {
    return r.object('loginInfo');
  } catch (error) {
    if (error instanceof MessageInvalidError) throw error;
    throw new MessageInvalidError(
      `${r.where}: \`loginInfo\` could not be read (not shown: login info)`,
      { context: { field: 'loginInfo' } },
    );
  }
}

/**
 * Validates and normalises one message — an object or its JSON text — into a
 * {@link ChainInput}. Never throws anything but {@link MessageInvalidError}.
 *
 * @throws {@link MessageInvalidError} naming the first invalid field.
 * @example
 * ```ts
 * const input = normalizeMessage({ kind: 'task', body: { taskId: 't1', account: 'a', platform: 'web', modules: ['shop'] } });
 * ```
 */
export function normalizeMessage(raw: unknown): ChainInput {
  try {
    return normalize(raw);
  } catch (error) {
    if (error instanceof MessageInvalidError) throw error;
    // a getter, a Proxy trap or a toJSON that throws: the message cannot be read
    let reason: string;
    try {
      reason = error instanceof Error ? error.message : String(error);
    } catch {
      reason = 'unknown error';
    }
    throw new MessageInvalidError(`message could not be read: ${reason}`, {
      cause: error,
      context: { field: 'message' },
    });
  }
}

function normalize(raw: unknown): ChainInput {
  let value = raw;
  if (typeof raw === 'string' || raw instanceof Uint8Array) {
    const text = typeof raw === 'string' ? raw : Buffer.from(raw).toString('utf8');
    try {
      value = JSON.parse(text) as unknown;
    } catch (error) {
      throw new MessageInvalidError(`message is not valid JSON: ${(error as Error).message}`, {
        cause: error,
        context: { field: 'message' },
      });
    }
  }
  if (!isPlainObject(value)) {
    throw new MessageInvalidError(`expected a message object, got ${describeValue(value)}`, {
      context: { field: 'message' },
    });
  }
  const kind = value.kind;
  const body = value.body;
  if (!isPlainObject(body)) {
    throw new MessageInvalidError(`expected \`body\` to be an object, got ${describeValue(body)}`, {
      context: { field: 'body' },
    });
  }
  switch (kind) {
    case 'task': {
      const r: Reader = new Reader('task message', body);
      const taskId = r.id('taskId');
      const runId = body.runId === undefined ? taskId : r.id('runId');
      const modules = body.modules;
      if (!Array.isArray(modules) || modules.length === 0)
        r.fail('modules', 'a non-empty array of module ids', modules);
      const seen = new Set<string>();
      for (let i = 0; i < modules.length; i++) {
        const m = modules[i] as unknown;
        if (typeof m !== 'string' || m.length === 0 || m.length > MAX_ID_LENGTH) {
          r.fail(`modules[${i}]`, 'a non-empty string', m);
        }
        if (seen.has(m)) r.fail(`modules[${i}]`, 'a module id listed once', m);
        seen.add(m);
      }
      const task: ChainInput & { kind: 'task' } = {
        kind: 'task',
        task: {
          taskId,
          runId,
          account: r.id('account'),
          platform: r.id('platform'),
          modules: [...seen],
        },
      };
      const metadata = r.object('metadata');
      if (metadata !== undefined) task.task.metadata = metadata;
      const loginInfo = readLoginInfo(r);
      if (loginInfo !== undefined) task.task.loginInfo = loginInfo;
      return task;
    }
    case 'parser_task':
      return { kind: 'parser_task', node: readNode(new Reader('parser_task message', body)) };
    case 'error_task': {
      const r: Reader = new Reader('error_task message', body);
      const node = readNode(r);
      if (body.stayCurrentStep !== true) r.fail('stayCurrentStep', 'true', body.stayCurrentStep);
      const error = body.error;
      if (!isPlainObject(error)) r.fail('error', 'an object', error);
      const er: Reader = new Reader('error_task message error', error);
      const info: ChainErrorInfo = {
        message: er.string('message') as string,
        hash: er.id('hash'),
      };
      const code = er.string('code', { optional: true });
      if (code !== undefined) info.code = code;
      if (error.retryable !== undefined) {
        if (typeof error.retryable !== 'boolean')
          er.fail('retryable', 'a boolean', error.retryable);
        info.retryable = error.retryable;
      }
      if (error.retryAfterMs !== undefined) info.retryAfterMs = er.nonNegativeInt('retryAfterMs');
      return {
        kind: 'error_task',
        node: { ...node, stayCurrentStep: true, error: info, attempt: r.positiveInt('attempt') },
      };
    }
    default:
      throw new MessageInvalidError(
        `expected \`kind\` to be one of 'task', 'parser_task', 'error_task', got ${describeValue(kind)}`,
        { context: { field: 'kind' } },
      );
  }
}

/** Encodes a message for a queue (JSON text with the wire version). */
export function encodeMessage(message: ChainMessage): string {
  return JSON.stringify({ v: MESSAGE_VERSION, ...message });
}
