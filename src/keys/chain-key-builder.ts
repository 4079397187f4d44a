/**
 * ChainKeyBuilder: the only place that builds the chain engine's Redis keys.
 */
import { hash } from 'node:crypto';
import { ConfigError } from '../errors.js';
import { invalid, optionalString, readOptions, requireString } from '../internal/validate.js';
import type { NodeId } from '../chain/node-id.js';
import { escapeNamespace } from './namespace.js';
import { NodeIdentities } from './node-identities.js';

/** The six fields that identify one node (a ParserTaskModel) of a run: a NodeId without its task. */
export type PtmIdentity = Omit<NodeId, 'taskId'>;

/** Options of {@link ChainKeyBuilder}. */
export interface ChainKeyBuilderOptions {
  /**
   * First segment of every key; no `{`, `}` or whitespace. A `:` or `%` in it is percent-encoded
   * in the keys, so no prefix can reach the keys of another. @defaultValue 'chain'
   */
  prefix?: string;
}

/**
 * Version of the key layout; part of no key. 2: the prefix is a namespace of its own (a `:` or
 * `%` in it is percent-encoded), so prefixes `a` and `a:queue` no longer share keys. 3: no lease
 * index per task ({@link ChainKeyBuilder.leases} is no longer written), and on a Redis Cluster
 * the parser and items streams are per task, in the task's hash tag
 * ({@link ChainKeyBuilder.taskQueue}), found through {@link ChainKeyBuilder.queueTasks}.
 */
export const KEY_LAYOUT_VERSION = 3;

const W = 'ChainKeyBuilder';

/** Most entries the memo of tasks' and runs' keys holds (see `#remembered`). */
const MEMO_MAX = 16_384;

/** The percent-encoding of a special character (`%`, `:`, `{`, `}`) by its code, else undefined. */
function escapedChar(code: number): string | undefined {
  switch (code) {
    case 0x25:
      return '%25';
    case 0x3a:
      return '%3A';
    case 0x7b:
      return '%7B';
    case 0x7d:
      return '%7D';
    default:
      return undefined;
  }
}

/**
 * Percent-encodes the characters that delimit keys or hash tags, and the escape itself.
 *
 * @throws {@link ConfigError} when `part` is not a string.
 */
export function escapeKeyPart(part: string): string {
  if (typeof part !== 'string') invalid('escapeKeyPart', 'part', 'a string', part);
  // one pass, no regular expression: a part without a special character comes back as is
  let out = '';
  let from = 0;
  for (let i = 0; i < part.length; i++) {
    const code = part.charCodeAt(i);
    if (code !== 0x25 && code !== 0x3a && code !== 0x7b && code !== 0x7d) continue;
    out += part.slice(from, i) + escapedChar(code)!;
    from = i + 1;
  }
  return from === 0 ? part : out + part.slice(from);
}

/**
 * Builds every key of the chain engine. Layout: `<prefix>:{t:<taskId>}:<family>:<parts…>` (the
 * prefix with `%` and `:` percent-encoded).
 *
 * - All keys of one task share the hash tag `{t:<taskId>}`, so every transition's keys are in
 *   one Redis Cluster slot (thresholds and terminate marks are per task, and node transitions
 *   check them).
 * - User-supplied ids are escaped (`%`, `:`, `{`, `}` percent-encoded): they can neither collide
 *   across segments nor break the hash tag.
 * - A node's identity is {@link ChainKeyBuilder.ptmKey}: a stable hash of a length-prefixed
 *   encoding of its six fields, identical on every process and every version.
 *
 * @example
 * ```ts
 * const keys = new ChainKeyBuilder({ prefix: 'crawl' });
 * const node = { runId: 'r1', account: 'acme', platform: 'web', moduleId: 'shop', stepIdx: 1, prefixRequest: 'GET /list' };
 * keys.ptm('task-1', node); // 'crawl:{t:task-1}:ptm:3f…'
 * ```
 */
export class ChainKeyBuilder {
  /** Node identities and their hashes. */
  readonly #ids = new NodeIdentities();
  /** The keys of the last tasks seen (each built once: the same string every time). */
  readonly #tasks = new Map<string, TaskKeys>();
  /** Entries of the memo under `#tasks` (tasks, runs, modules, marks). */
  #memoSize = 0;
  /** The prefix as given. Keys start with it percent-encoded (see {@link ChainKeyBuilder.namespace}). */
  readonly prefix: string;
  /** The first segment of every key: the prefix with `%` and `:` percent-encoded. */
  readonly namespace: string;

  /** @throws {@link ConfigError} when the prefix is empty or contains `{`, `}` or whitespace. */
  constructor(options: ChainKeyBuilderOptions = {}) {
    const o = readOptions(W, options, ['prefix']);
    const prefix = optionalString(W, 'prefix', o.prefix, 'chain');
    if (/[{}\s]/.test(prefix))
      invalid(W, 'prefix', 'a string without `{`, `}` or whitespace', prefix);
    this.prefix = prefix;
    this.namespace = escapeNamespace(prefix);
  }

  /**
   * The stable identity of a node: sha256 (first 128 bits, hex) of the length-prefixed encoding
   * `len:runId|len:account|len:platform|len:moduleId|len:stepIdx|len:prefixRequest` (lengths in
   * UTF-8 bytes), so `('a:b', 'c')` and `('a', 'b:c')` differ.
   *
   * @throws {@link ConfigError} when a field is missing or `stepIdx` is not an integer >= 0.
   */
  ptmKey(id: PtmIdentity): string {
    return this.#ids.hashed(id).key;
  }

  /** The hash tag of a task's keys, `{t:<taskId>}`. */
  tag(taskId: string): string {
    return `{t:${escapeKeyPart(requireString(W, 'taskId', taskId))}}`;
  }

  /** `prefix:{t:<taskId>}:` of the last tasks seen: every key of a transition starts with it. */
  #taskPrefix(taskId: string): string {
    return this.#task(taskId).prefix;
  }

  /** The keys of a task built so far (a task's transitions name the same few keys again and again). */
  #task(taskId: string): TaskKeys {
    let t = this.#tasks.get(taskId);
    if (t === undefined) {
      t = new TaskKeys(`${this.namespace}:${this.tag(taskId)}:`);
      this.#remembered();
      this.#tasks.set(taskId, t);
    }
    return t;
  }

  /**
   * Counts one more entry of the memo of tasks' and runs' keys; past {@link MEMO_MAX}, forgets
   * them all (the keys of the call under way stay valid).
   */
  #remembered(): void {
    if (++this.#memoSize <= MEMO_MAX) return;
    this.#tasks.clear();
    this.#memoSize = 1;
  }

  /** The keys of a run built so far. */
  #run(taskId: string, runId: string, family = 'run'): RunKeys {
    const t = this.#task(taskId);
    const last = t.lastRun;
    if (last !== undefined && last.runId === runId) return last;
    let r = t.runs.get(runId);
    if (r === undefined) {
      if (typeof runId !== 'string' || runId.length === 0) {
        throw new ConfigError(`${W}.${family}: every id must be a non-empty string`, {
          context: { field: family },
        });
      }
      r = new RunKeys(runId, `${t.prefix}run:${escapeKeyPart(runId)}`);
      this.#remembered();
      t.runs.set(runId, r);
    }
    t.lastRun = r;
    return r;
  }

  /** Execution state of a module in a run (schema version, counters). */
  exec(taskId: string, runId: string, moduleId: string): string {
    return this.#key(taskId, 'exec', runId, moduleId);
  }

  /** The state record of one node (status, lease owner, fencing version, lease expiry). */
  ptm(taskId: string, id: PtmIdentity): string {
    const hashed = this.#ids.hashed(id);
    // a node is named by its state key several times (claim, commit, its parent's commit)
    // (one string per node: the store finds it again without hashing it again)
    const state = hashed.state;
    if (state.stateKey === '' || state.stateTask !== taskId) {
      state.stateKey = `${this.#taskPrefix(taskId)}ptm:${hashed.key}`;
      state.stateTask = taskId;
    }
    return state.stateKey;
  }

  /** The state record of a node known by its id (the {@link ChainKeyBuilder.ptmKey} hash). */
  ptmById(taskId: string, ptmId: string): string {
    return this.#key(taskId, 'ptm', ptmId);
  }

  /**
   * The lease index of a task (nodes being processed, scored by lease end), which earlier
   * releases kept for a zombie sweep.
   * @deprecated No longer written or read since key layout 3: a claim takes over an expired
   * lease by itself. An index left by an earlier release expires with its TTL (or with the
   * task's last run).
   */
  leases(taskId: string): string {
    return this.#key(taskId, 'leases');
  }

  /**
   * The advance gate of a node, which commits of earlier releases set beside `status=done`.
   * @deprecated No longer written or read: a node's `status=done` is its gate.
   */
  advanceGate(taskId: string, id: PtmIdentity): string {
    return this.#key(taskId, 'gate', 'advance', this.ptmKey(id));
  }

  /** The fallback gate of a node (`try_allow_fallback_once` per step and prefix request). */
  fallbackGate(taskId: string, id: PtmIdentity): string {
    return this.#key(taskId, 'gate', 'fallback', this.ptmKey(id));
  }

  /** The at-most-once mark of one failure of a node. */
  errorEmit(taskId: string, id: PtmIdentity, errorHash: string): string {
    return this.#key(
      taskId,
      'error',
      'emit',
      this.ptmKey(id),
      requireString(W, 'errorHash', errorHash),
    );
  }

  /** The error counter of a module in a run of a task (each run counts its own failures). */
  moduleThreshold(taskId: string, runId: string, moduleId: string): string {
    return this.#key(taskId, 'threshold', 'module', runId, moduleId);
  }

  /** The decision mark of one failure (node + attempt): it is counted toward thresholds once. */
  thresholdMark(taskId: string, failureId: string): string {
    return this.#key(taskId, 'threshold', 'seen', failureId);
  }

  /** The error counter of a run of a task. */
  taskThreshold(taskId: string, runId: string): string {
    return this.#key(taskId, 'threshold', 'task', runId);
  }

  /** The terminate mark of a run of a task (a new run of the task starts unterminated). */
  terminateTask(taskId: string, runId: string): string {
    const r = this.#run(taskId, runId, 'terminate');
    return (r.terminateTask ??= this.#key(taskId, 'terminate', 'task', runId));
  }

  /** The terminate mark of a module in a run of a task. */
  terminateModule(taskId: string, runId: string, moduleId: string): string {
    const r = this.#run(taskId, runId, 'terminate');
    let key = r.terminateModule.get(moduleId);
    if (key === undefined) {
      key = this.#key(taskId, 'terminate', 'module', runId, moduleId);
      this.#remembered();
      r.terminateModule.set(moduleId, key);
    }
    return key;
  }

  /** The delayed-retry sorted set of a task (score: due time). */
  retryZset(taskId: string): string {
    return this.#key(taskId, 'retry');
  }

  /** The outbox of a task: successor nodes written by commits, waiting to be published. */
  outbox(taskId: string): string {
    const t = this.#task(taskId);
    return (t.outbox ??= `${t.prefix}outbox`);
  }

  /** The sequence counter of a task's outbox (in-process state keeps the outbox ordered with it). */
  outboxSequence(taskId: string): string {
    const t = this.#task(taskId);
    return (t.outboxSequence ??= `${t.prefix}outbox:seq`);
  }

  /** A request persisted by the step that generated it (read back by its children's fallback). */
  request(taskId: string, runId: string, moduleId: string, requestId: string): string {
    return this.#key(taskId, 'request', runId, moduleId, requestId);
  }

  /**
   * The mark of a de-duplication key of a run's module: set by the success commit that created
   * the node routed with `key`; a later input with the same key creates no node. The key is
   * stored as its SHA-256 (base64url), so any length or character is fine.
   */
  dedup(taskId: string, runId: string, moduleId: string, key: string): string {
    // a run's inputs name the same keys again and again (a product linked from many pages)
    const r = this.#run(taskId, runId, 'dedup');
    let byKey = r.dedup.get(moduleId);
    if (byKey === undefined) {
      byKey = new Map();
      this.#remembered();
      r.dedup.set(moduleId, byKey);
    }
    let mark = byKey.get(key);
    if (mark === undefined) {
      const digest = hash('sha256', key, 'base64url');
      mark = this.#key(taskId, 'dedup', runId, moduleId, digest);
      this.#remembered();
      byKey.set(key, mark);
    }
    return mark;
  }

  /** The record of a task (ids and metadata, never login info) that the ingress loads. */
  taskRecord(taskId: string): string {
    return this.#key(taskId, 'task');
  }

  /**
   * The Redis Stream of a work queue (`task`, `parser` or `error`): `<prefix>:queue:<name>`.
   *
   * Queue streams are shared by every task of a deployment, so they carry **no** task hash tag:
   * each stream is one key of its own (in its own Redis Cluster slot), and no transition touches
   * a stream together with a task's state keys. Two deployments on one Redis need two prefixes.
   */
  queue(name: string): string {
    return `${this.namespace}:queue:${escapeKeyPart(requireString(`${W}.queue`, 'name', name))}`;
  }

  /**
   * The items stream of a deployment whose commits hand off by themselves (one standalone Redis,
   * queues on Redis Streams): `<prefix>:queue:items`, read by every worker's item relay.
   */
  items(): string {
    return `${this.namespace}:queue:items`;
  }

  /**
   * The stream of one task's share of a work queue (`parser` or `items`), in the task's hash tag:
   * `<prefix>:{t:<taskId>}:queue:<name>`. Used on a Redis Cluster (see `createRedisStreamQueues`'s
   * `shardByTask`): each task's stream then lives in its slot, beside its state, so a commit hands
   * off to it in its own script and the work of the tasks spreads over the masters.
   */
  taskQueue(taskId: string, name: string): string {
    return this.#key(taskId, 'queue', name);
  }

  /**
   * The index of the tasks whose {@link ChainKeyBuilder.taskQueue} streams may hold entries
   * (sorted set: task id → last activity ms; one key for the deployment, no hash tag):
   * `<prefix>:queue:tasks`.
   */
  queueTasks(): string {
    return `${this.namespace}:queue:tasks`;
  }

  /** The dead-letter stream of a work queue: `<prefix>:queue:<name>:dead` (no hash tag either). */
  queueDeadLetters(name: string): string {
    return `${this.queue(name)}:dead`;
  }

  /**
   * A message handed to an in-memory queue over a store that outlives the process (the
   * engine's `allowVolatileQueues`), kept until the work it carries is settled, so that a
   * restart can queue it again. `id` names the message (kind letter + node or task).
   */
  handOff(taskId: string, id: string): string {
    return this.#key(taskId, 'handoff', id);
  }

  /** The index of a task's {@link ChainKeyBuilder.handOff} messages (score: when handed off). */
  handOffIndex(taskId: string): string {
    return this.#key(taskId, 'handoff');
  }

  /** Outbox entries handed to a relay and not yet acknowledged (score: lease end). */
  outboxLeases(taskId: string): string {
    const t = this.#task(taskId);
    return (t.outboxLeases ??= `${t.prefix}outbox:leases`);
  }

  /** The index of recently active tasks that sweeps visit (one key for the deployment, no hash tag). */
  activeTasks(): string {
    return `${this.namespace}:tasks:active`;
  }

  /** A named lock of the deployment, e.g. the sweep's (no hash tag). */
  lock(name: string): string {
    return `${this.namespace}:lock:${escapeKeyPart(requireString(`${W}.lock`, 'name', name))}`;
  }

  /**
   * The record of a run (a hash: its state, times and per-module counters), in its task's slot:
   * the transitions that move a node of the run count it here in the same atomic step.
   */
  run(taskId: string, runId: string): string {
    return this.#run(taskId, runId).run;
  }

  /**
   * The keys a run wrote (a sorted set of key suffixes, see {@link ChainKeyBuilder.taskKey}): the
   * clean-up of a finished run shortens their TTL to `finishedRunTtlMs`.
   */
  runKeys(taskId: string, runId: string): string {
    const r = this.#run(taskId, runId);
    return (r.runKeys ??= `${r.run}:keys`);
  }

  /** The unfinished runs of a task (sorted set: run id → start ms). */
  taskRuns(taskId: string): string {
    return this.#key(taskId, 'runs');
  }

  /** A task's key from its suffix (the part after `{t:<taskId>}:`), as a run's key index holds it. */
  taskKey(taskId: string, suffix: string): string {
    return this.#taskPrefix(taskId) + suffix;
  }

  /** Where a run is found by its id alone: the id of its task (one key per run, no hash tag). */
  runIndex(runId: string): string {
    return `${this.prefix}:runs:${escapeKeyPart(requireString(`${W}.runIndex`, 'runId', runId))}`;
  }

  /** The runs of the deployment (sorted set: run id → when its record expires, ms). */
  runs(): string {
    return `${this.prefix}:runs`;
  }

  /** Every key of a task starts with this (for SCAN-based clean-up and debugging). */
  taskPrefix(taskId: string): string {
    return this.#taskPrefix(taskId);
  }

  #key(taskId: string, family: string, ...parts: string[]): string {
    let key = this.#taskPrefix(taskId) + family;
    for (const part of parts) {
      if (typeof part !== 'string' || part.length === 0) {
        throw new ConfigError(`${W}.${family}: every id must be a non-empty string`, {
          context: { field: family },
        });
      }
      key += `:${escapeKeyPart(part)}`;
    }
    return key;
  }
}

/** The keys of one task built so far (see `ChainKeyBuilder.#task`). */
class TaskKeys {
  outbox: string | undefined = undefined;
  outboxSequence: string | undefined = undefined;
  outboxLeases: string | undefined = undefined;
  /** The run last asked for, and the last runs. */
  lastRun: RunKeys | undefined = undefined;
  readonly runs = new Map<string, RunKeys>();

  /** @param prefix - `prefix:{t:<taskId>}:` */
  constructor(readonly prefix: string) {}
}

/** The keys of one run of a task built so far. */
class RunKeys {
  runKeys: string | undefined = undefined;
  terminateTask: string | undefined = undefined;
  /** By module. */
  readonly terminateModule = new Map<string, string>();
  /** The de-duplication marks by module, then by key. */
  readonly dedup = new Map<string, Map<string, string>>();

  /** @param run - the run's record key */
  constructor(
    readonly runId: string,
    readonly run: string,
  ) {}
}
