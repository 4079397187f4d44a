import { describe, expect, it } from 'vitest';
import { RetryPump } from '../../../../src/chain/engine/retry-pump.js';
import type { NodeId } from '../../../../src/chain/node-id.js';
import type { ChainStateStore } from '../../../../src/chain/state/index.js';
import { ChainKeyBuilder } from '../../../../src/index.js';

const node = (taskId: string, prefixRequest = 'GET x#0'): NodeId => ({
  taskId,
  runId: 'r',
  account: 'a',
  platform: 'p',
  moduleId: 'm',
  stepIdx: 1,
  prefixRequest,
});

/** A retry set in memory: promote hands out (once) what each task has due. */
function setup(
  options: { sharedQueues?: boolean; forgetAfterMs?: number; failures?: number } = {},
) {
  const due = new Map<string, string[]>();
  const relayed: string[] = [];
  const promoted: string[] = [];
  const logs: string[] = [];
  let failures = options.failures ?? 0;
  const state = {
    promoteDueRetries: async (taskId: string) => {
      promoted.push(taskId);
      if (failures-- > 0) throw new Error('store down');
      const out = due.get(taskId) ?? [];
      due.delete(taskId);
      return out;
    },
  } as unknown as ChainStateStore;
  const pump = new RetryPump({
    state,
    keys: new ChainKeyBuilder(),
    pollMs: 1,
    forgetAfterMs: options.forgetAfterMs ?? 60_000,
    sharedQueues: options.sharedQueues ?? false,
    relay: (taskId) => relayed.push(taskId),
    log: (_level, message) => logs.push(message),
  });
  return { pump, due, relayed, promoted, logs };
}

describe('RetryPump', () => {
  it('watches each scheduled retry once and relays a task when it has due retries', async () => {
    const { pump, due, relayed } = setup();
    expect(pump.scheduled(node('t1'), 1, 0)).toBe(true);
    expect(pump.scheduled(node('t1'), 1, 0)).toBe(false); // the same retry again
    expect(pump.scheduled(node('t2'), 1, 0)).toBe(true);
    expect(pump.watching).toBe(true);
    due.set('t1', ['r1']);
    await pump.poll();
    expect(relayed).toEqual(['t1']); // t2 had nothing due: nothing to relay
    pump.published(node('t1'), 1);
    pump.published(node('t2'), 1);
    expect(pump.watching).toBe(false);
    pump.stop();
  });

  it('keeps polling a task whose promotion failed, and logs the failure', async () => {
    const { pump, due, relayed, promoted, logs } = setup({ failures: 1 });
    pump.scheduled(node('t'), 1, 0);
    due.set('t', ['r']);
    await pump.poll();
    expect(relayed).toEqual([]);
    expect(logs).toEqual(['retry pump: promotion failed; will retry']);
    await pump.poll();
    expect(promoted).toEqual(['t', 't']);
    expect(relayed).toEqual(['t']);
    pump.stop();
  });

  it('with shared queues, forgets a retry long past due (another worker may publish it)', async () => {
    const shared = setup({ sharedQueues: true, forgetAfterMs: 0 });
    shared.pump.scheduled(node('t'), 1, -10); // due 10 ms ago
    await shared.pump.poll();
    expect(shared.pump.watching).toBe(false);
    shared.pump.stop();

    const own = setup({ sharedQueues: false, forgetAfterMs: 0 });
    own.pump.scheduled(node('t'), 1, -10);
    await own.pump.poll();
    expect(own.pump.watching).toBe(true); // only its own relay's publication ends the watch
    own.pump.stop();
  });

  it('polls by itself after schedule(), and not at all once stopped', async () => {
    const { pump, promoted } = setup();
    pump.scheduled(node('t'), 1, 1);
    while (promoted.length === 0) await new Promise((r) => setTimeout(r, 2));
    expect(promoted[0]).toBe('t');
    pump.stop();
    const before = promoted.length;
    pump.schedule(0);
    await new Promise((r) => setTimeout(r, 20));
    expect(promoted.length).toBe(before);
  });
});
