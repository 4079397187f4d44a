import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SortedSet, compareMembers } from '../../../src/store/sorted-set.js';

const utf8Compare = (a: string, b: string): number =>
  Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

describe('SortedSet', () => {
  it('compareMembers equals UTF-8 byte order', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (a, b) => {
        expect(Math.sign(compareMembers(a, b))).toBe(Math.sign(utf8Compare(a, b)));
      }),
      { numRuns: 2000 },
    );
  });

  it('matches a naive sorted array model under random adds, deletes and ranges', () => {
    const score = fc.oneof(
      fc.integer({ min: -5, max: 5 }),
      fc.constantFrom(-Infinity, Infinity, 0.5, -0.5),
    );
    // members with and without surrogates, and BMP characters above them (U+E000..U+FFFF):
    // the order of two members without surrogates is taken from the engine's string compare
    const member = fc.constantFrom(
      'a',
      'b',
      'c',
      'd',
      'e',
      'A',
      'é',
      '😀',
      '',
      'ab',
      'a\uff21',
      '\uffff',
      'a😀',
      '\ue000x',
    );
    const op = fc.oneof(
      fc.tuple(fc.constant('add' as const), score, member),
      fc.tuple(fc.constant('del' as const), score, member),
      fc.tuple(fc.constant('remrange' as const), score, score),
    );
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 120 }),
        fc.tuple(score, score, fc.nat(5), fc.integer({ min: -1, max: 5 })),
        (ops, [lo, hi, off, cnt]) => {
          const set = new SortedSet();
          const model = new Map<string, number>();
          for (const o of ops) {
            if (o[0] === 'add') {
              expect(set.add(o[1], o[2])).toBe(!model.has(o[2]));
              model.set(o[2], o[1]);
            } else if (o[0] === 'del') {
              expect(set.delete(o[2])).toBe(model.delete(o[2]));
            } else {
              const doomed = [...model].filter(([, s]) => s >= o[1] && s <= o[2]);
              expect(set.removeRangeByScore(o[1], o[2])).toBe(doomed.length);
              for (const [m] of doomed) model.delete(m);
            }
            expect(set.size).toBe(model.size);
          }
          const ordered = [...model]
            .sort(([am, as], [bm, bs]) => (as !== bs ? (as < bs ? -1 : 1) : utf8Compare(am, bm)))
            .filter(([, s]) => s >= lo && s <= hi)
            .map(([m]) => m);
          const expected = cnt < 0 ? ordered.slice(off) : ordered.slice(off, off + cnt);
          expect(set.rangeByScore(lo, hi, off, cnt)).toEqual(expected);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('keeps the order when members come after the last and leave from the first (an outbox, its leases)', () => {
    // appends (rising or tied scores), removals of the first member, and now and then a member
    // anywhere: the ends are found without a search, the rest with one
    const op = fc.oneof(
      fc.tuple(
        fc.constant('append' as const),
        fc.nat(2),
        fc.constantFrom('a', 'b', 'é', '😀', 'z'),
      ),
      fc.tuple(fc.constant('first' as const), fc.constant(0), fc.constant('')),
      fc.tuple(
        fc.constant('any' as const),
        fc.integer({ min: 0, max: 40 }),
        fc.constantFrom('m', 'n'),
      ),
      fc.tuple(fc.constant('del' as const), fc.constant(0), fc.constantFrom('a', 'b', 'm', 'n')),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const set = new SortedSet();
        const model = new Map<string, number>();
        let top = 0;
        let n = 0;
        const order = (): string[] =>
          [...model]
            .sort(([am, as], [bm, bs]) => (as !== bs ? as - bs : utf8Compare(am, bm)))
            .map(([m]) => m);
        for (const [kind, k, m] of ops) {
          if (kind === 'append') {
            top += k;
            const member = `${m}${n++}`;
            set.add(top, member);
            model.set(member, top);
          } else if (kind === 'first') {
            const first = order()[0];
            if (first !== undefined) {
              expect(set.delete(first)).toBe(true);
              model.delete(first);
            }
          } else if (kind === 'any') {
            set.add(k, m);
            model.set(m, k);
          } else {
            expect(set.delete(m)).toBe(model.delete(m));
          }
          expect(set.members()).toEqual(order());
        }
      }),
      { numRuns: 300 },
    );
  });
});
