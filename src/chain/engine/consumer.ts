/**
 * The consumer room: one loop per queue receives deliveries (at most `concurrency` in hand,
 * read in batches of the free slots where the queue can),
 * hands each to the ingress and settles it as the ingress decided — acknowledge, release
 * (after a delay), dead-letter (durably where the queue can) or leave it for another worker.
 */
import { sleep } from '../../internal/abort.js';
import type { ChainQueue, Delivery } from '../queue.js';
import type { Disposition } from './disposition.js';
import { FairShare } from './fair-share.js';
import { redactMessage } from './redact.js';
import type { EngineTelemetry } from './telemetry.js';

/** Options of {@link Consumer}. @internal */
export interface ConsumerOptions {
  /** Decides what becomes of a delivery; never throws. */
  handle(queue: ChainQueue<string>, delivery: Delivery<string>): Promise<Disposition>;
  /** Aborted when the engine stops reading. */
  readSignal: AbortSignal;
  telemetry: EngineTelemetry;
}

/** The engine's receive loops and the settling of deliveries. @internal */
export class Consumer {
  readonly #o: ConsumerOptions;
  #handlers = 0;

  constructor(options: ConsumerOptions) {
    this.#o = options;
  }

  /** Deliveries being handled or settled. */
  get handlers(): number {
    return this.#handlers;
  }

  /**
   * Reads `queue` until the read signal aborts, with at most `inHand` deliveries in hand (a
   * function: asked again before each read).
   */
  async consume(
    role: 'task' | 'parser' | 'error',
    queue: ChainQueue<string>,
    inHand: number | (() => number),
  ): Promise<void> {
    let active = 0;
    let freed: (() => void) | undefined;
    const signal = this.#o.readSignal;
    const fair = new FairShare();
    while (!signal.aborted) {
      // deliveries that come without I/O (in-process queues) must not starve timers and I/O
      await fair.turn();
      const concurrency = typeof inHand === 'number' ? inHand : inHand();
      if (active >= concurrency) {
        await new Promise<void>((resolve) => (freed = resolve));
        continue;
      }
      let batch: Delivery<string>[] | null;
      try {
        // one read takes as many messages as there are free slots, where the queue can
        if (queue.receiveBatch) batch = await queue.receiveBatch(concurrency - active, { signal });
        else {
          const one = await queue.receive({ signal });
          batch = one === null ? null : [one];
        }
      } catch (error) {
        if (signal.aborted) break;
        this.#o.telemetry.log('error', `receive from ${queue.name} failed; retrying`, {
          error: String(error),
        });
        await sleep(200, signal).catch(() => {});
        continue;
      }
      if (batch === null) break;
      for (const delivery of batch) {
        this.#o.telemetry.received(role);
        active++;
        this.#handlers++;
        // the loop keeps at most `concurrency` in hand: each delivery runs at once, no scheduler
        this.#handle(queue, delivery)
          .catch((error: unknown) =>
            this.#o.telemetry.log('error', 'handler failed unexpectedly', {
              queue: queue.name,
              error: String(error),
            }),
          )
          .finally(() => {
            active--;
            this.#handlers--;
            const f = freed;
            freed = undefined;
            f?.();
          });
      }
      this.#o.telemetry.queueLevels(queue);
    }
    freed = undefined;
  }

  async #handle(queue: ChainQueue<string>, delivery: Delivery<string>): Promise<void> {
    const disposition = await this.#o.handle(queue, delivery);
    try {
      await this.#settle(queue, delivery, disposition);
    } catch (error) {
      this.#o.telemetry.log('error', 'could not settle a delivery', {
        queue: queue.name,
        error: String(error),
      });
    }
    this.#o.telemetry.queueLevels(queue);
  }

  async #settle(
    queue: ChainQueue<string>,
    delivery: Delivery<string>,
    disposition: Disposition,
  ): Promise<void> {
    const { telemetry, readSignal } = this.#o;
    if ('deadLetter' in disposition) {
      telemetry.deadLettered(queue.name, delivery.message, disposition.deadLetter);
      // durably where the queue can (a dead-letter stream), else only in memory; a message that
      // carries login info (put on the queue by another producer) is recorded without it
      const redacted = redactMessage(delivery.message);
      if (redacted !== delivery.message && typeof queue.deadLetter === 'function') {
        await queue.deadLetter(redacted, disposition.deadLetter);
        await delivery.ack();
      } else if (typeof delivery.deadLetter === 'function') {
        await delivery.deadLetter(disposition.deadLetter);
      } else await delivery.ack();
    } else if ('leave' in disposition) {
      telemetry.log('info', 'stopping: delivery left unacknowledged for another worker', {
        queue: queue.name,
        decision: 'left_pending',
      });
    } else if ('release' in disposition) {
      if (disposition.delayMs > 0 && !readSignal.aborted)
        await sleep(disposition.delayMs, readSignal).catch(() => {});
      if (disposition.leaveOnStop && readSignal.aborted) {
        telemetry.log('info', 'stopping: delivery holding a lease left unacknowledged', {
          queue: queue.name,
          decision: 'left_pending',
        });
      } else {
        await delivery.release();
      }
    } else {
      await delivery.ack();
    }
  }
}
