/**
 * The worker processes of bench/distributed, seen from the bench: started with `node --import
 * tsx bench/distributed/worker.ts`, they report their counts over IPC; the bench asks each for
 * its CPU time and its engine counters before and after every round.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const WORKER_SCRIPT = join(import.meta.dirname, 'worker.ts');

/** Counts a worker reports: nodes committed (mocra) or jobs completed (BullMQ), and items. */
export interface Progress {
  nodes: number;
  items: number;
}

/** A worker's answer to `usage`: its CPU so far and its counters (see worker.ts). */
export interface ChildUsage {
  /** CPU time (user + system) of the process so far, µs. */
  cpuUs: number;
  /** Engine counters so far, by series (`name{label="v"}`); empty for BullMQ. */
  counters: Record<string, number>;
}

/** What a worker sends over IPC. */
interface WorkerMessage {
  type: string;
  nodes?: number;
  items?: number;
  samples?: number[];
  error?: string;
  cpuUs?: number;
  counters?: Record<string, number>;
}

/** A worker child process and its latest reported counts. */
export interface Child {
  name: string;
  proc: ChildProcess;
  stopping: boolean;
  progress: Progress;
  /** Commit → onItem samples (ms) the worker sent when it stopped. */
  latency: number[];
  stderr: string;
  ready: Promise<void>;
  exited: Promise<void>;
  /** Answers of `usage` requests, in order. */
  usageWaiters: ((usage: ChildUsage) => void)[];
}

/** Every worker started and not yet gone, the progress hook and the first failure seen. */
export class ChildPool {
  readonly alive = new Set<Child>();
  /** Called on every progress message: lets a round wake up as soon as its condition holds. */
  #onProgress: (() => void) | null = null;
  #failure: string | null = null;

  /**
   * @param concurrency per worker process
   * @param ownSession start each worker in a session of its own (see `MeasureConfig.ownSession`)
   */
  constructor(
    private readonly concurrency: number,
    private readonly ownSession: boolean,
  ) {}

  start(name: string, env: Record<string, string>): Child {
    // BENCH_DIST_CPU_PROF=<dir>: each worker writes a V8 CPU profile there as it exits
    const profile = process.env.BENCH_DIST_CPU_PROF;
    const flags = profile ? ['--cpu-prof', '--cpu-prof-dir', profile] : [];
    const proc = spawn(process.execPath, [...flags, '--import', 'tsx', WORKER_SCRIPT], {
      env: {
        ...process.env,
        ...env,
        WORKER_NAME: name,
        CONCURRENCY: String(this.concurrency),
      },
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      // own session (setsid): with kernel.sched_autogroup_enabled, its own share of the CPU
      detached: this.ownSession,
    });
    let ready!: () => void;
    let notReady!: (e: Error) => void;
    const child: Child = {
      name,
      proc,
      stopping: false,
      progress: { nodes: 0, items: 0 },
      latency: [],
      stderr: '',
      ready: new Promise<void>((resolve, reject) => {
        ready = resolve;
        notReady = reject;
      }),
      exited: new Promise<void>((resolve) => proc.once('exit', () => resolve())),
      usageWaiters: [],
    };
    proc.stderr!.on('data', (c: Buffer) => (child.stderr += c.toString()));
    proc.on('message', (m: WorkerMessage) => {
      if (m.type === 'ready') ready();
      else if (m.type === 'usage')
        child.usageWaiters.shift()?.({ cpuUs: m.cpuUs!, counters: m.counters ?? {} });
      else if (m.type === 'latency') child.latency.push(...m.samples!);
      else if (m.type === 'progress') {
        child.progress = { nodes: m.nodes!, items: m.items! };
        this.#onProgress?.();
      } else if (m.type === 'failed') {
        this.#failure = `${name}: ${m.error}`;
        this.#onProgress?.();
      }
    });
    proc.once('exit', (code, signal) => {
      this.alive.delete(child);
      if (!child.stopping) {
        this.#failure = `${name} exited (${code ?? signal}):\n${child.stderr}`;
        this.#onProgress?.();
      }
      notReady(
        new Error(`${name} exited (${code ?? signal}) before it was ready:\n${child.stderr}`),
      );
    });
    this.alive.add(child);
    return child;
  }

  /** Resolves once `done()` holds, re-checked on every progress message; rejects on a timeout. */
  until(what: string, timeoutMs: number, done: () => boolean): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const finish = (error?: Error): void => {
        clearTimeout(timer);
        this.#onProgress = null;
        if (error) reject(error);
        else resolve();
      };
      const timer = setTimeout(
        () => finish(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
        timeoutMs,
      );
      this.#onProgress = () => {
        if (this.#failure) finish(new Error(this.#failure));
        else if (done()) finish();
      };
      this.#onProgress();
    });
  }

  /** Stops every worker still alive. */
  stopAll(): Promise<void> {
    return Promise.all([...this.alive].map(stopChild)).then(() => undefined);
  }
}

export async function stopChild(child: Child): Promise<void> {
  child.stopping = true;
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return;
  const force = setTimeout(() => child.proc.kill('SIGKILL'), 10_000);
  if (child.proc.connected) child.proc.send({ type: 'stop' });
  else child.proc.kill('SIGTERM');
  await child.exited;
  clearTimeout(force);
}

/** The CPU time (µs) and counters of each child so far, asked of each over IPC. */
export function childrenUsage(children: readonly Child[]): Promise<ChildUsage[]> {
  return Promise.all(
    children.map(
      (c) =>
        new Promise<ChildUsage>((resolve) => {
          c.usageWaiters.push(resolve);
          c.proc.send({ type: 'usage' });
        }),
    ),
  );
}

/** `after − before` for each child, counter by counter (counters that did not move left out). */
export function usageSince(
  after: readonly ChildUsage[],
  before: readonly ChildUsage[],
): ChildUsage[] {
  return after.map((a, i) => {
    const b = before[i]!;
    const counters: Record<string, number> = {};
    for (const [k, v] of Object.entries(a.counters)) {
      const d = v - (b.counters[k] ?? 0);
      if (d !== 0) counters[k] = d;
    }
    return { cpuUs: a.cpuUs - b.cpuUs, counters };
  });
}

/** The children's usage summed. */
export function sumUsage(each: readonly ChildUsage[]): ChildUsage {
  const sum: ChildUsage = { cpuUs: 0, counters: {} };
  for (const u of each) {
    sum.cpuUs += u.cpuUs;
    for (const [k, v] of Object.entries(u.counters)) sum.counters[k] = (sum.counters[k] ?? 0) + v;
  }
  return sum;
}

export function total(children: readonly Child[]): Progress {
  return children.reduce(
    (t, c) => ({ nodes: t.nodes + c.progress.nodes, items: t.items + c.progress.items }),
    { nodes: 0, items: 0 },
  );
}
