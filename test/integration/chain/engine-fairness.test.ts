/**
 * An in-process run whose downloads resolve without I/O must leave the event loop its turn:
 * timers fire while it runs.
 */
import { describe, expect, it } from 'vitest';
import { createChainEngine, defineModule } from '../../../src/index.js';

describe('chain engine: fair to the event loop', () => {
  it('a 2,021-node in-process run with instant downloads lets a 100 ms interval fire throughout', async () => {
    const engine = createChainEngine({
      modules: [
        defineModule({
          id: 'm',
          steps: [
            {
              name: 'root',
              generate: () => [{ url: 'http://x/root' }],
              parse: () => ({ next: Array.from({ length: 20 }, (_, i) => i) }),
            },
            {
              name: 'list',
              generate: (c) => [{ url: `http://x/list/${String(c.input)}` }],
              parse: (_r, c) => ({
                next: Array.from({ length: 100 }, (_, i) => `${String(c.input)}-${i}`),
              }),
            },
            {
              name: 'leaf',
              generate: (c) => [{ url: `http://x/${String(c.input)}` }],
              parse: () => ({ items: [1] }),
            },
          ],
        }),
      ],
      // answers at once: no I/O anywhere in the run
      downloader: async () => ({ status: 200, headers: {}, body: '' }),
      rateLimit: { global: false, perKey: { rate: 1_000_000, burst: 1_000_000 } },
    });
    let ticks = 0;
    let last = performance.now();
    let longestGap = 0;
    const interval = setInterval(() => {
      const now = performance.now();
      longestGap = Math.max(longestGap, now - last);
      last = now;
      ticks++;
    }, 100);
    const started = performance.now();
    try {
      await engine.start();
      await engine.submit({ taskId: 't', account: 'a', platform: 'p', modules: ['m'] });
      await engine.onIdle();
    } finally {
      clearInterval(interval);
    }
    const elapsed = performance.now() - started;
    longestGap = Math.max(longestGap, performance.now() - last);
    expect(engine.stats().items).toBe(2000);
    await engine.stop();
    // starved, the interval fires once, at the end (its one gap is the whole run); given its
    // turn, it fires all along and no gap comes near the length of the run
    expect(ticks).toBeGreaterThanOrEqual(3);
    expect(longestGap).toBeLessThan(elapsed / 2);
  });
});
