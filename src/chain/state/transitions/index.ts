/**
 * Every transition of the chain state machine, one file each. @internal
 */
export { claim } from './claim.js';
export { commitError } from './commit-error.js';
export { commitSuccess } from './commit-success.js';
export { fallbackGate } from './fallback-gate.js';
export { lock } from './lock.js';
export { outboxAck } from './outbox-ack.js';
export { itemsAck, type HandedItem, type ItemsAckInput } from './items-ack.js';
export { outboxTake } from './outbox-take.js';
export { recoverZombie } from './recover-zombie.js';
export { renewLease } from './renew-lease.js';
export { retryPromote } from './retry-promote.js';
export { retrySchedule } from './retry-schedule.js';
export { taskTouch } from './task-touch.js';
export { tasksActive } from './tasks-active.js';
export { terminateMark } from './terminate-mark.js';
export { terminated } from './terminated.js';
export { thresholdDecide } from './threshold-decide.js';
export { giveUp } from './give-up.js';
export { runCancel } from './run-cancel.js';
export { runDispatch } from './run-dispatch.js';
export { runExpire } from './run-expire.js';
export { runIndex } from './run-index.js';
export { runKeys } from './run-keys.js';
export { runRead } from './run-read.js';
export { runStart } from './run-start.js';
