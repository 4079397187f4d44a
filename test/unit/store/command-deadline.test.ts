import { describe, expect, it } from 'vitest';
import { CommandDeadline } from '../../../src/store/command-deadline.js';

/** A call that answers only when told to. */
function manual<R>(): {
  call: () => Promise<R>;
  answer: (value: R) => void;
  fail: (e: Error) => void;
} {
  let answer!: (value: R) => void;
  let fail!: (e: Error) => void;
  const promise = new Promise<R>((resolve, reject) => {
    answer = resolve;
    fail = reject;
  });
  return { call: () => promise, answer, fail };
}

const never = (): Promise<never> => new Promise<never>(() => {});

describe('CommandDeadline', () => {
  it('passes an answer and a failure through', async () => {
    const deadline = new CommandDeadline(5_000);
    await expect(deadline.run(() => Promise.resolve('OK'))).resolves.toBe('OK');
    await expect(deadline.run(() => Promise.reject(new Error('WRONGTYPE')))).rejects.toThrow(
      'WRONGTYPE',
    );
  });

  it('turns a call that throws into a rejection, bound on or off', async () => {
    for (const timeoutMs of [0, 5_000]) {
      const deadline = new CommandDeadline(timeoutMs);
      let result: Promise<unknown> | undefined;
      expect(() => {
        result = deadline.run(() => {
          throw new Error('boom');
        });
      }).not.toThrow();
      await expect(result).rejects.toThrow('boom');
    }
  });

  it('rejects a call with no answer, and ignores its late answer', async () => {
    const deadline = new CommandDeadline(20);
    const late = manual<string>();
    const pending = deadline.run(late.call);
    await expect(pending).rejects.toThrow('Command timed out (no answer within 20 ms)');
    late.answer('too late');
    await expect(pending).rejects.toThrow('Command timed out');
  });

  it('times out a call still waiting behind many answered after it, each of those answered', async () => {
    const deadline = new CommandDeadline(20);
    const stuck = deadline.run(never);
    // more than the FIFO keeps answered entries behind a waiting one before compacting
    const answered = await Promise.all(
      Array.from({ length: 3_000 }, (_, i) => deadline.run(() => Promise.resolve(i))),
    );
    expect(answered[2_999]).toBe(2_999);
    await expect(stuck).rejects.toThrow('Command timed out');
    // the deadline keeps working after the FIFO was emptied and compacted
    await expect(deadline.run(() => Promise.resolve('after'))).resolves.toBe('after');
    await expect(deadline.run(never)).rejects.toThrow('Command timed out');
  });

  it('gives a call `extraMs` more: a blocking read outlives a plain call made with it', async () => {
    const deadline = new CommandDeadline(20);
    const read = manual<string>();
    const blocking = deadline.run(read.call, 60_000);
    await expect(deadline.run(never)).rejects.toThrow('Command timed out');
    read.answer('entries');
    await expect(blocking).resolves.toBe('entries');
  });

  it('rejects a blocking read with no answer once its extra time is over too', async () => {
    const deadline = new CommandDeadline(20);
    await expect(deadline.run(never, 20)).rejects.toThrow('Command timed out');
  });
});
