/**
 * What becomes of a delivery once the ingress is done with it: acknowledged, released back to
 * its queue (after a delay), dead-lettered with a reason, or left unacknowledged for another
 * worker. The consumer settles it; the ingress rooms decide it.
 */
import type { ChainQueue } from '../queue.js';
import type { EngineTelemetry } from './telemetry.js';

/** The fate of one delivery. @internal */
export type Disposition =
  | { ack: true }
  | { release: true; delayMs: number; leaveOnStop?: boolean }
  | { deadLetter: string; stage?: IngressStage }
  | { leave: true };

/** Acknowledge: done (or obsolete). @internal */
export const ACK: Disposition = Object.freeze({ ack: true });
/** Not settled: a shared queue hands it to another worker once its claim has idled out. @internal */
export const LEAVE: Disposition = Object.freeze({ leave: true });

/**
 * Sets a message aside that did not come as a delivery (one module of a task, an outbox
 * entry): counted and kept in memory, and in the queue's durable store when it has one. Never
 * throws.
 * @internal
 */
export async function setAside(
  telemetry: EngineTelemetry,
  source: string,
  queue: ChainQueue<string>,
  message: string,
  reason: string,
): Promise<void> {
  telemetry.deadLettered(source, message, reason);
  if (typeof queue.deadLetter !== 'function') return;
  try {
    await queue.deadLetter(message, reason);
  } catch (error) {
    telemetry.log('error', 'could not record a dead letter durably (kept in memory only)', {
      queue: queue.name,
      error: String(error),
    });
  }
}

/** The stages of the ingress, in order. @internal */
export type IngressStage =
  'NormalizeInput' | 'LoadTask' | 'ThresholdPreCheck' | 'BuildModules' | 'ModuleDispatch';

/** An error thrown by one stage of the ingress, with that stage. @internal */
export class StageError {
  constructor(
    readonly stage: IngressStage,
    readonly error: unknown,
  ) {}
}

/** Awaits one stage's work; an error comes out as a {@link StageError} naming the stage. @internal */
export async function atStage<T>(stage: IngressStage, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    throw error instanceof StageError ? error : new StageError(stage, error);
  }
}

const STAGES: ReadonlySet<string> = new Set<IngressStage>([
  'NormalizeInput',
  'LoadTask',
  'ThresholdPreCheck',
  'BuildModules',
  'ModuleDispatch',
]);

/** The stage a dead-letter reason names ('NormalizeInput: …'), else ModuleDispatch. @internal */
export function stageOf(reason: string): IngressStage {
  const head = reason.slice(0, reason.indexOf(':'));
  return STAGES.has(head) ? (head as IngressStage) : 'ModuleDispatch';
}
