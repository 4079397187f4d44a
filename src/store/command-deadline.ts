/**
 * Bounds Redis calls made through a client mocra did not create (and so could not give an
 * ioredis `commandTimeout`): a call that has not answered after `timeoutMs` rejects with
 * "Command timed out", which the Redis error classifier turns into a retryable
 * BackendUnavailableError. The command itself is not cancelled and may still run: it is never
 * sent again by mocra. One unref'd timer serves every pending call.
 * @internal
 */

interface Pending {
  readonly at: number;
  readonly reject: (error: Error) => void;
  done: boolean;
}

export class CommandDeadline {
  readonly timeoutMs: number;
  readonly #pending = new Set<Pending>();
  #timer: ReturnType<typeof setTimeout> | null = null;

  /** `timeoutMs` 0 turns the bound off. */
  constructor(timeoutMs: number) {
    this.timeoutMs = timeoutMs;
  }

  /** Runs `call`, rejecting after `timeoutMs` (plus `extraMs`, e.g. a BLOCK time) without an answer. */
  run<R>(call: () => Promise<R>, extraMs = 0): Promise<R> {
    if (this.timeoutMs === 0) return call();
    return new Promise<R>((resolve, reject) => {
      const entry: Pending = {
        at: performance.now() + this.timeoutMs + extraMs,
        reject,
        done: false,
      };
      let promise: Promise<R>;
      try {
        promise = call();
      } catch (error) {
        reject(error as Error);
        return;
      }
      this.#pending.add(entry);
      this.#arm();
      promise.then(
        (value) => {
          if (entry.done) return;
          entry.done = true;
          this.#pending.delete(entry);
          resolve(value);
        },
        (error: unknown) => {
          if (entry.done) return;
          entry.done = true;
          this.#pending.delete(entry);
          reject(error as Error);
        },
      );
    });
  }

  #arm(): void {
    if (this.#timer !== null) return;
    const period = Math.max(10, Math.floor(this.timeoutMs / 4));
    this.#timer = setTimeout(() => this.#tick(), period);
    this.#timer.unref?.();
  }

  #tick(): void {
    this.#timer = null;
    const now = performance.now();
    for (const entry of this.#pending) {
      if (entry.at > now) continue;
      entry.done = true;
      this.#pending.delete(entry);
      entry.reject(new Error(`Command timed out (no answer within ${this.timeoutMs} ms)`));
    }
    if (this.#pending.size > 0) this.#arm();
  }
}
