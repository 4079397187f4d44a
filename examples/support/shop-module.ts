/**
 * The 3-step chain module the demo and bench/chain run against the local test site. The list
 * pages are a list of unknown length (each links to the next, the last back to the first), and
 * products link to related products in other categories, so the crawl follows links rather than
 * counting pages, and de-duplication keys make every page and product run once:
 *
 *   catalogue  GET /catalogue                → routes each category's first page to `list`
 *   list       GET /category/:cat/page/:n    → routes the next page to `list` (a cycle at the
 *                                              end) and each product to `product`
 *   product    GET /product/:id              → one `product` item; routes related products
 *              GET /product/:id/reviews      → one `review` item per review
 *
 * Every route carries a key (the page's path, the product id): a page or product reached twice
 * is fetched once. The product step downloads both requests of a node in parallel; their items
 * are committed together, exactly once, when the node commits. If either download fails the
 * node fails as a whole and is retried as a whole.
 */
import { defineModule, type DownloadResult, type ModuleDefinition, type StepContext } from 'mocra';

/** An output item of the product step. */
export type ShopItem =
  | { kind: 'product'; id: string; name: string; price: number }
  | { kind: 'review'; productId: string; stars: number; text: string };

function json<T>(response: DownloadResult, what: string): T {
  // 408/429/5xx never get here (the engine retries them); anything else but 200 is a failure
  if (response.status !== 200) throw new Error(`${what} answered ${response.status}`);
  return JSON.parse(response.body) as T;
}

/** A route to a list page, keyed by its path. */
const toList = (path: string) => ({ step: 'list' as const, input: path, key: path });
/** A route to a product, keyed by its id. */
const toProduct = (id: string) => ({ step: 'product' as const, input: id, key: `product:${id}` });

/** The catalogue → list pages → product + reviews module for the site at `baseUrl`. */
export function shopModule(baseUrl: string, id = 'shop'): ModuleDefinition<ShopItem> {
  return defineModule({
    id,
    steps: [
      {
        name: 'catalogue',
        generate: () => [{ url: `${baseUrl}/catalogue` }],
        parse: (response) => {
          const body = json<{ categories: { id: string }[] }>(response, 'catalogue');
          // the number of pages is not used: the list pages link to each other
          return { route: body.categories.map((c) => toList(`/category/${c.id}/page/1`)) };
        },
      },
      {
        name: 'list',
        generate: ({ input }: StepContext<string>) => [{ url: `${baseUrl}${input}` }],
        parse: (response, { request }) => {
          const page = json<{ products: string[]; next: string }>(response, request.url);
          return { route: [toList(page.next), ...page.products.map(toProduct)] };
        },
      },
      {
        name: 'product',
        generate: ({ input: productId }: StepContext<string>) => [
          { url: `${baseUrl}/product/${productId}`, meta: { kind: 'product' } },
          { url: `${baseUrl}/product/${productId}/reviews`, meta: { kind: 'reviews' } },
        ],
        parse: (response, { request }) => {
          if (request.meta?.kind === 'product') {
            const p = json<{ id: string; name: string; price: number; related: string[] }>(
              response,
              request.url,
            );
            const item: ShopItem = { kind: 'product', id: p.id, name: p.name, price: p.price };
            return { items: [item], route: p.related.map(toProduct) };
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
