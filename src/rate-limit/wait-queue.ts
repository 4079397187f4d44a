/**
 * Small data structures behind {@link RateLimiter.acquire}: a FIFO with O(1) push and shift,
 * and a min-heap of wake-up times so that one timer serves every waiter.
 * @internal
 */

/** A FIFO queue: push and shift in O(1) amortised. @internal */
export class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  peek(): T | undefined {
    return this.#items[this.#head];
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }
}

/** An entry of {@link TimerHeap}; `dead` entries are skipped (lazy deletion). @internal */
export interface TimerEntry {
  /** When the entry is due, in clock milliseconds. */
  at: number;
  /** Set when the entry no longer matters; it is dropped when it reaches the top. */
  dead: boolean;
  /** Called when the entry is due (and not dead). */
  fire: () => void;
}

/** A binary min-heap of timer entries ordered by `at`. @internal */
export class TimerHeap {
  #heap: TimerEntry[] = [];
  #dead = 0;

  get size(): number {
    return this.#heap.length - this.#dead;
  }

  /** The earliest live entry, dropping dead ones from the top. */
  peek(): TimerEntry | undefined {
    while (this.#heap.length > 0 && this.#heap[0]!.dead) this.#pop();
    return this.#heap[0];
  }

  /** Removes and returns the earliest live entry due at or before `now`. */
  popDue(now: number): TimerEntry | undefined {
    const top = this.peek();
    if (top === undefined || top.at > now) return undefined;
    const entry = this.#pop();
    // a fired entry counts as dead, so a later kill() of it is a no-op
    entry.dead = true;
    return entry;
  }

  push(entry: TimerEntry): void {
    const heap = this.#heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.at <= entry.at) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = entry;
  }

  /** Marks an entry dead; compacts the heap when most of it is dead. */
  kill(entry: TimerEntry): void {
    if (entry.dead) return;
    entry.dead = true;
    this.#dead++;
    if (this.#dead > 64 && this.#dead * 2 > this.#heap.length) {
      const live = this.#heap.filter((e) => !e.dead);
      this.#heap = [];
      this.#dead = 0;
      for (const e of live) this.push(e);
    }
  }

  #pop(): TimerEntry {
    const heap = this.#heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (top.dead) this.#dead--;
    if (heap.length > 0) {
      let i = 0;
      const n = heap.length;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && heap[r]!.at < heap[l]!.at ? r : l;
        if (heap[c]!.at >= last.at) break;
        heap[i] = heap[c]!;
        i = c;
      }
      heap[i] = last;
    }
    return top;
  }
}
