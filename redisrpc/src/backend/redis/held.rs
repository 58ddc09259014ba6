//! At-least-once delivery on Redis (see [`crate::backend::delivery`]):
//! `BLMOVE` for the first request, then one script that counts its
//! delivery and moves the rest of a batch; one script that releases a
//! request with its reply; one that returns a dead server's requests.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::aio::ConnectionManager;

use super::blocking::Blocking;
use super::{expire_millis, map_error};
use crate::Result;
use crate::backend::{HeldKeys, HeldReply, Taken};

/// KEYS: queue, held, deliveries. ARGV: how many to move, and `1` when the
/// first was already moved (by `BLMOVE`). Returns the first's count, then
/// each further request and its count.
static TAKE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local out = {}
if ARGV[2] == '1' then
  local first = redis.call('LINDEX', KEYS[2], -1)
  table.insert(out, redis.call('HINCRBY', KEYS[3], redis.sha1hex(first), 1))
end
for i = 1, tonumber(ARGV[1]) do
  local request = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
  if not request then break end
  table.insert(out, request)
  table.insert(out, redis.call('HINCRBY', KEYS[3], redis.sha1hex(request), 1))
end
return out
",
    )
});

/// KEYS: held, deliveries[, reply queue]. ARGV: request[, reply, expiry in
/// ms]. The push comes first: when it is refused, nothing is released.
static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if #KEYS == 3 then
  redis.call('RPUSH', KEYS[3], ARGV[2])
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
end
redis.call('LREM', KEYS[1], 1, ARGV[1])
redis.call('HDEL', KEYS[2], redis.sha1hex(ARGV[1]))
return 1
",
    )
});

/// KEYS: queue, held, liveness, servers. ARGV: `1` to act only when the
/// liveness record is gone, the instance. Returns how many requests went
/// back, or -1 when the server lives.
static REQUEUE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if ARGV[1] == '1' and redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
local moved = 0
while redis.call('LMOVE', KEYS[2], KEYS[1], 'RIGHT', 'LEFT') do moved = moved + 1 end
redis.call('HDEL', KEYS[4], ARGV[2])
return moved
",
    )
});

pub(super) async fn take(
    blocking: &Arc<Blocking>,
    manager: &ConnectionManager,
    keys: &HeldKeys,
    max: usize,
    timeout: Option<Duration>,
) -> Result<Vec<Taken>> {
    let max = max.max(1);
    let first = match timeout {
        Some(timeout) if timeout.is_zero() => None,
        _ => match blocking.move_to(&keys.queue, &keys.held, timeout).await? {
            Some(first) => Some(first),
            None => return Ok(Vec::new()),
        },
    };
    let more = if first.is_some() { max - 1 } else { max };
    let counted = TAKE
        .key(&keys.queue)
        .key(&keys.held)
        .key(&keys.deliveries)
        .arg(more)
        .arg(if first.is_some() { "1" } else { "0" })
        .invoke_async::<Vec<redis::Value>>(&mut manager.clone())
        .await;
    let values = match counted {
        Ok(values) => values,
        Err(error) => {
            // The first is held and must run; its count is lost once.
            tracing::warn!(queue = %keys.queue, %error, "cannot count a delivery");
            return Ok(first
                .map(|request| Taken { request, delivery: 1 })
                .into_iter()
                .collect());
        }
    };
    let mut values = values.into_iter();
    let mut taken = Vec::new();
    if let Some(request) = first {
        let delivery = values.next().map_or(Ok(1), parse)?;
        taken.push(Taken { request, delivery });
    }
    while let (Some(request), Some(count)) = (values.next(), values.next()) {
        taken.push(Taken {
            request: parse(request)?,
            delivery: parse(count)?,
        });
    }
    Ok(taken)
}

/// One element of a script's reply, as `T`.
fn parse<T: redis::FromRedisValue>(value: redis::Value) -> Result<T> {
    redis::from_redis_value(value).map_err(|e| crate::Error::Command {
        source: e.to_string().into(),
    })
}

pub(super) async fn release(
    manager: &ConnectionManager,
    keys: &HeldKeys,
    request: &[u8],
    reply: Option<HeldReply<'_>>,
) -> Result<()> {
    let mut invocation = RELEASE.key(&keys.held);
    invocation.key(&keys.deliveries).arg(request);
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

pub(super) async fn requeue(manager: &ConnectionManager, keys: &HeldKeys, only_if_dead: bool) -> Result<Option<usize>> {
    let moved: i64 = REQUEUE
        .key(&keys.queue)
        .key(&keys.held)
        .key(&keys.liveness)
        .key(&keys.servers)
        .arg(if only_if_dead { "1" } else { "0" })
        .arg(&keys.instance)
        .invoke_async(&mut manager.clone())
        .await
        .map_err(map_error)?;
    Ok(usize::try_from(moved).ok())
}
