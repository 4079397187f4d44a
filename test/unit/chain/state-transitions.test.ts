/**
 * The transitions' own contract, beyond what they return (the conformance suite and the model
 * test check that): every local twin reads and checks everything before its first write, so a
 * throw can never leave it half-written; every chain script opens with a header listing its
 * KEYS, ARGV and return codes and binds each to a named local that it reads; no script unpacks
 * a list of unbounded length at once; and every script has its TypeScript file, and back.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalChainState, type NodeAddress } from '../../../src/chain/state/index.js';
import type { SyncStore } from '../../../src/chain/state/sync-store.js';
import * as transitions from '../../../src/chain/state/transitions/index.js';
import { ManualClock } from '../../../src/internal/clock.js';
import { LocalBackend } from '../../../src/store/local-backend.js';
import { LUA_SCRIPTS } from '../../../src/store/lua-scripts.generated.js';

const READS = new Set(['now', 'get', 'getJson', 'exists', 'zrangeByScore']);
const WRITES = new Set([
  'set',
  'setJson',
  'setNX',
  'incr',
  'expire',
  'zadd',
  'zrem',
  'zremRangeByScore',
]);

/** A store that logs the kind of every call, so a test can check the order of reads and writes. */
function recording(store: SyncStore): { store: SyncStore; log: string[] } {
  const log: string[] = [];
  const proxy = new Proxy(store, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver) as unknown;
      if (typeof value !== 'function' || typeof name !== 'string') return value;
      return (...args: unknown[]) => {
        // the transition's frame (one time for all of it), neither a read nor a write
        if (name === 'atomic') return (value as (...a: unknown[]) => unknown).apply(target, args);
        if (READS.has(name)) log.push(`read:${name}`);
        else if (WRITES.has(name)) log.push(`write:${name}`);
        else log.push(`other:${name}`);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: proxy, log };
}

const root: NodeAddress = {
  taskId: 't1',
  runId: 'r1',
  account: 'acc',
  platform: 'web',
  moduleId: 'shop',
  stepIdx: 0,
  prefixRequest: '',
};
const child = (p: string): NodeAddress => ({ ...root, stepIdx: 1, prefixRequest: p });

describe('local twins', () => {
  it('read and check everything before their first write (a throw leaves nothing half-written)', async () => {
    const clock = new ManualClock(1_000_000);
    const backend = new LocalBackend({ clock, sweepIntervalMs: 0 });
    const rec = recording(backend.store);
    const state = new LocalChainState({ store: rec.store, keyPrefix: 'p:' });
    const seen = new Map<string, number>();
    const check = async (label: string, call: () => Promise<unknown>): Promise<void> => {
      rec.log.length = 0;
      await call();
      const firstWrite = rec.log.findIndex((e) => e.startsWith('write:'));
      const after = firstWrite < 0 ? [] : rec.log.slice(firstWrite);
      expect(
        after.filter((e) => !e.startsWith('write:')),
        `${label}: ${rec.log.join(' ')}`,
      ).toEqual([]);
      expect(
        rec.log.filter((e) => e.startsWith('other:')),
        label,
      ).toEqual([]);
      seen.set(label, (seen.get(label) ?? 0) + (firstWrite < 0 ? 0 : 1));
    };
    const claim = (node: NodeAddress, owner = 'w1') =>
      state.claim({ node, owner, leaseMs: 1_000, epoch: 0, root: node.stepIdx === 0 });

    // a run record, so every transition below counts in it too
    await check('runStart', () => state.runStart('t1', 'r1', ['shop']));
    await check('runDispatch', () =>
      state.runDispatch('t1', 'r1', [{ moduleId: 'shop', state: 'running' }]),
    );
    await check('claim', () => claim(root));
    await check('claim', () => claim(child('never')));
    await check('commitSuccess', () =>
      state.commitSuccess({
        node: root,
        owner: 'w1',
        version: 1,
        successors: [
          { node: child('a'), message: 'p:a' },
          { node: child('b'), message: 'p:b' },
          { node: child('a'), message: 'p:a' },
        ],
        items: ['i:1'],
      }),
    );
    await check('commitSuccess', () =>
      state.commitSuccess({ node: root, owner: 'w1', version: 1, successors: [], items: [] }),
    );
    await check('claim', () => claim(child('a')));
    await check('commitError', () =>
      state.commitError({
        node: child('a'),
        owner: 'w1',
        version: 1,
        errorHash: 'h',
        message: 'e:a',
      }),
    );
    await check('retrySchedule', () =>
      state.retrySchedule({
        node: child('a'),
        attempt: 1,
        maxRetries: 3,
        delayMs: 10,
        message: 'r:a',
        allowed: true,
      }),
    );
    clock.advance(10);
    await check('promoteDueRetries', () => state.promoteDueRetries('t1', 10));
    await check('takeOutbox', () => state.takeOutbox('t1', 2, 100));
    clock.advance(100);
    await check('takeOutbox', () => state.takeOutbox('t1', 10, 100));
    await check('ackOutbox', () =>
      state.ackOutbox('t1', ['p:a', 'p:b', 'i:1'], [undefined, undefined, 'r1']),
    );
    await check('claim', () => claim(child('b')));
    clock.advance(1_001);
    await check('recoverZombie', () => state.recoverZombie(child('b')));
    await check('recoverZombie', () => state.recoverZombie(child('b')));
    await check('claim', () =>
      state.claim({ node: child('a'), owner: 'w1', leaseMs: 1_000, epoch: 1, root: false }),
    );
    await check('commitError', () =>
      state.commitError({ node: child('a'), owner: 'w1', version: 2, errorHash: 'h2' }),
    );
    await check('giveUp', () => state.giveUp(child('a'), 2));
    await check('giveUp', () => state.giveUp(child('a'), 2));
    await check('indexRunKeys', () => state.indexRunKeys('t1', 'r1', ['chain:{t:t1}:request:x']));
    for (let i = 0; i < 3; i++)
      await check('thresholdDecide', () =>
        state.thresholdDecide({
          taskId: 't1',
          // another run: r1 stays running for runCancel below
          runId: 'r2',
          moduleId: 'shop',
          moduleThreshold: 3,
          taskThreshold: 3,
          retryAfterMs: 0,
          failureId: `f${i}`,
        }),
      );
    await check('terminateMark', () => state.terminateMark('t2', 'r1', undefined, 'why'));
    await check('terminated', () => state.terminated('t1', 'r1', 'shop'));
    await check('tryAllowFallbackOnce', () => state.tryAllowFallbackOnce(child('x')));
    await check('touchTask', () => state.touchTask('t1'));
    clock.advance(5_000);
    await check('touchTask', () => state.touchTask('t2'));
    await check('activeTasks', () => state.activeTasks(1_000, 10));
    await check('tryLock', () => state.tryLock('sweep', 'w1', 1_000));
    await check('tryLock', () => state.tryLock('sweep', 'w1', 1_000));
    await check('tryLock', () => state.tryLock('sweep', 'w2', 1_000));
    await check('runRead', () => state.runRead('t1', 'r1'));
    await check('runCancel', () => state.runCancel('t1', 'r1'));
    await check('runCancel', () => state.runCancel('t1', 'r1'));
    await check('runCleanup', () => state.runCleanup('t1', 'r1', 2));
    await check('runCleanup', () => state.runCleanup('t1', 'r1', 100));
    // every writing transition was seen writing (the check above is not vacuous)
    for (const label of seen.keys())
      if (label !== 'terminated' && label !== 'runRead')
        expect(seen.get(label), label).toBeGreaterThan(0);
    backend.close();
  });

  it('run inside the `transaction` option, every store call of a transition in one call of it', async () => {
    const backend = new LocalBackend({ sweepIntervalMs: 0 });
    let inside = false;
    let transactions = 0;
    const outside: string[] = [];
    const store = new Proxy(backend.store as SyncStore, {
      get(target, name, receiver) {
        const value = Reflect.get(target, name, receiver) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          if (!inside) outside.push(String(name));
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const state = new LocalChainState(
      { store, keyPrefix: '' },
      {
        transaction: (run) => {
          transactions++;
          inside = true;
          try {
            return run();
          } finally {
            inside = false;
          }
        },
      },
    );
    const c = await state.claim({ node: root, owner: 'w1', leaseMs: 1_000, epoch: 0, root: true });
    await state.commitSuccess({
      node: root,
      owner: 'w1',
      version: c.version,
      successors: [{ node: child('a'), message: 'p:a' }],
      items: [],
    });
    expect(await state.takeOutbox('t1', 10, 1_000)).toEqual(['p:a']);
    expect(transactions).toBe(3);
    expect(outside).toEqual([]);
    backend.close();
  });
});

// ---------------------------------------------------------------------------------------------

const LUA_DIR = join(import.meta.dirname, '../../../lua');
const chainScripts = readdirSync(LUA_DIR)
  .filter((f) => /^(ptm|etm|chain)_.*\.lua$/.test(f))
  .map((f) => ({ name: f.slice(0, -4), source: readFileSync(join(LUA_DIR, f), 'utf8') }));

/** The header's entries of one section (`KEYS` or `ARGV`): position and local name. */
function section(header: string, name: 'KEYS' | 'ARGV'): { at: string; local: string }[] {
  const lines = header.split('\n');
  const start = lines.findIndex((l) => l.trim() === name);
  if (start < 0) return [];
  const out: { at: string; local: string }[] = [];
  for (const line of lines.slice(start + 1)) {
    const m = /^\s{4}(\S+)\s+(\S+)/.exec(line);
    if (!m) {
      if (/^\s{5,}/.test(line)) continue; // the continuation of an entry's description
      break;
    }
    out.push({ at: m[1]!, local: m[2]! });
  }
  return out;
}

describe('chain scripts', () => {
  it('there are scripts to check', () => {
    expect(chainScripts.length).toBe(Object.keys(transitions).length);
  });

  it.each(chainScripts)(
    '$name: a header lists KEYS, ARGV and the return codes; each is bound to a named local that is read',
    ({ name, source }) => {
      const header = /^--\[\[\n([\s\S]*?)\n\]\]\n/.exec(source)?.[1];
      expect(header, 'opens with a --[[ … ]] header').toBeDefined();
      expect(header).toMatch(new RegExp(`^  ${name} \\(schema \\d+\\): `));
      expect(header).toMatch(/^ {2}KEYS$/m);
      expect(header).toMatch(/^ {2}ARGV$/m);
      expect(header).toMatch(/^ {2}Returns /m);
      const body = source.slice(source.indexOf('\n]]\n') + 4);
      for (const [kind, entries] of [
        ['KEYS', section(header!, 'KEYS')],
        ['ARGV', section(header!, 'ARGV')],
      ] as const) {
        for (const { at, local } of entries) {
          if (!/^\d+$/.test(at)) continue; // a variable-length tail (read in a loop)
          // bound at the top: `local a, b = KEYS[1], KEYS[2]` (or read by a conversion)
          const bound = new RegExp(`\\b${kind}\\[${at}\\]`).test(body);
          expect(bound, `${kind}[${at}] (${local}) is bound`).toBe(true);
          if (/^[a-z_]+$/.test(local)) {
            const uses = body.match(new RegExp(`\\b${local}\\b`, 'g')) ?? [];
            expect(uses.length, `${local} is read after it is bound`).toBeGreaterThan(1);
          }
        }
        // nothing beyond the listed positions is read, unless the header lists a tail
        const listed = entries.filter((e) => /^\d+$/.test(e.at)).map((e) => Number(e.at));
        const tail = entries.some((e) => !/^\d+$/.test(e.at));
        const used = [...body.matchAll(new RegExp(`\\b${kind}\\[(\\d+)\\]`, 'g'))].map((m) =>
          Number(m[1]),
        );
        if (!tail) for (const i of used) expect(listed, `${kind}[${i}] is listed`).toContain(i);
      }
      // a list of any length is unpacked in bounded chunks (Lua's unpack takes ~8,000 values)
      for (const call of body.match(/unpack\([^)]*\)/g) ?? [])
        expect(call, 'unpack with explicit bounds').toMatch(/unpack\([^,]+,[^,]+,/);
    },
  );

  it('every transition names a compiled script, and every chain script has its transition', () => {
    const named = Object.values(transitions).map((t) => t.script);
    expect(new Set(named).size).toBe(named.length);
    for (const script of named) expect(LUA_SCRIPTS[script]).toBeDefined();
    expect(named.sort()).toEqual(chainScripts.map((s) => s.name).sort());
  });
});

describe('chain_items_ack arguments', () => {
  it('name each distinct run once, in first-seen order, and give each entry its run (0: none)', async () => {
    const { ChainKeyBuilder } = await import('../../../src/keys/chain-key-builder.js');
    const keys = new ChainKeyBuilder({ prefix: 'p' });
    const input = {
      handOff: { items: 'p:queue:items', group: 'g' },
      entries: [
        { id: '1-0', taskId: 't1', runId: 'r1' },
        { id: '2-0', taskId: 't2', runId: 'r1' },
        { id: '3-0', taskId: 't1', runId: undefined },
        { id: '4-0', taskId: 't1', runId: 'r1' },
        { id: '5-0', taskId: 't1', runId: 'r2' },
      ],
    };
    const t = transitions.itemsAck;
    const ctx = { ttlMs: 1000, now: '', keys, finishedTtlMs: 500, finished: () => {} };
    expect(t.redisKeys(t.keys(keys, input))).toEqual([
      'p:queue:items',
      keys.run('t1', 'r1'),
      keys.run('t2', 'r1'),
      keys.run('t1', 'r2'),
    ]);
    expect(t.args(input, ctx)).toEqual([
      'g',
      '',
      500,
      5,
      '1-0',
      '2-0',
      '3-0',
      '4-0',
      '5-0',
      1,
      2,
      0,
      1,
      3,
    ]);
    expect(t.runs!(input)).toEqual([
      { taskId: 't1', runId: 'r1' },
      { taskId: 't2', runId: 'r1' },
      { taskId: 't1', runId: 'r2' },
    ]);
    // another ack: its own runs, not the last one's
    const other = { ...input, entries: [{ id: '6-0', taskId: 't3', runId: 'r9' }] };
    expect(t.runs!(other)).toEqual([{ taskId: 't3', runId: 'r9' }]);
  });
});
