import { describe, expect, it } from 'vitest';
import { TaskCancelledError } from '../../src/errors.js';
import { abortError, onAbort, sleep, throwIfAborted } from '../../src/internal/abort.js';

describe('abort helpers', () => {
  it('sleep resolves after the delay', async () => {
    const start = performance.now();
    await sleep(20);
    expect(performance.now() - start).toBeGreaterThanOrEqual(15);
  });

  it('sleep rejects promptly when aborted, with a TaskCancelledError', async () => {
    const controller = new AbortController();
    const start = performance.now();
    const pending = sleep(10_000, controller.signal);
    setTimeout(() => controller.abort(), 10);
    await expect(pending).rejects.toBeInstanceOf(TaskCancelledError);
    expect(performance.now() - start).toBeLessThan(1_000);
  });

  it('an Error reason is passed through unchanged', () => {
    const controller = new AbortController();
    const reason = new RangeError('mine');
    controller.abort(reason);
    expect(abortError(controller.signal)).toBe(reason);
    expect(() => throwIfAborted(controller.signal)).toThrow(reason);
  });

  it('onAbort fires once and its disposer removes the listener', () => {
    const controller = new AbortController();
    let calls = 0;
    const dispose = onAbort(controller.signal, () => calls++);
    dispose();
    controller.abort();
    expect(calls).toBe(0);
    onAbort(controller.signal, () => calls++);
    expect(calls).toBe(1);
  });
});
