--[[
  ptm_commit_success (schema 3): mark a node done and produce its successors and items at most
  once; count the node done, its new successors queued and its items in its run. With a
  hand-off (queues on Redis Streams next to the state: the shared streams of a standalone Redis,
  or on a Cluster the task's own streams, in its slot), the successors go
  straight to the parser stream, the items to the items stream, and the node's own delivery is
  acknowledged, all in this one script; without one (or when the parser stream is full), they
  go to the task's outbox for the relay.
  TypeScript side (keys, arguments, reply, local twin): src/chain/state/transitions/commit-success.ts

  KEYS
    1 node_key        node state (hash)
    2 outbox_key      task outbox (list)
    3 run_key         the run's record (hash, see lua/_run.lua)
    4 run_keys_key    the keys the run wrote (zset of key suffixes), for its clean-up
    with a hand-off only (ARGV 11 = '1'):
    5 stream_key      the parser work stream (successors are added; the delivery is acknowledged)
    6 items_key       the items stream
    then successor_keys: the state of each successor node (hash), n of them
    then dedup_keys: the de-duplication mark of each keyed successor (string), m of them
    with a claim of the next node only (ARGV 15 = '1'), the last five: the claim's KEYS 1-5 (see
    ptm_claim: node_key, task_mark_key, module_mark_key, run_key, run_keys_key); the last three
    (its KEYS 1-3) when its run is the commit's: its run_key and run_keys_key are then KEYS 3-4
  ARGV
    1 owner           the claiming owner
    2 version_text    the fencing version of the claim
    3 ttl             ttl ms of every key written
    4 schema_text     CHAIN_SCHEMA_VERSION
    5 node_id         this node's id (the value of the de-duplication marks it sets; '' when m
                      is 0)
    6 n               number of successors
    7 now_arg         now in ms for the run's record ('': the server's TIME)
    8 module_id       the node's module (its counters in the run)
    9 run_ttl         ttl ms of the run's record once it has finished
    10 m              number of keyed successors (0 without de-duplication keys)
    11 hand_off       '1' with a hand-off, '' without
    12 capacity       the parser stream's capacity ('' unbounded; hand-off only, else '')
    13 group          the consumer group of the streams (hand-off only, else '')
    14 delivery       the stream entry id of this node's delivery ('' none)
    15 claiming       '1' when the script also claims the worker's next node, '' when not
    with a claim only (see ptm_claim; the claim's schema, ttl and run_ttl are this script's):
    16 c_now_arg      the claim's now in ms, TEST ONLY ('' in production: the server's TIME)
    17 c_owner        who claims the next node
    18 c_lease_ms     its lease length
    19 c_epoch_text   the retry epoch its message carries
    20 c_root         '1' for a module's first node
    21 c_module_id    its module
    F..F-1+n          messages: the message of each successor (in KEYS order); F is 16, or 22
                      with a claim
    F+n..F-1+n+m      keyed: the successor index (0-based) of each dedup key, ascending
    F+n+m..           items: the items
    Without a hand-off the messages and items are outbox entries (their letter first, see
    src/chain/engine/outbox.ts); with one they come without it (a stream entry holds them so),
    and the outbox, when the parser stream has no room, gets them with their letter, 'p' for a
    message and 'i' for an item.
  Returns {code, msg, created, handed[, duplicate index...][, 'run_finished:1'][, 'run_finished:2']
  [, 'claim:<code>:<version>:<lease_until>:<reason>']}
    0 COMMIT_OK           done; new successors created and queued with the items; `handed` is
                          1 when the hand-off added them to the streams, 0 when they went to the
                          outbox (the delivery, when given, is acknowledged either way); then the indexes (0-based) of the keyed
                          successors skipped because their key was taken (before, or earlier in
                          this list)
    1 FENCING_REJECT      owner/version is not the current claim (or the node was never claimed)
    2 CAS_CONFLICT        the claim is no longer processing (recovered as a zombie)
    3 ALREADY_COMMITTED   replay by the same owner and version: nothing written again
  A new successor is created with q = '1' (counted queued in the run). 'run_finished:1' when
  this commit finished the run (its last node, no item waiting). With a claim, after the commit
  (COMMIT_OK only) the next node is claimed as ptm_claim claims it (lua/_claim.lua) and its reply
  ends this one ('run_finished:2' when the claim finished the next node's run); a claim that
  fails (a key of another type, another schema) or a commit that is not COMMIT_OK leaves no claim
  in the reply and nothing of the claim written: the worker claims that node by itself. A parser stream without room
  for the successors sends them (and the items) to the outbox instead, where the relay waits
  for room: the stream's bound holds.
  A commit with no new successor needs no room in the parser stream (it adds nothing there).
  now_arg dates the run's updated/finished only (the engine passes its claim's server time plus
  the time since; never used for a lease).
  Errors: SCHEMA_MISMATCH when another schema wrote the node; WRONGTYPE when a key holds another
  type. Reads and checks everything first (the types of the keys it writes included: one of them,
  the run key index or else the items stream, is checked by being the first write, since a
  script that fails on its first write wrote nothing), then writes; nothing after the first
  write can fail: lists of any length are pushed in chunks (Lua's unpack takes ~8,000 values at
  most), and the delivery's XACK/XDEL run under redis.pcall (a parser stream key of another type
  holds no delivery to acknowledge).
]]
local node_key, outbox_key, run_key, run_keys_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local owner, version_text, ttl, schema_text = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local node_id, n = ARGV[5], ARGV[6] + 0
local now_arg, module_id, run_ttl, m = ARGV[7], ARGV[8], ARGV[9], ARGV[10] + 0
local hand_off, capacity, group, delivery = ARGV[11] == '1', ARGV[12], ARGV[13], ARGV[14]
local claiming = ARGV[15] == '1'
local stream_key, items_key = nil, nil
if hand_off then stream_key, items_key = KEYS[5], KEYS[6] end
-- the next node's claim (see ptm_claim): its keys are the last five, or the last three in the
-- commit's run
local c_node_key, c_task_mark_key, c_module_mark_key, c_run_key, c_run_keys_key
local c_now_arg, c_owner, c_lease_ms, c_epoch_text, c_root, c_module_id
if claiming then
  local last = #KEYS
  if last - (hand_off and 6 or 4) - n - m == 3 then
    c_node_key, c_task_mark_key, c_module_mark_key = KEYS[last - 2], KEYS[last - 1], KEYS[last]
    c_run_key, c_run_keys_key = run_key, run_keys_key
  else
    c_node_key, c_task_mark_key, c_module_mark_key = KEYS[last - 4], KEYS[last - 3], KEYS[last - 2]
    c_run_key, c_run_keys_key = KEYS[last - 1], KEYS[last]
  end
  c_now_arg, c_owner, c_lease_ms, c_epoch_text = ARGV[16], ARGV[17], ARGV[18] + 0, ARGV[19]
  c_root, c_module_id = ARGV[20] == '1', ARGV[21]
end
local FIRST_SUCCESSOR_KEY, FIRST_MESSAGE_ARG, CHUNK = hand_off and 7 or 5, claiming and 22 or 16, 1000
local FIRST_DEDUP_KEY, FIRST_KEYED_ARG = FIRST_SUCCESSOR_KEY + n, FIRST_MESSAGE_ARG + n
--@include _now
--@include _run
--@include _run_terminate
--@include _claim

-- (texts that are equal are equal numbers: the numbers are compared only when the texts differ)
local f = redis.call('HMGET', node_key, 'status', 'owner', 'version', 'schema')
if f[1] == false then return {1, 'FENCING_REJECT'} end
if f[4] ~= schema_text and tonumber(f[4]) ~= tonumber(schema_text) then
  return redis.error_reply('SCHEMA_MISMATCH node state has schema ' .. tostring(f[4]) .. ', this version reads ' .. schema_text)
end
local same_version = f[3] == version_text or tonumber(f[3]) == tonumber(version_text)
if f[1] == 'done' then
  if same_version and f[2] == owner then return {3, 'ALREADY_COMMITTED'} end
  return {1, 'FENCING_REJECT'}
end
if f[2] ~= owner or not same_version then return {1, 'FENCING_REJECT'} end
if f[1] ~= 'processing' then return {2, 'CAS_CONFLICT'} end
-- the dedup key of each keyed successor (by successor index)
local dedup_of = {}
for j = 0, m - 1 do
  dedup_of[tonumber(ARGV[FIRST_KEYED_ARG + j])] = KEYS[FIRST_DEDUP_KEY + j]
end
-- the successors to create: a keyed successor whose key was taken is a duplicate (neither
-- created nor queued); a successor listed twice in one commit, or one that exists already, is
-- neither created nor queued again
local create, seen, messages, marks, taken, duplicates = {}, {}, {}, {}, {}, {}
for i = 0, n - 1 do
  local key = KEYS[FIRST_SUCCESSOR_KEY + i]
  local dedup_key = dedup_of[i]
  local duplicate = false
  if dedup_key then
    if taken[dedup_key] or redis.call('EXISTS', dedup_key) == 1 then
      duplicate = true
      duplicates[#duplicates + 1] = i
    else
      taken[dedup_key] = true
      marks[#marks + 1] = dedup_key
    end
  end
  if not duplicate and not seen[key] then
    seen[key] = true
    if redis.call('EXISTS', key) == 0 then
      create[#create + 1] = key
      messages[#messages + 1] = ARGV[FIRST_MESSAGE_ARG + i]
    end
  end
end
local FIRST_ITEM_ARG = FIRST_KEYED_ARG + m
local n_items = #ARGV - FIRST_ITEM_ARG + 1
local run = run_read(run_key, module_id, RUN_QRDI)
local now = run and now_ms(now_arg) or 0
-- the hand-off takes the successors and items when the parser stream has room for the
-- successors (a commit that adds none to it needs no room: it cannot break the bound)
local handed, stream_checked = hand_off, false
if hand_off and capacity ~= '' and #messages > 0 then
  handed = redis.call('XLEN', stream_key) + #messages <= capacity + 0
  stream_checked = true
end
-- the keys written below whose type no read has checked: one of them is written first (a script
-- that fails on its first write wrote nothing: the run's key index, else the items stream); each
-- other one is checked here. (The delivery's acknowledgement needs no check, see below.)
local index_run = run and #create + #marks > 0
local first = index_run and 'index' or nil
if handed and not stream_checked and #messages > 0 then redis.call('XLEN', stream_key) end
if handed and n_items > 0 then
  if first == nil then first = 'items' else redis.call('XLEN', items_key) end
end
if not handed and #messages + n_items > 0 then redis.call('LLEN', outbox_key) end

-- every check passed: write (the node record keeps the TTL its claim gave it). First the run's
-- key index (the keys this commit creates, for the run's clean-up), else the items stream (with
-- a hand-off the items come without their outbox letter). A key's suffix follows its last '}:'
-- with no '}' after it; the keys of a commit share their task's prefix, so the place found in the
-- node's key is checked first, then searched for. (No local functions: each would be a closure
-- made at every call.)
if first == 'index' then
  local zargs = {}
  local at = (string.find(node_key, '}:[^}]*$') or 0) + 1 -- the ':' of the node key's '}:'
  for i = 1, #create + #marks do
    local key = create[i] or marks[i - #create]
    local suffix
    local b1, b2 = string.byte(key, at - 1, at)
    if b1 == 125 and b2 == 58 and not string.find(key, '}', at + 1, true) then
      suffix = string.sub(key, at + 1)
    else
      suffix = string.match(key, '}:([^}]*)$')
    end
    if suffix then
      zargs[#zargs + 1] = '0'
      zargs[#zargs + 1] = suffix
    end
  end
  for from = 1, #zargs, 2 * CHUNK do
    redis.call('ZADD', run_keys_key, unpack(zargs, from, math.min(from + 2 * CHUNK - 1, #zargs)))
  end
  redis.call('PEXPIRE', run_keys_key, ttl)
elseif first == 'items' then
  for j = FIRST_ITEM_ARG, #ARGV do redis.call('XADD', items_key, '*', 'p', ARGV[j]) end
end
redis.call('HSET', node_key, 'status', 'done')
for i = 1, #create do
  redis.call('HSET', create[i], 'status', 'pending', 'owner', '', 'version', '0', 'lease_until', '0',
    'epoch', '0', 'schema', schema_text, 'q', '1')
  redis.call('PEXPIRE', create[i], ttl)
end
for i = 1, #marks do redis.call('SET', marks[i], node_id, 'PX', ttl) end
-- the node's own delivery is acknowledged and deleted, whichever way the successors go; a parser
-- stream key of another type holds no delivery, so an error there (WRONGTYPE) leaves nothing to
-- do and is ignored (redis.pcall): this write cannot fail the script
if hand_off and delivery ~= '' then
  redis.pcall('XACK', stream_key, group, delivery)
  redis.pcall('XDEL', stream_key, delivery)
end
if handed then
  -- a stream entry holds the message (or item) without its outbox letter, as it came
  for i = 1, #messages do
    redis.call('XADD', stream_key, '*', 'p', messages[i], 'd', '0')
  end
  if first ~= 'items' then
    for j = FIRST_ITEM_ARG, #ARGV do redis.call('XADD', items_key, '*', 'p', ARGV[j]) end
  end
else
  -- the outbox: successors first, then the items (each a prefixed entry, see outbox.ts; with a
  -- hand-off they came without their letter)
  local queued = messages
  if hand_off then
    for i = 1, #queued do queued[i] = 'p' .. queued[i] end
    for j = FIRST_ITEM_ARG, #ARGV do queued[#queued + 1] = 'i' .. ARGV[j] end
  else
    for j = FIRST_ITEM_ARG, #ARGV do queued[#queued + 1] = ARGV[j] end
  end
  for from = 1, #queued, CHUNK do
    redis.call('RPUSH', outbox_key, unpack(queued, from, math.min(from + CHUNK - 1, #queued)))
  end
  if #queued > 0 then redis.call('PEXPIRE', outbox_key, ttl) end
end
local out = {0, 'COMMIT_OK', #create, handed and 1 or 0}
for i = 1, #duplicates do out[#out + 1] = duplicates[i] end
-- the next node's claim, after the commit. In this node's run and module it reads the record this
-- commit read (with this commit's counts applied, not yet written) and its node's count joins
-- them in one write of the record; a claim that settles the run (a terminate mark) writes it all
-- first, as a claim after the commit would. It reads and checks before it writes: an error it
-- raises (caught here) wrote nothing and changed nothing of the shared record
local claimed, count, version_out, until_out = nil, false, nil, nil
local shared = claiming and run ~= nil and c_run_key == run_key and c_module_id == module_id
if run and not shared then
  if run_write(run, now, run_ttl, {'q', #create, 'r', -1, 'd', 1, 'i', n_items, 'ob', n_items}) then
    out[#out + 1] = RUN_FINISHED .. '1'
  end
end
if claiming then
  -- in the shared record this node leaves `running` after the claim: a claim that counts its
  -- node (q -1, r +1) leaves r as it was, and written once; else r -1 joins the last write (a
  -- claim that settles the run on a terminate mark settles the module whatever r is)
  if shared then run_apply(run, {'q', #create, 'd', 1, 'i', n_items, 'ob', n_items}) end
  local c_now = now_ms(c_now_arg)
  local ok, c, counted, v_text, u_text = pcall(claim_node, c_node_key, c_task_mark_key, c_module_mark_key,
    c_run_key, c_run_keys_key, c_now, c_owner, c_lease_ms, c_epoch_text, c_root, schema_text, ttl,
    c_module_id, run_ttl, shared and run or nil)
  if ok and c.err == nil then claimed, count, version_out, until_out = c, counted == true, v_text, u_text end
  if shared and run_write(run, count and c_now or now, run_ttl, count and {'q', -1} or {'r', -1}) then
    out[#out + 1] = RUN_FINISHED .. '1'
  end
end
if claimed then
  if claimed[6] then out[#out + 1] = RUN_FINISHED .. '2' end
  -- (the texts the claim wrote, when it wrote any)
  out[#out + 1] = 'claim:' .. claimed[1] .. ':' .. (version_out or string.format('%d', claimed[3])) ..
    ':' .. (until_out or string.format('%d', claimed[4])) .. ':' .. claimed[5]
end
return out
