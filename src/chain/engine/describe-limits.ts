/**
 * The download limits the engine logs once at start.
 * @internal
 */
import type { ModuleDefinition } from '../module.js';
import { RateLimiter, type RateLimiterOptions } from '../../rate-limit/index.js';
import { DEFAULT_GLOBAL, DEFAULT_PER_KEY } from '../../rate-limit/options.js';

/**
 * The download limits in force, one line per bucket (`global`, `per module`, each module with
 * its own): what `start()` logs, so that a slow crawl is seen to be a limit, not the engine.
 */
export function describeLimits(
  option: unknown,
  modules: ReadonlyMap<string, ModuleDefinition>,
  moduleOverrides: Record<string, { rate: number; intervalMs?: number; burst?: number }>,
): Record<string, string> {
  if (option instanceof RateLimiter) return { downloads: 'the RateLimiter passed as `rateLimit`' };
  const base = (option ?? {}) as RateLimiterOptions;
  const bucket = (b: { rate: number; intervalMs?: number; burst?: number } | false): string =>
    b === false
      ? 'none'
      : `${b.rate} per ${b.intervalMs ?? 1000} ms${b.burst !== undefined ? `, burst ${b.burst}` : ''}`;
  const out: Record<string, string> = {
    global: bucket(base.global === undefined ? DEFAULT_GLOBAL : base.global),
    per_module: bucket(base.perKey === undefined ? DEFAULT_PER_KEY : base.perKey),
  };
  const own = { ...(base.overrides ?? {}), ...moduleOverrides };
  for (const id of modules.keys()) if (own[id]) out[`module ${id}`] = bucket(own[id]);
  return out;
}
