/**
 * Every metric mocra reports, in one place: its name (a constant), its type, its label names,
 * who reports it and its help text. Components report through these constants only;
 * `prometheusMetrics` takes the help text and the label names from here; docs/metrics.md is the
 * same table for readers (a test keeps the two in step).
 */

/** The name of every metric mocra reports. */
export const MetricName = {
  // ── chain engine: ingress ──
  /** `task_submitted_total`: Tasks submitted through submit() in this process. */
  TASK_SUBMITTED: 'task_submitted_total',
  /** `task_ingress_total`: Deliveries received by this process, by the kind of message their queue carries (task, parser_task, error_task); re-deliveries included. */
  TASK_INGRESS: 'task_ingress_total',
  /** `task_ingress_failed_total`: Deliveries the ingress dead-lettered or released after an error, by the pipeline stage that failed. */
  TASK_INGRESS_FAILED: 'task_ingress_failed_total',
  /** `state_expired_total`: Messages whose task record was not found (expired after stateTtlMs, or never submitted to this store). */
  STATE_EXPIRED: 'state_expired_total',
  /** `chain_dead_letter_total`: Messages the engine set aside, by source queue and reason (the pipeline stage); each dead letter counted once. */
  CHAIN_DEAD_LETTER: 'chain_dead_letter_total',
  /** `message_skipped_total`: Messages acknowledged without work as obsolete, by reason (duplicate_done, stale_step, out_of_order, locked_by_other, task_terminated, module_terminated, error_already_emitted), or released after a lost claim (commit_rejected). */
  MESSAGE_SKIPPED: 'message_skipped_total',
  // ── chain engine: nodes ──
  /** `ptm_claim_total`: Node claims, by result code (EXECUTE, DUPLICATE_DONE, STALE_STEP, OUT_OF_ORDER, LOCKED_BY_OTHER). */
  PTM_CLAIM: 'ptm_claim_total',
  /** `ptm_commit_total`: Success commits, by result code (COMMIT_OK, FENCING_REJECT, CAS_CONFLICT, ALREADY_COMMITTED). */
  PTM_COMMIT: 'ptm_commit_total',
  /** `ptm_commit_error_total`: Failure commits, by result code (ERROR_EMIT_OK, ERROR_ALREADY_EMITTED, FENCING_REJECT). */
  PTM_COMMIT_ERROR: 'ptm_commit_error_total',
  /** `ptm_processing_duration_ms`: Time from a node claim to its commit (outcome committed, failed or rejected), in ms. */
  PTM_PROCESSING_DURATION: 'ptm_processing_duration_ms',
  /** `module_step_generate_total`: Step generate calls that returned requests (after the fallback, if one ran). */
  MODULE_STEP_GENERATE: 'module_step_generate_total',
  /** `module_step_generate_failed_total`: Step generate calls that failed (the node fails in generate). */
  MODULE_STEP_GENERATE_FAILED: 'module_step_generate_failed_total',
  /** `parser_success_total`: Step parse calls that returned a valid output. */
  PARSER_SUCCESS: 'parser_success_total',
  /** `parser_failed_total`: Step parse calls that threw or returned an invalid output. */
  PARSER_FAILED: 'parser_failed_total',
  /** `advance_gate_win_total`: Commits that set the node advance gate (COMMIT_OK): the node advanced exactly once. */
  ADVANCE_GATE_WIN: 'advance_gate_win_total',
  /** `advance_gate_lost_total`: Commits refused by the advance gate or a recovered claim (CAS_CONFLICT). */
  ADVANCE_GATE_LOST: 'advance_gate_lost_total',
  /** `fallback_gate_hit_total`: Fallbacks allowed: a failed generate rebuilt its input from the prefix request. */
  FALLBACK_GATE_HIT: 'fallback_gate_hit_total',
  /** `fallback_gate_block_total`: Fallbacks refused by the gate (one fallback per node). */
  FALLBACK_GATE_BLOCK: 'fallback_gate_block_total',
  /** `node_deduplicated_total`: Routed inputs whose de-duplication key was taken before in their run and module: no node was created for them. */
  NODE_DEDUPLICATED: 'node_deduplicated_total',
  /** `download_total`: Download tries, every retry included. */
  DOWNLOAD: 'download_total',
  /** `download_retry_total`: Download retries inside one node attempt (transient failures). */
  DOWNLOAD_RETRY: 'download_retry_total',
  // ── chain engine: errors and retries ──
  /** `error_task_emitted_total`: Node failures recorded, each with one ErrorTaskModel queued in its outbox. */
  ERROR_TASK_EMITTED: 'error_task_emitted_total',
  /** `error_task_decide_total`: Threshold decisions on ErrorTaskModels (CONTINUE, RETRY_AFTER, TERMINATE_MODULE, TERMINATE_TASK). */
  ERROR_TASK_DECIDE: 'error_task_decide_total',
  /** `error_task_retry_total`: Node retries scheduled. */
  ERROR_TASK_RETRY: 'error_task_retry_total',
  /** `error_task_terminated_total`: Modules or tasks terminated by their error threshold, by scope (module, task). */
  ERROR_TASK_TERMINATED: 'error_task_terminated_total',
  /** `error_task_given_up_total`: Nodes given up, by reason (max_retries, not_retryable). */
  ERROR_TASK_GIVEN_UP: 'error_task_given_up_total',
  // ── chain engine: outbox, items, sweeps ──
  /** `parser_task_produced_total`: ParserTaskModels put on the parser queue, by source (root, commit, retry). */
  PARSER_TASK_PRODUCED: 'parser_task_produced_total',
  /** `items_total`: Output items handed to onItem. */
  ITEMS: 'items_total',
  /** `item_sink_error_total`: onItem calls that threw (the item is not handed over again). */
  ITEM_SINK_ERROR: 'item_sink_error_total',
  /** `outbox_lease_expired_total`: Relay batches cut short because 80 % of relayLeaseMs had passed. */
  OUTBOX_LEASE_EXPIRED: 'outbox_lease_expired_total',
  /** `sweep_total`: Sweep rounds completed by the worker holding the sweep lock (shared queues only). */
  SWEEP: 'sweep_total',
  /** `ptm_zombie_recover_total`: Expired node leases a claim took over (their holder died or stalled mid-step). */
  PTM_ZOMBIE_RECOVER: 'ptm_zombie_recover_total',
  // ── chain engine: the state machine ──
  /** `state_script_duration_ms`: Latency of each chain state transition (one Lua script on Redis), in ms. */
  STATE_SCRIPT_DURATION: 'state_script_duration_ms',
  /** `state_script_error_total`: Chain state transitions that failed, by script and error kind (the error code, e.g. BACKEND_UNAVAILABLE). */
  STATE_SCRIPT_ERROR: 'state_script_error_total',
  // ── queues ──
  /** `queue_depth`: Messages waiting in a chain queue, as this process sees it (sampled on receive and settle). */
  QUEUE_DEPTH: 'queue_depth',
  /** `queue_in_flight`: Messages of a chain queue delivered to this process and not yet settled. */
  QUEUE_IN_FLIGHT: 'queue_in_flight',
  /** `queue_backpressure_total`: Pushes that met a full or closed queue, by reason (full_wait, full_refused, full_timeout, aborted, closed). */
  QUEUE_BACKPRESSURE: 'queue_backpressure_total',
  /** `queue_dead_letter_total`: Messages moved to a queue's durable dead-letter stream (RedisStreamQueue). */
  QUEUE_DEAD_LETTER: 'queue_dead_letter_total',
  /** `queue_reclaimed_total`: Deliveries taken over from a dead consumer (RedisStreamQueue). */
  QUEUE_RECLAIMED: 'queue_reclaimed_total',
  // ── primitives ──
  /** `scheduler_queue_depth`: Tasks waiting in a scheduler (sampled when a task is queued or started). */
  SCHEDULER_QUEUE_DEPTH: 'scheduler_queue_depth',
  /** `scheduler_wait_ms`: Time a task waited in the scheduler before it started, in ms. */
  SCHEDULER_WAIT: 'scheduler_wait_ms',
  /** `rate_limit_decision_total`: Rate limiter decisions (allowed, waited, rejected). */
  RATE_LIMIT_DECISION: 'rate_limit_decision_total',
  /** `rate_limit_wait_ms`: Time acquire() waited for a permit, in ms. */
  RATE_LIMIT_WAIT: 'rate_limit_wait_ms',
  /** `cache_hit_total`: PluginCache lookups served from the cache. */
  CACHE_HIT: 'cache_hit_total',
  /** `cache_miss_total`: PluginCache lookups that had to load. */
  CACHE_MISS: 'cache_miss_total',
} as const;

/** One of {@link MetricName}. */
export type MetricNameValue = (typeof MetricName)[keyof typeof MetricName];

/** What a metric is and means. */
export interface MetricDefinition {
  /** Counter (only goes up), histogram (observations, in ms) or gauge (a current level). */
  readonly type: 'counter' | 'histogram' | 'gauge';
  /** Its label names, always all of them, in this order. */
  readonly labels: readonly string[];
  /** Who reports it. */
  readonly source: 'engine' | 'queue' | 'scheduler' | 'rate limiter' | 'cache';
  /** What it counts or measures (the Prometheus HELP text). */
  readonly help: string;
}

const def = (
  type: MetricDefinition['type'],
  source: MetricDefinition['source'],
  labels: readonly string[],
  help: string,
): MetricDefinition => Object.freeze({ type, source, labels: Object.freeze([...labels]), help });

/** The definition of every metric, by name. */
export const METRICS: Readonly<Record<MetricNameValue, MetricDefinition>> = Object.freeze({
  task_submitted_total: def(
    'counter',
    'engine',
    [],
    'Tasks submitted through submit() in this process.',
  ),
  task_ingress_total: def(
    'counter',
    'engine',
    ['kind'],
    'Deliveries received by this process, by the kind of message their queue carries (task, parser_task, error_task); re-deliveries included.',
  ),
  task_ingress_failed_total: def(
    'counter',
    'engine',
    ['stage'],
    'Deliveries the ingress dead-lettered or released after an error, by the pipeline stage that failed.',
  ),
  state_expired_total: def(
    'counter',
    'engine',
    [],
    'Messages whose task record was not found (expired after stateTtlMs, or never submitted to this store).',
  ),
  chain_dead_letter_total: def(
    'counter',
    'engine',
    ['queue', 'reason'],
    'Messages the engine set aside, by source queue and reason (the pipeline stage); each dead letter counted once.',
  ),
  message_skipped_total: def(
    'counter',
    'engine',
    ['reason'],
    'Messages acknowledged without work as obsolete, by reason (duplicate_done, stale_step, out_of_order, locked_by_other, task_terminated, module_terminated, error_already_emitted), or released after a lost claim (commit_rejected).',
  ),
  ptm_claim_total: def(
    'counter',
    'engine',
    ['result'],
    'Node claims, by result code (EXECUTE, DUPLICATE_DONE, STALE_STEP, OUT_OF_ORDER, LOCKED_BY_OTHER).',
  ),
  ptm_commit_total: def(
    'counter',
    'engine',
    ['result'],
    'Success commits, by result code (COMMIT_OK, FENCING_REJECT, CAS_CONFLICT, ALREADY_COMMITTED).',
  ),
  ptm_commit_error_total: def(
    'counter',
    'engine',
    ['result'],
    'Failure commits, by result code (ERROR_EMIT_OK, ERROR_ALREADY_EMITTED, FENCING_REJECT).',
  ),
  ptm_processing_duration_ms: def(
    'histogram',
    'engine',
    ['module', 'outcome'],
    'Time from a node claim to its commit (outcome committed, failed or rejected), in ms.',
  ),
  module_step_generate_total: def(
    'counter',
    'engine',
    ['module'],
    'Step generate calls that returned requests (after the fallback, if one ran).',
  ),
  module_step_generate_failed_total: def(
    'counter',
    'engine',
    ['module'],
    'Step generate calls that failed (the node fails in generate).',
  ),
  parser_success_total: def(
    'counter',
    'engine',
    ['module'],
    'Step parse calls that returned a valid output.',
  ),
  parser_failed_total: def(
    'counter',
    'engine',
    ['module'],
    'Step parse calls that threw or returned an invalid output.',
  ),
  advance_gate_win_total: def(
    'counter',
    'engine',
    [],
    'Commits that set the node advance gate (COMMIT_OK): the node advanced exactly once.',
  ),
  advance_gate_lost_total: def(
    'counter',
    'engine',
    [],
    'Commits refused by the advance gate or a recovered claim (CAS_CONFLICT).',
  ),
  node_deduplicated_total: def(
    'counter',
    'engine',
    ['module'],
    'Routed inputs whose de-duplication key was taken before in their run and module: no node was created for them.',
  ),
  fallback_gate_hit_total: def(
    'counter',
    'engine',
    [],
    'Fallbacks allowed: a failed generate rebuilt its input from the prefix request.',
  ),
  fallback_gate_block_total: def(
    'counter',
    'engine',
    [],
    'Fallbacks refused by the gate (one fallback per node).',
  ),
  download_total: def('counter', 'engine', ['module'], 'Download tries, every retry included.'),
  download_retry_total: def(
    'counter',
    'engine',
    [],
    'Download retries inside one node attempt (transient failures).',
  ),
  error_task_emitted_total: def(
    'counter',
    'engine',
    ['module'],
    'Node failures recorded, each with one ErrorTaskModel queued in its outbox.',
  ),
  error_task_decide_total: def(
    'counter',
    'engine',
    ['decision'],
    'Threshold decisions on ErrorTaskModels (CONTINUE, RETRY_AFTER, TERMINATE_MODULE, TERMINATE_TASK).',
  ),
  error_task_retry_total: def('counter', 'engine', [], 'Node retries scheduled.'),
  error_task_terminated_total: def(
    'counter',
    'engine',
    ['scope'],
    'Modules or tasks terminated by their error threshold, by scope (module, task).',
  ),
  error_task_given_up_total: def(
    'counter',
    'engine',
    ['reason'],
    'Nodes given up, by reason (max_retries, not_retryable).',
  ),
  parser_task_produced_total: def(
    'counter',
    'engine',
    ['source'],
    'ParserTaskModels put on the parser queue, by source (root, commit, retry).',
  ),
  items_total: def('counter', 'engine', ['module'], 'Output items handed to onItem.'),
  item_sink_error_total: def(
    'counter',
    'engine',
    ['module'],
    'onItem calls that threw (the item is not handed over again).',
  ),
  outbox_lease_expired_total: def(
    'counter',
    'engine',
    [],
    'Relay batches cut short because 80 % of relayLeaseMs had passed.',
  ),
  sweep_total: def(
    'counter',
    'engine',
    [],
    'Sweep rounds completed by the worker holding the sweep lock (shared queues only).',
  ),
  ptm_zombie_recover_total: def(
    'counter',
    'engine',
    [],
    'Expired node leases a claim took over (their holder died or stalled mid-step).',
  ),
  state_script_duration_ms: def(
    'histogram',
    'engine',
    ['script'],
    'Latency of each chain state transition (one Lua script on Redis), in ms.',
  ),
  state_script_error_total: def(
    'counter',
    'engine',
    ['script', 'kind'],
    'Chain state transitions that failed, by script and error kind (the error code, e.g. BACKEND_UNAVAILABLE).',
  ),
  queue_depth: def(
    'gauge',
    'engine',
    ['queue'],
    'Messages waiting in a chain queue, as this process sees it (sampled on receive and settle).',
  ),
  queue_in_flight: def(
    'gauge',
    'engine',
    ['queue'],
    'Messages of a chain queue delivered to this process and not yet settled.',
  ),
  queue_backpressure_total: def(
    'counter',
    'queue',
    ['queue', 'reason'],
    'Pushes that met a full or closed queue, by reason (full_wait, full_refused, full_timeout, aborted, closed).',
  ),
  queue_dead_letter_total: def(
    'counter',
    'queue',
    ['queue'],
    "Messages moved to a queue's durable dead-letter stream (RedisStreamQueue).",
  ),
  queue_reclaimed_total: def(
    'counter',
    'queue',
    ['queue'],
    'Deliveries taken over from a dead consumer (RedisStreamQueue).',
  ),
  scheduler_queue_depth: def(
    'gauge',
    'scheduler',
    ['scheduler'],
    'Tasks waiting in a scheduler (sampled when a task is queued or started).',
  ),
  scheduler_wait_ms: def(
    'histogram',
    'scheduler',
    ['scheduler'],
    'Time a task waited in the scheduler before it started, in ms.',
  ),
  rate_limit_decision_total: def(
    'counter',
    'rate limiter',
    ['limiter', 'decision'],
    'Rate limiter decisions (allowed, waited, rejected).',
  ),
  rate_limit_wait_ms: def(
    'histogram',
    'rate limiter',
    ['limiter'],
    'Time acquire() waited for a permit, in ms.',
  ),
  cache_hit_total: def('counter', 'cache', ['cache'], 'PluginCache lookups served from the cache.'),
  cache_miss_total: def('counter', 'cache', ['cache'], 'PluginCache lookups that had to load.'),
});
