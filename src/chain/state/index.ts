export { LocalChainState } from './local-chain-state.js';
export type {
  ChainStateOptions,
  LocalChainStateOptions,
  SyncBackend,
} from './local-chain-state.js';
export { RedisChainState } from './redis-chain-state.js';
export type { Transition, TransitionKeys } from './transition.js';
export type { RedisChainStateOptions } from './redis-chain-state.js';
export {
  CHAIN_SCHEMA_VERSION,
  ClaimCode,
  CommitCode,
  CommitErrorCode,
  FallbackCode,
  RecoverCode,
  RenewCode,
  RetryScheduleCode,
  RunCancelCode,
  TerminateCode,
  TerminatedCode,
  ThresholdCode,
} from './types.js';
export type {
  ChainStateStore,
  ClaimInput,
  ClaimResult,
  CommitErrorInput,
  CommitSuccessInput,
  CommitSuccessResult,
  NodeAddress,
  RenewLeaseInput,
  RenewLeaseResult,
  RetryScheduleInput,
  RunDispatchModule,
  RunModuleSnapshot,
  RunModuleState,
  RunNodeCounts,
  RunRecordState,
  RunSnapshot,
  Successor,
  TerminatedResult,
  TerminateScope,
  ThresholdInput,
  ThresholdResult,
} from './types.js';
export type * from './result-codes.js';
export type { SyncStore } from './sync-store.js';
