/**
 * The commit's hand-off on one standalone Redis: `ptm_commit_success` adds the successors to the
 * parser stream and the items to the items stream and acknowledges the node's own delivery, in
 * its one script; a parser stream without room sends them to the outbox instead; a replay adds
 * nothing again; `chain_items_ack` lets the run finish. The engine uses it when its queues are
 * Redis Streams beside its state (same server, even through another client), not otherwise.
 */
import { expect, it } from 'vitest';
import {
  ClaimCode,
  CommitCode,
  RedisChainState,
  type NodeAddress,
} from '../../../src/chain/state/index.js';
import {
  InMemoryMetrics,
  RedisBackend,
  createChainEngine,
  createRedisStreamQueues,
  defineModule,
  type ChainItem,
} from '../../../src/index.js';
import type { CommitHandOff } from '../../../src/chain/state/commit-hand-off.js';
import { ChainKeyBuilder } from '../../../src/keys/chain-key-builder.js';
import { scriptCommands } from '../../helpers/monitor.js';
import { describeRedis, useRedis } from '../../helpers/redis.js';

const node = (stepIdx: number, prefixRequest = ''): NodeAddress => ({
  taskId: 't',
  runId: 'r',
  account: 'a',
  platform: 'p',
  moduleId: 'm',
  stepIdx,
  prefixRequest,
});
const message = (n: NodeAddress): string => `p${JSON.stringify({ kind: 'parser_task', body: n })}`;

describeRedis('commit hand-off', () => {
  const redis = useRedis();

  async function setUp(capacity = Infinity) {
    const client = redis.client();
    const backend = new RedisBackend({ redis: client, keyPrefix: redis.prefix.slice(0, -1) });
    const keys = new ChainKeyBuilder();
    const state = new RedisChainState(backend, { keys });
    const full = (key: string): string => backend.keyPrefix + key;
    const handOff: CommitHandOff = {
      stream: keys.queue('parser'),
      items: keys.items(),
      group: 'g',
      capacity,
    };
    await client.xgroup('CREATE', full(handOff.stream), 'g', '0', 'MKSTREAM');
    await client.xgroup('CREATE', full(handOff.items), 'g', '0', 'MKSTREAM');
    // the root's delivery, read by this consumer (pending until acknowledged)
    await client.xadd(full(handOff.stream), '*', 'p', 'root', 'd', '0');
    const read = (await client.xreadgroup(
      'GROUP',
      'g',
      'c',
      'COUNT',
      1,
      'STREAMS',
      full(handOff.stream),
      '>',
    )) as [string, [string, string[]][]][];
    const delivery = read[0]![1][0]![0];
    await state.runStart('t', 'r', ['m']);
    await state.runDispatch('t', 'r', [{ moduleId: 'm', state: 'running' }]);
    const root = node(0);
    const claim = await state.claim({
      node: root,
      owner: 'o',
      leaseMs: 10_000,
      epoch: 0,
      root: true,
    });
    expect(claim.code).toBe(ClaimCode.EXECUTE);
    const commit = () =>
      state.commitSuccessDetailed({
        node: root,
        owner: 'o',
        version: claim.version,
        successors: [node(1, 'a'), node(1, 'b')].map((n) => ({ node: n, message: message(n) })),
        items: [`i${JSON.stringify({ itemId: 'x', taskId: 't', runId: 'r' })}`],
        handOff: { ...handOff, delivery },
      });
    /** The ids of the items stream's entries not read yet, read by consumer c. */
    const readItems = async (): Promise<string[]> => {
      const read = (await client.xreadgroup(
        'GROUP',
        'g',
        'c',
        'STREAMS',
        full(handOff.items),
        '>',
      )) as [string, [string, string[]][]][] | null;
      return (read?.[0]?.[1] ?? []).map(([id]) => id);
    };
    /** Successor `prefix` of the root claimed and committed with `items` (handed off, if any). */
    const finishChild = async (prefix: string, items: string[] = []): Promise<void> => {
      const n = node(1, prefix);
      const c = await state.claim({ node: n, owner: 'o', leaseMs: 10_000, epoch: 0, root: false });
      await state.commitSuccessDetailed({
        node: n,
        owner: 'o',
        version: c.version,
        successors: [],
        items,
        ...(items.length > 0 ? { handOff } : {}),
      });
    };
    return { client, state, keys, full, handOff, commit, delivery, readItems, finishChild };
  }

  it('adds the successors and items to the streams and acknowledges the delivery, once', async () => {
    const { client, full, handOff, commit, keys, delivery } = await setUp();
    const first = await commit();
    expect(first).toEqual({
      code: CommitCode.COMMIT_OK,
      created: 2,
      duplicates: [],
      handedOff: true,
    });
    const parser = await client.xrange(full(handOff.stream), '-', '+');
    expect(parser.map(([id]) => id)).not.toContain(delivery);
    expect(parser.map(([, f]) => JSON.parse(f[1]!).body.prefixRequest)).toEqual(['a', 'b']);
    expect(await client.xpending(full(handOff.stream), 'g')).toEqual([0, null, null, null]);
    const items = await client.xrange(full(handOff.items), '-', '+');
    expect(items.map(([, f]) => JSON.parse(f[1]!).itemId)).toEqual(['x']);
    expect(await client.exists(full(keys.outbox('t')))).toBe(0);
    // a replay (the reply was lost) adds nothing again
    expect((await commit()).code).toBe(CommitCode.ALREADY_COMMITTED);
    expect(await client.xlen(full(handOff.stream))).toBe(2);
    expect(await client.xlen(full(handOff.items))).toBe(1);
  });

  it('sends everything to the outbox when the parser stream has no room, and still acknowledges', async () => {
    const { client, full, handOff, commit, keys } = await setUp(2);
    const result = await commit();
    expect(result.code).toBe(CommitCode.COMMIT_OK);
    expect(result.handedOff).toBeUndefined();
    // the outbox entries as a commit without a hand-off writes them: each with its letter
    expect(await client.lrange(full(keys.outbox('t')), 0, -1)).toEqual([
      message(node(1, 'a')),
      message(node(1, 'b')),
      `i${JSON.stringify({ itemId: 'x', taskId: 't', runId: 'r' })}`,
    ]);
    expect(await client.xlen(full(handOff.stream))).toBe(0); // the delivery is gone, nothing added
    expect(await client.xlen(full(handOff.items))).toBe(0);
  });

  it('refuses to hand off an entry that is not a successor or an item entry of the outbox', async () => {
    const { state, handOff, delivery } = await setUp();
    const root = node(0);
    const claim = await state.claim({
      node: root,
      owner: 'o2',
      leaseMs: 10_000,
      epoch: 0,
      root: true,
    });
    await expect(
      state.commitSuccessDetailed({
        node: root,
        owner: 'o2',
        version: claim.version,
        successors: [],
        items: ['x-not-an-item'],
        handOff: { ...handOff, delivery },
      }),
    ).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });

  /** The root committed (its successors a and b handed to the parser stream), and a leaf claimed. */
  async function leafOf(capacity = Infinity) {
    const ctx = await setUp(capacity);
    await ctx.commit();
    const read = (await ctx.client.xreadgroup(
      'GROUP',
      'g',
      'c',
      'COUNT',
      1,
      'STREAMS',
      ctx.full(ctx.handOff.stream),
      '>',
    )) as [string, [string, string[]][]][];
    const delivery = read[0]![1][0]![0];
    const leaf = node(1, 'a');
    const claim = await ctx.state.claim({
      node: leaf,
      owner: 'o',
      leaseMs: 10_000,
      epoch: 0,
      root: false,
    });
    expect(claim.code).toBe(ClaimCode.EXECUTE);
    const commitLeaf = (at?: number) =>
      ctx.state.commitSuccessDetailed({
        node: leaf,
        owner: 'o',
        version: claim.version,
        successors: [],
        items: [`i${JSON.stringify({ itemId: 'y', taskId: 't', runId: 'r' })}`],
        handOff: { ...ctx.handOff, delivery },
        ...(at === undefined ? {} : { at }),
      });
    return { ...ctx, leaf, commitLeaf, leafDelivery: delivery };
  }

  it("a leaf's commit reads no TIME given the caller's time, and no key's type: its first write checks the one it needs", async () => {
    const { commitLeaf, state, full, handOff, keys, client, leafDelivery } = await leafOf(10);
    const cmds = await scriptCommands(redis, keys.ptmKey(node(1, 'a')), () => commitLeaf(4_242));
    const names = cmds.map((c) => c[0]!.toLowerCase());
    expect(names).not.toContain('time');
    // no room check (no successor), no type check: the items stream's XADD is the first write,
    // and the acknowledgement cannot fail (a parser stream of another type holds no delivery)
    expect(names.filter((n) => ['xlen', 'llen'].includes(n))).toEqual([]);
    expect(cmds.filter((c) => c[1] === full(keys.runKeys('t', 'r')))).toEqual([]);
    const reads = new Set(['hmget', 'exists', 'zcard']);
    expect(cmds.find((c) => !reads.has(c[0]!.toLowerCase()))?.slice(0, 2)).toEqual([
      'XADD',
      full(handOff.items),
    ]);
    // the run took the caller's time, and the delivery is gone
    expect((await state.runRead('t', 'r'))?.updatedAt).toBe(4_242);
    const parser = await client.xrange(full(handOff.stream), '-', '+');
    expect(parser.map(([id]) => id)).not.toContain(leafDelivery);
    expect(await client.xlen(full(handOff.items))).toBe(2);
  });

  it("reads the server's TIME when the caller gives no time", async () => {
    const { commitLeaf, state } = await leafOf();
    const before = Date.now();
    await commitLeaf();
    const updated = (await state.runRead('t', 'r'))!.updatedAt;
    expect(updated).toBeGreaterThanOrEqual(before - 1_000); // the server's clock, not 0
  });

  it('a commit that adds no successor hands its items over even when the parser stream is full', async () => {
    const { commitLeaf, client, full, handOff, keys } = await leafOf(3);
    // the parser stream holds a (pending), b and two more: over its capacity of 3
    await client.xadd(full(handOff.stream), '*', 'p', 'x', 'd', '0');
    await client.xadd(full(handOff.stream), '*', 'p', 'y', 'd', '0');
    expect(await client.xlen(full(handOff.stream))).toBe(4);
    const result = await commitLeaf();
    expect(result).toMatchObject({ code: CommitCode.COMMIT_OK, handedOff: true });
    expect(await client.xlen(full(handOff.items))).toBe(2);
    expect(await client.exists(full(keys.outbox('t')))).toBe(0);
  });

  it('the capacity still holds for a commit with successors: one over it goes to the outbox', async () => {
    // the stream holds the root's delivery: 1 + 2 successors fit a capacity of 3, not of 2
    for (const [capacity, handed] of [
      [3, true],
      [2, false],
    ] as const) {
      const { commit, client, full, handOff, keys } = await setUp(capacity);
      const result = await commit();
      expect(result.code).toBe(CommitCode.COMMIT_OK);
      expect(result.handedOff === true).toBe(handed);
      expect(await client.xlen(full(handOff.stream))).toBe(handed ? 2 : 0);
      expect(await client.llen(full(keys.outbox('t')))).toBe(handed ? 0 : 3);
      await client.del(full(handOff.stream), full(handOff.items), full(keys.outbox('t')));
      await client.del(full(keys.run('t', 'r')), full(keys.runKeys('t', 'r')));
      for (const n of [node(0), node(1, 'a'), node(1, 'b')])
        await client.del(full(keys.ptm('t', n)));
    }
  });

  it('a key of the wrong type fails the commit before its first write: nothing is half-written', async () => {
    // the items stream (a leaf's first write)
    {
      const { commitLeaf, client, full, handOff, keys, state, leafDelivery } = await leafOf();
      const key = full(handOff.items);
      const saved = await client.dumpBuffer(key);
      await client.del(key);
      await client.set(key, 'not-a-stream');
      const run = await state.runRead('t', 'r');
      await expect(commitLeaf()).rejects.toThrow(/wrong kind of value/);
      expect(await client.hget(full(keys.ptm('t', node(1, 'a'))), 'status')).toBe('processing');
      expect(await state.runRead('t', 'r')).toEqual(run);
      const pending = (await client.xpending(full(handOff.stream), 'g')) as [number];
      expect(pending[0]).toBe(1); // the delivery was left pending
      await client.del(key);
      await client.restore(key, 0, saved!);
      expect((await commitLeaf()).code).toBe(CommitCode.COMMIT_OK);
      expect(await client.xrange(full(handOff.stream), leafDelivery, leafDelivery)).toEqual([]);
      await client.del(full(handOff.stream), full(handOff.items), full(keys.runKeys('t', 'r')));
      await client.del(full(keys.run('t', 'r')));
      for (const n of [node(0), node(1, 'a'), node(1, 'b')])
        await client.del(full(keys.ptm('t', n)));
    }
    // the run's key index (the first write of a commit that creates successors)
    const { commit, client, full, handOff, keys, delivery } = await setUp();
    const index = full(keys.runKeys('t', 'r'));
    const saved = await client.dumpBuffer(index);
    await client.del(index);
    await client.set(index, 'not-a-zset');
    await expect(commit()).rejects.toThrow(/wrong kind of value/);
    expect(await client.exists(full(keys.ptm('t', node(1, 'a'))))).toBe(0);
    expect(await client.xrange(full(handOff.stream), '-', '+')).toHaveLength(1); // the delivery only
    expect(await client.xrange(full(handOff.stream), delivery, delivery)).toHaveLength(1);
    await client.del(index);
    if (saved) await client.restore(index, 0, saved);
    expect((await commit()).code).toBe(CommitCode.COMMIT_OK);
  });

  it('a parser stream key of another type holds no delivery: the leaf commits, its acknowledgement a no-op', async () => {
    const { commitLeaf, client, full, handOff, keys } = await leafOf();
    await client.del(full(handOff.stream));
    await client.set(full(handOff.stream), 'not-a-stream');
    expect((await commitLeaf()).code).toBe(CommitCode.COMMIT_OK);
    expect(await client.hget(full(keys.ptm('t', node(1, 'a'))), 'status')).toBe('done');
    expect(await client.xlen(full(handOff.items))).toBe(2);
    expect(await client.get(full(handOff.stream))).toBe('not-a-stream');
  });

  it('finishes the run once its items are acknowledged from the items stream', async () => {
    const { client, full, handOff, commit, state, readItems, finishChild } = await setUp();
    await commit();
    // the two successors run and commit with no output
    for (const prefix of ['a', 'b']) await finishChild(prefix);
    expect((await state.runRead('t', 'r'))?.state).toBe('running'); // its item waits
    const [id] = await readItems();
    const entries = [{ id: id!, taskId: 't', runId: 'r' }];
    expect(await state.ackHandedItems({ handOff, entries })).toBe(1);
    // twice (by another consumer, after a take-over) counts once
    expect(await state.ackHandedItems({ handOff, entries })).toBe(0);
    expect((await state.runRead('t', 'r'))?.state).toBe('done');
    expect(await client.xlen(full(handOff.items))).toBe(0);
  });

  it('an entry named twice in one acknowledgement counts once in its run', async () => {
    const { handOff, commit, state, readItems, finishChild } = await setUp();
    await commit();
    // successor a commits one item of its own; b commits nothing: two items wait in the run
    await finishChild('a', [`i${JSON.stringify({ itemId: 'y', taskId: 't', runId: 'r' })}`]);
    await finishChild('b');
    const [first, second] = (await readItems()).map((id) => ({ id, taskId: 't', runId: 'r' }));
    expect(await state.ackHandedItems({ handOff, entries: [first!, first!] })).toBe(1);
    // the other item still waits: the run is not finished by the repeated entry
    expect((await state.runRead('t', 'r'))?.state).toBe('running');
    expect(await state.ackHandedItems({ handOff, entries: [second!] })).toBe(1);
    expect((await state.runRead('t', 'r'))?.state).toBe('done');
  });

  it('acknowledges the entries of several runs in one call, each run counted by its own', async () => {
    const { client, full, handOff, state, readItems } = await setUp();
    // two more runs of the task, each with one item committed by its root
    for (const runId of ['r2', 'r3']) {
      await state.runStart('t', runId, ['m']);
      await state.runDispatch('t', runId, [{ moduleId: 'm', state: 'running' }]);
      const root = { ...node(0), runId };
      const c = await state.claim({
        node: root,
        owner: 'o',
        leaseMs: 10_000,
        epoch: 0,
        root: true,
      });
      await state.commitSuccessDetailed({
        node: root,
        owner: 'o',
        version: c.version,
        successors: [],
        items: [`i${JSON.stringify({ itemId: runId, taskId: 't', runId })}`],
        handOff,
      });
    }
    const ids = await readItems();
    expect(ids).toHaveLength(2);
    const entries = [
      { id: ids[0]!, taskId: 't', runId: 'r2' },
      { id: ids[1]!, taskId: 't', runId: 'r3' },
      { id: '0-1', taskId: 't', runId: 'r3' }, // never in the stream: not counted
    ];
    expect(await state.ackHandedItems({ handOff, entries })).toBe(2);
    expect((await state.runRead('t', 'r2'))?.state).toBe('done');
    expect((await state.runRead('t', 'r3'))?.state).toBe('done');
    expect(await client.xlen(full(handOff.items))).toBe(0);
  });

  it('an acknowledgement naming a malformed entry id fails whole: nothing deleted, nothing counted', async () => {
    const { client, full, handOff, commit, state, readItems } = await setUp();
    await commit();
    const good = { id: (await readItems())[0]!, taskId: 't', runId: 'r' };
    // a small batch (its XDEL checks the ids) and one past an XDEL's 1,000 (checked beforehand)
    for (const size of [2, 1_001]) {
      const entries = [good, ...Array.from({ length: size - 2 }, () => good)];
      entries.push({
        id: size === 2 ? 'not-an-id' : '99999999999999999999999-0',
        taskId: 't',
        runId: 'r',
      });
      await expect(state.ackHandedItems({ handOff, entries })).rejects.toThrow(/Invalid stream ID/);
      expect(await client.xlen(full(handOff.items))).toBe(1);
      expect(((await client.xpending(full(handOff.items), 'g')) as unknown[])[0]).toBe(1);
    }
    expect(await state.ackHandedItems({ handOff, entries: [good] })).toBe(1);
  });

  const crawl = defineModule({
    id: 'm',
    steps: [
      { name: 'list', generate: () => [{ url: 'x://list' }], parse: () => ({ next: [1, 2, 3] }) },
      {
        name: 'page',
        generate: ({ input }) => [{ url: `x://page/${String(input)}` }],
        parse: (_r, { input }) => ({ items: [{ page: input }] }),
      },
    ],
  });
  const downloader = () => Promise.resolve({ status: 200, headers: {}, body: '' });

  async function crawlWith(
    queuesOnOtherClient: boolean,
  ): Promise<{ rpush: number; items: unknown[]; produced: number }> {
    const admin = redis.client();
    const store = new RedisBackend({ redis: redis.client(), keyPrefix: redis.prefix.slice(0, -1) });
    const queues = queuesOnOtherClient
      ? createRedisStreamQueues({ client: redis.client(), keyPrefix: store.keyPrefix, blockMs: 50 })
      : undefined;
    const items: unknown[] = [];
    const metrics = new InMemoryMetrics();
    const engine = createChainEngine({
      modules: [crawl],
      store,
      downloader,
      metrics,
      onItem: (item: ChainItem) => void items.push(item.item),
      ...(queues ? { queues } : {}),
    });
    const calls = async () =>
      Number(/cmdstat_rpush:calls=(\d+)/.exec(await admin.info('commandstats'))?.[1] ?? 0);
    const before = await calls();
    await engine.start();
    const { runId } = await engine.submit({
      taskId: 't',
      account: 'a',
      platform: 'p',
      modules: ['m'],
    });
    const status = await engine.waitForRun(runId, { timeoutMs: 10_000 });
    expect(status.state).toBe('done');
    const rpush = (await calls()) - before;
    await engine.stop();
    if (queues) await Promise.all(Object.values(queues).map((q) => q.shutdown()));
    const produced = metrics.counter('parser_task_produced_total', { source: 'commit' });
    return { rpush, items, produced };
  }

  it('is used by an engine whose stream queues sit beside its state (own client or another one)', async () => {
    for (const other of [false, true]) {
      const { rpush, items, produced } = await crawlWith(other);
      expect(rpush).toBe(0); // no outbox: every successor and item went to the streams
      expect(produced).toBe(3); // the list's three pages, counted by the commit that added them
      expect(items.map((i) => (i as { page: number }).page).sort()).toEqual([1, 2, 3]);
    }
  });

  it('hands each item over once when a slow onItem outlasts claimIdleMs on one of two workers', async () => {
    const prefix = redis.prefix.slice(0, -1);
    const pages = 30;
    const fan = defineModule({
      id: 'm',
      steps: [
        {
          name: 'list',
          generate: () => [{ url: 'x://list' }],
          parse: () => ({ next: Array.from({ length: pages }, (_, i) => i) }),
        },
        {
          name: 'page',
          generate: ({ input }) => [{ url: `x://page/${String(input)}` }],
          parse: (_r, { input }) => ({ items: [{ page: input }] }),
        },
      ],
    });
    const calls = new Map<number, number>();
    const onItem = async (item: ChainItem): Promise<void> => {
      const page = (item.item as { page: number }).page;
      calls.set(page, (calls.get(page) ?? 0) + 1);
      await new Promise((r) => setTimeout(r, 40)); // a batch takes far longer than claimIdleMs
    };
    const worker = (name: string) => {
      const client = redis.client();
      const queues = createRedisStreamQueues({
        client,
        keyPrefix: prefix,
        consumer: name,
        claimIdleMs: 300,
        blockMs: 50,
      });
      const store = new RedisBackend({ redis: client, keyPrefix: prefix });
      const engine = createChainEngine({
        modules: [fan],
        store,
        queues,
        downloader,
        onItem,
        leaseMs: 200,
        workerId: name,
      });
      return { engine, queues };
    };
    const a = worker('a');
    const b = worker('b');
    await a.engine.start();
    await b.engine.start();
    const { runId } = await a.engine.submit({
      taskId: 't',
      account: 'a',
      platform: 'p',
      modules: ['m'],
    });
    const status = await a.engine.waitForRun(runId, { timeoutMs: 20_000 });
    expect(status.state).toBe('done');
    expect(status.items).toBe(pages);
    for (const w of [a, b]) {
      await w.engine.stop();
      await Promise.all(Object.values(w.queues).map((q) => q.shutdown()));
    }
    expect([...calls.keys()].sort((x, y) => x - y)).toEqual(
      Array.from({ length: pages }, (_, i) => i),
    );
    expect([...calls.entries()].filter(([, n]) => n !== 1)).toEqual([]);
  });
});
