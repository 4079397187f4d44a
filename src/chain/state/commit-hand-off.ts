/**
 * The streams a success commit on Redis hands its output to by itself (see
 * `ptm_commit_success`, docs/chain-protocol.md): Redis only: one standalone
 * Redis with shared streams, or a Cluster with per-task streams.
 */

/**
 * Where a commit on Redis hands off by itself: successors straight to the parser stream, items
 * to the items stream, the node's delivery acknowledged, in the commit's one script. Only for
 * queues on Redis Streams beside the state: on one standalone Redis (shared streams), or on a
 * Cluster with per-task streams in each task's slot (`perTask`). Keys are relative to the store's prefix. @internal
 */
export interface CommitHandOff {
  /** The parser work stream (with `perTask`, unused: each task has its own). */
  stream: string;
  /** The items stream (with `perTask`, unused: each task has its own). */
  items: string;
  /**
   * The streams are per task, in the task's hash tag (a Redis Cluster, see
   * `ChainKeyBuilder.taskQueue`): the commit names its task's parser and items streams.
   */
  perTask?: boolean;
  /** The consumer group of both streams. */
  group: string;
  /** The parser stream's capacity (`Infinity`: unbounded); past it everything goes to the outbox. */
  capacity: number;
  /** The stream entry id of the node's own delivery, acknowledged by the commit (none: omitted). */
  delivery?: string;
}
