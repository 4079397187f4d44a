/**
 * The 3-step chain module the demo and bench/chain run against the local test site:
 *
 *   catalogue  GET /catalogue                → one node per list page
 *   list       GET /category/:cat/page/:n    → one node per product
 *   product    GET /product/:id              → one `product` item
 *              GET /product/:id/reviews      → one `review` item per review
 *
 * The product step downloads both requests of a node in parallel; their items are committed
 * together, exactly once, when the node commits. If either download fails the node fails as a
 * whole and is retried as a whole.
 */
import { defineModule, type DownloadResult, type ModuleDefinition } from 'mocra';

/** An output item of the product step. */
export type ShopItem =
  | { kind: 'product'; id: string; name: string; price: number }
  | { kind: 'review'; productId: string; stars: number; text: string };

function json<T>(response: DownloadResult, what: string): T {
  // 408/429/5xx never get here (the engine retries them); anything else but 200 is a failure
  if (response.status !== 200) throw new Error(`${what} answered ${response.status}`);
  return JSON.parse(response.body) as T;
}

/** The catalogue → list pages → product + reviews module for the site at `baseUrl`. */
export function shopModule(baseUrl: string, id = 'shop'): ModuleDefinition {
  return defineModule({
    id,
    steps: [
      {
        name: 'catalogue',
        generate: () => [{ url: `${baseUrl}/catalogue` }],
        parse: (response) => {
          const body = json<{ categories: { id: string; pages: number }[] }>(response, 'catalogue');
          return {
            next: body.categories.flatMap((c) =>
              Array.from({ length: c.pages }, (_, i) => ({ cat: c.id, page: i + 1 })),
            ),
          };
        },
      },
      {
        name: 'list',
        generate: ({ input }) => {
          const { cat, page } = input as { cat: string; page: number };
          return [{ url: `${baseUrl}/category/${cat}/page/${page}` }];
        },
        parse: (response, { request }) => ({
          next: json<{ products: string[] }>(response, request.url).products,
        }),
      },
      {
        name: 'product',
        generate: ({ input }) => {
          const productId = String(input);
          return [
            { url: `${baseUrl}/product/${productId}`, meta: { kind: 'product' } },
            { url: `${baseUrl}/product/${productId}/reviews`, meta: { kind: 'reviews' } },
          ];
        },
        parse: (response, { request }) => {
          if (request.meta?.kind === 'product') {
            const p = json<{ id: string; name: string; price: number }>(response, request.url);
            const item: ShopItem = { kind: 'product', id: p.id, name: p.name, price: p.price };
            return { items: [item] };
          }
          const r = json<{ id: string; reviews: { stars: number; text: string }[] }>(
            response,
            request.url,
          );
          const items: ShopItem[] = r.reviews.map((review) => ({
            kind: 'review',
            productId: r.id,
            stars: review.stars,
            text: review.text,
          }));
          return { items };
        },
      },
    ],
  });
}
