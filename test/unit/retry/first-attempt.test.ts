import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { ConfigError, RetryPolicy, TaskCancelledError } from '../../../src/index.js';

const transient = (): Error => Object.assign(new Error('HTTP 503'), { status: 503 });
const never = <T>(): Promise<T> => new Promise<T>(() => {});

describe('RetryPolicy: the first attempt and the abort race', () => {
  it('holds one listener on the signal while the first attempt runs, none once it answered', async () => {
    const policy = new RetryPolicy();
    const controller = new AbortController();
    let release!: (v: string) => void;
    const pending = policy.execute(() => new Promise<string>((r) => (release = r)), {
      signal: controller.signal,
    });
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    release('ok');
    expect(await pending).toBe('ok');
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    expect(policy.stats()).toMatchObject({ attempts: 1, successes: 1, aborted: 0 });
  });

  it('rejects at once with the reason when the signal aborts while the first attempt ignores it', async () => {
    const policy = new RetryPolicy();
    const controller = new AbortController();
    let calls = 0;
    const pending = policy.execute(
      () => {
        calls++;
        return never<string>();
      },
      { signal: controller.signal },
    );
    const reason = new Error('node abandoned');
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(calls).toBe(1);
    expect(policy.stats()).toMatchObject({ attempts: 1, aborted: 1, successes: 0, giveUps: 0 });
  });

  it('an abort that is not an Error rejects with TaskCancelledError carrying it', async () => {
    const policy = new RetryPolicy();
    const controller = new AbortController();
    const pending = policy.execute(() => never(), { signal: controller.signal });
    controller.abort('why');
    const error = await pending.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskCancelledError);
    expect((error as TaskCancelledError).cause).toBe('why');
  });

  it('a late answer of an attempt cut by the abort is ignored (no success counted)', async () => {
    const policy = new RetryPolicy();
    const controller = new AbortController();
    let release!: (v: string) => void;
    const pending = policy.execute(() => new Promise<string>((r) => (release = r)), {
      signal: controller.signal,
    });
    controller.abort(new Error('stop'));
    await pending.catch(() => {});
    release('late');
    await new Promise((r) => setImmediate(r));
    expect(policy.stats()).toMatchObject({ successes: 0, aborted: 1 });
  });

  it('a first attempt that throws or rejects goes on to the retries, which race the signal too', async () => {
    const policy = new RetryPolicy({ maxRetries: 3, initialDelayMs: 1, jitter: 0 });
    const seen: number[] = [];
    const value = await policy.execute(({ attempt }) => {
      seen.push(attempt);
      if (attempt === 1) throw transient();
      if (attempt === 2) return Promise.reject(transient());
      return `ok at ${attempt}`;
    });
    expect(value).toBe('ok at 3');
    expect(seen).toEqual([1, 2, 3]);
    expect(policy.stats()).toMatchObject({ attempts: 3, retries: 2, successes: 1 });

    const controller = new AbortController();
    const pending = policy.execute(
      ({ attempt }) => (attempt === 1 ? Promise.reject(transient()) : never()),
      { signal: controller.signal },
    );
    await new Promise((r) => setTimeout(r, 20)); // the second attempt runs and ignores its signal
    const reason = new Error('stop');
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('a first attempt that answers synchronously succeeds with its value, events as before', async () => {
    const policy = new RetryPolicy();
    const events: number[] = [];
    policy.on('success', (e) => events.push(e.attempts));
    const controller = new AbortController();
    expect(await policy.execute(() => 7, { signal: controller.signal })).toBe(7);
    expect(events).toEqual([1]);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('execute checks its arguments and rejects (never throws); _run trusts them', async () => {
    const policy = new RetryPolicy();
    let rejected: Promise<unknown> | undefined;
    expect(() => (rejected = policy.execute('nope' as never))).not.toThrow();
    await expect(rejected).rejects.toBeInstanceOf(ConfigError);
    await expect(policy.execute(() => 1, { signal: {} as never })).rejects.toBeInstanceOf(
      ConfigError,
    );
    const gone = new AbortController();
    gone.abort(new Error('gone'));
    let called = false;
    await expect(
      policy._run(() => {
        called = true;
        return 1;
      }, gone.signal),
    ).rejects.toThrow('gone');
    expect(called).toBe(false);
    expect(await policy._run(({ attempt }) => attempt, new AbortController().signal)).toBe(1);
  });
});
