export { TaskScheduler, createScheduler } from './scheduler.js';
export { PRIORITIES } from './types.js';
export type {
  Priority,
  SchedulerEvents,
  SchedulerOptions,
  SchedulerRateLimiter,
  SchedulerStats,
  SubmitOptions,
  Task,
  TaskContext,
  TaskHandle,
  TaskSettledEvent,
  TaskStartedEvent,
  TaskState,
} from './types.js';
