/**
 * A node whose claim did not answer EXECUTE: the message ends there, and why is counted and
 * (at debug level, built only when written) logged. Also a claim that took over an expired
 * lease, and the log fields of a node.
 */
import type { LogFields } from '../../observe/logger.js';
import type { ParserTaskModel } from '../messages.js';
import { ClaimCode, type ClaimResult } from '../state/index.js';
import type { NodeOutcome, ProcessorHost } from './processor.js';

/** The log fields every line about a node carries. @internal */
export function nodeLogFields(ptm: ParserTaskModel): LogFields {
  return {
    run_id: ptm.runId,
    task_id: ptm.taskId,
    module_id: ptm.moduleId,
    step_idx: ptm.stepIdx,
    prefix_request: ptm.prefixRequest,
    epoch: ptm.epoch ?? 0,
  };
}

/** A claim that is not EXECUTE ends the message: say why. @internal */
export function notClaimed(
  rt: Pick<ProcessorHost, 'telemetry' | 'outboxWritten'>,
  ptm: ParserTaskModel,
  claim: ClaimResult,
): NodeOutcome {
  // a line nobody writes is not built
  const debug = (message: string, decision: string): void => {
    if (rt.telemetry.logs('debug'))
      rt.telemetry.log('debug', message, { ...nodeLogFields(ptm), decision });
  };
  switch (claim.code) {
    case ClaimCode.DUPLICATE_DONE:
      rt.outboxWritten(ptm.taskId); // a crash may have left its outbox unpublished
      debug('node already done', 'duplicate_done');
      return 'duplicate_done';
    case ClaimCode.STALE_STEP:
      debug('stale node skipped', `stale:${claim.reason}`);
      return 'stale_step';
    case ClaimCode.LOCKED_BY_OTHER:
      debug('node locked by another owner', 'locked');
      return 'locked_by_other';
    case ClaimCode.OUT_OF_ORDER:
      // nothing to park: the parent's commit queues this node's message itself
      debug('node arrived before its parent committed', 'out_of_order');
      return 'out_of_order';
  }
  throw new Error(`unreachable: claim code ${claim.code} handled as not claimed`);
}

/**
 * A claim took over a lease that had run out: the node's holder died or stalled mid-step, and it
 * runs again here (counted in `zombiesRecovered`, logged at info). @internal
 */
export function tookOver(rt: Pick<ProcessorHost, 'telemetry'>, ptm: ParserTaskModel): void {
  rt.telemetry.zombiesRecovered(1);
  if (rt.telemetry.logs('info'))
    rt.telemetry.log('info', 'claim took over an expired lease (its holder died or stalled)', {
      ...nodeLogFields(ptm),
    });
}
