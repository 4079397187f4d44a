/**
 * Runs the `mocra` command (src/cli.ts) as its own process, as a user would, and collects its
 * exit code and output.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';

const CLI = join(import.meta.dirname, '../../../src/cli.ts');

/** What one run of the command gave. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `mocra <args…>`; `imports` are modules loaded first (`node --import`). */
export function mocra(
  args: readonly string[],
  imports: readonly string[] = [],
): Promise<CliResult> {
  const pre = imports.flatMap((m) => ['--import', m]);
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', ...pre, CLI, ...args],
      { timeout: 30_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
