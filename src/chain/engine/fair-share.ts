/**
 * Fair share of the event loop: work that goes on without I/O (in-process queues and state,
 * downloads that resolve at once) runs as a chain of microtasks, which starves timers and I/O.
 * A loop calls {@link FairShare.turn} once per unit of work; every `every` units it waits for
 * `setImmediate`, so timers, I/O callbacks and other loops get their turn.
 */
import { setImmediate as immediate } from 'node:timers/promises';

/** Counts units of work and yields to the event loop every `every` of them. @internal */
export class FairShare {
  readonly #every: number;
  #count = 0;

  constructor(every = 64) {
    this.#every = every;
  }

  /** One unit of work done: resolves at once, or after the event loop's turn every `every` units. */
  async turn(): Promise<void> {
    if (this.due()) await this.yield();
  }

  /** One unit of work done: true every `every` units, when the loop should {@link yield}. */
  due(): boolean {
    if (++this.#count < this.#every) return false;
    this.#count = 0;
    return true;
  }

  /** Waits for the event loop's turn (`setImmediate`). */
  yield(): Promise<void> {
    return immediate();
  }
}
