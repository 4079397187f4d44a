/**
 * Type test (checked by `npm run typecheck`): `defineModule` infers each step's input from the
 * previous step's `next` (the first step's from its `ctx` annotation), each step's items, and
 * checks routes; `onItem` gets the items typed by module. Every `@ts-expect-error` below must be
 * an error, or the type check fails.
 */
import { createChainEngine, defineModule, type StepContext } from 'mocra';

const shop = defineModule({
  id: 'shop',
  steps: [
    {
      name: 'list',
      // the first step's input: undefined for the module's first node, a page when routed
      generate: (ctx: StepContext<{ page: number } | undefined>) => [
        { url: `https://shop.example/list?page=${ctx.input?.page ?? 1}` },
      ],
      parse: (response, ctx) => {
        const body = JSON.parse(response.body) as { ids: string[]; more: boolean };
        const page = ctx.input?.page ?? 1;
        return {
          next: body.ids.map((id) => ({ id })),
          route: body.more ? [{ step: 'list', input: { page: page + 1 } }] : [],
        };
      },
    },
    {
      name: 'detail',
      generate: (ctx) => {
        const id: string = ctx.input.id; // typed from the list step's `next`
        // @ts-expect-error a wrong field of the input is a compile error
        void ctx.input.idd;
        return [{ url: `https://shop.example/item/${id}` }];
      },
      parse: (response, ctx) => ({
        items: [{ id: ctx.input.id, title: response.body, price: 1 }],
        route: [{ step: 'detail', input: { id: 'related' }, key: 'related' }],
      }),
    },
  ],
});

createChainEngine({
  modules: [shop],
  onItem: (item) => {
    const title: string = item.item.title; // the item is typed
    const module: 'shop' = item.moduleId;
    // @ts-expect-error a wrong field of the item is a compile error
    void item.item.name;
    void title;
    void module;
  },
});

defineModule({
  id: 'bad-route',
  // @ts-expect-error a route's input must have its target step's input type (no overload matches)
  steps: [
    {
      name: 'list',
      generate: (ctx: StepContext<{ page: number } | undefined>) => [
        { url: `https://shop.example/${ctx.input?.page ?? 1}` },
      ],
      parse: () => ({ route: [{ step: 'list', input: { pge: 2 } }] }),
    },
  ],
});

defineModule({
  id: 'unknown-step',
  // @ts-expect-error a route to a step the module does not have (no overload matches)
  steps: [
    {
      name: 'list',
      generate: () => [{ url: 'https://shop.example/' }],
      parse: () => ({ route: [{ step: 'nowhere' }] }),
    },
  ],
});

// an untyped module (steps built at run time) still works, with JsonValue inputs and items
const steps = [{ name: 'only', generate: () => [{ url: 'https://x.example' }], parse: () => ({}) }];
createChainEngine({
  modules: [defineModule({ id: 'untyped', steps })],
  onItem: (item) => {
    const id: string = item.moduleId;
    void id;
  },
});
