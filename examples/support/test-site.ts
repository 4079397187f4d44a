/**
 * A small, deterministic HTTP site on 127.0.0.1 for the demo, the examples and the tests:
 *
 *   GET /catalogue                      → { categories: [{ id, pages }] }
 *   GET /category/:cat/page/:n          → { products: string[], next: string }
 *                                          (`next`: the following page; the last page links
 *                                          back to page 1, a cycle)
 *   GET /product/:id                    → { id, name, price, related: string[] }
 *                                          (`related`: a product of the next category)
 *   GET /product/:id/reviews            → { id, reviews: [{ stars, text }] }
 *   GET /feed/:n                        → { products: string[], next: string | null }
 *                                          (a list of unknown length: `feedPages` pages, each
 *                                          linking to the next; its products are `f-<n>-<i>`)
 *   GET /tree-product/tp-:id            → { id, name }
 *   GET /tree/:id                       → { id, products: string[], links: string[] }
 *                                          (a category tree of depth `treeDepth`, ids `t`,
 *                                          `t0`, `t01`, …: each links to its two children, to
 *                                          its sibling (a cross-link), and the leaves to t0
 *                                          (a cycle); each category lists two products,
 *                                          `tp-<id>` and the one of its parent, so a product
 *                                          appears under two categories)
 *
 * Faults, all deterministic for a given seed: some paths answer 503 on their first hits
 * (`flakyRatio`, `flakyHits`), some are slow (`slowRatio`, `slowMs`), and a server-side token
 * bucket answers 429 with `Retry-After` when clients exceed `serverRatePerSec`.
 * `hits` counts every request by path so callers can check what was fetched and how often.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TestSiteOptions {
  /** Categories in the catalogue. @defaultValue 3 */
  categories?: number;
  /** List pages per category. @defaultValue 4 */
  pagesPerCategory?: number;
  /** Products per list page. @defaultValue 5 */
  productsPerPage?: number;
  /** Share of paths (0..1) that fail with 503 on their first `flakyHits` requests. @defaultValue 0.1 */
  flakyRatio?: number;
  /** How many first requests to a flaky path fail. @defaultValue 1 */
  flakyHits?: number;
  /** Share of paths (0..1) that answer after `slowMs`. @defaultValue 0.1 */
  slowRatio?: number;
  /** Delay of slow paths in ms. @defaultValue 150 */
  slowMs?: number;
  /** Server-side budget; above it the site answers 429 with Retry-After. @defaultValue 400 */
  serverRatePerSec?: number;
  /** Seed for which paths are flaky or slow. @defaultValue 42 */
  seed?: number;
  /** Pages of the `/feed` list. @defaultValue 5 */
  feedPages?: number;
  /** Depth of the `/tree` categories (the root is depth 0). @defaultValue 3 */
  treeDepth?: number;
  /** Port on 127.0.0.1 (a resumed demo serves its site where the stored URLs point). @defaultValue a free port */
  port?: number;
}

export interface TestSite {
  /** Base URL, e.g. http://127.0.0.1:34567 */
  readonly url: string;
  /** Requests received, by path (including failed ones). */
  readonly hits: Map<string, number>;
  /** Responses by status code. */
  readonly statuses: Map<number, number>;
  /** Successful (200) responses, by path. */
  readonly served: Map<string, number>;
  /** Every path of the `/feed` list, in order. */
  feedPaths(): string[];
  /** Every category path of the `/tree`, sorted. */
  treePaths(): string[];
  /** Every product id the `/tree` lists, sorted (each once). */
  treeProducts(): string[];
  /** Every product id the catalogue lists, sorted. */
  expectedProducts(): string[];
  close(): Promise<void>;
}

/** FNV-1a: a stable 32-bit hash used to decide deterministically which paths misbehave. */
function hash(text: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h / 0xffffffff;
}

export async function startTestSite(options: TestSiteOptions = {}): Promise<TestSite> {
  const o = {
    categories: 3,
    pagesPerCategory: 4,
    productsPerPage: 5,
    flakyRatio: 0.1,
    flakyHits: 1,
    slowRatio: 0.1,
    slowMs: 150,
    serverRatePerSec: 400,
    seed: 42,
    feedPages: 5,
    treeDepth: 3,
    ...options,
  };
  const hits = new Map<string, number>();
  const statuses = new Map<number, number>();
  const served = new Map<string, number>();
  const treeIds = (): string[] => {
    const ids: string[] = [];
    const walk = (id: string): void => {
      ids.push(id);
      if (id.length - 1 < o.treeDepth) for (const d of ['0', '1']) walk(id + d);
    };
    walk('t');
    return ids;
  };
  let tokens = o.serverRatePerSec;
  let refilledAt = Date.now();

  const productId = (cat: number, page: number, i: number): string => `p-${cat}-${page}-${i}`;

  const send = (
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
    path = '',
  ): void => {
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
    if (status === 200) served.set(path, (served.get(path) ?? 0) + 1);
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };

  const route = (path: string): { status: number; body: unknown } => {
    if (path === '/catalogue') {
      return {
        status: 200,
        body: {
          categories: Array.from({ length: o.categories }, (_, c) => ({
            id: `c${c}`,
            pages: o.pagesPerCategory,
          })),
        },
      };
    }
    let m = /^\/category\/c(\d+)\/page\/(\d+)$/.exec(path);
    if (m) {
      const cat = Number(m[1]);
      const page = Number(m[2]);
      if (cat >= o.categories || page < 1 || page > o.pagesPerCategory)
        return { status: 404, body: { error: 'no such page' } };
      return {
        status: 200,
        body: {
          products: Array.from({ length: o.productsPerPage }, (_, i) => productId(cat, page, i)),
          next: `/category/c${cat}/page/${page < o.pagesPerCategory ? page + 1 : 1}`,
        },
      };
    }
    m = /^\/feed\/(\d+)$/.exec(path);
    if (m) {
      const n = Number(m[1]);
      if (n < 1 || n > o.feedPages) return { status: 404, body: { error: 'no such page' } };
      return {
        status: 200,
        body: {
          products: [`f-${n}-0`, `f-${n}-1`],
          next: n < o.feedPages ? `/feed/${n + 1}` : null,
        },
      };
    }
    m = /^\/tree\/(t[01]*)$/.exec(path);
    if (m) {
      const id = m[1]!;
      const depth = id.length - 1;
      if (depth > o.treeDepth) return { status: 404, body: { error: 'no such category' } };
      const links: string[] = [];
      if (depth < o.treeDepth) links.push(`/tree/${id}0`, `/tree/${id}1`);
      // a cross-link to the sibling, and from every leaf a link back up to t0: a cycle
      if (depth > 0) links.push(`/tree/${id.slice(0, -1)}${id.endsWith('0') ? '1' : '0'}`);
      if (depth === o.treeDepth && depth > 1) links.push('/tree/t0');
      const products = [`tp-${id}`];
      if (depth > 0) products.push(`tp-${id.slice(0, -1)}`);
      return { status: 200, body: { id, products, links } };
    }
    m = /^\/tree-product\/tp-(t[01]*)$/.exec(path);
    if (m) {
      const id = m[1]!;
      if (id.length - 1 > o.treeDepth) return { status: 404, body: { error: 'no such product' } };
      return { status: 200, body: { id: `tp-${id}`, name: `Product of ${id}` } };
    }
    m = /^\/product\/(p-\d+-\d+-\d+)(\/reviews)?$/.exec(path);
    if (m) {
      const id = m[1]!;
      if (m[2]) {
        const count = 1 + Math.floor(hash(id, o.seed + 7) * 3);
        return {
          status: 200,
          body: {
            id,
            reviews: Array.from({ length: count }, (_, i) => ({
              stars: 1 + ((i + id.length) % 5),
              text: `review ${i} of ${id}`,
            })),
          },
        };
      }
      const [, cat, page, i] = id.split('-').map(Number) as [number, number, number, number];
      return {
        status: 200,
        body: {
          id,
          name: `Product ${id}`,
          price: Math.round(hash(id, o.seed) * 10_000) / 100,
          related: [productId((cat + 1) % o.categories, page, i)],
        },
      };
    }
    return { status: 404, body: { error: 'not found' } };
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const count = (hits.get(path) ?? 0) + 1;
    hits.set(path, count);

    const now = Date.now();
    tokens = Math.min(
      o.serverRatePerSec,
      tokens + ((now - refilledAt) / 1000) * o.serverRatePerSec,
    );
    refilledAt = now;
    if (tokens < 1) {
      send(res, 429, { error: 'slow down' }, { 'retry-after': '1' });
      return;
    }
    tokens -= 1;

    if (path !== '/catalogue' && hash(path, o.seed + 1) < o.flakyRatio && count <= o.flakyHits) {
      send(res, 503, { error: 'temporarily unavailable' });
      return;
    }
    const { status, body } = route(path);
    if (hash(path, o.seed + 2) < o.slowRatio) {
      setTimeout(() => send(res, status, body, {}, path), o.slowMs).unref();
    } else {
      send(res, status, body, {}, path);
    }
  };

  const server: Server = createServer(handle);
  // longer than a client keeps an idle socket (undici: 4 s by default): with 1 s, the server
  // closed sockets undici was about to reuse, and every such request paid a reset and a new
  // connection
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    statuses,
    served,
    feedPaths: () => Array.from({ length: o.feedPages }, (_, i) => `/feed/${i + 1}`),
    treePaths: () =>
      treeIds()
        .map((id) => `/tree/${id}`)
        .sort(),
    treeProducts: () =>
      treeIds()
        .map((id) => `tp-${id}`)
        .sort(),
    expectedProducts() {
      const ids: string[] = [];
      for (let c = 0; c < o.categories; c++)
        for (let p = 1; p <= o.pagesPerCategory; p++)
          for (let i = 0; i < o.productsPerPage; i++) ids.push(productId(c, p, i));
      return ids.sort();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
