/**
 * A worker fixture run as a child process (`node --import tsx <entry>`), with its output kept
 * for the failure message and its exit awaited by the test. Used by the multi-process and
 * chaos suites.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface WorkerProcess {
  name: string;
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `entry` with `WORKER_NAME=name` and `env` on top of this process' environment. */
export function startWorkerProcess(
  entry: string,
  name: string,
  env: Record<string, string>,
): WorkerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    env: { ...process.env, ...env, WORKER_NAME: name },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const worker: WorkerProcess = {
    name,
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    ),
  };
  child.stdout!.on('data', (c: Buffer) => (worker.stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (worker.stderr += c.toString()));
  return worker;
}
