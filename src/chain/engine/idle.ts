/**
 * When the engine is idle (`onIdle`): nothing queued, running, relayed or retried here, and
 * the queues that count their messages anywhere (Redis Streams) empty.
 */
import type { EngineTelemetry } from './telemetry.js';
import type { ChainQueues } from './types.js';
import { until } from './waits.js';

/** Whether no message waits in, or is in flight from, any of the three queues (this process). */
export function queuesQuiet(q: ChainQueues): boolean {
  return (
    q.task.size() + q.parser.size() + q.error.size() === 0 &&
    q.task.inFlight() + q.parser.inFlight() + q.error.inFlight() === 0
  );
}

/** Something else that holds work anywhere (the items stream): how much. */
export interface SharedBacklog {
  length(): Promise<number>;
}

/** Whether the queues that count their messages anywhere (Redis Streams) hold none. */
export async function sharedQueuesEmpty(
  q: ChainQueues,
  telemetry: EngineTelemetry,
  others: readonly SharedBacklog[] = [],
): Promise<boolean> {
  try {
    const lengths = await Promise.all([
      ...[q.task, q.parser, q.error].map((queue) => queue.length?.() ?? 0),
      ...others.map((o) => o.length()),
    ]);
    return lengths.every((n) => n === 0);
  } catch (error) {
    telemetry.log('warn', 'onIdle: could not read the queue lengths; will look again', {
      error: String(error),
    });
    return false;
  }
}

/** Resolves once `isIdle()` holds twice in a row and the shared queues are empty. */
export async function waitForIdle(
  isIdle: () => boolean,
  queues: ChainQueues,
  telemetry: EngineTelemetry,
  others: readonly SharedBacklog[] = [],
): Promise<void> {
  for (;;) {
    // two quiet looks in a row: a hand-off between stages is never mistaken for idleness; a
    // ref'd timer: a script that awaits onIdle() stays alive until the work is done
    let quiet = 0;
    await until(() => (quiet = isIdle() ? quiet + 1 : 0) >= 2, { keepAlive: true });
    // a shared queue may hold messages this process has not read (or another one holds)
    if (await sharedQueuesEmpty(queues, telemetry, others)) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
