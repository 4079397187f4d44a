/**
 * Times the chain state machine: every transition (one Lua script on Redis) reports its latency
 * and, when it fails, the kind of error (its code), through the engine's telemetry. Used only
 * when the engine records metrics.
 */
import type { ChainStateStore } from '../state/index.js';
import type { EngineTelemetry } from './telemetry.js';

/** Wraps `state` so that each call reports its latency and its errors. @internal */
export function timedState(
  state: ChainStateStore,
  telemetry: Pick<EngineTelemetry, 'scriptDone' | 'scriptFailed'>,
): ChainStateStore {
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(state, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property);
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      let fn = wrapped.get(property);
      if (fn === undefined) {
        // the detailed commit is the same transition as commitSuccess: one name for both
        const script = property === 'commitSuccessDetailed' ? 'commitSuccess' : property;
        const call = value as (...args: unknown[]) => unknown;
        const failed = (error: unknown): never => {
          telemetry.scriptFailed(script, errorKind(error));
          throw error;
        };
        // one reaction per call, no async frame: state calls hand back a promise (see dispatcher)
        fn = (...args: unknown[]): Promise<unknown> => {
          const started = performance.now();
          let pending: Promise<unknown>;
          try {
            pending = Promise.resolve(call.apply(target, args));
          } catch (error) {
            pending = Promise.reject(error);
          }
          return pending.then((result) => {
            telemetry.scriptDone(script, performance.now() - started);
            return result;
          }, failed);
        };
        wrapped.set(property, fn);
      }
      return fn;
    },
  });
}

function errorKind(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.length > 0 ? code : 'UNKNOWN';
}
