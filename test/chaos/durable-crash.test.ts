/**
 * Crash test of durable single-node mode: one crawl of a local site, on one data directory,
 * over five lifetimes of a child process (fixtures/durable-crawler.ts). The first four kill
 * themselves with SIGKILL — mid-download, right after a commit, mid-relay (inside onItem, the
 * item handed over and not acknowledged), mid-download again — and each next lifetime starts on
 * the same path and resumes; the fifth runs to the end.
 *
 * Across all lifetimes (the ledger every lifetime appends to):
 * - every item the site implies (one product + its reviews per product) was delivered;
 * - no node committed twice (ModuleStepAdvanced at most once per node);
 * - an item delivered more than once was first delivered in a lifetime that was killed, and
 *   never twice in the same lifetime (a repeat is a hand-over not acknowledged before the kill);
 * - a product page fetched again was fetched in a lifetime that was killed before its node
 *   committed (committed nodes never run again).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestSite, type TestSite } from '../../examples/support/test-site.js';
import { removeTempDataDirs, tempDataDir } from '../helpers/durable.js';
import { startWorkerProcess } from '../helpers/worker-process.js';

const ENTRY = join(import.meta.dirname, 'fixtures', 'durable-crawler.ts');
const LIVES = ['download:6', 'commit:12', 'item:15', 'download:40', 'none'];

interface Line {
  t: string;
  life: number;
  id?: string;
  kind?: string;
  node?: string;
  url?: string;
  where?: string;
}

let site: TestSite;
beforeAll(async () => {
  site = await startTestSite({
    categories: 3,
    pagesPerCategory: 4,
    productsPerPage: 5,
    flakyRatio: 0,
    slowRatio: 0.2,
    slowMs: 30,
    serverRatePerSec: 100_000,
  });
});
afterAll(async () => {
  await site.close();
  removeTempDataDirs();
});

it('a crawl SIGKILLed mid-download, after a commit and mid-relay resumes on the same path and finishes exactly once', async () => {
  const dataDir = tempDataDir('crash');
  const ledger = join(dataDir, '..', `${dataDir.split('/').pop()}.ledger`);
  const exits: { code: number | null; signal: NodeJS.Signals | null }[] = [];
  for (const [life, killAt] of LIVES.entries()) {
    const worker = startWorkerProcess(ENTRY, `life${life}`, {
      SITE_URL: site.url,
      DATA_DIR: dataDir,
      LEDGER: ledger,
      KILL_AT: killAt,
      LIFE: String(life),
      SUBMIT: life === 0 ? '1' : '0',
    });
    const timeout = setTimeout(() => worker.child.kill('SIGKILL'), 60_000);
    const exit = await worker.exited;
    clearTimeout(timeout);
    exits.push(exit);
    if (killAt === 'none')
      expect(exit, `last life: ${worker.stderr}`).toEqual({ code: 0, signal: null });
    else expect(exit.signal, `life ${life} (${killAt}): ${worker.stderr}`).toBe('SIGKILL');
  }
  const lines = readFileSync(ledger, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Line);
  const killed = new Map(lines.filter((l) => l.t === 'kill').map((l) => [l.life, l.where!]));
  expect([...killed.values()]).toEqual(['download', 'commit', 'item', 'download']);

  // every item delivered: a product and its reviews per product the site lists
  const items = lines.filter((l) => l.t === 'item');
  const products = new Set(items.filter((l) => l.kind === 'product').map((l) => l.id));
  expect(products.size).toBe(site.expectedProducts().length);
  const firstDelivery = new Map<string, Line>();
  const repeats: Line[] = [];
  for (const item of items) {
    const first = firstDelivery.get(item.id!);
    if (first === undefined) firstDelivery.set(item.id!, item);
    else repeats.push(item);
  }
  // a repeat: delivered first in a killed lifetime, never twice within one lifetime
  for (const r of repeats) {
    const first = firstDelivery.get(r.id!)!;
    expect(killed.has(first.life), `item ${r.id} first delivered in life ${first.life}`).toBe(true);
    expect(r.life).toBeGreaterThan(first.life);
  }
  // the mid-relay kill left at least its own item handed over and not acknowledged
  expect(repeats.some((r) => firstDelivery.get(r.id!)!.life === 2)).toBe(true);

  // no node committed twice
  const commits = new Map<string, number>();
  for (const c of lines.filter((l) => l.t === 'commit'))
    commits.set(c.node!, (commits.get(c.node!) ?? 0) + 1);
  expect([...commits.values()].filter((n) => n > 1)).toEqual([]);
  // 1 catalogue + 12 list pages + one node per product
  expect(commits.size).toBeLessThanOrEqual(1 + 12 + site.expectedProducts().length);

  // committed nodes never run again: a page fetched in two lifetimes was fetched first in a
  // killed lifetime (its node was in flight at the kill)
  const fetchedIn = new Map<string, Set<number>>();
  for (const d of lines.filter((l) => l.t === 'download')) {
    const lives = fetchedIn.get(d.url!) ?? new Set<number>();
    fetchedIn.set(d.url!, lives.add(d.life));
  }
  const refetched = [...fetchedIn].filter(([, lives]) => lives.size > 1);
  for (const [url, lives] of refetched)
    expect(killed.has(Math.min(...lives)), `${url} in lives ${[...lives].join(',')}`).toBe(true);
  console.info(
    `durable crash test: ${items.length} onItem calls for ${firstDelivery.size} items ` +
      `(${repeats.length} repeated), ${commits.size} nodes committed once each, ` +
      `${refetched.length} of ${fetchedIn.size} pages fetched in two lifetimes`,
  );
});
