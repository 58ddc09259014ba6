//! Replies in batches: a server answering many calls at once pushes their
//! replies with one script run ([`Backend::rpush_expire_each`],
//! [`Backend::release_held_each`]) instead of one round trip and one script
//! run each. Redis then reads one command instead of many, and the Lua
//! call's fixed cost is paid once.
//!
//! Each push stays atomic on its own, as [`Backend::rpush_expire`] is: a
//! refused push (the key is not a list) sets no expiry, releases nothing,
//! and fails alone, reported by its place in the batch. A cluster gets one
//! run per hash slot, since a script's keys must share one; our clients'
//! reply queues carry their queue's hash tag, so a batch of one queue's
//! replies is usually one slot. A batch is cut into runs of at most
//! [`MAX_RUN_ITEMS`] replies and about [`MAX_RUN_BYTES`], so that no run
//! holds Redis for long.
//!
//! [`Backend::rpush_expire`]: crate::backend::Backend::rpush_expire
//! [`Backend::rpush_expire_each`]: crate::backend::Backend::rpush_expire_each
//! [`Backend::release_held_each`]: crate::backend::Backend::release_held_each

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

use redis::{RedisError, Value};

use super::shared::Shared;
use super::{expire_millis, map_error, slot};
use crate::backend::{HeldKeys, HeldReply, Taken};
use crate::{Error, Result};

/// The most replies one script run pushes.
const MAX_RUN_ITEMS: usize = 128;

/// About the most bytes one script run carries: a run is closed once it
/// holds this many (a single larger reply goes alone).
const MAX_RUN_BYTES: usize = 1 << 20;

/// KEYS: reply queues. ARGV: the expiry in ms, then one reply per queue.
/// Returns, per queue, 1 or the refusal's message.
static PUSH_EACH: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local out = {}
for i, queue in ipairs(KEYS) do
  local pushed = redis.pcall('RPUSH', queue, ARGV[i + 1])
  if type(pushed) == 'table' and pushed.err then
    out[i] = pushed.err
  else
    redis.call('PEXPIRE', queue, ARGV[1])
    out[i] = 1
  end
end
return out
",
    )
});

/// KEYS: held, deliveries, then one reply queue per request. ARGV: the
/// expiry in ms, then per request: the request, its reply, and its field
/// in the delivery counts or '' when it has none (a first delivery).
/// Returns, per request, 1 or the refusal's message; a refused push
/// releases nothing. The released requests' counts, if any, go in one
/// `HDEL` at the end (a run holds at most [`MAX_RUN_ITEMS`], which Lua
/// unpacks at once).
static RELEASE_EACH: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local out = {}
local counted = {}
for i = 3, #KEYS do
  local n = i - 2
  local at = 3 * n - 1
  local pushed = redis.pcall('RPUSH', KEYS[i], ARGV[at + 1])
  if type(pushed) == 'table' and pushed.err then
    out[n] = pushed.err
  else
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
    redis.call('LREM', KEYS[1], 1, ARGV[at])
    if ARGV[at + 2] ~= '' then counted[#counted + 1] = ARGV[at + 2] end
    out[n] = 1
  end
end
if #counted > 0 then
  redis.call('HDEL', KEYS[2], unpack(counted))
end
return out
",
    )
});

/// [`Backend::rpush_expire_each`](crate::backend::Backend::rpush_expire_each) on Redis.
pub(super) async fn push_each(
    manager: &Shared,
    cluster: bool,
    pushes: &[(&str, &[u8])],
    ttl: Duration,
) -> Vec<Result<()>> {
    let ttl = expire_millis(ttl);
    let runs = runs(pushes.len(), |i| slot_if(cluster, pushes[i].0), |i| pushes[i].1.len());
    let sent = runs.iter().map(|run| async move {
        let mut invocation = PUSH_EACH.arg(ttl);
        for &i in run {
            let (queue, reply) = pushes[i];
            invocation.key(queue).arg(reply);
        }
        outcomes(
            run.len(),
            invocation.invoke_async::<Vec<Value>>(&mut manager.clone()).await,
        )
    });
    gather(pushes.len(), &runs, futures::future::join_all(sent).await)
}

/// [`Backend::release_held_each`](crate::backend::Backend::release_held_each)
/// on Redis. On a cluster, a reply queue in another slot than the held list
/// (a peer's client names its reply queues without our hash tag) is
/// released as [`super::held::release`] does: pushed first, then released.
pub(super) async fn release_each(
    manager: &Shared,
    cluster: bool,
    keys: &HeldKeys,
    released: &[(&Taken, HeldReply<'_>)],
) -> Vec<Result<()>> {
    let held_slot = slot::of(&keys.held);
    let elsewhere = |i: usize| cluster && slot::of(released[i].1.queue) != held_slot;
    // Those elsewhere each make a run of their own, taken one by one.
    let runs = runs(
        released.len(),
        |i| if elsewhere(i) { Some(i as u16) } else { None },
        |i| released[i].0.request.len() + released[i].1.reply.len(),
    );
    let ttl = |i: usize| expire_millis(released[i].1.ttl);
    let sent = runs.iter().map(|run| async move {
        if let [only] = run[..]
            && elsewhere(only)
        {
            let (taken, reply) = released[only];
            return vec![super::held::release(manager, cluster, keys, taken, Some(reply)).await];
        }
        // One run shares one expiry: a server's replies all have the same.
        let mut invocation = RELEASE_EACH.key(&keys.held);
        invocation.key(&keys.deliveries).arg(ttl(run[0]));
        for &i in run {
            let (taken, reply) = released[i];
            invocation
                .key(reply.queue)
                .arg(&taken.request)
                .arg(reply.reply)
                .arg(taken.counted_as().unwrap_or_default());
        }
        outcomes(
            run.len(),
            invocation.invoke_async::<Vec<Value>>(&mut manager.clone()).await,
        )
    });
    gather(released.len(), &runs, futures::future::join_all(sent).await)
}

/// The slot a run must keep to: only a cluster's runs keep to one.
fn slot_if(cluster: bool, key: &str) -> Option<u16> {
    cluster.then(|| slot::of(key))
}

/// Cuts items `0..count` into runs of one `group` each (items of one group
/// keep their order), closing a run at [`MAX_RUN_ITEMS`] items or once it
/// holds [`MAX_RUN_BYTES`] by `size`.
fn runs(count: usize, group: impl Fn(usize) -> Option<u16>, size: impl Fn(usize) -> usize) -> Vec<Vec<usize>> {
    let mut open: BTreeMap<Option<u16>, (Vec<usize>, usize)> = BTreeMap::new();
    let mut runs = Vec::new();
    for i in 0..count {
        let (run, bytes) = open.entry(group(i)).or_default();
        run.push(i);
        *bytes += size(i);
        if run.len() >= MAX_RUN_ITEMS || *bytes >= MAX_RUN_BYTES {
            runs.push(std::mem::take(run));
            *bytes = 0;
        }
    }
    runs.extend(open.into_values().map(|(run, _)| run).filter(|run| !run.is_empty()));
    runs
}

/// Each item's outcome from a script run's reply: 1, or the refusal's
/// message; the run's own failure (connection, …) is every item's.
fn outcomes(count: usize, reply: std::result::Result<Vec<Value>, RedisError>) -> Vec<Result<()>> {
    match reply {
        Ok(values) if values.len() == count => values.into_iter().map(outcome).collect(),
        Ok(values) => (0..count)
            .map(|_| {
                Err(Error::Command {
                    source: format!("a batch of {count} replies was answered with {} outcomes", values.len()).into(),
                })
            })
            .collect(),
        Err(error) => (0..count).map(|_| Err(map_error(error.clone()))).collect(),
    }
}

fn outcome(value: Value) -> Result<()> {
    match value {
        Value::Int(1) => Ok(()),
        Value::BulkString(message) => Err(Error::Command {
            source: String::from_utf8_lossy(&message).into_owned().into(),
        }),
        other => Err(Error::Command {
            source: format!("unexpected outcome of a reply push: {other:?}").into(),
        }),
    }
}

/// Puts the runs' outcomes back in the items' order.
fn gather(count: usize, runs: &[Vec<usize>], outcomes: Vec<Vec<Result<()>>>) -> Vec<Result<()>> {
    let mut placed: Vec<Option<Result<()>>> = (0..count).map(|_| None).collect();
    for (run, outcomes) in runs.iter().zip(outcomes) {
        for (&i, outcome) in run.iter().zip(outcomes) {
            placed[i] = Some(outcome);
        }
    }
    placed
        .into_iter()
        .map(|outcome| outcome.expect("every item is in one run"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_keep_to_one_group_and_their_order() {
        let groups = [Some(1), Some(2), Some(1), None, Some(2), Some(1)];
        let runs = runs(groups.len(), |i| groups[i], |_| 1);
        assert_eq!(runs, vec![vec![3], vec![0, 2, 5], vec![1, 4]]);
    }

    #[test]
    fn runs_close_at_their_size_limits() {
        let runs_by_count = runs(MAX_RUN_ITEMS + 3, |_| None, |_| 1);
        assert_eq!(
            runs_by_count.iter().map(Vec::len).collect::<Vec<_>>(),
            [MAX_RUN_ITEMS, 3]
        );
        let sizes = [MAX_RUN_BYTES / 2, MAX_RUN_BYTES / 2, 10, MAX_RUN_BYTES * 3, 5];
        let runs_by_bytes = runs(sizes.len(), |_| None, |i| sizes[i]);
        assert_eq!(runs_by_bytes, vec![vec![0, 1], vec![2, 3], vec![4]]);
    }

    #[test]
    fn outcomes_follow_the_scripts_reply() {
        let reply = Ok(vec![
            Value::Int(1),
            Value::BulkString(b"WRONGTYPE Operation against a key holding the wrong kind of value".to_vec()),
        ]);
        let outcomes = outcomes(2, reply);
        assert!(outcomes[0].is_ok());
        assert!(matches!(&outcomes[1], Err(Error::Command { source }) if source.to_string().starts_with("WRONGTYPE")));
        let short = outcomes_of_count(3, vec![Value::Int(1)]);
        assert!(short.iter().all(Result::is_err));
    }

    fn outcomes_of_count(count: usize, values: Vec<Value>) -> Vec<Result<()>> {
        outcomes(count, Ok(values))
    }
}
