import { describe, expect, it } from 'vitest';
import { keySlot } from '../../../src/store/key-slot.js';

describe('keySlot', () => {
  it('matches Redis Cluster slots for known keys', () => {
    // values as reported by CLUSTER KEYSLOT
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('somekey')).toBe(11058);
    expect(keySlot('')).toBe(0);
  });

  it('uses the first non-empty hash tag', () => {
    expect(keySlot('{user1000}.following')).toBe(keySlot('{user1000}.followers'));
    expect(keySlot('{user1000}.following')).toBe(keySlot('user1000'));
    expect(keySlot('foo{}{bar}')).toBe(keySlot('foo{}{bar}'));
    expect(keySlot('foo{}{bar}')).not.toBe(keySlot('bar')); // empty first tag: whole key hashed
    expect(keySlot('foo{{bar}}zap')).toBe(keySlot('{bar'));
    expect(keySlot('{é}x')).toBe(keySlot('é'));
  });
});
