import { describe, expect, it } from 'vitest';
import { coarseMonotonicClock } from '../../src/internal/clock.js';

describe('coarseMonotonicClock', () => {
  it('serves one reading to the reads of one synchronous run, at most 1,024 times', () => {
    const first = coarseMonotonicClock.now();
    expect(coarseMonotonicClock.now()).toBe(first);
    let reads = 1;
    let value = first;
    // performance.now() moves on between real reads; the cached value must be re-read by then
    while (value === first && reads < 5_000) {
      value = coarseMonotonicClock.now();
      reads++;
    }
    expect(value).toBeGreaterThan(first);
    expect(reads).toBeLessThanOrEqual(1_025);
  });

  it('reads the real clock again once its millisecond timer has run', async () => {
    const before = coarseMonotonicClock.now();
    await new Promise((resolve) => setTimeout(resolve, 5));
    const after = coarseMonotonicClock.now();
    expect(after).toBeGreaterThanOrEqual(before + 4);
    // a fresh reading, not the one cached before the wait (slack for a GC pause between the reads)
    expect(performance.now() - after).toBeLessThan(4);
  });
});
