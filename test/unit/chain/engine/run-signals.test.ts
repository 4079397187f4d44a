import { describe, expect, it } from 'vitest';
import { RunRegistry } from '../../../../src/chain/engine/runs.js';
import type { EngineTelemetry } from '../../../../src/chain/engine/telemetry.js';
import { LocalChainState } from '../../../../src/chain/state/index.js';
import { ChainKeyBuilder } from '../../../../src/keys/chain-key-builder.js';
import { LocalBackend } from '../../../../src/store/local-backend.js';

function registry(): RunRegistry {
  const store = new LocalBackend();
  return new RunRegistry({
    state: new LocalChainState(store),
    store,
    keys: new ChainKeyBuilder(),
    stateTtlMs: 60_000,
    finishedRunTtlMs: 60_000,
    telemetry: { log: () => {} } as unknown as EngineTelemetry,
  });
}

describe('RunRegistry.nodeSignal', () => {
  it('one signal per run, kept between nodes that come one at a time (no composite signal per node)', () => {
    const runs = registry();
    const stopping = new AbortController();
    const first = runs.nodeSignal('r1', stopping.signal);
    first.release();
    const second = runs.nodeSignal('r1', stopping.signal);
    expect(second.signal).toBe(first.signal);
    expect(runs.nodeSignal('r2', stopping.signal).signal).not.toBe(first.signal);
    second.release();
  });

  it('the signal aborts with the engine stopping; a finished run with no node in flight is forgotten', () => {
    const runs = registry();
    const stopping = new AbortController();
    const node = runs.nodeSignal('r1', stopping.signal);
    node.release();
    runs.finished('t', 'r1');
    const next = runs.nodeSignal('r1', stopping.signal);
    expect(next.signal).not.toBe(node.signal);
    stopping.abort(new Error('stop'));
    expect(next.signal.aborted).toBe(true);
  });

  it('a run that finishes while its last node is in flight is forgotten with that node', () => {
    const runs = registry();
    const stopping = new AbortController();
    const last = runs.nodeSignal('r1', stopping.signal);
    runs.finished('t', 'r1'); // the last node's commit finished the run
    last.release();
    expect(runs.nodeSignal('r1', stopping.signal).signal).not.toBe(last.signal);
  });

  it('keeps at most a few hundred idle runs: the idle ones are forgotten, those in flight kept', () => {
    const runs = registry();
    const stopping = new AbortController();
    const busy = runs.nodeSignal('busy', stopping.signal);
    const idle = runs.nodeSignal('idle', stopping.signal);
    idle.release();
    for (let i = 0; i < 300; i++) runs.nodeSignal(`r${i}`, stopping.signal).release();
    expect(runs.nodeSignal('busy', stopping.signal).signal).toBe(busy.signal);
    expect(runs.nodeSignal('idle', stopping.signal).signal).not.toBe(idle.signal);
  });
});
