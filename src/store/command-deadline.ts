/**
 * Bounds Redis calls made through a client mocra did not create (and so could not give an
 * ioredis `commandTimeout`): a call that has not answered after `timeoutMs` rejects with
 * "Command timed out", which the Redis error classifier turns into a retryable
 * BackendUnavailableError. The command itself is not cancelled and may still run: it is never
 * sent again by mocra. One unref'd timer serves every pending call.
 *
 * Cost per call (it is on every queue call of the distributed path): one entry, appended to a
 * FIFO (calls mostly answer in the order they were sent, so the answered ones are dropped from
 * its head as they answer); a call given more time (`extraMs`, a blocking read) waits in a small
 * set of its own, so it never holds the FIFO's head for its whole wait.
 * @internal
 */

class Pending<R> {
  done = false;
  resolve: ((value: R) => void) | null = null;
  reject: ((error: Error) => void) | null = null;
  constructor(readonly at: number) {}
}

export class CommandDeadline {
  readonly timeoutMs: number;
  /** Calls bounded by `timeoutMs` alone, in the order they were made (so by `at`), from `#head`. */
  #fifo: Pending<unknown>[] = [];
  #head = 0;
  /** Calls given `extraMs` more (their `at` is out of the FIFO's order). */
  readonly #long = new Set<Pending<unknown>>();
  #timer: ReturnType<typeof setTimeout> | null = null;

  /** `timeoutMs` 0 turns the bound off. */
  constructor(timeoutMs: number) {
    this.timeoutMs = timeoutMs;
  }

  /**
   * Runs `call`, rejecting after `timeoutMs` (plus `extraMs`, e.g. a BLOCK time) without an
   * answer. Never throws: a `call` that throws gives a rejected promise.
   */
  run<R>(call: () => Promise<R>, extraMs = 0): Promise<R> {
    let promise: Promise<R>;
    try {
      promise = call();
    } catch (error) {
      return Promise.reject(error as Error);
    }
    if (this.timeoutMs === 0) return promise;
    const entry = new Pending<R>(performance.now() + this.timeoutMs + extraMs);
    const result = new Promise<R>((resolve, reject) => {
      entry.resolve = resolve;
      entry.reject = reject;
    });
    if (extraMs > 0) this.#long.add(entry as Pending<unknown>);
    else this.#fifo.push(entry as Pending<unknown>);
    if (this.#timer === null) this.#arm();
    promise.then(
      (value) => {
        if (entry.done) return;
        const resolve = entry.resolve!;
        this.#settle(entry as Pending<unknown>, extraMs > 0);
        resolve(value);
      },
      (error: unknown) => {
        if (entry.done) return;
        const reject = entry.reject!;
        this.#settle(entry as Pending<unknown>, extraMs > 0);
        reject(error as Error);
      },
    );
    return result;
  }

  /** Marks `entry` answered (or timed out) and drops what it no longer needs. */
  #settle(entry: Pending<unknown>, long: boolean): void {
    entry.done = true;
    entry.resolve = null;
    entry.reject = null;
    if (long) {
      this.#long.delete(entry);
      return;
    }
    const fifo = this.#fifo;
    let head = this.#head;
    while (head < fifo.length && fifo[head]!.done) head++;
    if (head === fifo.length) {
      fifo.length = 0;
      head = 0;
    } else if (head >= 1024 && head * 2 >= fifo.length) {
      // a call far behind the others still waits: drop the answered ones before it
      fifo.splice(0, head);
      head = 0;
    }
    this.#head = head;
  }

  #arm(): void {
    const period = Math.max(10, Math.floor(this.timeoutMs / 4));
    this.#timer = setTimeout(() => this.#tick(), period);
    this.#timer.unref?.();
  }

  #tick(): void {
    this.#timer = null;
    const now = performance.now();
    const expired: Pending<unknown>[] = [];
    const fifo = this.#fifo;
    // by `at` from the head: the first call still in time ends the expired ones
    for (let i = this.#head; i < fifo.length; i++) {
      const entry = fifo[i]!;
      if (entry.done) continue;
      if (entry.at > now) break;
      expired.push(entry);
    }
    for (const entry of this.#long) if (entry.at <= now) expired.push(entry);
    for (const entry of expired) {
      const reject = entry.reject!;
      this.#settle(entry, this.#long.has(entry));
      reject(new Error(`Command timed out (no answer within ${this.timeoutMs} ms)`));
    }
    if (this.#head < this.#fifo.length || this.#long.size > 0) this.#arm();
  }
}
