import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { TaskCancelledError, createScheduler } from '../../../src/index.js';

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((res) => {
    resolve = res;
  });
  return { promise, resolve };
}

describe('TaskScheduler._runOwn (a task that settles by itself on abort)', () => {
  it('adds no listener to the signal when it starts at once, and runs with the defaults', async () => {
    const s = createScheduler({ maxConcurrent: 2 });
    const node = new AbortController();
    const gate = deferred<string>();
    const pending = s._runOwn(() => gate.promise, 'm', node.signal);
    expect(getEventListeners(node.signal, 'abort')).toHaveLength(0);
    expect(s.stats()).toMatchObject({ submitted: 1, running: 1 });
    gate.resolve('done');
    expect(await pending).toBe('done');
    expect(s.stats()).toMatchObject({ succeeded: 1, running: 0 });
  });

  it('watches the signal while the task waits: an abort cancels it there, unrun', async () => {
    const s = createScheduler({ maxConcurrent: 1 });
    const gate = deferred();
    const first = s._runOwn(() => gate.promise, 'm', new AbortController().signal);
    const node = new AbortController();
    let ran = false;
    const queued = s._runOwn(
      () => {
        ran = true;
        return Promise.resolve();
      },
      'm',
      node.signal,
    );
    expect(getEventListeners(node.signal, 'abort')).toHaveLength(1);
    const reason = new Error('node abandoned');
    node.abort(reason);
    const error = await queued.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskCancelledError);
    expect((error as TaskCancelledError).cause).toBe(reason);
    gate.resolve();
    await first;
    await s.onIdle();
    expect(ran).toBe(false);
    expect(s.stats()).toMatchObject({ cancelled: 1, succeeded: 1, queued: 0 });
  });

  it('stops watching the signal once the waiting task starts; its own rejection ends it as failed', async () => {
    const s = createScheduler({ maxConcurrent: 1 });
    const gate = deferred();
    const first = s._runOwn(() => gate.promise, 'm', new AbortController().signal);
    const node = new AbortController();
    const reason = new Error('node abandoned');
    const second = s._runOwn(
      ({ signal: _unused }) =>
        new Promise((_, reject) => {
          // the task races the node's signal itself
          node.signal.addEventListener('abort', () => reject(node.signal.reason), { once: true });
        }),
      'm',
      node.signal,
    );
    gate.resolve();
    await first;
    await new Promise((r) => setImmediate(r));
    // started: only the task's own listener is left on the signal
    expect(getEventListeners(node.signal, 'abort')).toHaveLength(1);
    node.abort(reason);
    await expect(second).rejects.toBe(reason);
    expect(s.stats()).toMatchObject({ failed: 1, cancelled: 0, running: 0 });
  });
});
