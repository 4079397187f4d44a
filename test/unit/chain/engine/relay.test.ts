import { RetryPolicy } from '../../../../src/retry/index.js';
import { describe, expect, it } from 'vitest';
import { encodeMessage, type ParserTaskModel } from '../../../../src/chain/messages.js';
import { MemoryQueue, type ChainQueue } from '../../../../src/chain/queue.js';
import type { ChainStateStore } from '../../../../src/chain/state/index.js';
import {
  OUTBOX_ETM,
  OUTBOX_ITEM,
  OUTBOX_PTM,
  OUTBOX_RETRY,
} from '../../../../src/chain/engine/outbox.js';
import { OutboxRelay } from '../../../../src/chain/engine/relay.js';
import { EngineTelemetry } from '../../../../src/chain/engine/telemetry.js';
import type { ChainItem } from '../../../../src/chain/engine/types.js';
import { InMemoryMetrics, silentLogger } from '../../../../src/index.js';

const node: ParserTaskModel = {
  taskId: 't',
  runId: 'r',
  account: 'a',
  platform: 'p',
  moduleId: 'm',
  stepIdx: 1,
  prefixRequest: 'GET x#0',
};
const ptm = (epoch?: number): string =>
  encodeMessage({ kind: 'parser_task', body: epoch === undefined ? node : { ...node, epoch } });
const item = (n: number): ChainItem => ({
  itemId: `i${n}`,
  taskId: 't',
  runId: 'r',
  moduleId: 'm',
  stepIdx: 1,
  prefixRequest: '',
  requestId: 'GET x',
  item: n,
});

/** An outbox in memory: take hands out what is not acknowledged (each take returns all of it). */
function fakeOutbox(entries: string[], opts: { failTakes?: number } = {}) {
  const pending = [...entries];
  const acked: string[] = [];
  let failTakes = opts.failTakes ?? 0;
  let takes = 0;
  const state = {
    takeOutbox: async (_taskId: string, max: number) => {
      takes++;
      if (failTakes-- > 0) throw new Error('store down');
      return pending.slice(0, max);
    },
    ackOutbox: async (_taskId: string, done: string[]) => {
      for (const e of done) pending.splice(pending.indexOf(e), 1);
      acked.push(...done);
      return done.length;
    },
  } as unknown as ChainStateStore;
  return { state, pending, acked, takes: () => takes };
}

function setup(
  state: ChainStateStore,
  extra: Partial<ConstructorParameters<typeof OutboxRelay>[0]> = {},
) {
  const metrics = new InMemoryMetrics();
  const telemetry = new EngineTelemetry({
    logger: silentLogger,
    metrics,
    runtimeMode: 'single_node',
  });
  const queues = {
    task: new MemoryQueue<string>({ name: 'task', capacity: 10 }),
    parser: new MemoryQueue<string>({ name: 'parser', capacity: 10 }),
    error: new MemoryQueue<string>({ name: 'error', capacity: 10 }),
  };
  const published: [ParserTaskModel, number][] = [];
  const items: ChainItem[] = [];
  const relay = new OutboxRelay({
    state,
    queues,
    leaseMs: 30_000,
    telemetry,
    onItem: (i) => {
      items.push(i);
    },
    retries: {
      watching: true,
      published: (n, epoch) => published.push([n as ParserTaskModel, epoch]),
    },
    itemRetry: { policy: new RetryPolicy({ maxRetries: 0 }), maxRetries: 0 },
    secrets: () => [],
    ...extra,
  });
  return { relay, queues, metrics, telemetry, published, items };
}

describe('OutboxRelay', () => {
  it('publishes each entry where it belongs, then acknowledges exactly those', async () => {
    const entries = [
      OUTBOX_PTM + ptm(),
      OUTBOX_RETRY + ptm(2),
      OUTBOX_ETM + '{"etm":1}',
      OUTBOX_ITEM + JSON.stringify(item(7)),
    ];
    const outbox = fakeOutbox(entries);
    const { relay, queues, metrics, published, items } = setup(outbox.state);
    relay.relay('t');
    expect(relay.busy).toBe(true);
    await relay.settled();
    expect(relay.busy).toBe(false);
    // items are handed over (and acknowledged) first, messages after: each entry exactly once
    expect([...outbox.acked].sort()).toEqual([...entries].sort());
    expect(outbox.acked[0]).toBe(entries[3]);
    expect(queues.parser.size()).toBe(2);
    expect(queues.error.size()).toBe(1);
    expect(items.map((i) => i.itemId)).toEqual(['i7']);
    expect(metrics.counter('parser_task_produced_total', { source: 'commit' })).toBe(1);
    expect(metrics.counter('parser_task_produced_total', { source: 'retry' })).toBe(1);
    expect(metrics.counter('items_total', { module: 'm' })).toBe(1);
    // the published retry is no longer watched by the pump
    expect(published).toEqual([[expect.objectContaining({ taskId: 't', stepIdx: 1 }), 2]]);
  });

  it('leaves an entry it could not publish unacknowledged (it comes back)', async () => {
    const entries = [OUTBOX_ETM + '{"a":1}', OUTBOX_PTM + ptm()];
    const outbox = fakeOutbox(entries);
    const { relay, queues } = setup(outbox.state);
    queues.error.close(); // pushing to it fails
    relay.relay('t');
    await relay.settled();
    expect(outbox.acked).toEqual([OUTBOX_PTM + ptm()]);
    expect(outbox.pending).toEqual([OUTBOX_ETM + '{"a":1}']);
  });

  it('tries a failed take again, and gives up retrying once stopped', async () => {
    const outbox = fakeOutbox([OUTBOX_PTM + ptm()], { failTakes: 1 });
    const { relay, queues } = setup(outbox.state);
    relay.relay('t');
    await relay.settled();
    expect(outbox.takes()).toBe(2);
    expect(queues.parser.size()).toBe(1);

    const stopped = fakeOutbox([OUTBOX_PTM + ptm()], { failTakes: 5 });
    const second = setup(stopped.state);
    second.relay.stop();
    second.relay.relay('t');
    await second.relay.settled();
    expect(stopped.takes()).toBe(1);
    expect(second.relay.busy).toBe(false);
  });

  it('stops publishing a batch whose lease is running out and takes it again', async () => {
    const entries = [1, 2, 3].map((n) => OUTBOX_ITEM + JSON.stringify(item(n)));
    const outbox = fakeOutbox(entries);
    let calls = 0;
    const { relay, metrics, items } = setup(outbox.state, {
      leaseMs: 10,
      onItem: async (i) => {
        items.push(i);
        // the first item takes longer than 80 % of the lease
        if (calls++ === 0) await new Promise((r) => setTimeout(r, 20));
      },
    });
    relay.relay('t');
    await relay.settled();
    expect(metrics.counter('outbox_lease_expired_total')).toBeGreaterThanOrEqual(1);
    // nothing lost, nothing published twice within one lease: every entry acknowledged once
    expect(outbox.acked.sort()).toEqual([...entries].sort());
    expect(items.map((i) => i.itemId).sort()).toEqual(['i1', 'i2', 'i3']);
    expect(outbox.takes()).toBeGreaterThanOrEqual(2);
  });

  it('dead-letters an unknown or malformed entry once, durably where the queue can', async () => {
    const outbox = fakeOutbox(['x?', OUTBOX_ITEM + '{not json']);
    const durable: [string, string][] = [];
    const { relay, queues, metrics, telemetry } = setup(outbox.state);
    (queues.parser as ChainQueue<string>).deadLetter = async (message: string, reason: string) => {
      durable.push([message, reason]);
    };
    relay.relay('t');
    await relay.settled();
    expect(outbox.acked).toHaveLength(2);
    expect(telemetry.deadLetters().map((d) => d.reason)).toEqual([
      'relay: unknown outbox entry',
      'relay: malformed item entry',
    ]);
    expect(durable).toEqual([['x?', 'relay: unknown outbox entry']]);
    expect(metrics.counterTotal('chain_dead_letter_total')).toBe(2);
  });
  it('hands a batch’s items over while its messages wait for room in a full queue', async () => {
    const entries = [
      OUTBOX_PTM + ptm(),
      OUTBOX_RETRY + ptm(2),
      OUTBOX_ITEM + JSON.stringify(item(1)),
      OUTBOX_ITEM + JSON.stringify(item(2)),
    ];
    const outbox = fakeOutbox(entries);
    const { relay, queues, items } = setup(outbox.state);
    // the parser queue is full (busy consumers): its producers wait
    const full = new MemoryQueue<string>({ name: 'parser', capacity: 1 });
    await full.push('occupied');
    queues.parser = full;
    relay.relay('t');
    // (not `settled()`: it waits for the pushes, which are stuck until there is room)
    for (let i = 0; i < 100 && outbox.acked.length < 2; i++)
      await new Promise((resolve) => setTimeout(resolve, 5));
    // the items went out and were acknowledged although no message could be pushed yet
    expect(items.map((i) => i.itemId)).toEqual(['i1', 'i2']);
    expect(outbox.acked).toEqual(entries.slice(2));
    expect(relay.busy).toBe(true);
    // room again: the messages follow, and are acknowledged then
    const taken = await full.receive();
    await taken!.ack();
    for (let i = 0; i < 2; i++) {
      const d = await full.receive();
      await d!.ack();
    }
    await relay.settled();
    expect(relay.busy).toBe(false);
    expect([...outbox.acked].sort()).toEqual([...entries].sort());
  });

  it('emits ParserTaskProduced for a committed successor it publishes, and none for a malformed one', async () => {
    const entries = [OUTBOX_PTM + ptm(), OUTBOX_PTM + '{"kind":"parser_task","body":{"taskId":1}}'];
    const outbox = fakeOutbox(entries);
    const { relay, telemetry } = setup(outbox.state, {
      retries: { watching: false, published: () => {} },
    });
    const events: unknown[] = [];
    telemetry.on('ParserTaskProduced', (e) => events.push(e));
    relay.relay('t');
    await relay.settled();
    expect(events).toEqual([
      {
        type: 'ParserTaskProduced',
        taskId: 't',
        runId: 'r',
        moduleId: 'm',
        stepIdx: 1,
        prefixRequest: 'GET x#0',
        source: 'commit',
      },
    ]);
  });
});

describe('ItemHandOver', () => {
  it('hands an item over at once when onItem returns no promise, and awaits one that does', async () => {
    const { ItemHandOver } = await import('../../../../src/chain/engine/item-hand-over.js');
    const telemetry = new EngineTelemetry({
      logger: silentLogger,
      metrics: new InMemoryMetrics(),
      runtimeMode: 'single_node',
    });
    const seen: string[] = [];
    const deadLetters = new MemoryQueue<string>({ name: 'dead', capacity: 10 });
    const sync = new ItemHandOver({
      telemetry,
      deadLetters,
      onItem: (i) => void seen.push(i.itemId),
    });
    // no promise made: the relay goes on with the next item in the same turn
    expect(sync.handOver('k1', item(1), 'e1', async () => {})).toBe(true);
    expect(seen).toEqual(['i1']);
    const later = new ItemHandOver({
      telemetry,
      deadLetters,
      onItem: async (i) => {
        await Promise.resolve();
        seen.push(i.itemId);
      },
    });
    const pending = later.handOver('k2', item(2), 'e2', async () => {});
    expect(pending).toBeInstanceOf(Promise);
    expect(await pending).toBe(true);
    expect(seen).toEqual(['i1', 'i2']);
    // an onItem that throws at once is tried again later (no try left here: set aside)
    const failing = new ItemHandOver({
      telemetry,
      deadLetters,
      onItem: () => {
        throw new Error('sink down');
      },
      itemRetry: { policy: new RetryPolicy({ maxRetries: 0 }), maxRetries: 0 },
    });
    const failed = failing.handOver('k3', item(3), 'e3', async () => {});
    expect(failed).toBeInstanceOf(Promise);
    expect(await failed).toBe(true);
    expect(failing.waiting).toBe(0);
  });
});
