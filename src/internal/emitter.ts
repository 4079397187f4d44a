/**
 * A minimal typed event emitter. `has(name)` lets hot paths skip building an event object
 * when nobody listens. A listener that throws is isolated: it never breaks the emitter or the
 * caller; its error is passed to the `onListenerError` hook.
 * @internal
 */
export type Listener<E> = (event: E) => void;

export class Emitter<Events extends object> {
  #listeners: { [K in keyof Events]?: Listener<Events[K]>[] } = {};
  readonly #onListenerError: (error: unknown) => void;

  constructor(onListenerError: (error: unknown) => void = () => {}) {
    this.#onListenerError = onListenerError;
  }

  /** Subscribes; returns an unsubscribe function. */
  on<K extends keyof Events>(name: K, listener: Listener<Events[K]>): () => void {
    const list = (this.#listeners[name] ??= []);
    list.push(listener);
    return () => this.off(name, listener);
  }

  /** Unsubscribes one listener. */
  off<K extends keyof Events>(name: K, listener: Listener<Events[K]>): void {
    const list = this.#listeners[name];
    if (!list) return;
    const index = list.indexOf(listener);
    if (index >= 0) list.splice(index, 1);
    if (list.length === 0) delete this.#listeners[name];
  }

  /** Whether anyone listens to `name` (cheap: check before building an event). */
  has(name: keyof Events): boolean {
    return this.#listeners[name] !== undefined;
  }

  /** Calls every listener of `name` synchronously, isolating their errors. */
  emit<K extends keyof Events>(name: K, event: Events[K]): void {
    const list = this.#listeners[name];
    if (!list) return;
    for (const listener of list.length === 1 ? list : list.slice()) {
      try {
        listener(event);
      } catch (error) {
        this.#onListenerError(error);
      }
    }
  }

  /** Removes every listener. */
  clear(): void {
    this.#listeners = {};
  }
}
