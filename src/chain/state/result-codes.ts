/**
 * The result codes of the chain state transitions as types: one alias per transition, the union
 * of its code values (e.g. `ClaimResultCode` is `0 | 1 | 2 | 3 | 4`).
 */
import type * as codes from './types.js';

/** The union of a code table's values, e.g. `CodeOf<typeof ClaimCode>` is `0 | 1 | 2 | 3 | 4`. */
export type CodeOf<C> = C[keyof C];

/** A result code of `ptm_claim` ({@link ClaimCode}). */
export type ClaimResultCode = CodeOf<typeof codes.ClaimCode>;
/** A result code of `ptm_commit_success` ({@link CommitCode}). */
export type CommitResultCode = CodeOf<typeof codes.CommitCode>;
/** A result code of `ptm_commit_error` ({@link CommitErrorCode}). */
export type CommitErrorResultCode = CodeOf<typeof codes.CommitErrorCode>;
/** A result code of `ptm_recover_zombie` ({@link RecoverCode}). */
export type RecoverResultCode = CodeOf<typeof codes.RecoverCode>;
/** A result code of `ptm_renew_lease` ({@link RenewCode}). */
export type RenewResultCode = CodeOf<typeof codes.RenewCode>;
/** A result code of `etm_threshold_decide` ({@link ThresholdCode}). */
export type ThresholdResultCode = CodeOf<typeof codes.ThresholdCode>;
/** A result code of `etm_retry_schedule` ({@link RetryScheduleCode}). */
export type RetryScheduleResultCode = CodeOf<typeof codes.RetryScheduleCode>;
/** A result code of `etm_terminate_mark` ({@link TerminateCode}). */
export type TerminateResultCode = CodeOf<typeof codes.TerminateCode>;
/** A result code of `ptm_fallback_gate` ({@link FallbackCode}). */
export type FallbackResultCode = CodeOf<typeof codes.FallbackCode>;
/** A result code of `chain_terminated` ({@link TerminatedCode}). */
export type TerminatedResultCode = CodeOf<typeof codes.TerminatedCode>;
