/**
 * The backoff of a retry policy: the delay before retry `n` (1-based), its jitter, and the
 * error's retry-after hint.
 * @internal
 */
import { MAX_TIMER_DELAY_MS } from '../internal/clock.js';
import { retryAfterHint } from './classify.js';
import type { JitterKind } from './retry-policy.js';

/** What the delay depends on (a policy's resolved options). @internal */
export interface Backoff {
  initialDelayMs: number;
  maxDelayMs: number;
  multiplier: number;
  jitter: number;
  jitterKind: JitterKind;
  maxRetryAfterMs: number;
}

/**
 * `min(initialDelayMs × multiplier^(n-1), maxDelayMs)`, jittered as `jitterKind` says
 * (`previousMs` feeds decorrelated jitter), at least the error's `retryAfterMs` hint (capped by
 * `maxRetryAfterMs`), rounded, always below 2^31 ms. Arguments are not checked.
 * @internal
 */
export function backoffDelay(o: Backoff, n: number, error?: unknown, previousMs?: number): number {
  const base = Math.min(o.initialDelayMs * o.multiplier ** (n - 1), o.maxDelayMs);
  let delay: number;
  switch (o.jitterKind) {
    case 'none':
      delay = base;
      break;
    case 'full':
      delay = Math.random() * base;
      break;
    case 'half':
      delay = base / 2 + (Math.random() * base) / 2;
      break;
    case 'decorrelated': {
      const prev = previousMs ?? o.initialDelayMs;
      const upper = Math.max(o.initialDelayMs, prev * 3);
      delay = Math.min(o.maxDelayMs, o.initialDelayMs + Math.random() * (upper - o.initialDelayMs));
      break;
    }
    default:
      delay = base * (1 + o.jitter * (2 * Math.random() - 1));
  }
  const hint = retryAfterHint(error);
  if (hint !== undefined) delay = Math.max(delay, Math.min(hint, o.maxRetryAfterMs));
  return Math.min(Math.max(0, Math.round(delay)), MAX_TIMER_DELAY_MS);
}
