//! At-least-once delivery on Redis (see [`crate::backend::delivery`]):
//! `BLMOVE` of the first request into the server's `taking` list, pipelined
//! with the script that moves it and the rest of a batch to the held list
//! and reads their delivery counts, so a take costs one round trip; one
//! script that releases a request with its reply; one that returns a dead
//! server's requests and counts their deliveries.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use super::blocking::Blocking;
use super::shared::Shared;
use super::{expire_millis, map_error, slot};
use crate::Result;
use crate::backend::{HeldKeys, HeldReply, Taken};

/// KEYS: queue, taking, held, deliveries. ARGV: how many to take. Moves
/// what the blocking `BLMOVE` put in `taking` (it runs right after it, in
/// the same round trip), then more from the queue, to the held list;
/// returns each request and how often it was delivered before. The
/// queue's part moves in a few commands, whatever its size (`LRANGE`,
/// `LTRIM`, `RPUSH` in slices that Lua can unpack), not one `LMOVE` per
/// request. Counts exist only for requests that went back to the queue
/// (see `REQUEUE`), so most takes find none to read.
const TAKE: &str = r"
local out = {}
local counted = redis.call('EXISTS', KEYS[4]) == 1
local function count(request)
  out[#out + 1] = request
  out[#out + 1] = counted and redis.call('HGET', KEYS[4], redis.sha1hex(request)) or '0'
end
local left = tonumber(ARGV[1])
while left > 0 do
  local request = redis.call('LMOVE', KEYS[2], KEYS[3], 'LEFT', 'RIGHT')
  if not request then break end
  count(request)
  left = left - 1
end
if left > 0 then
  local more = redis.call('LRANGE', KEYS[1], 0, left - 1)
  if #more > 0 then
    redis.call('LTRIM', KEYS[1], #more, -1)
    for first = 1, #more, 1000 do
      redis.call('RPUSH', KEYS[3], unpack(more, first, math.min(first + 999, #more)))
    end
    for _, request in ipairs(more) do count(request) end
  end
end
return out
";

/// KEYS: held, deliveries[, reply queue]. ARGV: request, its field in the
/// deliveries or '' when it has none[, reply, expiry in ms]. The push comes
/// first: when it is refused, nothing is released.
static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if #KEYS == 3 then
  redis.call('RPUSH', KEYS[3], ARGV[3])
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
end
redis.call('LREM', KEYS[1], 1, ARGV[1])
if ARGV[2] ~= '' then redis.call('HDEL', KEYS[2], ARGV[2]) end
return 1
",
    )
});

/// KEYS: queue, held, liveness, servers, taking, deliveries. ARGV: `1` to
/// act only when the liveness record is gone, the instance. Returns how
/// many requests went back, or -1 when the server lives. What was being
/// taken is newest, so it goes back first; the held list then goes back
/// from its tail, and the queue's head ends up in the order the requests
/// were taken. A held request was delivered, and that delivery is counted;
/// one still being taken never reached the server.
static REQUEUE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if ARGV[1] == '1' and redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
local moved = 0
while redis.call('LMOVE', KEYS[5], KEYS[1], 'RIGHT', 'LEFT') do moved = moved + 1 end
while true do
  local request = redis.call('LMOVE', KEYS[2], KEYS[1], 'RIGHT', 'LEFT')
  if not request then break end
  redis.call('HINCRBY', KEYS[6], redis.sha1hex(request), 1)
  moved = moved + 1
end
redis.call('HDEL', KEYS[4], ARGV[2])
return moved
",
    )
});

pub(super) async fn take(
    blocking: &Arc<Blocking>,
    manager: &Shared,
    keys: &HeldKeys,
    max: usize,
    timeout: Option<Duration>,
) -> Result<Vec<Taken>> {
    let mut script = redis::cmd("EVAL");
    script
        .arg(TAKE)
        .arg(4)
        .arg(&keys.queue)
        .arg(&keys.taking)
        .arg(&keys.held)
        .arg(&keys.deliveries)
        .arg(max.max(1));
    let values: Vec<Vec<u8>> = match timeout {
        Some(timeout) if timeout.is_zero() => script.query_async(&mut manager.clone()).await.map_err(map_error)?,
        _ => blocking.move_then(&keys.queue, &keys.taking, script, timeout).await?,
    };
    let mut values = values.into_iter();
    let mut taken = Vec::new();
    while let (Some(request), Some(before)) = (values.next(), values.next()) {
        let before: u64 = std::str::from_utf8(&before)
            .ok()
            .and_then(|before| before.parse().ok())
            .unwrap_or(0);
        taken.push(Taken {
            request,
            delivery: before + 1,
        });
    }
    Ok(taken)
}

/// Releases `request` with its reply in one script; on a cluster where the
/// reply queue lives in another slot than the held list (a peer's client
/// names its reply queues without our hash tag), the reply is pushed first
/// and the request released after. A server that dies in between has
/// replied and still holds the request, which then runs again: at least
/// once.
pub(super) async fn release(
    manager: &Shared,
    cluster: bool,
    keys: &HeldKeys,
    taken: &Taken,
    mut reply: Option<HeldReply<'_>>,
) -> Result<()> {
    if cluster && let Some(elsewhere) = reply.take_if(|reply| slot::of(reply.queue) != slot::of(&keys.held)) {
        static RPUSH_EXPIRE: LazyLock<redis::Script> = LazyLock::new(|| {
            redis::Script::new(
                "redis.call('RPUSH', KEYS[1], ARGV[1])\nredis.call('PEXPIRE', KEYS[1], ARGV[2])\nreturn 1",
            )
        });
        RPUSH_EXPIRE
            .key(elsewhere.queue)
            .arg(elsewhere.reply)
            .arg(expire_millis(elsewhere.ttl))
            .invoke_async::<()>(&mut manager.clone())
            .await
            .map_err(map_error)?;
    }
    let mut invocation = RELEASE.key(&keys.held);
    invocation
        .key(&keys.deliveries)
        .arg(&taken.request)
        .arg(taken.counted_as().unwrap_or_default());
    if let Some(reply) = reply {
        invocation
            .key(reply.queue)
            .arg(reply.reply)
            .arg(expire_millis(reply.ttl));
    }
    invocation
        .invoke_async::<()>(&mut manager.clone())
        .await
        .map_err(map_error)
}

pub(super) async fn requeue(manager: &Shared, keys: &HeldKeys, only_if_dead: bool) -> Result<Option<usize>> {
    let moved: i64 = REQUEUE
        .key(&keys.queue)
        .key(&keys.held)
        .key(&keys.liveness)
        .key(&keys.servers)
        .key(&keys.taking)
        .key(&keys.deliveries)
        .arg(if only_if_dead { "1" } else { "0" })
        .arg(&keys.instance)
        .invoke_async(&mut manager.clone())
        .await
        .map_err(map_error)?;
    Ok(usize::try_from(moved).ok())
}
