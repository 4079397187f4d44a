/**
 * Temporary data directories for tests of the durable store, removed when the test ends.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DurableBackend,
  type DurableBackendOptions,
} from '../../src/store/durable/durable-backend.js';

const dirs: string[] = [];

/** A new, empty directory under the OS temp dir (a `path` for a durable store). */
export function tempDataDir(tag = 'store'): string {
  const dir = mkdtempSync(join(tmpdir(), `mocra-durable-${tag}-`));
  dirs.push(dir);
  return dir;
}

/** Removes every directory {@link tempDataDir} made. */
export function removeTempDataDirs(): void {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** A durable backend in a fresh directory; `close()` it and call {@link removeTempDataDirs}. */
export function openTempDurable(
  options: Omit<DurableBackendOptions, 'path'> = {},
): Promise<DurableBackend> {
  return DurableBackend.open({ sweepIntervalMs: 0, ...options, path: tempDataDir() });
}
