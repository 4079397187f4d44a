import { describe, expect, it } from 'vitest';
import { resolveOptions } from '../../../../src/chain/engine/options.js';
import { ConfigError, defineModule, type Logger } from '../../../../src/index.js';

const m = defineModule({
  id: 'm',
  steps: [{ name: 's', generate: () => [], parse: () => ({}) }],
});

function recorder(): { logger: Logger; warnings: string[] } {
  const warnings: string[] = [];
  const noop = (): void => {};
  return {
    warnings,
    logger: {
      debug: noop,
      info: noop,
      warn: (_fields: unknown, message: string) => {
        warnings.push(message);
      },
      error: noop,
    },
  };
}

describe('engine options', () => {
  it('are resolved once, frozen, with every default', () => {
    const o = resolveOptions({ modules: [m] });
    expect(Object.isFrozen(o)).toBe(true);
    expect(o.concurrency).toEqual({ task: 4, parser: 8, error: 2, download: 16 });
    expect(o.runtimeMode).toBe('single_node');
    expect(o.sharedQueues).toBe(false);
  });

  it('take concurrency.download, and the old concurrency.publish with one warning per process', () => {
    expect(
      resolveOptions({ modules: [m], concurrency: { download: 3 } }).concurrency.download,
    ).toBe(3);
    const first = recorder();
    const o = resolveOptions({ modules: [m], concurrency: { publish: 5 }, logger: first.logger });
    expect(o.concurrency.download).toBe(5);
    expect(first.warnings).toEqual([
      '`concurrency.publish` is deprecated: use `concurrency.download`',
    ]);
    const second = recorder();
    resolveOptions({ modules: [m], concurrency: { publish: 5 }, logger: second.logger });
    expect(second.warnings).toEqual([]);
  });

  it('refuse both names at once, and a bad value under either, naming the field', () => {
    expect(() =>
      resolveOptions({ modules: [m], concurrency: { publish: 1, download: 2 } }),
    ).toThrow(/concurrency\.publish.*download|old name/);
    for (const [concurrency, field] of [
      [{ download: 0 }, 'concurrency.download'],
      [{ publish: 0 }, 'concurrency.publish'],
    ] as const) {
      let caught: unknown;
      try {
        resolveOptions({ modules: [m], concurrency, logger: recorder().logger });
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      expect((caught as Error).message).toContain(field);
    }
  });
});
