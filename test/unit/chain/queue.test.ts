import { describe, expect, it } from 'vitest';
import { MemoryQueue } from '../../../src/chain/queue.js';
import { runChainQueueConformance } from '../../conformance/chain-queue.js';

runChainQueueConformance('MemoryQueue', (options) => new MemoryQueue(options));

describe('MemoryQueue', () => {
  it('validates options', () => {
    expect(() => new MemoryQueue({ name: '' })).toThrow(/`name`/);
    expect(() => new MemoryQueue({ name: 'q', capacity: 0 })).toThrow(/`capacity`/);
    expect(() => new MemoryQueue({ name: 'q', capasity: 2 } as never)).toThrow(
      /unknown option `capasity`/,
    );
  });
});
