/**
 * mocra: reliability primitives for Node.js services and an exactly-once task-chain engine.
 *
 * Each module has one door, its `index.ts`; this file re-exports those doors.
 *
 * @packageDocumentation
 */
export * from './errors.js';
export * from './observe/index.js';
export type { Clock } from './internal/clock.js';
export * from './scheduler/index.js';
export * from './cache/index.js';
export * from './retry/index.js';
export * from './rate-limit/index.js';
export * from './store/index.js';
export * from './keys/index.js';
export * from './chain/index.js';
