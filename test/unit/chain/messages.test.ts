import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeMessage, normalizeMessage, type ChainMessage } from '../../../src/chain/messages.js';
import { MessageInvalidError, isMocraError } from '../../../src/errors.js';

const node = {
  taskId: 't1',
  runId: 'r1',
  account: 'acc',
  platform: 'web',
  moduleId: 'shop',
  stepIdx: 1,
  prefixRequest: 'GET /list/1',
};

function invalid(raw: unknown): MessageInvalidError {
  try {
    normalizeMessage(raw);
  } catch (error) {
    expect(error).toBeInstanceOf(MessageInvalidError);
    return error as MessageInvalidError;
  }
  throw new Error('expected MessageInvalidError');
}

describe('normalizeMessage', () => {
  it('normalises a task, defaulting runId to taskId and keeping loginInfo', () => {
    const input = normalizeMessage({
      kind: 'task',
      body: {
        taskId: 't1',
        account: 'a',
        platform: 'p',
        modules: ['m1', 'm2'],
        loginInfo: { token: 's' },
      },
    });
    expect(input).toEqual({
      kind: 'task',
      task: {
        taskId: 't1',
        runId: 't1',
        account: 'a',
        platform: 'p',
        modules: ['m1', 'm2'],
        loginInfo: { token: 's' },
      },
    });
  });

  it('normalises parser and error tasks from objects and from JSON text', () => {
    const ptm: ChainMessage = { kind: 'parser_task', body: { ...node, data: { url: '/p/1' } } };
    expect(normalizeMessage(encodeMessage(ptm))).toEqual({
      kind: 'parser_task',
      node: { ...node, data: { url: '/p/1' } },
    });
    const etm = normalizeMessage(
      Buffer.from(
        JSON.stringify({
          kind: 'error_task',
          body: {
            ...node,
            stayCurrentStep: true,
            attempt: 2,
            error: { message: 'boom', hash: 'h1', retryable: false },
          },
        }),
      ),
    );
    expect(etm).toMatchObject({
      kind: 'error_task',
      node: { stepIdx: 1, attempt: 2, error: { hash: 'h1', retryable: false } },
    });
  });

  it.each([
    ['not json', '{nope', 'message'],
    ['a number', 42, 'message'],
    ['unknown kind', { kind: 'other', body: {} }, 'kind'],
    ['missing body', { kind: 'task' }, 'body'],
    [
      'empty modules',
      { kind: 'task', body: { taskId: 't', account: 'a', platform: 'p', modules: [] } },
      'modules',
    ],
    [
      'duplicate module',
      { kind: 'task', body: { taskId: 't', account: 'a', platform: 'p', modules: ['m', 'm'] } },
      'modules[1]',
    ],
    ['negative step', { kind: 'parser_task', body: { ...node, stepIdx: -1 } }, 'stepIdx'],
    ['fractional step', { kind: 'parser_task', body: { ...node, stepIdx: 1.5 } }, 'stepIdx'],
    ['missing runId', { kind: 'parser_task', body: { ...node, runId: undefined } }, 'runId'],
    ['NaN in data', { kind: 'parser_task', body: { ...node, data: { x: [1, NaN] } } }, 'data.x[1]'],
    [
      'class instance metadata',
      { kind: 'parser_task', body: { ...node, metadata: new Date() } },
      'metadata',
    ],
    [
      'etm without stayCurrentStep',
      { kind: 'error_task', body: { ...node, attempt: 1, error: { message: 'x', hash: 'h' } } },
      'stayCurrentStep',
    ],
    [
      'etm attempt 0',
      {
        kind: 'error_task',
        body: { ...node, stayCurrentStep: true, attempt: 0, error: { message: 'x', hash: 'h' } },
      },
      'attempt',
    ],
    [
      'etm error without hash',
      {
        kind: 'error_task',
        body: { ...node, stayCurrentStep: true, attempt: 1, error: { message: 'x' } },
      },
      'hash',
    ],
  ])('rejects %s naming the field', (_name, raw, field) => {
    const error = invalid(raw);
    expect(error.code).toBe('MESSAGE_INVALID');
    expect(error.field).toBe(field);
    expect(error.message).toContain(field === 'message' ? '' : `\`${field}\``);
  });

  it('never throws anything but MessageInvalidError, whatever arrives', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.anything(),
          fc.string(),
          fc.record({
            kind: fc.constantFrom('task', 'parser_task', 'error_task', 'x'),
            body: fc.anything(),
          }),
          fc.record({
            kind: fc.constantFrom('parser_task', 'error_task'),
            body: fc.record({
              ...Object.fromEntries(Object.keys(node).map((k) => [k, fc.anything()])),
            }),
          }),
        ),
        (raw) => {
          try {
            normalizeMessage(raw);
          } catch (error) {
            expect(isMocraError(error, 'MESSAGE_INVALID')).toBe(true);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('normalizeMessage never echoes login info', () => {
  const task = { taskId: 't', account: 'a', platform: 'p', modules: ['m'] };
  it.each([
    ['a string', 'hunter2-secret-token'],
    ['a number', 31415926535],
    ['an array', ['hunter2-secret-token']],
  ])('names the field, not the value, when loginInfo is %s', (_, loginInfo) => {
    const error = invalid({ kind: 'task', body: { ...task, loginInfo } });
    expect(error.context.field).toBe('loginInfo');
    expect(error.message).toMatch(/`loginInfo`.*not shown/);
    expect(error.message).not.toContain('hunter2');
    expect(error.message).not.toContain('31415926535');
  });

  it('does not echo what a getter of loginInfo throws (nor keep it as the cause)', () => {
    const loginInfo = {
      get token(): string {
        throw new Error('getter hunter2-secret');
      },
    };
    const error = invalid({ kind: 'task', body: { ...task, loginInfo } });
    expect(error.context.field).toBe('loginInfo');
    expect(error.message).toMatch(/`loginInfo`.*not shown/);
    expect(error.message).not.toContain('hunter2');
    expect(String((error as Error & { cause?: unknown }).cause ?? '')).not.toContain('hunter2');
  });

  it('does not echo a nested value that is not JSON', () => {
    const error = invalid({
      kind: 'task',
      body: { ...task, loginInfo: { password: 'hunter2-secret', n: Number.NaN } },
    });
    expect(error.context.field).toBe('loginInfo.n');
    expect(error.message).not.toContain('NaN');
  });
});
