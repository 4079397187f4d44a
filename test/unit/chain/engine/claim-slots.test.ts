import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ClaimSlots,
  type AcquiredSlot,
  type RunSlot,
  type SlotHandOver,
} from '../../../../src/chain/engine/claim-slots.js';
import { ClaimCode, type ClaimInput, type ClaimResult } from '../../../../src/chain/state/index.js';
import { BackendUnavailableError, ScriptError } from '../../../../src/errors.js';

const input = (taskId: string, prefix: string): ClaimInput => ({
  node: {
    taskId,
    runId: 'r',
    account: 'a',
    platform: 'p',
    moduleId: 'm',
    stepIdx: 1,
    prefixRequest: prefix,
  },
  owner: `w/${prefix}`,
  leaseMs: 1000,
  epoch: 0,
  root: false,
});
const executed: ClaimResult = { code: ClaimCode.EXECUTE, version: 1, leaseUntil: 5, reason: '' };
const settled = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A node that asked for a slot: what it got, once it got it. */
interface Asker {
  id: number;
  taskId: string;
  got?: AcquiredSlot;
  error?: unknown;
}

describe('ClaimSlots', () => {
  it('model: never more than `size` slots held; a slot handed over or given back goes to the first waiting node (of the same task on a cluster); nothing is lost', async () => {
    const action = fc.oneof(
      fc.record({ kind: fc.constant('ask' as const), task: fc.constantFrom('a', 'b') }),
      fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }),
      fc.record({
        kind: fc.constant('commit' as const),
        pick: fc.nat(),
        answer: fc.constantFrom('claimed', 'none', 'unknown', 'refused'),
      }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.boolean(),
        fc.array(action, { maxLength: 60 }),
        async (size, sameTask, actions) => {
          const slots = new ClaimSlots(size, sameTask, new AbortController().signal);
          const askers: Asker[] = [];
          // the model: the nodes holding a slot, and those waiting, in order
          const holding: Asker[] = [];
          const waiting: Asker[] = [];
          let next = 0;
          const give = (to: Asker): void => {
            waiting.splice(waiting.indexOf(to), 1);
            holding.push(to);
          };
          for (const a of actions) {
            if (a.kind === 'ask') {
              const asker: Asker = { id: next++, taskId: a.task };
              askers.push(asker);
              slots.acquire(input(a.task, String(asker.id))).then(
                (got) => (asker.got = got),
                (error: unknown) => (asker.error = error),
              );
              waiting.push(asker);
              if (holding.length < size) give(asker);
            } else if (holding.length > 0) {
              const holder = holding[a.pick % holding.length]!;
              holding.splice(holding.indexOf(holder), 1);
              const slot = holder.got!.slot;
              if (a.kind === 'release') {
                slot.release();
                if (waiting.length > 0) give(waiting[0]!);
              } else {
                const to = waiting.find((w) => !sameTask || w.taskId === holder.taskId);
                const handOver = slot.handOver(holder.taskId);
                expect(handOver?.input.node.prefixRequest).toBe(
                  to === undefined ? undefined : String(to.id),
                );
                slot.release(); // the node ends: nothing more once handed over
                if (to === undefined) {
                  if (waiting.length > 0) give(waiting[0]!);
                } else {
                  settleHandOver(handOver!, a.answer);
                  if (a.answer === 'unknown') {
                    // the waiting node gets the error and does not run; the slot goes on
                    waiting.splice(waiting.indexOf(to), 1);
                    if (waiting.length > 0) give(waiting[0]!);
                  } else give(to);
                }
              }
            }
            await settled();
            // the model and the slots agree on who holds a slot, and who waits
            for (const h of holding) expect(h.got, `node ${h.id} holds a slot`).toBeDefined();
            for (const w of waiting) {
              expect(w.got, `node ${w.id} waits`).toBeUndefined();
              expect(w.error).toBeUndefined();
            }
            expect(holding.length).toBeLessThanOrEqual(size);
            expect(slots.waiting).toBe(waiting.length);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a handed-over slot carries the claim the commit made; none when the commit made none or was refused (the node claims itself)', async () => {
    const slots = new ClaimSlots(1, false, new AbortController().signal);
    const first = await slots.acquire(input('a', 'x'));
    const second = slots.acquire(input('a', 'y'));
    const third = slots.acquire(input('a', 'z'));
    const handOver = first.slot.handOver('a')!;
    expect(handOver.input.node.prefixRequest).toBe('y');
    handOver.settle(executed);
    const got = await second;
    expect(got.claimed).toEqual(executed);
    // a commit refused by the script (a non-retryable error) claimed nothing: claim it yourself
    got.slot.handOver('a')!.fail(new ScriptError('WRONGTYPE'));
    const last = await third;
    expect(last.claimed).toBeUndefined();
    expect(last.slot).toBeDefined();
  });

  it('a commit whose outcome is unknown (retryable error) fails the waiting node with it; the slot goes to the next one', async () => {
    const slots = new ClaimSlots(1, false, new AbortController().signal);
    const first = await slots.acquire(input('a', 'x'));
    const second = slots.acquire(input('a', 'y'));
    const third = slots.acquire(input('a', 'z'));
    const error = new BackendUnavailableError('connection lost');
    first.slot.handOver('a')!.fail(error);
    await expect(second).rejects.toBe(error);
    const got = await third;
    expect(got.claimed).toBeUndefined();
    got.slot.release();
    // one slot again, free
    const again = await slots.acquire(input('a', 'w'));
    expect(again.slot).toBeDefined();
  });

  it('on a cluster a commit hands its slot only to a node of its own task', async () => {
    const slots = new ClaimSlots(1, true, new AbortController().signal);
    const first = await slots.acquire(input('a', 'x'));
    const other = slots.acquire(input('b', 'y'));
    const same = slots.acquire(input('a', 'z'));
    const handOver = first.slot.handOver('a')!;
    expect(handOver.input.node.taskId).toBe('a');
    handOver.settle(executed);
    expect((await same).claimed).toEqual(executed);
    expect(slots.waiting).toBe(1);
    // no node of task a waits: the slot stays with the committing node, then goes to b
    const sameSlot: RunSlot = (await same).slot;
    expect(sameSlot.handOver('a')).toBeUndefined();
    sameSlot.release();
    expect((await other).claimed).toBeUndefined();
  });

  it('waiting nodes get the reason when the engine abandons its work; no slot is taken after', async () => {
    const abort = new AbortController();
    const slots = new ClaimSlots(1, false, abort.signal);
    await slots.acquire(input('a', 'x'));
    const waiting = slots.acquire(input('a', 'y'));
    abort.abort(new Error('stopping'));
    await expect(waiting).rejects.toThrow('stopping');
    await expect(slots.acquire(input('a', 'z'))).rejects.toThrow('stopping');
  });

  it('extra: many waiting deliveries for short nodes, one for nodes of seconds', async () => {
    const slots = new ClaimSlots(16, false, new AbortController().signal);
    expect(slots.extra(48)).toBe(1); // nothing measured yet: nodes may be slow
    const quick = await slots.acquire(input('a', 'q'));
    quick.slot.release(); // held for about no time
    expect(slots.extra(48)).toBe(48);
    const slow = new ClaimSlots(16, false, new AbortController().signal);
    const held = await slow.acquire(input('a', 's'));
    await new Promise((r) => setTimeout(r, 220));
    held.slot.release();
    // 16 slots each held ~220 ms: about 7 nodes wait 100 ms
    expect(slow.extra(48)).toBeGreaterThanOrEqual(1);
    expect(slow.extra(48)).toBeLessThanOrEqual(8);
  });
});

function settleHandOver(handOver: SlotHandOver, answer: string): void {
  if (answer === 'claimed') handOver.settle(executed);
  else if (answer === 'none') handOver.settle(undefined);
  else if (answer === 'refused') handOver.fail(new ScriptError('WRONGTYPE'));
  else handOver.fail(new BackendUnavailableError('lost'));
}
