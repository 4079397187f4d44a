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
import type { AnyRouteTo, RouteTo, TypedModuleInput, TypedStep } from './typed-module.js';

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

/** What `generate` receives; `In` is the step's input type (typed modules infer it). */
export interface StepContext<In = JsonValue | undefined> {
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
  /**
   * The input: what the previous step's parse put in `next`, or a parse routed here with
   * `route` (undefined for the module's first node).
   */
  input: In;
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
export interface ParseContext<In = JsonValue | undefined> extends StepContext<In> {
  /** The request whose response is being parsed (with its id filled in). */
  request: Required<Pick<ChainRequest, 'id' | 'url' | 'method'>> & ChainRequest;
}

/**
 * An input routed to a named step of the module (the same step, an earlier or a later one).
 */
export interface Route<Step extends string = string, In = JsonValue> {
  /** The name of the step that runs the input. */
  step: Step;
  /** The input: that step's `ctx.input`. */
  input?: In;
  /**
   * A de-duplication key, unique within the run and the module (for a crawl, the canonical URL):
   * the first input routed with a key becomes a node; a later one with the same key, from any
   * branch or worker, does not (counted in `stats().deduplicated`, event `InputDeduplicated`).
   * Without a key every route makes a node, up to the module's `maxRouteDepth`.
   */
  key?: string;
}

/**
 * What `parse` returns: `Item` is the type of its items, `Next` of its `next` inputs, `R` of its
 * routes (typed modules infer them).
 */
export interface ParseOutput<Item = JsonValue, Next = JsonValue, R = Route> {
  /** Output items of this step, committed once with the node, then handed to `onItem`. */
  items?: Item[];
  /** Inputs of the next step: each becomes a node of step `stepIdx + 1` from this request. */
  next?: Next[];
  /**
   * Inputs of named steps (any step of the module, this one included): each becomes a node of
   * that step from this request, unless its key was taken.
   */
  route?: R[];
}

/** One step of a module. */
export interface StepDefinition {
  /** Name for logs and metrics, and the target of routes. */
  name: string;
  /** Builds the requests of this node from its input. Throwing here may trigger the fallback. */
  generate(ctx: StepContext): ChainRequest[] | Promise<ChainRequest[]>;
  /** Turns one response into output items, next-step inputs and routes. Throwing fails the node (→ ErrorTaskModel). */
  parse(response: DownloadResult, ctx: ParseContext): ParseOutput | Promise<ParseOutput>;
}

/**
 * A module: ordered steps plus its limits. `Item` is the type of its items and `Id` of its id
 * (a typed module from {@link defineModule} carries both, so `onItem` is typed).
 */
export interface ModuleDefinition<Item = JsonValue, Id extends string = string> {
  /** The type of the module's items (type only: never set). */
  readonly [ITEM_TYPE]?: Item;
  /** Unique id (the `modules` of a TaskModel name these). */
  id: Id;
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

/** `S` when its length is not a literal of 1 to 6 (those lists are typed), else never. */
export type UntypedSteps<S extends readonly unknown[]> = number extends S['length']
  ? S
  : S['length'] extends 1 | 2 | 3 | 4 | 5 | 6
    ? never
    : S;

/** The key of a module's item type (type only). */
export declare const ITEM_TYPE: unique symbol;

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
/** A typed module of 1 step (see {@link defineModule}). */
export function defineModule<Id extends string, N0 extends string, I0 = undefined, T0 = never>(
  definition: TypedModuleInput<Id> & {
    steps: [TypedStep<N0, I0, T0, JsonValue, RouteTo<N0, I0>>];
  },
): ModuleDefinition<T0, Id>;
/** A typed module of 2 steps (see {@link defineModule}). */
export function defineModule<
  Id extends string,
  N0 extends string,
  N1 extends string,
  X0 = never,
  I0 = undefined,
  I1 = X0,
  T0 = never,
  T1 = never,
>(
  definition: TypedModuleInput<Id> & {
    steps: [
      TypedStep<N0, I0, T0, X0, AnyRouteTo<[N0, N1], [I0, I1]>>,
      TypedStep<N1, I1, T1, JsonValue, AnyRouteTo<[N0, N1], [I0, I1]>>,
    ];
  },
): ModuleDefinition<T0 | T1, Id>;
/** A typed module of 3 steps (see {@link defineModule}). */
export function defineModule<
  Id extends string,
  N0 extends string,
  N1 extends string,
  N2 extends string,
  X0 = never,
  I0 = undefined,
  X1 = never,
  I1 = X0,
  I2 = X1,
  T0 = never,
  T1 = never,
  T2 = never,
>(
  definition: TypedModuleInput<Id> & {
    steps: [
      TypedStep<N0, I0, T0, X0, AnyRouteTo<[N0, N1, N2], [I0, I1, I2]>>,
      TypedStep<N1, I1, T1, X1, AnyRouteTo<[N0, N1, N2], [I0, I1, I2]>>,
      TypedStep<N2, I2, T2, JsonValue, AnyRouteTo<[N0, N1, N2], [I0, I1, I2]>>,
    ];
  },
): ModuleDefinition<T0 | T1 | T2, Id>;
/** A typed module of 4 steps (see {@link defineModule}). */
export function defineModule<
  Id extends string,
  N0 extends string,
  N1 extends string,
  N2 extends string,
  N3 extends string,
  X0 = never,
  I0 = undefined,
  X1 = never,
  I1 = X0,
  X2 = never,
  I2 = X1,
  I3 = X2,
  T0 = never,
  T1 = never,
  T2 = never,
  T3 = never,
>(
  definition: TypedModuleInput<Id> & {
    steps: [
      TypedStep<N0, I0, T0, X0, AnyRouteTo<[N0, N1, N2, N3], [I0, I1, I2, I3]>>,
      TypedStep<N1, I1, T1, X1, AnyRouteTo<[N0, N1, N2, N3], [I0, I1, I2, I3]>>,
      TypedStep<N2, I2, T2, X2, AnyRouteTo<[N0, N1, N2, N3], [I0, I1, I2, I3]>>,
      TypedStep<N3, I3, T3, JsonValue, AnyRouteTo<[N0, N1, N2, N3], [I0, I1, I2, I3]>>,
    ];
  },
): ModuleDefinition<T0 | T1 | T2 | T3, Id>;
/** A typed module of 5 steps (see {@link defineModule}). */
export function defineModule<
  Id extends string,
  N0 extends string,
  N1 extends string,
  N2 extends string,
  N3 extends string,
  N4 extends string,
  X0 = never,
  I0 = undefined,
  X1 = never,
  I1 = X0,
  X2 = never,
  I2 = X1,
  X3 = never,
  I3 = X2,
  I4 = X3,
  T0 = never,
  T1 = never,
  T2 = never,
  T3 = never,
  T4 = never,
>(
  definition: TypedModuleInput<Id> & {
    steps: [
      TypedStep<N0, I0, T0, X0, AnyRouteTo<[N0, N1, N2, N3, N4], [I0, I1, I2, I3, I4]>>,
      TypedStep<N1, I1, T1, X1, AnyRouteTo<[N0, N1, N2, N3, N4], [I0, I1, I2, I3, I4]>>,
      TypedStep<N2, I2, T2, X2, AnyRouteTo<[N0, N1, N2, N3, N4], [I0, I1, I2, I3, I4]>>,
      TypedStep<N3, I3, T3, X3, AnyRouteTo<[N0, N1, N2, N3, N4], [I0, I1, I2, I3, I4]>>,
      TypedStep<N4, I4, T4, JsonValue, AnyRouteTo<[N0, N1, N2, N3, N4], [I0, I1, I2, I3, I4]>>,
    ];
  },
): ModuleDefinition<T0 | T1 | T2 | T3 | T4, Id>;
/** A typed module of 6 steps (see {@link defineModule}). */
export function defineModule<
  Id extends string,
  N0 extends string,
  N1 extends string,
  N2 extends string,
  N3 extends string,
  N4 extends string,
  N5 extends string,
  X0 = never,
  I0 = undefined,
  X1 = never,
  I1 = X0,
  X2 = never,
  I2 = X1,
  X3 = never,
  I3 = X2,
  X4 = never,
  I4 = X3,
  I5 = X4,
  T0 = never,
  T1 = never,
  T2 = never,
  T3 = never,
  T4 = never,
  T5 = never,
>(
  definition: TypedModuleInput<Id> & {
    steps: [
      TypedStep<N0, I0, T0, X0, AnyRouteTo<[N0, N1, N2, N3, N4, N5], [I0, I1, I2, I3, I4, I5]>>,
      TypedStep<N1, I1, T1, X1, AnyRouteTo<[N0, N1, N2, N3, N4, N5], [I0, I1, I2, I3, I4, I5]>>,
      TypedStep<N2, I2, T2, X2, AnyRouteTo<[N0, N1, N2, N3, N4, N5], [I0, I1, I2, I3, I4, I5]>>,
      TypedStep<N3, I3, T3, X3, AnyRouteTo<[N0, N1, N2, N3, N4, N5], [I0, I1, I2, I3, I4, I5]>>,
      TypedStep<N4, I4, T4, X4, AnyRouteTo<[N0, N1, N2, N3, N4, N5], [I0, I1, I2, I3, I4, I5]>>,
      TypedStep<
        N5,
        I5,
        T5,
        JsonValue,
        AnyRouteTo<[N0, N1, N2, N3, N4, N5], [I0, I1, I2, I3, I4, I5]>
      >,
    ];
  },
): ModuleDefinition<T0 | T1 | T2 | T3 | T4 | T5, Id>;
/**
 * An untyped module: steps built at run time (an array, not a literal list), or more than six,
 * with inputs and items as `JsonValue`. A literal list of one to six steps takes the typed
 * overloads above, so a step that does not type-check is an error rather than untyped.
 */
export function defineModule<S extends readonly [] | readonly StepDefinition[]>(
  definition: Omit<ModuleDefinition, 'steps'> & { steps: UntypedSteps<S> },
): ModuleDefinition;
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
