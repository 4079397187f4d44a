/**
 * The result codes of the chain state transitions as types: one alias per transition, the union
 * of its code values (e.g. `ClaimResultCode` is `0 | 1 | 2 | 3 | 4`).
 */
import type {
  ClaimCode,
  CommitCode,
  CommitErrorCode,
  FallbackCode,
  RecoverCode,
  RetryScheduleCode,
  TerminateCode,
  TerminatedCode,
  ThresholdCode,
} from './types.js';

/** A result code of `ptm_claim` ({@link ClaimCode}). */
export type ClaimResultCode = (typeof ClaimCode)[keyof typeof ClaimCode];
/** A result code of `ptm_commit_success` ({@link CommitCode}). */
export type CommitResultCode = (typeof CommitCode)[keyof typeof CommitCode];
/** A result code of `ptm_commit_error` ({@link CommitErrorCode}). */
export type CommitErrorResultCode = (typeof CommitErrorCode)[keyof typeof CommitErrorCode];
/** A result code of `ptm_recover_zombie` ({@link RecoverCode}). */
export type RecoverResultCode = (typeof RecoverCode)[keyof typeof RecoverCode];
/** A result code of `etm_threshold_decide` ({@link ThresholdCode}). */
export type ThresholdResultCode = (typeof ThresholdCode)[keyof typeof ThresholdCode];
/** A result code of `etm_retry_schedule` ({@link RetryScheduleCode}). */
export type RetryScheduleResultCode = (typeof RetryScheduleCode)[keyof typeof RetryScheduleCode];
/** A result code of `etm_terminate_mark` ({@link TerminateCode}). */
export type TerminateResultCode = (typeof TerminateCode)[keyof typeof TerminateCode];
/** A result code of `ptm_fallback_gate` ({@link FallbackCode}). */
export type FallbackResultCode = (typeof FallbackCode)[keyof typeof FallbackCode];
/** A result code of `chain_terminated` ({@link TerminatedCode}). */
export type TerminatedResultCode = (typeof TerminatedCode)[keyof typeof TerminatedCode];
