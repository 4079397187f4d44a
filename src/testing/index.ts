/**
 * Test helpers for code built on mocra: `import { runCacheServiceConformance } from 'mocra/testing'`.
 *
 * @packageDocumentation
 */
export { runCacheServiceConformance } from './cache-service-conformance.js';
export type {
  ConformanceHarness,
  ConformanceMatchers,
  ConformanceTestApi,
} from './cache-service-conformance.js';
