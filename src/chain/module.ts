/**
 * How users describe a module: an ordered list of steps, each generating requests from its
 * input and parsing each response into output items and the next step's inputs.
 */
import { ConfigError } from '../errors.js';
import {
  invalid,
  optionalNumber,
  readOptions,
  requireFunction,
  requireString,
} from '../internal/validate.js';
import type { JsonObject, JsonValue } from './messages.js';

/** A request a step wants downloaded. */
export interface ChainRequest {
  /**
   * Stable id of the request; it becomes the `prefixRequest` of the nodes its parse produces.
   * Defaults to `METHOD url` (plus a hash of the body when there is one).
   */
  id?: string;
  /** Absolute URL. */
  url: string;
  /** HTTP method. @defaultValue 'GET' */
  method?: string;
  /** Request headers. */
  headers?: Record<string, string>;
  /** Request body. */
  body?: string;
  /** Anything the parse needs to know about this request. */
  meta?: JsonObject;
}

/** What a downloader returns for a request. */
export interface DownloadResult {
  /** HTTP status. */
  status: number;
  /** Response headers, lower-case names. */
  headers: Record<string, string>;
  /** Response body as text. */
  body: string;
}

/** The task a module runs for, as its steps see it. */
export interface TaskInfo {
  /** The task id. */
  taskId: string;
  /** The run id. */
  runId: string;
  /** The account. */
  account: string;
  /** The platform. */
  platform: string;
  /** Business metadata of the task. */
  metadata: Readonly<JsonObject>;
  /** Credentials bound to the module; never logged. */
  loginInfo: Readonly<JsonObject> | undefined;
}

/** What `generate` receives. */
export interface StepContext {
  /** The task. */
  task: TaskInfo;
  /** The module id. */
  moduleId: string;
  /** The step index, from 0. */
  stepIdx: number;
  /** The step's name. */
  stepName: string;
  /** The request this node came from ('' for the first step). */
  prefixRequest: string;
  /** The input: an item the previous step's parse put in `next` (undefined for the first step). */
  input: JsonValue | undefined;
  /** Aborted when the engine stops or the node's lease is lost. */
  signal: AbortSignal;
  /**
   * A key unique to this attempt of this node (run, node, fencing version): use it to make side
   * effects outside mocra idempotent. The engine's own writes are exactly-once; yours are
   * at-least-once.
   */
  idempotencyKey: string;
}

/** What `parse` receives besides the response. */
export interface ParseContext extends StepContext {
  /** The request whose response is being parsed (with its id filled in). */
  request: Required<Pick<ChainRequest, 'id' | 'url' | 'method'>> & ChainRequest;
}

/**
 * An input routed to a named step of the module (the same step, an earlier or a later one).
 */
export interface Route {
  /** The name of the step that runs the input. */
  step: string;
  /** The input: that step's `ctx.input`. */
  input?: JsonValue;
  /**
   * A de-duplication key, unique within the run and the module (for a crawl, the canonical URL):
   * the first input routed with a key becomes a node; a later one with the same key, from any
   * branch or worker, does not (counted in `stats().deduplicated`, event `InputDeduplicated`).
   * Without a key every route makes a node, up to the module's `maxRouteDepth`.
   */
  key?: string;
}

/** What `parse` returns. */
export interface ParseOutput {
  /** Output items of this step, committed once with the node, then handed to `onItem`. */
  items?: JsonValue[];
  /** Inputs of the next step: each becomes a node of step `stepIdx + 1` from this request. */
  next?: JsonValue[];
  /**
   * Inputs of named steps (any step of the module, this one included): each becomes a node of
   * that step from this request, unless its key was taken.
   */
  route?: Route[];
}

/** One step of a module. */
export interface StepDefinition {
  /** Name for logs and metrics. */
  name: string;
  /** Builds the requests of this node from its input. Throwing here may trigger the fallback. */
  generate: (ctx: StepContext) => ChainRequest[] | Promise<ChainRequest[]>;
  /** Turns one response into output items and next-step inputs. Throwing fails the node (→ ErrorTaskModel). */
  parse: (response: DownloadResult, ctx: ParseContext) => ParseOutput | Promise<ParseOutput>;
}

/** A module: ordered steps plus its limits. */
export interface ModuleDefinition {
  /** Unique id (the `modules` of a TaskModel name these). */
  id: string;
  /** The steps, run in order. */
  steps: StepDefinition[];
  /** Download rate for this module, requests per `intervalMs`. Omit to use the engine default. */
  rateLimit?: {
    /** Requests per `intervalMs`. */
    rate: number;
    /** The interval in ms. @defaultValue 1000 */
    intervalMs?: number;
    /** Requests allowed at once after an idle period. @defaultValue `rate` */
    burst?: number;
  };
  /** Failures of this module before it is terminated (boundary `>=`). Omit for the engine default. */
  errorThreshold?: number;
  /** Most concurrent downloads of this module. Omit for no per-module cap. */
  concurrency?: number;
  /**
   * Most routes without a de-duplication key on one path of the module's tree (a pagination
   * without keys is one route per page). A parse routing past it fails its node with
   * `ROUTE_INVALID`, and the node's ErrorTaskModel is dead-lettered: a loop ends there.
   * Routes with a key do not count. @defaultValue 1000
   */
  maxRouteDepth?: number;
}

/** The default {@link ModuleDefinition.maxRouteDepth}. */
export const DEFAULT_MAX_ROUTE_DEPTH = 1000;

const MODULE_KEYS = [
  'id',
  'steps',
  'rateLimit',
  'errorThreshold',
  'concurrency',
  'maxRouteDepth',
] as const;
const STEP_KEYS = ['name', 'generate', 'parse'] as const;

/**
 * Validates a module definition and returns it frozen. Use it to get types and early errors.
 *
 * @throws {@link ConfigError} naming the first invalid field.
 * @example
 * ```ts
 * const shop = defineModule({
 *   id: 'shop',
 *   steps: [
 *     { name: 'list', generate: () => [{ url: `${base}/list` }], parse: (r) => ({ next: JSON.parse(r.body).ids }) },
 *     { name: 'detail', generate: (ctx) => [{ url: `${base}/item/${ctx.input}` }], parse: (r) => ({ items: [JSON.parse(r.body)] }) },
 *   ],
 * });
 * ```
 */
export function defineModule(definition: ModuleDefinition): ModuleDefinition {
  const where = 'defineModule';
  const d = readOptions(where, definition, MODULE_KEYS, 'definition');
  const id = requireString(where, 'id', d.id);
  const w = `defineModule(${JSON.stringify(id)})`;
  if (!Array.isArray(d.steps) || d.steps.length === 0)
    invalid(w, 'steps', 'a non-empty array', d.steps);
  const names = new Set<string>();
  const steps = d.steps.map((step, i) => {
    const field = `steps[${i}]`;
    const s = readOptions(w, step, STEP_KEYS, field);
    const name = requireString(w, `${field}.name`, s.name);
    if (names.has(name)) {
      throw new ConfigError(`${w}: step name ${JSON.stringify(name)} is used twice`, {
        context: { field: `${field}.name` },
      });
    }
    names.add(name);
    return Object.freeze({
      name,
      generate: requireFunction<StepDefinition['generate']>(w, `${field}.generate`, s.generate),
      parse: requireFunction<StepDefinition['parse']>(w, `${field}.parse`, s.parse),
    });
  });
  const out: ModuleDefinition = { id, steps };
  if (d.rateLimit !== undefined) {
    const r = readOptions(w, d.rateLimit, ['rate', 'intervalMs', 'burst'], 'rateLimit');
    const rate = optionalNumber(w, 'rateLimit.rate', r.rate, undefined, { greaterThan: 0 });
    if (rate === undefined) invalid(w, 'rateLimit.rate', 'a finite number > 0', r.rate);
    const limit: NonNullable<ModuleDefinition['rateLimit']> = { rate };
    const intervalMs = optionalNumber(w, 'rateLimit.intervalMs', r.intervalMs, undefined, {
      integer: true,
      min: 1,
    });
    if (intervalMs !== undefined) limit.intervalMs = intervalMs;
    const burst = optionalNumber(w, 'rateLimit.burst', r.burst, undefined, {
      integer: true,
      min: 1,
    });
    if (burst !== undefined) limit.burst = burst;
    out.rateLimit = Object.freeze(limit);
  }
  const threshold = optionalNumber(w, 'errorThreshold', d.errorThreshold, undefined, {
    integer: true,
    min: 1,
  });
  if (threshold !== undefined) out.errorThreshold = threshold;
  const concurrency = optionalNumber(w, 'concurrency', d.concurrency, undefined, {
    integer: true,
    min: 1,
  });
  if (concurrency !== undefined) out.concurrency = concurrency;
  const depth = optionalNumber(w, 'maxRouteDepth', d.maxRouteDepth, undefined, {
    integer: true,
    min: 0,
  });
  if (depth !== undefined) out.maxRouteDepth = depth;
  Object.freeze(steps);
  return Object.freeze(out);
}
