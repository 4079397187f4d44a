--[[
  ptm_claim (schema 3): claim a node for execution with a lease and a fencing version; count it
  running in its run; refuse the nodes of a cancelled run.
  TypeScript side (keys, arguments, reply, local twin): src/chain/state/transitions/claim.ts

  KEYS
    1 node_key          node state (hash: status, owner, version, lease_until, epoch, schema)
    2 task_mark_key     terminate mark of the task
    3 module_mark_key   terminate mark of the module
    4 run_key           the run's record (hash, see lua/_run.lua)
    5 run_keys_key      the keys the run wrote (zset of key suffixes), for its clean-up
  ARGV
    1 now_arg     now in ms, TEST ONLY ('' in production: the server's TIME)
    2 owner       who claims
    3 lease_ms    lease length
    4 epoch_text  the retry epoch the message carries
    5 root        '1' for a module's first node (no parent creates it)
    6 schema_text CHAIN_SCHEMA_VERSION
    7 ttl         ttl ms of a new record
    8 module_id   the node's module (its counters in the run)
    9 run_ttl     ttl ms of the run's record once it has finished
  Returns {code, msg, version, lease_until, reason[, 'run_finished:1']}
    0 EXECUTE          claimed (or replayed by the same owner within its lease); reason 'expired'
                       when the claim took over a lease that had run out (its holder died or
                       stalled: the version bump fences it)
    1 DUPLICATE_DONE   the node is done
    2 STALE_STEP       run cancelled, task/module terminated, an older epoch, or the node failed in
                       this epoch (reason 'cancelled', 'terminated', 'old_epoch', 'failed')
    3 OUT_OF_ORDER     the node does not exist yet (parent not committed) or a newer epoch
    4 LOCKED_BY_OTHER  another owner holds a live lease
  A node leaves `queued` for `running` in its run when a root is created or a node counted
  queued (field q = '1') is claimed; a terminated task/module settles the run's module(s) the
  first time a claim meets the mark; 'run_finished:1' when that finished the run.
  Errors: SCHEMA_MISMATCH when another schema wrote the node; WRONGTYPE when a key holds another
  type. Writes only on EXECUTE (and the run's record on a terminate mark), after every check
  (the types of the keys it writes included). The claim itself is lua/_claim.lua, which
  ptm_commit_success also runs for the committing worker's next node.
]]
local node_key, task_mark_key, module_mark_key = KEYS[1], KEYS[2], KEYS[3]
local now_arg, owner, lease_ms, epoch_text = ARGV[1], ARGV[2], ARGV[3] + 0, ARGV[4]
local root, schema_text, ttl = ARGV[5] == '1', ARGV[6], ARGV[7]
local run_key, run_keys_key, module_id, run_ttl = KEYS[4], KEYS[5], ARGV[8], ARGV[9]
--@include _now
--@include _run
--@include _run_terminate
--@include _claim
return claim_node(node_key, task_mark_key, module_mark_key, run_key, run_keys_key, now_ms(now_arg), owner,
  lease_ms, epoch_text, root, schema_text, ttl, module_id, run_ttl)
