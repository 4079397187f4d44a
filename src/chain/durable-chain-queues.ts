/**
 * The engine's three chain queues (task, parser, error) on a durable store: what the engine
 * uses by itself when its store is a {@link DurableBackend}.
 * @internal
 */
import type { Metrics } from '../observe/metrics.js';
import type { DurableBackend } from '../store/durable/durable-backend.js';
import { DurableQueue } from './durable-queue.js';

/** The three chain queues of one engine on a durable store. @internal */
export function durableChainQueues(
  store: DurableBackend,
  options: { capacity: number; metrics: Metrics; keyPrefix: string; visibilityMs: number },
): { task: DurableQueue<string>; parser: DurableQueue<string>; error: DurableQueue<string> } {
  const make = (name: string): DurableQueue<string> =>
    new DurableQueue<string>({
      store,
      name,
      keyPrefix: options.keyPrefix,
      capacity: options.capacity,
      visibilityMs: options.visibilityMs,
      metrics: options.metrics,
      encode: (m) => m,
      decode: (p) => p,
    });
  return { task: make('task'), parser: make('parser'), error: make('error') };
}
