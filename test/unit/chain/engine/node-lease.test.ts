import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { LeaseHeartbeat, NodeLease } from '../../../../src/chain/engine/node-lease.js';
import { RenewCode, type ChainStateStore } from '../../../../src/chain/state/index.js';

const node = {
  taskId: 't',
  runId: 'r',
  account: 'a',
  platform: 'p',
  moduleId: 'm',
  stepIdx: 0,
  prefixRequest: '',
};

function fakeState(codes: number[]): { state: ChainStateStore; calls: unknown[] } {
  const calls: unknown[] = [];
  const state = {
    renewLease: (input: unknown) => {
      calls.push(input);
      const code = codes.shift() ?? RenewCode.RENEWED;
      return Promise.resolve({ code, leaseUntil: code === RenewCode.RENEWED ? 1 : 0 });
    },
  } as unknown as ChainStateStore;
  return { state, calls };
}

const until = async (condition: () => boolean): Promise<void> => {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((r) => setTimeout(r, 5));
};

describe('NodeLease', () => {
  it('renews with the claim (owner, version, leaseMs) and touches the delivery every third of the lease', async () => {
    const { state, calls } = fakeState([]);
    let touched = 0;
    const lease = new NodeLease({
      state,
      node,
      owner: 'w/1-0',
      version: 3,
      leaseMs: 30,
      parent: new AbortController().signal,
      keepAlive: () => Promise.resolve(void touched++),
      log: () => {},
      fields: {},
    });
    await until(() => calls.length >= 2);
    lease.stop();
    expect(calls[0]).toEqual({ node, owner: 'w/1-0', version: 3, leaseMs: 30 });
    expect(touched).toBeGreaterThanOrEqual(2);
    expect(lease.signal.aborted).toBe(false);
  });

  it("a renewal refused by fencing aborts the node's signal and stops the heartbeat", async () => {
    const { state, calls } = fakeState([RenewCode.RENEWED, RenewCode.FENCED]);
    let lost = 0;
    const lease = new NodeLease({
      state,
      node,
      owner: 'w',
      version: 1,
      leaseMs: 30,
      parent: new AbortController().signal,
      log: (_level, _message, f) => void (f.decision === 'lease_lost' && lost++),
      fields: {},
    });
    await until(() => lease.signal.aborted);
    expect(lease.signal.aborted).toBe(true);
    expect(lease.lost).toBe(true);
    expect(lost).toBe(1);
    const after = calls.length;
    await new Promise((r) => setTimeout(r, 50));
    expect(calls.length).toBe(after);
    lease.stop();
  });

  it("the engine's abort aborts the node's signal; a failing renewal is reported and tried again", async () => {
    const parent = new AbortController();
    const errors: unknown[] = [];
    let n = 0;
    const state = {
      renewLease: () =>
        ++n === 1
          ? Promise.reject(new Error('redis down'))
          : Promise.resolve({ code: RenewCode.RENEWED, leaseUntil: 1 }),
    } as unknown as ChainStateStore;
    const lease = new NodeLease({
      state,
      node,
      owner: 'w',
      version: 1,
      leaseMs: 30,
      parent: parent.signal,
      log: (_level, _message, f) => void (f.error !== undefined && errors.push(f.error)),
      fields: {},
    });
    await until(() => n >= 2);
    expect(errors).toHaveLength(1);
    expect(lease.lost).toBe(false);
    parent.abort(new Error('stop'));
    expect(lease.signal.aborted).toBe(true);
    lease.stop();
  });

  it('leases on one heartbeat are each renewed, a stopped one no more; one listener on their parent', async () => {
    const { state, calls } = fakeState([]);
    const parent = new AbortController();
    const heartbeat = new LeaseHeartbeat(30);
    const lease = (version: number) =>
      new NodeLease({
        state,
        node,
        owner: 'w',
        version,
        leaseMs: 30,
        parent: parent.signal,
        log: () => {},
        fields: {},
        heartbeat,
      });
    const [a, b, c] = [lease(1), lease(2), lease(3)];
    expect(getEventListeners(parent.signal, 'abort')).toHaveLength(1);
    c.stop();
    const renewed = (v: number) =>
      calls.filter((x) => (x as { version: number }).version === v).length;
    await until(() => renewed(1) >= 2 && renewed(2) >= 2);
    expect(renewed(1)).toBeGreaterThanOrEqual(2);
    expect(renewed(2)).toBeGreaterThanOrEqual(2);
    expect(renewed(3)).toBe(0);
    parent.abort(new Error('stop'));
    expect(a.signal.aborted && b.signal.aborted).toBe(true);
    expect(c.signal.aborted).toBe(false); // settled before the abort: no longer follows it
    a.stop();
    b.stop();
    expect(getEventListeners(parent.signal, 'abort')).toHaveLength(0);
  });

  it("storeNow: the claim's store time (lease end less leaseMs) plus the time since; undefined without a lease end", () => {
    const { state } = fakeState([]);
    const make = (leaseUntil?: number) =>
      new NodeLease({
        state,
        node,
        owner: 'w',
        version: 1,
        leaseMs: 1_000,
        leaseUntil,
        parent: new AbortController().signal,
        log: () => {},
        fields: {},
      });
    const before = performance.now();
    const lease = make(50_000);
    const now = lease.storeNow()!;
    const elapsed = performance.now() - before;
    lease.stop();
    expect(now).toBeGreaterThanOrEqual(49_000);
    expect(now - 49_000).toBeLessThanOrEqual(elapsed);
    const without = make();
    expect(without.storeNow()).toBeUndefined();
    without.stop();
  });
});
