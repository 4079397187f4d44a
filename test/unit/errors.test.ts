import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import type * as ErrorsModule from '../../src/errors.js';
import {
  BackendUnavailableError,
  ConfigError,
  ErrorCode,
  MocraError,
  QueueFullError,
  RunNotFoundError,
  SchedulerClosedError,
  ScriptError,
  TaskCancelledError,
  TaskTimeoutError,
  isConfigError,
  isMocraError,
  isQueueFullError,
} from '../../src/index.js';

describe('errors', () => {
  it.each([
    [new ConfigError('bad'), 'CONFIG_INVALID', 'ConfigError', false],
    [new QueueFullError(), 'QUEUE_FULL', 'QueueFullError', true],
    [new TaskCancelledError(), 'TASK_CANCELLED', 'TaskCancelledError', false],
    [new TaskTimeoutError(), 'TASK_TIMEOUT', 'TaskTimeoutError', true],
    [new SchedulerClosedError(), 'CLOSED', 'SchedulerClosedError', false],
    [new BackendUnavailableError(), 'BACKEND_UNAVAILABLE', 'BackendUnavailableError', true],
    [new ScriptError('x'), 'SCRIPT_FAILED', 'ScriptError', false],
  ] as const)('%s has code %s, name and retryable default', (error, code, name, retryable) => {
    expect(error).toBeInstanceOf(MocraError);
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toBe(code);
    expect(error.name).toBe(name);
    expect(error.retryable).toBe(retryable);
    expect(isMocraError(error)).toBe(true);
    expect(isMocraError(error, code)).toBe(true);
    expect(ErrorCode[code]).toBe(code);
  });

  it('keeps cause and frozen context, exposes context getters', () => {
    const cause = new Error('root');
    const error = new QueueFullError('full', {
      cause,
      context: { key: 'k', taskId: 't1', retryAfterMs: 5 },
    });
    expect(error.cause).toBe(cause);
    expect(error.key).toBe('k');
    expect(error.taskId).toBe('t1');
    expect(error.retryAfterMs).toBe(5);
    expect(Object.isFrozen(error.context)).toBe(true);
  });

  it('a ConfigError can never be marked retryable', () => {
    expect(new ConfigError('x', { retryable: true }).retryable).toBe(false);
  });

  it('guards reject lookalikes and other codes', () => {
    expect(isMocraError(new Error('x'))).toBe(false);
    expect(isMocraError({ code: 'QUEUE_FULL' })).toBe(false);
    expect(isMocraError(null)).toBe(false);
    expect(isMocraError('QUEUE_FULL')).toBe(false);
    expect(isQueueFullError(new ConfigError('x'))).toBe(false);
    expect(isConfigError(new ConfigError('x'))).toBe(true);
  });

  it('guards recognise errors from a second loaded copy of the module', async () => {
    vi.resetModules();
    const specifier = '../../src/errors.js?second-copy';
    const copy = (await import(/* @vite-ignore */ specifier)) as typeof ErrorsModule;
    const foreign = new copy.QueueFullError();
    expect(foreign).not.toBeInstanceOf(QueueFullError);
    expect(isMocraError(foreign)).toBe(true);
    expect(isQueueFullError(foreign)).toBe(true);
    expect(copy.isQueueFullError(new QueueFullError())).toBe(true);
  });

  it('docs/errors.md lists every error code in its table', () => {
    const doc = readFileSync(join(import.meta.dirname, '../../docs/errors.md'), 'utf8');
    const rows = doc.split('\n').filter((l) => l.startsWith('| `'));
    for (const code of Object.values(ErrorCode))
      expect(
        rows.some((r) => r.includes(`\`${code}\``)),
        code,
      ).toBe(true);
  });

  it('RunNotFoundError: RUN_NOT_FOUND, never retryable', () => {
    const e = new RunNotFoundError('run "x" not found');
    expect(e).toBeInstanceOf(MocraError);
    expect(e.code).toBe(ErrorCode.RUN_NOT_FOUND);
    expect(e.retryable).toBe(false);
  });
});
