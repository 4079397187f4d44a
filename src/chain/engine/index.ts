export { createChainEngine } from './engine.js';
export type { ChainEngine } from './engine.js';
export { ModuleProcessorWithChain } from './processor.js';
export type { NodeOutcome } from './processor.js';
export { fetchDownloader, parseRetryAfter } from './download.js';
export type {
  ChainConcurrency,
  ChainDeadLetter,
  ChainEngineOptions,
  ChainEngineStats,
  ChainEvent,
  ChainEventMap,
  ChainEventName,
  ChainItem,
  ItemRetryOptions,
  ChainQueues,
  ModuleItem,
  DownloadContext,
  Downloader,
  NodeEventBase,
  NodeRetryOptions,
  RunStatus,
  SubmittedRun,
} from './types.js';
