import { describe, expect, it } from 'vitest';
import { defineModule, type ModuleDefinition } from '../../../src/chain/module.js';
import { ConfigError } from '../../../src/errors.js';

const step = (name: string) => ({ name, generate: () => [], parse: () => ({}) });

describe('defineModule', () => {
  it('returns a frozen, validated definition', () => {
    const m = defineModule({
      id: 'shop',
      steps: [step('list'), step('detail')],
      rateLimit: { rate: 5, intervalMs: 1000 },
      errorThreshold: 3,
      concurrency: 2,
    });
    expect(m.id).toBe('shop');
    expect(m.steps.map((s) => s.name)).toEqual(['list', 'detail']);
    expect(Object.isFrozen(m)).toBe(true);
    expect(Object.isFrozen(m.steps)).toBe(true);
    expect(m.rateLimit).toEqual({ rate: 5, intervalMs: 1000 });
  });

  it.each<[string, unknown, RegExp]>([
    ['no id', { steps: [step('a')] }, /`id`/],
    ['no steps', { id: 'm', steps: [] }, /`steps` to be a non-empty array/],
    [
      'step without parse',
      { id: 'm', steps: [{ name: 'a', generate: () => [] }] },
      /`steps\[0\]\.parse` to be a function/,
    ],
    ['duplicate step names', { id: 'm', steps: [step('a'), step('a')] }, /used twice/],
    [
      'unknown step key',
      { id: 'm', steps: [{ ...step('a'), parser: () => ({}) }] },
      /unknown option `parser` in `steps\[0\]`/,
    ],
    [
      'unknown module key',
      { id: 'm', steps: [step('a')], threshold: 2 },
      /unknown option `threshold`/,
    ],
    ['zero rate', { id: 'm', steps: [step('a')], rateLimit: { rate: 0 } }, /`rateLimit.rate`/],
    [
      'fractional threshold',
      { id: 'm', steps: [step('a')], errorThreshold: 1.5 },
      /`errorThreshold`/,
    ],
    ['zero concurrency', { id: 'm', steps: [step('a')], concurrency: 0 }, /`concurrency`/],
  ])('rejects %s with a ConfigError naming the field', (_name, definition, message) => {
    expect(() => defineModule(definition as ModuleDefinition)).toThrow(ConfigError);
    expect(() => defineModule(definition as ModuleDefinition)).toThrow(message);
  });
});
