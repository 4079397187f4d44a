/**
 * What `mocra` reads from (and, for a replay, writes to) a durable data directory: the same
 * runs, retries, leases and dead letters as from a Redis, read through the library's own
 * durable code — the chain state machine (`DurableChainState`) for run records, the key layout
 * (`ChainKeyBuilder`) for the run index, retry sets, leases and node records, and the durable
 * queues (`DurableQueue`) for the dead letters.
 *
 * A look (`inspect`, `dead-letters list`) opens the LMDB environment read-only without the
 * directory's lock, so it works while the workers run. A replay writes, so it takes the lock:
 * refused, naming the holder's pid, while a live process (the workers) has the directory.
 */
import { DurableChainState } from '../chain/durable-chain-state.js';
import { DurableQueue } from '../chain/durable-queue.js';
import { toRunStatus } from '../chain/engine/runs.js';
import type { RunStatus } from '../chain/engine/types.js';
import { readNode } from '../chain/state/node-record.js';
import { ConfigError, RunNotFoundError, isMocraError } from '../errors.js';
import { ChainKeyBuilder } from '../keys/chain-key-builder.js';
import { DurableBackend } from '../store/durable/durable-backend.js';
import { loadLmdb } from '../store/durable/load-lmdb.js';
import {
  deadLetterView,
  knownRuns,
  runNodeIds,
  QUEUE_NAMES,
  retryView,
  runNotFound,
  type DeadLetterView,
  type LeaseView,
  type QueueName,
  type RetryView,
  type Source,
} from './source.js';

const LABEL = '--data-dir';

/** Reads a deployment's runs and dead letters from its durable data directory. @internal */
export class DurableSource implements Source {
  readonly #backend: DurableBackend;
  readonly #keys: ChainKeyBuilder;
  readonly #state: DurableChainState;
  readonly #queues: Record<QueueName, DurableQueue<string>>;

  private constructor(backend: DurableBackend, keys: ChainKeyBuilder) {
    this.#backend = backend;
    this.#keys = keys;
    this.#state = new DurableChainState(backend, { keys });
    // the engine's own queues on a durable store: named by the queue, keyed under the chain prefix
    const queue = (name: QueueName): DurableQueue<string> =>
      new DurableQueue<string>({
        store: backend,
        name,
        keyPrefix: keys.prefix,
        encode: (m) => m,
        decode: (p) => p,
      });
    this.#queues = { task: queue('task'), parser: queue('parser'), error: queue('error') };
  }

  /**
   * Opens the store in `path`: read-only and without its lock, or (`write`, for a replay)
   * locked for this process. Creates nothing in `path`.
   * @throws {@link ConfigError} when `lmdb` is not installed, when `path` is missing or holds no
   * mocra store, or (`write`) while a live process holds the directory (`context.pid`).
   */
  static async open(
    path: string,
    prefix: string,
    chainPrefix: string,
    options: { write: boolean },
  ): Promise<DurableSource> {
    const keys = new ChainKeyBuilder({ prefix: chainPrefix });
    await loadLmdb().catch((error: unknown) => {
      throw new ConfigError(
        `${LABEL} needs the optional package lmdb, which is not installed here: install it with \`npm install lmdb\``,
        { cause: error, context: { field: LABEL } },
      );
    });
    // every check of the directory, without the lock and without creating anything
    const reader = await DurableBackend.openReadOnly({ path, keyPrefix: prefix, label: LABEL });
    if (!options.write) return new DurableSource(reader, keys);
    await reader.close(); // one environment per process: the writer opens its own
    try {
      const backend = await DurableBackend.open({
        path: reader.path,
        keyPrefix: prefix,
        sweepIntervalMs: 0,
      });
      return new DurableSource(backend, keys);
    } catch (error) {
      const pid = isMocraError(error) ? error.context.pid : undefined;
      if (typeof pid !== 'number') throw error;
      throw new ConfigError(
        `${LABEL} ${JSON.stringify(reader.path)} is in use by a running process (pid ${pid}): ` +
          'stop the workers first, then replay (inspect and dead-letters list work while they run)',
        { cause: error, context: { field: LABEL, path: reader.path, pid } },
      );
    }
  }

  /** Closes the environment (and releases the lock of a replay). */
  async close(): Promise<void> {
    for (const name of QUEUE_NAMES) this.#queues[name].close();
    await this.#backend.close();
  }

  #k(key: string): string {
    return this.#backend.keyPrefix + key;
  }

  async runs(): Promise<RunStatus[]> {
    const s = this.#backend.store;
    const ids = s.zrangeByScore(this.#k(this.#keys.runs()), s.now(), Infinity);
    return knownRuns(ids, (runId) => this.run(runId));
  }

  async run(runId: string): Promise<RunStatus> {
    const taskId = this.#backend.store.get(this.#k(this.#keys.runIndex(runId)));
    const snap = taskId === null ? null : await this.#state.runRead(taskId, runId);
    if (snap === null) throw new RunNotFoundError(runNotFound(runId, 'wrong --prefix'));
    return toRunStatus(snap);
  }

  async retries(taskId: string, runId: string): Promise<RetryView[]> {
    const s = this.#backend.store;
    const key = this.#k(this.#keys.retryZset(taskId));
    const out: RetryView[] = [];
    for (const member of s.zrangeByScore(key, -Infinity, Infinity)) {
      const view = retryView(member, s.zscore(key, member) ?? 0, runId);
      if (view) out.push(view);
    }
    return out;
  }

  async leases(taskId: string, runId: string): Promise<LeaseView[]> {
    const s = this.#backend.store;
    const runKeys = this.#k(this.#keys.runKeys(taskId, runId));
    const out: LeaseView[] = [];
    for (const nodeId of runNodeIds(s.zrangeByScore(runKeys, -Infinity, Infinity))) {
      const node = readNode(s, this.#k(this.#keys.ptmById(taskId, nodeId)));
      if (node?.status !== 'processing') continue;
      out.push({
        nodeId,
        status: node.status,
        owner: node.owner,
        version: node.version,
        epoch: node.epoch,
        until: node.leaseUntil,
      });
    }
    return out.sort((a, b) => a.until - b.until);
  }

  async deadLetters(queues: readonly QueueName[], max = 1_000): Promise<DeadLetterView[]> {
    const out: DeadLetterView[] = [];
    for (const queue of queues.length > 0 ? queues : QUEUE_NAMES) {
      for (const d of this.#queues[queue].deadLetters().slice(0, max)) {
        const letter = { queue, id: d.id, reason: d.reason, deliveries: d.deliveries };
        // a durable dead letter keeps its message's id
        out.push(deadLetterView({ ...letter, originalId: d.id }, d.payload));
      }
    }
    return out;
  }

  async replay(letters: readonly DeadLetterView[]): Promise<DeadLetterView[]> {
    const done: DeadLetterView[] = [];
    for (const letter of letters)
      if (this.#queues[letter.queue].replayDeadLetter(letter.id) !== null) done.push(letter);
    return done;
  }
}
