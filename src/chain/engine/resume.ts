/**
 * The start-up of an engine on a durable store: what an earlier process left (outbox leases it
 * held, due retries, unpublished outboxes) is taken up again; the nodes it held come back with
 * their messages (the durable queue's visibility lease), and their claims take the expired
 * leases over.
 */
import { DurableChainState } from '../durable-chain-state.js';
import type { ResolvedOptions } from './options.js';
import type { Sweeper } from './sweeper.js';
import type { EngineTelemetry } from './telemetry.js';

/** The options {@link resumeFromStore} reads. */
export type ResumeOptions = Pick<ResolvedOptions, 'state' | 'stateTtlMs' | 'workerId'>;

/**
 * Durable store, new process: the relay leases an earlier process held end now (it is gone:
 * one process per data directory), then one sweep over every task the store still holds
 * promotes due retries and publishes the outboxes. A failure is
 * logged, never thrown: the periodic sweeps go on.
 */
export async function resumeFromStore(
  o: ResumeOptions,
  sweeper: Sweeper,
  telemetry: EngineTelemetry,
): Promise<void> {
  try {
    const tasks = await o.state.activeTasks(o.stateTtlMs, 10_000);
    let released = 0;
    if (o.state instanceof DurableChainState)
      for (const taskId of tasks) released += await o.state.expireOutboxLeases(taskId);
    telemetry.log('info', 'resuming from the durable store', {
      worker_id: o.workerId,
      tasks: tasks.length,
      outbox_leases_released: released,
    });
    await sweeper.sweep({ windowMs: o.stateTtlMs, lock: false });
  } catch (error) {
    telemetry.log('warn', 'resume sweep failed; the periodic sweeps go on', {
      error: String(error),
    });
  }
}
