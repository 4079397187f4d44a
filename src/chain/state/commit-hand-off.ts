/**
 * The streams a success commit on Redis hands its output to by itself (see
 * `ptm_commit_success`, docs/chain-protocol.md): Redis only, standalone only.
 */

/**
 * Where a commit on Redis hands off by itself: successors straight to the parser stream, items
 * to the items stream, the node's delivery acknowledged, in the commit's one script. Only for
 * queues on Redis Streams beside the state on one standalone Redis (a Cluster keeps streams in
 * slots of their own). Keys are relative to the store's prefix. @internal
 */
export interface CommitHandOff {
  /** The parser work stream. */
  stream: string;
  /** The items stream. */
  items: string;
  /** The consumer group of both streams. */
  group: string;
  /** The parser stream's capacity (`Infinity`: unbounded); past it everything goes to the outbox. */
  capacity: number;
  /** The stream entry id of the node's own delivery, acknowledged by the commit (none: omitted). */
  delivery?: string;
}
