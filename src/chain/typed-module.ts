/**
 * The types of a typed module: {@link defineModule} infers each step's input type (from the
 * previous step's `next`, or from the first step's `ctx` annotation), the type of each step's
 * items, and checks every route against its target step's name and input type.
 */
import type { JsonValue } from './messages.js';
import type {
  ChainRequest,
  DownloadResult,
  ModuleDefinition,
  ParseContext,
  ParseOutput,
  StepContext,
} from './module.js';

/** A route to step `Name`, whose input must be that step's input type `In`. */
export interface RouteTo<Name extends string, In> {
  /** The target step's name. */
  step: NoInfer<Name>;
  /** The target step's input. */
  input?: NoInfer<In>;
  /** A de-duplication key, unique within the run and the module. */
  key?: string;
}

/**
 * One step of a typed module: `Name` its name, `In` its input (`ctx.input`), `Item` its items,
 * `Next` its `next` inputs (the following step's input), `R` the routes it may return.
 */
export interface TypedStep<Name extends string, In, Item, Next, R> {
  /** Name for logs and metrics, and the target of routes. */
  name: Name;
  /** Builds the requests of this node from its input. */
  generate: (ctx: StepContext<In>) => ChainRequest[] | Promise<ChainRequest[]>;
  /** Turns one response into items, next-step inputs and routes. */
  parse: (
    response: DownloadResult,
    ctx: ParseContext<In>,
  ) => ParseOutput<Item, Next, R> | Promise<ParseOutput<Item, Next, R>>;
}

/** A typed module's fields besides its steps (its id typed as `Id`). */
export type TypedModuleInput<Id extends string> = Omit<
  ModuleDefinition<JsonValue, Id>,
  'steps' | 'id'
> & {
  /** Unique id (the `modules` of a TaskModel name these). */
  id: Id;
};

/** The item type of a module from {@link defineModule}. */
export type ItemOf<M> = M extends ModuleDefinition<infer Item, string> ? Item : never;

/**
 * Every route of a typed module: a {@link RouteTo} for each step, `Names` the steps' names and
 * `Inputs` their input types, index by index.
 */
export type AnyRouteTo<Names extends readonly string[], Inputs extends readonly unknown[]> = {
  [K in keyof Names]: RouteTo<Names[K] & string, K extends keyof Inputs ? Inputs[K] : never>;
}[number];
