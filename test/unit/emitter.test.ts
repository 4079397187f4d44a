import { describe, expect, it } from 'vitest';
import { Emitter } from '../../src/internal/emitter.js';

describe('Emitter', () => {
  it('delivers, reports listeners, unsubscribes and isolates throwing listeners', () => {
    const errors: unknown[] = [];
    const emitter = new Emitter<{ tick: number }>((e) => errors.push(e));
    expect(emitter.has('tick')).toBe(false);
    const seen: number[] = [];
    const off = emitter.on('tick', (n) => seen.push(n));
    emitter.on('tick', () => {
      throw new Error('listener bug');
    });
    emitter.on('tick', (n) => seen.push(n * 10));
    expect(emitter.has('tick')).toBe(true);
    emitter.emit('tick', 1);
    off();
    emitter.emit('tick', 2);
    expect(seen).toEqual([1, 10, 20]);
    expect(errors).toHaveLength(2);
    emitter.clear();
    expect(emitter.has('tick')).toBe(false);
  });
});
