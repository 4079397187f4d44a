/**
 * WriteCoalescer over random sequences of writes, stream swaps, destroyed streams and tick ends:
 * every cork is matched by exactly one uncork, no corked group exceeds the bound, nothing stays
 * corked past the end of a tick, and every write reaches the stream in the order it was made.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WriteCoalescer, type CorkableStream } from '../../../src/store/write-coalescer.js';

/** A socket that records what the peer would see: writes leave only while uncorked. */
class FakeStream implements CorkableStream {
  corked = 0;
  corks = 0;
  uncorks = 0;
  destroyed = false;
  pending: number[] = [];
  /** Groups of writes as they left the socket. */
  sent: number[][] = [];
  readonly name: string;
  constructor(name: string) {
    this.name = name;
  }
  cork(): void {
    this.corked++;
    this.corks++;
  }
  uncork(): void {
    if (this.corked === 0) throw new Error(`${this.name}: uncork without cork`);
    this.corked--;
    this.uncorks++;
    if (this.corked === 0 && this.pending.length > 0) {
      this.sent.push(this.pending);
      this.pending = [];
    }
  }
  write(n: number): void {
    if (this.corked > 0) this.pending.push(n);
    else this.sent.push([n]);
  }
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

type Op = { k: 'write'; stream: 0 | 1 } | { k: 'tick' } | { k: 'destroy'; stream: 0 | 1 };
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      k: fc.constant('write' as const),
      stream: fc.constantFrom(0 as const, 1 as const),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ k: 'tick' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('destroy' as const),
      stream: fc.constantFrom(0 as const, 1 as const),
    }),
  },
);

describe('WriteCoalescer', () => {
  it('pairs corks with uncorks, bounds groups, keeps order, and holds nothing past a tick', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 6 }),
        fc.array(opArb, { maxLength: 60 }),
        async (max, ops) => {
          const streams = [new FakeStream('a'), new FakeStream('b')];
          const coalescer = new WriteCoalescer(max);
          const written: number[][] = [[], []];
          let seq = 0;
          for (const op of ops) {
            if (op.k === 'tick') {
              await tick();
              for (const s of streams) expect(s.corked, `${s.name} corked after a tick`).toBe(0);
            } else if (op.k === 'destroy') {
              streams[op.stream]!.destroyed = true;
            } else {
              const s = streams[op.stream]!;
              coalescer.beforeWrite(s);
              s.write(seq);
              written[op.stream]!.push(seq++);
            }
            for (const s of streams) {
              expect(s.corked).toBeLessThanOrEqual(1);
              expect(s.pending.length).toBeLessThanOrEqual(max);
            }
          }
          await tick();
          streams.forEach((s, i) => {
            expect(s.corked).toBe(0);
            expect(s.corks).toBe(s.uncorks);
            expect(s.sent.flat(), 'every write arrives, in order').toEqual(written[i]);
            for (const group of s.sent) expect(group.length).toBeLessThanOrEqual(max);
          });
        },
      ),
      { numRuns: 1_000 },
    );
  });

  it('groups the writes of one tick, up to the bound', async () => {
    const s = new FakeStream('a');
    const coalescer = new WriteCoalescer(3);
    for (let i = 0; i < 7; i++) {
      coalescer.beforeWrite(s);
      s.write(i);
    }
    await tick();
    expect(s.sent).toEqual([[0, 1, 2], [3, 4, 5], [6]]);
    // a lone write in a later tick leaves at that tick's end, alone
    coalescer.beforeWrite(s);
    s.write(7);
    expect(s.sent.length).toBe(3);
    await tick();
    expect(s.sent).toEqual([[0, 1, 2], [3, 4, 5], [6], [7]]);
  });

  it('does not cork a destroyed or missing stream, and 1 turns coalescing off', async () => {
    const dead = new FakeStream('dead');
    dead.destroyed = true;
    const coalescer = new WriteCoalescer(4);
    coalescer.beforeWrite(dead);
    coalescer.beforeWrite(null);
    coalescer.beforeWrite(undefined);
    expect(dead.corks).toBe(0);
    // a socket destroyed while corked is released at once, and not corked again
    const dying = new FakeStream('dying');
    const c2 = new WriteCoalescer(2);
    c2.beforeWrite(dying);
    dying.write(1);
    dying.destroyed = true;
    for (const n of [2, 3]) {
      c2.beforeWrite(dying);
      dying.write(n);
    }
    expect(dying.corked).toBe(0);
    expect(dying.corks).toBe(dying.uncorks);
    expect(dying.sent).toEqual([[1], [2], [3]]);
    const s = new FakeStream('a');
    const off = new WriteCoalescer(1);
    off.beforeWrite(s);
    s.write(1);
    expect(s.corks).toBe(0);
    expect(s.sent).toEqual([[1]]);
  });
});
