/**
 * @module data-plane/async/redis-async-scripts
 * The Lua scripts of `RedisAsyncStore`: every step that reads and then writes (check the owner,
 * move between queue, retry set and indexes) runs as one script, so it is atomic on the server.
 * Keys are built from a prefix passed as ARGV[1]: fine on a standalone Redis (the project runs
 * one); a Redis Cluster would need them hash-tagged into one slot.
 *
 * Layout under prefix P:
 *   P inv:<id>            hash: meta (JSON, fixed at accept), body, fn, status, next, accepted, attempts (JSON),
 *                         owner, entry (its stream entry while running), lease, finished, redriven, dead, result, rbody,
 *                         cbu (has a callback URL), cbstate, cbattempts, cbnext, cbowner, cberror (callback delivery)
 *   P stream              the queue: one entry per due invocation; consumer group `dispatch`
 *   P due                 zset id -> next attempt time (retries, re-drives), moved to the stream when due
 *   P pending / pendingz  hash fn -> unfinished count; zset id -> accepted time (oldest age)
 *   P pendingz:<fn>       zset id -> accepted time of one function's unfinished ones (its oldest age)
 *   P cbdue               zset id -> due time of a pending callback (a claim pushes it to the lease's end)
 *   P finished            zset "fn\nstatus\nid" -> finished time (gc)
 *   P idem:<fn\nkey>, P idemexp   idempotency key -> id (with a TTL), zset member -> expiry time
 *   P idx:all, idx:fn:<fn>, idx:st:<status>, idx:fs:<fn\nstatus>   zsets of ids (score 0) for paging by id
 */

/** The consumer group every DP reads the stream through. */
export const streamGroup = 'dispatch';

const prelude = `
local G = '${streamGroup}'
local function setStatus(P, id, fn, from, to)
  if from then
    redis.call('ZREM', P .. 'idx:st:' .. from, id)
    redis.call('ZREM', P .. 'idx:fs:' .. fn .. '\\n' .. from, id)
  end
  redis.call('ZADD', P .. 'idx:st:' .. to, 0, id)
  redis.call('ZADD', P .. 'idx:fs:' .. fn .. '\\n' .. to, 0, id)
end
`;

/** Checks shared by the owner's writes; leaves k, st, entry, fn in scope or returns. */
const ownerCheck = `
local P, id, consumer = ARGV[1], ARGV[2], ARGV[3]
local k = P .. 'inv:' .. id
if redis.call('EXISTS', k) == 0 then return 'not_found' end
local f = redis.call('HMGET', k, 'status', 'owner', 'entry', 'fn')
local st, owner, entry, fn = f[1], f[2], f[3], f[4]
if st ~= 'running' or owner ~= consumer then return 'not_owner' end
`;

/** ARGV: P id fn idemKey idemExpiresAtMs idemTtlMs meta body nextAttemptAtMs acceptedAtMs hasCallback('1'|'') */
export const acceptLua = `${prelude}
local P, id, fn, ikey = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local accepted = tonumber(ARGV[10])
if ikey ~= '' then
  local member = fn .. '\\n' .. ikey
  local held = redis.call('GET', P .. 'idem:' .. member)
  local exp = redis.call('ZSCORE', P .. 'idemexp', member)
  if held and exp and tonumber(exp) > accepted then return {'duplicate', held} end
  redis.call('SET', P .. 'idem:' .. member, id, 'PX', ARGV[6])
  redis.call('ZADD', P .. 'idemexp', ARGV[5], member)
end
local k = P .. 'inv:' .. id
redis.call('HSET', k, 'meta', ARGV[7], 'body', ARGV[8], 'fn', fn, 'status', 'queued',
  'next', ARGV[9], 'accepted', ARGV[10], 'attempts', '[]')
if ARGV[11] == '1' then redis.call('HSET', k, 'cbu', '1') end
redis.call('HINCRBY', P .. 'pending', fn, 1)
redis.call('ZADD', P .. 'pendingz', accepted, id)
redis.call('ZADD', P .. 'pendingz:' .. fn, accepted, id)
redis.call('ZADD', P .. 'idx:all', 0, id)
redis.call('ZADD', P .. 'idx:fn:' .. fn, 0, id)
setStatus(P, id, fn, nil, 'queued')
if tonumber(ARGV[9]) > accepted then
  redis.call('ZADD', P .. 'due', ARGV[9], id)
else
  redis.call('XADD', P .. 'stream', '*', 'id', id)
end
return {'accepted', id}
`;

/** ARGV: P nowMs max. Moves due retries into the stream. */
export const promoteLua = `
local P = ARGV[1]
local ids = redis.call('ZRANGEBYSCORE', P .. 'due', '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  redis.call('ZREM', P .. 'due', id)
  redis.call('XADD', P .. 'stream', '*', 'id', id)
end
return #ids
`;

/** ARGV: P consumer entryId id leaseUntilMs. 1 when taken; 0 drops a stale entry. */
export const takeLua = `${prelude}
local P, consumer, entry, id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local k = P .. 'inv:' .. id
local f = redis.call('HMGET', k, 'status', 'entry', 'fn')
local st, cur, fn = f[1], f[2], f[3]
local live = st == 'queued' or (st == 'running' and cur == entry)
if not live then
  redis.call('XACK', P .. 'stream', G, entry)
  redis.call('XDEL', P .. 'stream', entry)
  return 0
end
redis.call('HSET', k, 'status', 'running', 'owner', consumer, 'entry', entry, 'lease', ARGV[5])
if st == 'queued' then setStatus(P, id, fn, 'queued', 'running') end
return 1
`;

/** ARGV: P id consumer leaseUntilMs. Resets the entry's idle time, which is the Redis lease. */
export const renewLua = `${prelude}${ownerCheck}
redis.call('XCLAIM', P .. 'stream', G, consumer, 0, entry, 'JUSTID')
redis.call('HSET', k, 'lease', ARGV[4])
return 'ok'
`;

/**
 * ARGV: P id consumer mode attemptJson nextAttemptAtMs deadReason resultJson resultBody finishedAtMs retentionMs
 * mode: retry | succeeded | failed | dead
 */
export const finishLua = `${prelude}${ownerCheck}
local mode = ARGV[4]
redis.call('XACK', P .. 'stream', G, entry)
redis.call('XDEL', P .. 'stream', entry)
local attempts = redis.call('HGET', k, 'attempts')
if attempts == '[]' then attempts = '[' .. ARGV[5] .. ']' else attempts = string.sub(attempts, 1, -2) .. ',' .. ARGV[5] .. ']' end
redis.call('HSET', k, 'attempts', attempts)
redis.call('HDEL', k, 'owner', 'entry', 'lease')
if mode == 'retry' then
  redis.call('HSET', k, 'status', 'queued', 'next', ARGV[6])
  redis.call('ZADD', P .. 'due', ARGV[6], id)
  setStatus(P, id, fn, 'running', 'queued')
  return 'ok'
end
redis.call('HSET', k, 'status', mode, 'finished', ARGV[10])
-- The callback becomes due in the same script: a DP that dies right after still leaves it pending.
if redis.call('HEXISTS', k, 'cbu') == 1 then
  redis.call('HSET', k, 'cbstate', 'pending', 'cbattempts', 0, 'cbnext', ARGV[10])
  redis.call('HDEL', k, 'cbowner', 'cberror')
  redis.call('ZADD', P .. 'cbdue', ARGV[10], id)
end
if ARGV[7] ~= '' then redis.call('HSET', k, 'dead', ARGV[7]) end
if ARGV[8] ~= '' then redis.call('HSET', k, 'result', ARGV[8], 'rbody', ARGV[9]) end
if redis.call('HINCRBY', P .. 'pending', fn, -1) <= 0 then redis.call('HDEL', P .. 'pending', fn) end
redis.call('ZREM', P .. 'pendingz', id)
redis.call('ZREM', P .. 'pendingz:' .. fn, id)
redis.call('ZADD', P .. 'finished', ARGV[10], fn .. '\\n' .. mode .. '\\n' .. id)
-- A backstop in wall-clock time for when no gc runs; gc (virtual time) also cleans the indexes.
redis.call('PEXPIRE', k, ARGV[11])
setStatus(P, id, fn, 'running', mode)
return 'ok'
`;

/** ARGV: P id nowMs */
export const redriveLua = `${prelude}
local P, id = ARGV[1], ARGV[2]
local k = P .. 'inv:' .. id
if redis.call('EXISTS', k) == 0 then return 'not_found' end
local f = redis.call('HMGET', k, 'status', 'fn', 'accepted')
local st, fn, accepted = f[1], f[2], f[3]
if st ~= 'dead' and st ~= 'failed' then return 'not_redrivable' end
redis.call('HSET', k, 'status', 'queued', 'next', ARGV[3], 'redriven', ARGV[3])
redis.call('HDEL', k, 'finished', 'dead', 'cbstate', 'cbattempts', 'cbnext', 'cbowner', 'cberror')
redis.call('ZREM', P .. 'cbdue', id)
redis.call('PERSIST', k)
redis.call('ZREM', P .. 'finished', fn .. '\\n' .. st .. '\\n' .. id)
redis.call('HINCRBY', P .. 'pending', fn, 1)
redis.call('ZADD', P .. 'pendingz', accepted, id)
redis.call('ZADD', P .. 'pendingz:' .. fn, accepted, id)
redis.call('ZADD', P .. 'due', ARGV[3], id)
setStatus(P, id, fn, st, 'queued')
return 'ok'
`;

/** ARGV: P finishedCutoffMs nowMs max. Returns {invocations dropped, keys dropped}. */
export const gcLua = `
local P = ARGV[1]
local max = tonumber(ARGV[4])
local members = redis.call('ZRANGEBYSCORE', P .. 'finished', '-inf', ARGV[2], 'LIMIT', 0, max)
for _, m in ipairs(members) do
  local fn, st, id = string.match(m, '^(.*)\\n([^\\n]*)\\n([^\\n]*)$')
  redis.call('DEL', P .. 'inv:' .. id)
  redis.call('ZREM', P .. 'cbdue', id)
  redis.call('ZREM', P .. 'finished', m)
  redis.call('ZREM', P .. 'idx:all', id)
  redis.call('ZREM', P .. 'idx:fn:' .. fn, id)
  redis.call('ZREM', P .. 'idx:st:' .. st, id)
  redis.call('ZREM', P .. 'idx:fs:' .. fn .. '\\n' .. st, id)
end
local keys = redis.call('ZRANGEBYSCORE', P .. 'idemexp', '-inf', ARGV[3], 'LIMIT', 0, max)
for _, m in ipairs(keys) do
  redis.call('DEL', P .. 'idem:' .. m)
  redis.call('ZREM', P .. 'idemexp', m)
end
return {#members, #keys}
`;

/** ARGV: P consumer nowMs leaseUntilMs max. Ids of due pending callbacks, now leased to consumer. */
export const claimCallbacksLua = `
local P, consumer = ARGV[1], ARGV[2]
local ids = redis.call('ZRANGEBYSCORE', P .. 'cbdue', '-inf', ARGV[3], 'LIMIT', 0, tonumber(ARGV[5]))
local out = {}
for _, id in ipairs(ids) do
  local k = P .. 'inv:' .. id
  if redis.call('HGET', k, 'cbstate') == 'pending' then
    redis.call('HSET', k, 'cbowner', consumer, 'cbnext', ARGV[4])
    redis.call('ZADD', P .. 'cbdue', ARGV[4], id)
    out[#out + 1] = id
  else
    -- Its record expired (wall-clock TTL) or was re-driven: a stale due entry.
    redis.call('ZREM', P .. 'cbdue', id)
  end
end
return out
`;

/** ARGV: P id consumer state attempts nextAtMs lastError */
export const recordCallbackLua = `
local P, id, consumer = ARGV[1], ARGV[2], ARGV[3]
local k = P .. 'inv:' .. id
if redis.call('EXISTS', k) == 0 then return 'not_found' end
local f = redis.call('HMGET', k, 'cbstate', 'cbowner')
if f[1] ~= 'pending' or f[2] ~= consumer then return 'not_owner' end
redis.call('HSET', k, 'cbstate', ARGV[4], 'cbattempts', ARGV[5], 'cbnext', ARGV[6])
redis.call('HDEL', k, 'cbowner')
if ARGV[7] ~= '' then redis.call('HSET', k, 'cberror', ARGV[7]) else redis.call('HDEL', k, 'cberror') end
if ARGV[4] == 'pending' then redis.call('ZADD', P .. 'cbdue', ARGV[6], id) else redis.call('ZREM', P .. 'cbdue', id) end
return 'ok'
`;
