/**
 * PluginCache against a simple reference model: same answers for random sequences of
 * get / set / getOrCompute / invalidate / invalidatePlugin / advance-time.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PluginCache } from '../../../src/index.js';
import { ManualClock } from '../../../src/internal/clock.js';

interface ModelEntry {
  value: number;
  created: number;
  touched: number;
}

class Model {
  /** most recent last */
  order: string[] = [];
  entries = new Map<string, ModelEntry>();
  constructor(
    readonly ttl: number,
    readonly tti: number,
    readonly max: number,
  ) {}
  id(p: string, k: string): string {
    return `${p}\u0001${k}`;
  }
  touch(id: string): void {
    this.order = this.order.filter((x) => x !== id);
    this.order.push(id);
  }
  drop(id: string): void {
    this.entries.delete(id);
    this.order = this.order.filter((x) => x !== id);
  }
  get(p: string, k: string, now: number): number | undefined {
    const id = this.id(p, k);
    const e = this.entries.get(id);
    if (!e) return undefined;
    if (e.created + this.ttl <= now || e.touched + this.tti <= now) {
      this.drop(id);
      return undefined;
    }
    e.touched = now;
    this.touch(id);
    return e.value;
  }
  set(p: string, k: string, value: number, now: number): void {
    const id = this.id(p, k);
    this.entries.set(id, { value, created: now, touched: now });
    this.touch(id);
    while (this.entries.size > this.max) this.drop(this.order[0]!);
  }
  invalidate(p: string, k: string): boolean {
    const id = this.id(p, k);
    if (!this.entries.has(id)) return false;
    this.drop(id);
    return true;
  }
  invalidatePlugin(p: string): number {
    const ids = [...this.entries.keys()].filter((id) => id.startsWith(`${p}\u0001`));
    for (const id of ids) this.drop(id);
    return ids.length;
  }
}

type Op =
  | { t: 'get'; p: string; k: string }
  | { t: 'set'; p: string; k: string; v: number }
  | { t: 'compute'; p: string; k: string; v: number }
  | { t: 'invalidate'; p: string; k: string }
  | { t: 'invalidatePlugin'; p: string }
  | { t: 'advance'; ms: number; edge: 'none' | 'ttl' | 'tti'; delta: number };

const plugin = fc.constantFrom('a', 'b', 'c');
const key = fc.constantFrom('x', 'y', 'z', 'w');
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ t: fc.constant('get' as const), p: plugin, k: key }),
  fc.record({ t: fc.constant('set' as const), p: plugin, k: key, v: fc.nat(100) }),
  fc.record({ t: fc.constant('compute' as const), p: plugin, k: key, v: fc.nat(100) }),
  fc.record({ t: fc.constant('invalidate' as const), p: plugin, k: key }),
  fc.record({ t: fc.constant('invalidatePlugin' as const), p: plugin }),
  fc.record({
    t: fc.constant('advance' as const),
    ms: fc.integer({ min: 0, max: 400 }),
    edge: fc.constantFrom('none' as const, 'ttl' as const, 'tti' as const),
    delta: fc.integer({ min: -1, max: 1 }),
  }),
);

describe('PluginCache (model)', () => {
  it('answers like the reference model', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 50, max: 1_000 }),
        fc.integer({ min: 50, max: 1_000 }),
        fc.integer({ min: 1, max: 6 }),
        fc.array(op, { maxLength: 80 }),
        async (ttl, tti, max, ops) => {
          const clock = new ManualClock(10_000);
          const cache = new PluginCache<number>({ ttlMs: ttl, ttiMs: tti, maxEntries: max, clock });
          const model = new Model(ttl, tti, max);
          let lookups = 0;
          for (const o of ops) {
            const now = clock.now();
            switch (o.t) {
              case 'get':
                lookups++;
                expect(cache.get(o.p, o.k)).toBe(model.get(o.p, o.k, now));
                break;
              case 'set':
                cache.set(o.p, o.k, o.v);
                model.set(o.p, o.k, o.v, now);
                break;
              case 'compute': {
                lookups++;
                const cached = model.get(o.p, o.k, now);
                const got = await cache.getOrCompute(o.p, o.k, () => o.v);
                if (cached === undefined) {
                  model.set(o.p, o.k, o.v, now);
                  expect(got).toBe(o.v);
                } else {
                  expect(got).toBe(cached);
                }
                break;
              }
              case 'invalidate':
                expect(cache.invalidate(o.p, o.k)).toBe(model.invalidate(o.p, o.k));
                break;
              case 'invalidatePlugin':
                expect(cache.invalidatePlugin(o.p)).toBe(model.invalidatePlugin(o.p));
                break;
              case 'advance':
                // land exactly on (or next to) the expiry edges as well as anywhere
                clock.advance(
                  o.edge === 'none' ? o.ms : Math.max(0, (o.edge === 'ttl' ? ttl : tti) + o.delta),
                );
                break;
            }
            const st = cache.stats();
            expect(st.size).toBe(model.entries.size);
            expect(st.size).toBeLessThanOrEqual(max);
            expect(st.hits + st.misses).toBe(lookups);
          }
        },
      ),
      { numRuns: 400 },
    );
  });
});
