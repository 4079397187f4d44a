/**
 * Run ids: every `submit()` (and `publish()` of a task message) without a `runId` starts a new
 * run with a fresh id, so a task can run again; an explicit `runId` keeps submission idempotent.
 */
import { randomBytes } from 'node:crypto';

/**
 * A fresh run id: `r-` + the time in base 36 (so ids sort by start time) + 8 random hex digits.
 * @internal
 */
export function newRunId(now = Date.now()): string {
  return `r-${now.toString(36)}-${randomBytes(4).toString('hex')}`;
}
