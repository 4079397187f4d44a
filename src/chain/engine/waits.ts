/**
 * The engine's waits: for a promise within a time limit, and for a condition to hold.
 */
import { unrefTimeout } from '../../internal/clock.js';

/** Whether `promise` settled within `ms` (it may go on after that; a rejection counts as settled). */
export async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = unrefTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves once `condition()` holds (checked every 5 ms; `keepAlive` refs the timer). */
export function until(condition: () => boolean, { keepAlive = false } = {}): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (condition()) resolve();
      else if (keepAlive) setTimeout(check, 5);
      else unrefTimeout(check, 5);
    };
    check();
  });
}
