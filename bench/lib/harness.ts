/**
 * Shared benchmark harness: runs each contender in interleaved rounds inside one process,
 * reports the median throughput, the ratio against a baseline, and writes a JSON result that
 * `npm run bench` turns into docs/benchmarks.md.
 *
 * Run benchmarks with `node --expose-gc --import tsx bench/<name>/index.ts` so that
 * `retainedBytes` can force collections.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { arch, cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Contender {
  /** Display name, e.g. 'mocra' or 'p-queue@9'. */
  name: string;
  /** Runs one round; resolves with the number of operations it performed. */
  round: () => Promise<number> | number;
}

export interface CaseResult {
  case: string;
  unit: string;
  rows: { name: string; median: number; min: number; max: number; samples: number[] }[];
}

export interface BenchOptions {
  /** Rounds per contender (after warm-up). @defaultValue 7 */
  rounds?: number;
  /** Warm-up rounds per contender, not measured. @defaultValue 2 */
  warmup?: number;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The `p`-th percentile (0–100, nearest rank) of `values`; NaN when there are none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[
    Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  ]!;
}

/** The fields that name a node in the chain engine's events and items. */
export interface NodeFields {
  runId: string;
  moduleId: string;
  stepIdx: number;
  prefixRequest: string;
}

/**
 * Latency from a node's commit (its `ModuleStepAdvanced` event) to each `onItem` call of its
 * items, in ms, in one process: call `committed` from the event and `item` from `onItem`. Only
 * commits with items are kept, each until its last item came (or, for items taken by another
 * process, until {@link KEPT_MAX} commits wait): what it keeps stays small, so the bench's own
 * bookkeeping adds little to the CPU it measures.
 */
export class CommitToItemLatency {
  readonly #committed = new Map<string, { at: number; left: number }>();
  /** One sample per item whose node's commit this process saw. */
  readonly samples: number[] = [];

  committed(node: NodeFields & { items?: number }): void {
    const items = node.items ?? 1;
    if (items <= 0) return;
    if (this.#committed.size >= KEPT_MAX) this.#committed.clear();
    this.#committed.set(nodeKey(node), { at: performance.now(), left: items });
  }

  item(node: NodeFields): void {
    const key = nodeKey(node);
    const seen = this.#committed.get(key);
    if (seen === undefined) return;
    this.samples.push(performance.now() - seen.at);
    if (--seen.left <= 0) this.#committed.delete(key);
  }

  /** Forgets the commits seen (the samples stay). */
  reset(): void {
    this.#committed.clear();
  }
}

/** Most commits whose items {@link CommitToItemLatency} waits for at once. */
const KEPT_MAX = 100_000;

/** p50/p95/max of latency samples in ms, rounded to 0.1 ms, with their count. */
export function latencySummary(samples: readonly number[]): {
  p50: number;
  p95: number;
  max: number;
  samples: number;
} {
  const r = (n: number): number => Math.round(n * 10) / 10;
  return {
    p50: r(percentile(samples, 50)),
    p95: r(percentile(samples, 95)),
    max: r(samples.length ? Math.max(...samples) : NaN),
    samples: samples.length,
  };
}

function nodeKey(n: NodeFields): string {
  return `${n.runId}|${n.moduleId}|${n.stepIdx}|${n.prefixRequest}`;
}

/** A case's rows from the samples (per second) of each contender, in the given order. */
export function summarize(
  caseName: string,
  unit: string,
  samples: ReadonlyMap<string, number[]>,
): CaseResult {
  return {
    case: caseName,
    unit,
    rows: [...samples].map(([name, s]) => ({
      name,
      median: median(s),
      min: Math.min(...s),
      max: Math.max(...s),
      samples: s,
    })),
  };
}

/** Measures ops/s for every contender, interleaving rounds so drift hits all alike. */
export async function compareThroughput(
  caseName: string,
  contenders: Contender[],
  { rounds = 7, warmup = 2 }: BenchOptions = {},
): Promise<CaseResult> {
  for (let i = 0; i < warmup; i++) for (const c of contenders) await c.round();
  const samples = new Map(contenders.map((c) => [c.name, [] as number[]]));
  for (let i = 0; i < rounds; i++) {
    for (const c of contenders) {
      globalThis.gc?.();
      const start = performance.now();
      const ops = await c.round();
      const seconds = (performance.now() - start) / 1000;
      samples.get(c.name)!.push(ops / seconds);
    }
  }
  return summarize(caseName, 'ops/s', samples);
}

/**
 * Bytes retained per item: heap after `build(count)` (kept alive) minus heap before, divided
 * by `count`. Needs --expose-gc; returns NaN without it.
 */
export async function retainedBytes(
  count: number,
  build: (count: number) => unknown,
): Promise<number> {
  const gc = globalThis.gc;
  if (!gc) return NaN;
  const measure = async (): Promise<number> => {
    gc();
    await new Promise((r) => setImmediate(r));
    gc();
    return process.memoryUsage().heapUsed;
  };
  const before = await measure();
  const kept = build(count);
  const after = await measure();
  // keep `kept` reachable until after the measurement
  if ((kept as { __never?: boolean } | null)?.__never) console.log('unreachable');
  return (after - before) / count;
}

/** Prints a case as a table with ratios against `baseline` (default: first row). */
export function printCase(result: CaseResult, baseline = result.rows[0]!.name): void {
  const base = result.rows.find((r) => r.name === baseline)!;
  console.log(`\n${result.case} (${result.unit}, median of ${base.samples.length})`);
  for (const row of result.rows) {
    const ratio = row.median / base.median;
    console.log(
      `  ${row.name.padEnd(34)} ${fmt(row.median).padStart(14)}   x${ratio.toFixed(2).padStart(6)} vs ${baseline}`,
    );
  }
}

export function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2);
}

/** Describes the machine a benchmark ran on. */
export function machine(): Record<string, string | number> {
  const cpu = cpus();
  return {
    node: process.version,
    arch: arch(),
    cpu: cpu[0]?.model ?? 'unknown',
    cores: cpu.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
  };
}

/** Writes bench/results/<name>.json for the report generator. */
export function writeResults(
  name: string,
  cases: CaseResult[],
  notes: Record<string, unknown> = {},
): string {
  const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      { name, date: new Date().toISOString(), machine: machine(), cases, notes },
      null,
      2,
    ),
  );
  return file;
}
