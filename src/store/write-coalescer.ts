/**
 * Coalesces the commands written to one socket in the same tick into fewer socket writes: the
 * first command of a tick corks the socket; the socket is uncorked when the tick ends or after
 * {@link COALESCE_MAX_COMMANDS} commands, whichever comes first. Nothing is reordered or held
 * past the current tick, so a lone command pays no added latency, while many concurrent
 * transitions (claims and commits of 50 workers) share writes — fewer syscalls on both the
 * client and the server. A bounded group, not a whole tick, keeps the server busy with the first
 * commands while the client still writes the next ones; an unbounded group (one write per tick,
 * as ioredis' auto-pipelining does) makes the two wait on each other.
 * @internal
 */

/** The socket surface used: `net.Socket` and `tls.TLSSocket` both have it. @internal */
export interface CorkableStream {
  cork(): void;
  uncork(): void;
  readonly destroyed?: boolean;
}

/**
 * Most commands in one coalesced write. bench/chain-state measured 4–8 best on a 2-core machine
 * (claim+commit pairs at concurrency 50); 1 would mean no coalescing.
 * @internal
 */
export const COALESCE_MAX_COMMANDS = 8;

/** One per connection. @internal */
export class WriteCoalescer {
  readonly #max: number;
  #stream: CorkableStream | null = null;
  #count = 0;
  #generation = 0;

  constructor(maxCommands = COALESCE_MAX_COMMANDS) {
    this.#max = maxCommands;
  }

  /**
   * Call right before a command is written to `stream` (synchronously, in the same turn). Every
   * cork is paired with exactly one uncork: by a full group, by a new stream, or at tick end.
   */
  beforeWrite(stream: CorkableStream | null | undefined): void {
    const current = this.#stream;
    if (
      current !== null &&
      (current !== stream || this.#count >= this.#max || current.destroyed === true)
    ) {
      this.flush();
    }
    if (this.#max <= 1 || stream === null || stream === undefined || stream.destroyed) return;
    if (this.#stream === null) {
      stream.cork();
      this.#stream = stream;
      this.#count = 0;
      const generation = ++this.#generation;
      process.nextTick(() => {
        if (generation === this.#generation) this.flush();
      });
    }
    this.#count++;
  }

  /** Writes what is corked now. */
  flush(): void {
    const stream = this.#stream;
    if (stream === null) return;
    this.#stream = null;
    this.#generation++;
    stream.uncork();
  }
}
