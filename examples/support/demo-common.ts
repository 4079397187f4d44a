/**
 * What the two shapes of `npm run demo` share, so that they run the same crawl and report it the
 * same way: the test site's faults, the engine and rate-limiter settings, the progress line and
 * the summary table with its exactly-once check.
 *
 *   single node    examples/demo.ts
 *   --workers N    examples/support/demo-workers.ts (coordinator) and
 *                  examples/support/demo-worker-process.ts (one per worker process)
 */
import type { ChainEngineOptions, ChainEngineStats, RateLimiterOptions, RunStatus } from 'mocra';
import type { TestSiteOptions } from './test-site.js';

/** How long a crawl may take before the demo calls it a failure rather than hang. */
export const CRAWL_TIMEOUT_MS = 60_000;

/** The site: slow endpoints, 503s and a server-side budget answering 429 with Retry-After. */
export function demoSiteOptions(smoke: boolean): TestSiteOptions {
  return {
    categories: smoke ? 2 : 4,
    pagesPerCategory: 3,
    productsPerPage: smoke ? 4 : 6,
    flakyRatio: 0.15,
    flakyHits: 3, // one more than the download retries below: the node itself has to be retried
    slowRatio: 0.1,
    slowMs: 120,
    serverRatePerSec: 90,
  };
}

/** A little above the site's budget, so that its 429s show up (one budget for all processes on Redis). */
export const demoLimiterOptions = {
  global: { rate: 150, intervalMs: 1000, burst: 20 },
  perKey: false,
  jitterMs: 5,
} satisfies RateLimiterOptions;

/** Engine tunables: two layers of retries, thresholds for pages that stay broken. */
export const demoEngineOptions = {
  concurrency: { parser: 16, download: 8 },
  downloadRetry: { maxRetries: 2, initialDelayMs: 50, maxDelayMs: 500, maxRetryAfterMs: 1_000 },
  nodeRetry: { maxRetries: 5, initialDelayMs: 100, maxDelayMs: 1_000 },
  // the flaky pages make ~25 nodes fail once each; the threshold is for pages that stay broken
  moduleErrorThreshold: 100,
  taskErrorThreshold: 200,
  retryPollMs: 10,
  stateTtlMs: 10 * 60_000,
} satisfies Partial<ChainEngineOptions>;

/** What the progress line shows. */
export interface DemoProgress {
  products: number;
  expected: number;
  nodesDone: number;
  nodesSeen: number;
  downloads: number;
  downloadRetries: number;
  retriesScheduled: number;
}

function progressLine(p: DemoProgress): string {
  return (
    `${p.products}/${p.expected} products, ${p.nodesDone}/${p.nodesSeen} nodes, ` +
    `${p.downloads} requests, ${p.downloadRetries} download retries, ` +
    `${p.retriesScheduled} node retries`
  );
}

/**
 * The node counts of the progress line from a run's status (`engine.runStatus(runId)`): nodes
 * done, of all the run has seen so far. Every process sharing the store reads the same.
 */
export function runProgress(
  run: RunStatus | undefined,
): Pick<DemoProgress, 'nodesDone' | 'nodesSeen'> {
  if (!run) return { nodesDone: 0, nodesSeen: 0 };
  const n = run.nodes;
  return { nodesDone: n.done, nodesSeen: n.queued + n.running + n.done + n.failed };
}

/** Draws the progress: a bar redrawn in place on a terminal, a plain line otherwise. */
export function drawProgress(p: DemoProgress, tty: boolean): void {
  if (tty) {
    const width = 30;
    const filled = Math.min(width, Math.round((p.products / p.expected) * width));
    const line = `  [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${progressLine(p)}`;
    // never wider than the terminal: a wrapped line cannot be redrawn in place
    process.stdout.write(`\r\x1b[K${line.slice(0, (process.stdout.columns || 120) - 1)}`);
  } else {
    console.log(`  ${progressLine(p)}`);
  }
}

/** The engine counters the summary reads (one engine's, or the sum over the workers). */
export type DemoStats = Pick<
  ChainEngineStats,
  | 'items'
  | 'downloads'
  | 'downloadRetries'
  | 'retriesScheduled'
  | 'nodesGivenUp'
  | 'fallbacks'
  | 'fallbacksRefused'
  | 'deduplicated'
  | 'modulesTerminated'
  | 'commits'
  | 'cacheHits'
  | 'cacheMisses'
>;

export interface DemoSummary {
  stats: DemoStats;
  limiter: { waits: number; totalWaitMs: number };
  products: number;
  reviews: number;
  /** The site's answers by status code. */
  statuses: Map<number, number>;
  nodesSeen: number;
  wallMs: number;
}

export type SummaryRow = [name: string, value: string | number];

export function summaryRows(d: DemoSummary): SummaryRow[] {
  const s = d.stats;
  const statuses = [...d.statuses]
    .sort(([a], [b]) => a - b)
    .map(([code, n]) => `${n}×${code}`)
    .join(', ');
  return [
    ['items', `${s.items} (${d.products} products, ${d.reviews} reviews)`],
    ['requests (downloads)', s.downloads],
    ['server answers', statuses],
    ['download retries (503, 429)', s.downloadRetries],
    ['node retries (ErrorTaskModels)', `${s.retriesScheduled} (${s.nodesGivenUp} nodes given up)`],
    ['rate-limit waits', `${d.limiter.waits} (${Math.round(d.limiter.totalWaitMs)} ms in all)`],
    ['cache hits (task, login)', `${s.cacheHits} (${s.cacheMisses} loads)`],
    ['fallbacks', `${s.fallbacks} (${s.fallbacksRefused} refused)`],
    ['links met again (de-duplicated)', s.deduplicated],
    ['modules terminated', s.modulesTerminated],
    ['nodes committed', `${s.commits.COMMIT_OK ?? 0} of ${d.nodesSeen}`],
    ['wall time', `${(d.wallMs / 1000).toFixed(2)} s`],
  ];
}

export function printSummary(rows: SummaryRow[]): void {
  console.log('\nsummary');
  for (const [name, value] of rows) console.log(`  ${name.padEnd(32)} ${value}`);
}

export interface DemoCheck {
  /** Whether the crawl finished within CRAWL_TIMEOUT_MS. */
  finished: boolean;
  /** Why it did not, when not for the time limit. */
  unfinished?: string;
  expected: number;
  missing: string[];
  twice: string[];
  unknown: string[];
  withoutReviews: string[];
  duplicateReviews: number;
  /** Other reasons the run failed (a worker that did not exit cleanly, …). */
  problems?: string[];
}

/** Prints the exactly-once check; sets a failing exit code and returns false when it fails. */
export function printCheck(c: DemoCheck): boolean {
  const problems = c.problems ?? [];
  const ok =
    c.finished &&
    c.missing.length === 0 &&
    c.twice.length === 0 &&
    c.unknown.length === 0 &&
    c.withoutReviews.length === 0 &&
    c.duplicateReviews === 0 &&
    problems.length === 0;
  if (ok) {
    console.log(`  check: all ${c.expected} products produced exactly once, each with reviews`);
    return true;
  }
  console.log(
    `  check FAILED: ${c.finished ? '' : `${c.unfinished ?? `not finished within ${CRAWL_TIMEOUT_MS / 1000} s`}; `}` +
      `${c.missing.length} missing, ${c.twice.length} produced twice, ${c.unknown.length} unexpected, ` +
      `${c.withoutReviews.length} without reviews, ${c.duplicateReviews} duplicate reviews`,
  );
  if (c.missing.length > 0) console.log(`  missing: ${c.missing.join(', ')}`);
  if (c.twice.length > 0) console.log(`  twice: ${c.twice.join(', ')}`);
  for (const problem of problems) console.log(`  ${problem}`);
  process.exitCode = 1;
  return false;
}

/** What each worker process of `--workers N` keeps in Redis about itself. */
export interface WorkerSnapshot {
  name: string;
  pid: number;
  stats: ChainEngineStats;
  limiter: { waits: number; totalWaitMs: number };
  /** Nodes this worker put on the parser queue (first steps and successors, not retries). */
  nodesSeen: number;
  /** Nodes this worker ran and committed. */
  nodesDone: number;
  /** Written after the worker stopped: its counters are final. */
  stopped: boolean;
}

/** The Redis key of a worker's snapshot, under the run's key prefix. */
export function snapshotKey(keyPrefix: string, name: string): string {
  return `${keyPrefix}demo:worker:${name}`;
}
