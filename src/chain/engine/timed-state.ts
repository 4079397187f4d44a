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
        const script = property;
        const call = value as (...args: unknown[]) => unknown;
        fn = async (...args: unknown[]): Promise<unknown> => {
          const started = performance.now();
          try {
            const result = await call.apply(target, args);
            telemetry.scriptDone(script, performance.now() - started);
            return result;
          } catch (error) {
            telemetry.scriptFailed(script, errorKind(error));
            throw error;
          }
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
