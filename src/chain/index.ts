/**
 * The task-chain engine: modules and messages, queues, the engine and its state machine.
 * Files that are not a door of their own are re-exported by name.
 */
export * from './engine/index.js';
export * from './state/index.js';
export { defineModule } from './module.js';
export type {
  ChainRequest,
  DownloadResult,
  ModuleDefinition,
  ParseContext,
  ParseOutput,
  Route,
  StepContext,
  StepDefinition,
  TaskInfo,
  UntypedSteps,
} from './module.js';
export { normalizeMessage, encodeMessage, MESSAGE_VERSION } from './messages.js';
export type {
  ChainErrorInfo,
  ChainInput,
  ChainMessage,
  ErrorTaskModel,
  JsonObject,
  JsonValue,
  NodeRef,
  ParserTaskModel,
  TaskModel,
} from './messages.js';
export type { NodeId, NodeEventId } from './node-id.js';
export type { ItemOf, RouteTo, TypedModuleInput, TypedStep } from './typed-module.js';
export { MemoryQueue } from './queue.js';
export type { ChainQueue, Delivery, MemoryQueueOptions, PushOptions } from './queue.js';
export { RedisStreamQueue } from './redis-stream-queue.js';
export type { DeadLetter, RedisStreamQueueOptions } from './redis-stream-queue.js';
export type { ShardedStreamQueue } from './sharded-stream-queue.js';
export { createRedisStreamQueues } from './stream-queues.js';
export type { RedisStreamQueues, RedisStreamQueuesOptions } from './stream-queues.js';
export type { StreamQueueTuning } from './stream-queue-tuning.js';
