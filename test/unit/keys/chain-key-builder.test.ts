import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChainKeyBuilder, ConfigError, keySlot, type PtmIdentity } from '../../../src/index.js';

const node: PtmIdentity = {
  runId: 'run-1',
  account: 'acme',
  platform: 'web',
  moduleId: 'shop',
  stepIdx: 2,
  prefixRequest: 'GET https://example.test/list?page=1',
};

const id = fc.string({
  minLength: 1,
  maxLength: 12,
  unit: fc.constantFrom('a', 'b', ':', '{', '}', '%', '|', '1', 'é'),
});
const identity = fc.record({
  runId: id,
  account: id,
  platform: id,
  moduleId: id,
  stepIdx: fc.nat(20),
  prefixRequest: fc.string({ maxLength: 12, unit: fc.constantFrom('a', ':', '{', '}', '|', '1') }),
});

function familyKeys(keys: ChainKeyBuilder, taskId: string, n: PtmIdentity): string[] {
  return [
    keys.exec(taskId, n.runId, n.moduleId),
    keys.ptm(taskId, n),
    keys.advanceGate(taskId, n),
    keys.fallbackGate(taskId, n),
    keys.errorEmit(taskId, n, 'err:{hash}'),
    keys.moduleThreshold(taskId, n.moduleId),
    keys.taskThreshold(taskId),
    keys.terminateTask(taskId),
    keys.terminateModule(taskId, n.moduleId),
    keys.retryZset(taskId),
    keys.outbox(taskId),
  ];
}

describe('ChainKeyBuilder', () => {
  const keys = new ChainKeyBuilder();

  it('ptmKey is stable across processes and versions (golden value)', () => {
    // if this ever changes, every run in flight would lose its state: never change the encoding
    expect(keys.ptmKey(node)).toBe('be5f7c8dfdf6ec9bb2478ba5ccbf1043');
    expect(new ChainKeyBuilder({ prefix: 'other' }).ptmKey({ ...node })).toBe(
      'be5f7c8dfdf6ec9bb2478ba5ccbf1043',
    );
    expect(keys.ptm('task-1', node)).toBe('chain:{t:task-1}:ptm:be5f7c8dfdf6ec9bb2478ba5ccbf1043');
  });

  it('ptmKey is unambiguous: moving a delimiter between fields changes it', () => {
    expect(keys.ptmKey({ ...node, runId: 'a:b', account: 'c' })).not.toBe(
      keys.ptmKey({ ...node, runId: 'a', account: 'b:c' }),
    );
    expect(keys.ptmKey({ ...node, runId: 'a|1:b', account: 'c' })).not.toBe(
      keys.ptmKey({ ...node, runId: 'a', account: '1:b|c' }),
    );
    expect(keys.ptmKey({ ...node, stepIdx: 1 })).not.toBe(keys.ptmKey({ ...node, stepIdx: 10 }));
  });

  it('distinct identities give distinct ptmKeys (property)', () => {
    fc.assert(
      fc.property(identity, identity, (a, b) => {
        const same = JSON.stringify(a) === JSON.stringify(b);
        expect(keys.ptmKey(a) === keys.ptmKey(b)).toBe(same);
      }),
      { numRuns: 3_000 },
    );
  });

  it("an object that names another node after a change gets that node's key (property)", () => {
    // the builder reuses a key per object; changing any one field must never return a stale key
    const cached = new ChainKeyBuilder();
    const fresh = (n: PtmIdentity): string => new ChainKeyBuilder().ptmKey({ ...n });
    const field = fc.constantFrom<keyof PtmIdentity>(
      'runId',
      'account',
      'platform',
      'moduleId',
      'stepIdx',
      'prefixRequest',
    );
    fc.assert(
      fc.property(
        identity,
        fc.array(fc.tuple(field, identity), { maxLength: 6 }),
        (first, changes) => {
          const obj: PtmIdentity = { ...first };
          expect(cached.ptmKey(obj)).toBe(fresh(obj));
          for (const [name, from] of changes) {
            Object.assign(obj, { [name]: from[name] });
            expect(cached.ptmKey(obj)).toBe(fresh(obj));
            expect(cached.ptmKey(obj)).toBe(fresh(obj));
          }
        },
      ),
      { numRuns: 1_000 },
    );
  });

  it('every key of a task is in one cluster slot, whatever the ids contain (property)', () => {
    fc.assert(
      fc.property(id, identity, (taskId, n) => {
        const all = familyKeys(keys, taskId, n);
        const slot = keySlot(all[0]!);
        for (const k of all) {
          expect(keySlot(k)).toBe(slot);
          expect(k.startsWith(keys.taskPrefix(taskId))).toBe(true);
        }
        expect(slot).toBe(keySlot(keys.tag(taskId)));
      }),
      { numRuns: 2_000 },
    );
  });

  it('escaped ids cannot collide across segments or tasks (property)', () => {
    fc.assert(
      fc.property(id, id, id, id, (t1, m1, t2, m2) => {
        const a = keys.terminateModule(t1, m1);
        const b = keys.terminateModule(t2, m2);
        expect(a === b).toBe(t1 === t2 && m1 === m2);
        expect(keys.taskThreshold(t1) === keys.taskThreshold(t2)).toBe(t1 === t2);
      }),
      { numRuns: 3_000 },
    );
  });

  it('ids with braces cannot open or close the hash tag', () => {
    const k = keys.terminateTask('evil}{x');
    expect(k).toBe('chain:{t:evil%7D%7Bx}:terminate:task');
    expect(keySlot(k)).toBe(keySlot('t:evil%7D%7Bx'));
    expect(keys.terminateModule('a', 'b:c')).toBe('chain:{t:a}:terminate:module:b%3Ac');
    expect(keys.terminateModule('a', '100%')).toBe('chain:{t:a}:terminate:module:100%25');
  });

  it('uses the configured prefix and refuses one that could break the tag', () => {
    expect(new ChainKeyBuilder({ prefix: 'crawl' }).taskThreshold('t')).toBe(
      'crawl:{t:t}:threshold:task',
    );
    expect(() => new ChainKeyBuilder({ prefix: 'a{b' })).toThrow(ConfigError);
    expect(() => new ChainKeyBuilder({ prefix: '' })).toThrow(ConfigError);
    expect(() => new ChainKeyBuilder({ prefx: 'x' } as never)).toThrow(/unknown option/);
  });

  it('queue streams are shared by all tasks: no task hash tag, names escaped', () => {
    expect(keys.queue('parser')).toBe('chain:queue:parser');
    expect(keys.queueDeadLetters('parser')).toBe('chain:queue:parser:dead');
    expect(new ChainKeyBuilder({ prefix: 'crawl' }).queue('task')).toBe('crawl:queue:task');
    expect(keys.queue('a:dead')).toBe('chain:queue:a%3Adead');
    expect(keys.queue('a:dead')).not.toBe(keys.queueDeadLetters('a'));
    expect(keys.queue('{x}')).not.toContain('{');
    expect(() => keys.queue('')).toThrow(/`name`/);
  });

  it('refuses invalid identities with ConfigError naming the field', () => {
    expect(() => keys.ptmKey({ ...node, stepIdx: -1 })).toThrow(/`stepIdx`/);
    expect(() => keys.ptmKey({ ...node, stepIdx: 1.5 })).toThrow(/`stepIdx`/);
    expect(() => keys.ptmKey({ ...node, runId: '' })).toThrow(/`runId`/);
    expect(() => keys.ptmKey({ ...node, prefixRequest: undefined as never })).toThrow(
      /`prefixRequest`/,
    );
    expect(() => keys.terminateModule('t', '')).toThrow(ConfigError);
    expect(() => keys.tag('')).toThrow(/`taskId`/);
  });
});
