export { RetryPolicy } from './retry-policy.js';
export type {
  JitterKind,
  RetryContext,
  RetryEvents,
  RetryPolicyOptions,
  RetryStats,
} from './retry-policy.js';
export { isRetryableError, isRetryableStatus } from './classify.js';
