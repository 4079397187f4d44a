/** The options of the one listener per signal (one object for every call). */
const ONCE: AddEventListenerOptions = Object.freeze({ once: true });

/**
 * Cancels what waits on an AbortSignal (a scheduler's tasks, a rate limiter's waiting calls)
 * when it aborts, with one listener per distinct signal however many records share it (a shared
 * deadline signal would otherwise collect a listener per record).
 * @internal
 */
export class SignalWatchers<R> {
  readonly #bySignal = new WeakMap<AbortSignal, { records: Set<R>; onAbort: () => void }>();
  readonly #cancel: (record: R, reason: unknown) => void;

  /** `cancel` is called for every watched record of a signal when it aborts. */
  constructor(cancel: (record: R, reason: unknown) => void) {
    this.#cancel = cancel;
  }

  /** Watches `signal` for `record`; returns the function that stops watching. */
  watch(record: R, signal: AbortSignal): () => void {
    let watch = this.#bySignal.get(signal);
    if (!watch) {
      const records = new Set<R>();
      const onAbort = (): void => {
        this.#bySignal.delete(signal);
        for (const each of [...records]) this.#cancel(each, signal.reason);
      };
      watch = { records, onAbort };
      this.#bySignal.set(signal, watch);
      signal.addEventListener('abort', onAbort, ONCE);
    }
    const own = watch;
    own.records.add(record);
    return () => {
      own.records.delete(record);
      if (own.records.size === 0 && this.#bySignal.get(signal) === own) {
        this.#bySignal.delete(signal);
        signal.removeEventListener('abort', own.onAbort);
      }
    };
  }
}
