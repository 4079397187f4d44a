/**
 * A minimal typed event emitter. `has(name)` lets hot paths skip building an event object
 * when nobody listens. A listener that throws is isolated: it never breaks the emitter or the
 * caller; its error is passed to the `onListenerError` hook.
 * @internal
 */
export type Listener<E> = (event: E) => void;

export class Emitter<Events extends object> {
  /** A Map, so that no event name (`__proto__`, `constructor`…) meets an inherited property. */
  readonly #listeners = new Map<keyof Events, Listener<never>[]>();
  readonly #onListenerError: (error: unknown) => void;

  constructor(onListenerError: (error: unknown) => void = () => {}) {
    this.#onListenerError = onListenerError;
  }

  /** Subscribes; returns an unsubscribe function. */
  on<K extends keyof Events>(name: K, listener: Listener<Events[K]>): () => void {
    let list = this.#listeners.get(name);
    if (list === undefined) this.#listeners.set(name, (list = []));
    list.push(listener as Listener<never>);
    return () => this.off(name, listener);
  }

  /** Unsubscribes one listener. */
  off<K extends keyof Events>(name: K, listener: Listener<Events[K]>): void {
    const list = this.#listeners.get(name);
    if (!list) return;
    const index = list.indexOf(listener as Listener<never>);
    if (index >= 0) list.splice(index, 1);
    if (list.length === 0) this.#listeners.delete(name);
  }

  /** Whether anyone listens to `name` (cheap: check before building an event). */
  has(name: keyof Events): boolean {
    return this.#listeners.has(name);
  }

  /** Calls every listener of `name` synchronously, isolating their errors. */
  emit<K extends keyof Events>(name: K, event: Events[K]): void {
    const list = this.#listeners.get(name) as Listener<Events[K]>[] | undefined;
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
    this.#listeners.clear();
  }
}
