/**
 * bench/chain-resume: how much a crawl fetches again when it is killed half-way and restarted
 * on the same storage. The same shop site (examples/support/test-site.ts, no faults) is crawled
 * by mocra on the durable store (LMDB) and by Crawlee's HttpCrawler with its persisted request
 * queue (`purgeOnStart: false`), each in a child process (bench/chain-resume/worker.ts) that is
 * SIGKILLed when the site has answered half the crawl's requests, then started again on the
 * same directory and run to the end.
 *
 *   node --import tsx bench/chain-resume/index.ts
 *
 * Measured per crawler, median over BENCH_ROUNDS rounds (default 2): requests the site
 * received for pages it had already answered ("fetched again"; lower is better), and whether
 * and when the restarted lifetime finished (the notes). Both crawl with 16 concurrent requests.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestSite, type TestSite } from '../../examples/support/test-site.js';
import { median, writeResults, type CaseResult } from '../lib/harness.js';

const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
const WORKER = join(import.meta.dirname, 'worker.ts');
/** A lifetime that has not exited by then is stopped and reported as not finished. */
const LIMIT_MS = Number(process.env.BENCH_RESUME_LIMIT_MS ?? 90_000);

function total(site: TestSite): number {
  let n = 0;
  for (const hits of site.hits.values()) n += hits;
  return n;
}

/** Runs one lifetime; kills it with SIGKILL once the site has served `killAt` requests. */
function life(crawler: string, site: TestSite, dir: string, killAt?: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER], {
      env: { ...process.env, CRAWLER: crawler, SITE_URL: site.url, DATA_DIR: dir },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const watch =
      killAt === undefined
        ? undefined
        : setInterval(() => {
            if (total(site) >= killAt) child.kill('SIGKILL');
          }, 1);
    let timedOut = false;
    const limit = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, LIMIT_MS);
    child.once('exit', (code, signal) => {
      clearInterval(watch);
      clearTimeout(limit);
      if (timedOut) resolve('timed out');
      else if (killAt !== undefined && signal === 'SIGKILL') resolve('killed');
      else if (killAt === undefined && code === 0) resolve('finished');
      else reject(new Error(`${crawler}: exit ${code ?? signal}: ${stderr.slice(-2000)}`));
    });
  });
}

async function round(
  crawler: string,
): Promise<{ again: number; requests: number; missing: number; end: string; resumeMs: number }> {
  const site = await startTestSite({
    categories: 5,
    pagesPerCategory: 4,
    productsPerPage: 10,
    flakyRatio: 0,
    slowRatio: 0.2,
    slowMs: 20,
    serverRatePerSec: 1_000_000,
  });
  const dir = mkdtempSync(join(tmpdir(), `mocra-bench-resume-${crawler}-`));
  try {
    const pages = 1 + 5 * 4 + 2 * site.expectedProducts().length;
    const first = await life(crawler, site, dir, Math.floor(pages / 2));
    if (first !== 'killed') throw new Error(`${crawler}: the first lifetime ${first}`);
    const started = performance.now();
    const end = await life(crawler, site, dir);
    const resumeMs = Math.round(performance.now() - started);
    const requests = total(site);
    let again = 0;
    for (const hits of site.hits.values()) again += hits - 1;
    return { again, requests, missing: pages - site.hits.size, end, resumeMs };
  } finally {
    await site.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const samples = new Map<string, number[]>([
  ['mocra (durable store)', []],
  ['Crawlee HttpCrawler (persisted queue)', []],
]);
const detail: Record<string, unknown> = {};
const loadStart = Number(loadavg()[0]!.toFixed(2));
for (let r = 0; r < rounds; r++) {
  for (const [name, crawler] of [
    ['mocra (durable store)', 'mocra'],
    ['Crawlee HttpCrawler (persisted queue)', 'crawlee'],
  ] as const) {
    const result = await round(crawler);
    samples.get(name)!.push(result.again);
    detail[`${name}, round ${r + 1}`] =
      `${result.requests} requests in all, ${result.missing} pages never fetched; the restarted ` +
      `lifetime ${result.end} after ${result.resumeMs} ms`;
    console.log(`${name}, round ${r + 1}: ${String(detail[`${name}, round ${r + 1}`])}`);
  }
}
const result: CaseResult = {
  case: 'pages fetched again after a SIGKILL at 50% and a restart on the same storage (lower is better)',
  unit: 'pages',
  rows: [...samples].map(([name, s]) => ({
    name,
    median: median(s),
    min: Math.min(...s),
    max: Math.max(...s),
    samples: s,
  })),
};
console.log(`\n${result.case}`);
for (const row of result.rows)
  console.log(`  ${row.name.padEnd(40)} ${row.median} (samples ${row.samples.join(', ')})`);
console.log(
  `\nwrote ${writeResults('chain-resume', [result], {
    setup:
      'shop site 1 + 20 list pages + 200 products (2 requests each) = 421 pages, no faults; ' +
      '16 concurrent requests; the first lifetime is SIGKILLed when the site has answered half ' +
      'of them, the second runs on the same directory until it exits (or is stopped after ' +
      `${LIMIT_MS / 1000} s: reported as "timed out")`,
    peer: 'crawlee HttpCrawler, purgeOnStart false, request queue persisted on disk',
    'load average (1 min) at start': loadStart,
    'load average (1 min) at end': Number(loadavg()[0]!.toFixed(2)),
    ...detail,
  })}`,
);
