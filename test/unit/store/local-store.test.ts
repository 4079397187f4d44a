import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/internal/clock.js';
import { LocalStore } from '../../../src/store/local-store.js';

describe('LocalStore', () => {
  it('keeps a value set as JSON: its text is the JSON, made when read', () => {
    const store = new LocalStore({ clock: new ManualClock(1_000), sweepIntervalMs: 0 });
    const rec = { status: 'done', version: 2, modules: { shop: { q: 0 } } };
    store.setJson('k', rec, 1_000);
    expect(store.getJson('k')).toBe(rec);
    expect(store.get('k')).toBe(JSON.stringify(rec));
    expect(store.mget(['k'])).toEqual([JSON.stringify(rec)]);
    expect(store.ttl('k')).toBe(1_000);
  });

  it('decodes a string once and forgets the decoding when the string changes', () => {
    const store = new LocalStore({ sweepIntervalMs: 0 });
    expect(store.getJson('k')).toBeUndefined();
    store.set('k', '{"a":1}');
    const first = store.getJson('k');
    expect(first).toEqual({ a: 1 });
    expect(store.getJson('k')).toBe(first);
    store.set('k', '{"a":2}');
    expect(store.getJson('k')).toEqual({ a: 2 });
    store.set('n', '5');
    expect(store.getJson('n')).toBe(5);
    store.incr('n');
    expect(store.getJson('n')).toBe(6);
    store.set('bad', 'not json');
    expect(() => store.getJson('bad')).toThrow(SyntaxError);
    store.zadd('z', 1, 'm');
    expect(() => store.getJson('z')).toThrow(/wrong kind of value/i);
  });

  it('expires a value set as JSON like any string', () => {
    const clock = new ManualClock(1_000);
    const store = new LocalStore({ clock, sweepIntervalMs: 0 });
    store.setJson('k', { a: 1 }, 100);
    clock.advance(100);
    expect(store.getJson('k')).toBeUndefined();
    expect(store.get('k')).toBeNull();
  });

  it('reads its clock once inside atomic(), as a script sees one time', () => {
    const clock = new ManualClock(1_000);
    const store = new LocalStore({ clock, sweepIntervalMs: 0 });
    store.set('k', 'v', 10);
    const seen = store.atomic(() => {
      const at = store.now();
      clock.advance(50); // time passing inside the transition is not seen
      return [at, store.now(), store.get('k'), store.atomic(() => store.now())];
    });
    expect(seen).toEqual([1_000, 1_000, 'v', 1_000]);
    expect(store.now()).toBe(1_050);
    expect(store.get('k')).toBeNull();
  });
});
