import { describe, expect, it } from 'vitest';
import { Sweeper } from '../../../../src/chain/engine/sweeper.js';
import type { ChainStateStore } from '../../../../src/chain/state/index.js';

function setup(
  options: {
    enabled?: boolean;
    lock?: boolean;
    tasks?: string[];
    failActive?: boolean;
    failTouch?: number;
  } = {},
) {
  const calls: string[] = [];
  const logs: string[] = [];
  const counted = { rounds: 0 };
  let failTouch = options.failTouch ?? 0;
  const state = {
    tryLock: async () => options.lock ?? true,
    activeTasks: async () => {
      if (options.failActive) throw new Error('store down');
      return options.tasks ?? [];
    },
    touchTask: async (taskId: string) => {
      calls.push(`touch ${taskId}`);
      if (failTouch-- > 0) throw new Error('store down');
    },
  } as unknown as ChainStateStore;
  const sweeper = new Sweeper({
    state,
    workerId: 'w1',
    intervalMs: 10,
    windowMs: 60_000,
    enabled: options.enabled ?? true,
    telemetry: {
      log: (_level, message) => logs.push(message),
      swept: () => counted.rounds++,
    },
    promote: async (taskId) => {
      calls.push(`promote ${taskId}`);
    },
    relay: (taskId) => calls.push(`relay ${taskId}`),
  });
  return { sweeper, calls, logs, counted };
}

describe('Sweeper', () => {
  it('visits every active task under the lock: promote, relay; counts the round (no lease recovery: claims take expired leases over)', async () => {
    const { sweeper, calls, counted } = setup({ tasks: ['a', 'b'] });
    await sweeper.sweep();
    expect(calls).toEqual(['promote a', 'relay a', 'promote b', 'relay b']);
    expect(counted).toEqual({ rounds: 1 });
  });

  it('does nothing without the lock', async () => {
    const { sweeper, calls, counted } = setup({ lock: false, tasks: ['a'] });
    await sweeper.sweep();
    expect(calls).toEqual([]);
    expect(counted.rounds).toBe(0);
  });

  it('logs a failed round instead of throwing', async () => {
    const { sweeper, logs, counted } = setup({ failActive: true });
    await expect(sweeper.sweep()).resolves.toBeUndefined();
    expect(logs).toEqual(['sweep failed; the next one will try again']);
    expect(counted.rounds).toBe(0);
  });

  it('records task activity at most once per window, and again after a failed write', async () => {
    const { sweeper, calls } = setup({ failTouch: 1 });
    sweeper.touch('a');
    await Promise.resolve();
    await new Promise((r) => setTimeout(r, 0));
    sweeper.touch('a'); // the first write failed: try again
    sweeper.touch('a'); // recorded moments ago: skipped
    sweeper.touch('b');
    await new Promise((r) => setTimeout(r, 0));
    expect(calls).toEqual(['touch a', 'touch a', 'touch b']);
  });

  it('without shared queues neither records activity nor sweeps', async () => {
    const { sweeper, calls } = setup({ enabled: false, tasks: ['a'] });
    sweeper.touch('a');
    sweeper.start();
    await new Promise((r) => setTimeout(r, 30));
    expect(calls).toEqual([]);
    sweeper.stop();
  });

  it('runs rounds on its timer until stopped, and a stopped round ends at its next task', async () => {
    const { sweeper, counted, calls } = setup({ tasks: ['a'] });
    sweeper.start();
    await until(() => counted.rounds >= 2);
    sweeper.stop();
    const rounds = counted.rounds;
    expect(rounds).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 30));
    expect(counted.rounds).toBe(rounds);

    const stopped = setup({ tasks: ['a', 'b'] });
    stopped.sweeper.stop();
    await stopped.sweeper.sweep();
    expect(stopped.calls).toEqual([]);
    expect(calls.length).toBeGreaterThan(0);
  });
});

/** Resolves once `condition()` holds (polled; the test's own timeout bounds it). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setTimeout(r, 2));
}
