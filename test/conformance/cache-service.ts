/**
 * Runs the exported conformance suite (src/testing) with vitest.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  runCacheServiceConformance as run,
  type ConformanceHarness,
} from '../../src/testing/index.js';

export type { ConformanceHarness };

export function runCacheServiceConformance(
  name: string,
  setup: () => Promise<ConformanceHarness>,
): void {
  run(name, setup, { describe, it, expect, beforeEach, afterEach });
}
