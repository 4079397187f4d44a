/**
 * The synthetic workload of bench/distributed: a 3-step module whose "downloads" are answered
 * in process, at once, with no I/O, so what the benchmark measures is the engine and Redis.
 *
 *   root   synthetic://root          → LISTS list nodes
 *   list   synthetic://list/<i>      → PER_LIST leaf nodes
 *   leaf   synthetic://leaf/<i>/<j>  → one item
 *
 * Nodes per task: 1 + LISTS + LISTS × PER_LIST (1 + 30 + 3,000 = 3,031 by default).
 */
import { defineModule, type DownloadResult, type ModuleDefinition } from '../../src/index.js';
import type { Downloader } from '../../src/index.js';

export const LISTS = Number(process.env.BENCH_DIST_LISTS ?? 30);
export const PER_LIST = Number(process.env.BENCH_DIST_PER_LIST ?? 100);
export const NODES_PER_TASK = 1 + LISTS + LISTS * PER_LIST;
export const ITEMS_PER_TASK = LISTS * PER_LIST;
export const MODULE_ID = 'synthetic';

const ok = (body: string): DownloadResult => ({ status: 200, headers: {}, body });

/** Answers every synthetic:// request at once. */
export const syntheticDownloader: Downloader = (request) => {
  const path = request.url.slice('synthetic://'.length);
  if (path === 'root') return Promise.resolve(ok(JSON.stringify({ lists: LISTS })));
  if (path.startsWith('list/')) return Promise.resolve(ok(JSON.stringify({ leaves: PER_LIST })));
  return Promise.resolve(ok(JSON.stringify({ id: path })));
};

/** The root → lists → leaves module. */
export function syntheticModule(): ModuleDefinition {
  return defineModule({
    id: MODULE_ID,
    steps: [
      {
        name: 'root',
        generate: () => [{ url: 'synthetic://root' }],
        parse: (r) => {
          const { lists } = JSON.parse(r.body) as { lists: number };
          return { next: Array.from({ length: lists }, (_, i) => i) };
        },
      },
      {
        name: 'list',
        generate: ({ input }) => [{ url: `synthetic://list/${String(input)}` }],
        parse: (r, { request }) => {
          const { leaves } = JSON.parse(r.body) as { leaves: number };
          const list = request.url.slice('synthetic://list/'.length);
          return { next: Array.from({ length: leaves }, (_, j) => `${list}/${j}`) };
        },
      },
      {
        name: 'leaf',
        generate: ({ input }) => [{ url: `synthetic://leaf/${String(input)}` }],
        parse: (r) => ({ items: [JSON.parse(r.body) as { id: string }] }),
      },
    ],
  });
}
