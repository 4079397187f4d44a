import { describe, expect, it } from 'vitest';
import { namespaceKeyPrefix, namespacePrefix } from '../../../src/keys/namespace.js';

describe('namespaceKeyPrefix', () => {
  it('names the namespace it is given: namespacePrefix of it is the namespace again', () => {
    for (const keyPrefix of ['', 'app', 'app:', 'shop:eu:', 'a%b', 'a%3Ab:', '%:%:', ':', 'x::']) {
      const namespace = namespacePrefix(keyPrefix);
      expect(namespacePrefix(namespaceKeyPrefix(namespace))).toBe(namespace);
    }
    expect(namespaceKeyPrefix('shop%3Aeu:')).toBe('shop:eu:');
    expect(namespaceKeyPrefix('a%253Ab:')).toBe('a%3Ab:');
  });
});
