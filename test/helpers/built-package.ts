/**
 * The package as users load it: src/index.ts bundled by tsup into ESM (`index.js`) and CommonJS
 * (`index.cjs`), as `npm run build` does (without declarations), into a fresh directory under
 * node_modules/.cache so the bundle resolves its dependencies from this checkout. Tests run
 * plain `node` scripts against it in child processes.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');

export interface BuiltPackage {
  /** The directory holding index.js and index.cjs. */
  dir: string;
  /** Runs `source` as `name` (.mjs or .cjs) in `dir` with plain node; resolves with its exit. */
  run(
    name: string,
    source: string,
    timeoutMs?: number,
  ): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>;
  remove(): void;
}

/** Bundles the package (a few seconds). */
export function buildPackage(): BuiltPackage {
  const cache = join(root, 'node_modules', '.cache');
  mkdirSync(cache, { recursive: true });
  const dir = mkdtempSync(join(cache, 'mocra-built-'));
  execFileSync(
    process.execPath,
    [
      join(root, 'node_modules', 'tsup', 'dist', 'cli-default.js'),
      'src/index.ts',
      '--no-config',
      '--format',
      'esm,cjs',
      '--target',
      'node20',
      '--platform',
      'node',
      '--treeshake',
      '--shims',
      '--silent',
      '-d',
      dir,
    ],
    { cwd: root, stdio: 'pipe' },
  );
  return {
    dir,
    run(name, source, timeoutMs = 20_000) {
      const file = join(dir, name);
      writeFileSync(file, source);
      return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [file], {
          cwd: dir,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        child.on('error', reject);
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          resolve({ code, signal, stdout, stderr });
        });
      });
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
