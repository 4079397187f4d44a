/**
 * Where a parse's inputs go: `next` to the following step (as always), `route` to any named step
 * of the module, each with an optional de-duplication key. Checks every route (a known step, a
 * string key, the module's `maxRouteDepth`) and names each child node: step and prefix request
 * (`<request id>#<i>` for `next`, `<request id>#r<j>` for `route`).
 */
import { RouteError } from '../../errors.js';
import { describeValue } from '../../internal/validate.js';
import type { JsonValue } from '../messages.js';
import { DEFAULT_MAX_ROUTE_DEPTH, type ModuleDefinition, type ParseOutput } from '../module.js';

/** One input a parse produced, and the node it becomes. @internal */
export interface ChildInput {
  /** The step of the node. */
  stepIdx: number;
  /** Its prefix request. */
  prefixRequest: string;
  /** Its input (absent: `undefined`). */
  input: JsonValue | undefined;
  /** Its de-duplication key, when routed with one. */
  key?: string;
  /** Routes without a key on its path. */
  routeDepth: number;
}

/** Where a route index sits in a prefix request: `<request id>#r<j>`. @internal */
export const ROUTE_MARK = 'r';

/**
 * The child nodes of one parsed request, in order (`next` first, then `route`).
 * @throws {@link RouteError} naming the first route that may not be followed.
 * @internal
 */
export function childInputs(
  module: ModuleDefinition,
  stepIdx: number,
  routeDepth: number,
  requestId: string,
  out: ParseOutput,
): ChildInput[] {
  const children: ChildInput[] = [];
  const lastStep = stepIdx === module.steps.length - 1;
  if (!lastStep) {
    (out.next ?? []).forEach((input, i) =>
      children.push({
        stepIdx: stepIdx + 1,
        prefixRequest: `${requestId}#${i}`,
        input,
        routeDepth,
      }),
    );
  }
  const routes: unknown = out.route;
  if (routes === undefined) return children;
  const where = `module ${JSON.stringify(module.id)}`;
  if (!Array.isArray(routes))
    throw new RouteError(`${where}: parse returned \`route\` that is not an array`, {
      context: { field: 'route' },
    });
  const maxDepth = module.maxRouteDepth ?? DEFAULT_MAX_ROUTE_DEPTH;
  routes.forEach((route: unknown, j) => {
    const field = `route[${j}]`;
    if (route === null || typeof route !== 'object' || Array.isArray(route))
      throw new RouteError(`${where}: \`${field}\` must be { step, input?, key? }`, {
        context: { field },
      });
    const r = route as Record<string, unknown>;
    const target = module.steps.findIndex((s) => s.name === r.step);
    if (target < 0) {
      throw new RouteError(
        `${where}: \`${field}.step\` names no step of the module: got ${describeValue(r.step)}, expected one of ${module.steps.map((s) => JSON.stringify(s.name)).join(', ')}`,
        { context: { field: `${field}.step` } },
      );
    }
    if (r.key !== undefined && (typeof r.key !== 'string' || r.key.length === 0)) {
      throw new RouteError(
        `${where}: \`${field}.key\` must be a non-empty string, got ${describeValue(r.key)}`,
        { context: { field: `${field}.key` } },
      );
    }
    const input = r.input;
    if (typeof input === 'function' || typeof input === 'symbol' || typeof input === 'bigint')
      throw new RouteError(`${where}: \`${field}.input\` is not JSON`, {
        context: { field: `${field}.input` },
      });
    const depth = r.key === undefined ? routeDepth + 1 : routeDepth;
    if (depth > maxDepth) {
      throw new RouteError(
        `${where}: \`${field}\` to step ${JSON.stringify(r.step)} without a key goes ${depth} routes deep, past maxRouteDepth ${maxDepth} (a loop? give the route a key)`,
        { context: { field } },
      );
    }
    const child: ChildInput = {
      stepIdx: target,
      prefixRequest: `${requestId}#${ROUTE_MARK}${j}`,
      input: input as JsonValue | undefined,
      routeDepth: depth,
    };
    if (r.key !== undefined) child.key = r.key as string;
    children.push(child);
  });
  return children;
}

/**
 * The input a child got from its parent's parse output, found again by the child's prefix
 * request (for the fallback); undefined when the output has no such input.
 * @internal
 */
export function inputAt(out: ParseOutput, prefixRequest: string): JsonValue | undefined {
  const cut = prefixRequest.lastIndexOf('#');
  if (cut <= 0) return undefined;
  const tail = prefixRequest.slice(cut + 1);
  const routed = tail.startsWith(ROUTE_MARK);
  const index = Number(routed ? tail.slice(ROUTE_MARK.length) : tail);
  if (!Number.isInteger(index) || index < 0) return undefined;
  if (!routed) return out.next?.[index];
  const route = out.route?.[index] as { input?: JsonValue } | undefined;
  return route?.input;
}

/** The request id inside a child's prefix request ('' when it has none). @internal */
export function parentRequestId(prefixRequest: string): string {
  const cut = prefixRequest.lastIndexOf('#');
  return cut > 0 ? prefixRequest.slice(0, cut) : '';
}
