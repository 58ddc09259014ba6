//! The shared state's primitives on Redis: a versioned read, a
//! compare-and-set Lua script, and a pub/sub connection that resubscribes by
//! itself.
//!
//! The script never decodes JSON (Lua's `cjson` would round numbers); it
//! only compares the version and stores the text the caller computed, so
//! values stay exact and any stock Redis ≥ 7 or Valkey runs it.

use std::time::{Duration, Instant};

use futures::StreamExt;
use redis::aio::ConnectionManager;
use redis::{Client, ErrorKind, ServerErrorKind, Value};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{OnceCell, mpsc, oneshot};

use super::map_error;
use crate::backend::{Commit, CommitOutcome, HashFields, PubSubEvent, StoredDoc, Subscription};
use crate::{Error, Result};

/// The key of the counter that gives out versions (see [`StoredDoc::version`]).
///
/// When it is missing (a new server, `FLUSHALL`, a restart without
/// persistence) the script starts it at the server's time in microseconds,
/// which is beyond any version given out before, since writes never come a
/// million a second. So a version is never reused even when the counter is
/// lost: a process's copy of a document from before cannot pass the
/// compare-and-set, and a mirror sees the gap and reads again.
pub(crate) const CLOCK_KEY: &str = "__state__:clock";

/// How many pub/sub events may wait for a slow subscriber. The `redis`
/// crate reads the socket into an unbounded queue, so a slow reader never
/// makes Redis push back: when this buffer is full the forwarding task drops
/// the connection itself and reports the gap, as the embedded backend does
/// when a subscriber falls behind by as many.
const EVENT_BUFFER: usize = 4096;

/// Reconnection backoff of a subscription: from the first to the longest.
/// A connection must stay up this long (the longest) before the backoff
/// starts again from the first, so a server that accepts and then drops
/// connections is not retried in a tight loop.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(20), Duration::from_secs(1));

/// The compare-and-set. KEYS: the document, the clock, the keys to delete,
/// the hashes to write. ARGV: expected version, "1" to write JSON or "0" to
/// delete, the JSON, channel ("" for none), payload head, payload tail, the
/// number of keys to delete, then per hash its field count and fields.
const COMMIT_SCRIPT: &str = r#"
local current = redis.call('HMGET', KEYS[1], 'version', 'json')
if not current[2] and redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.error_reply('WRONGTYPE ' .. KEYS[1] .. ' is a hash without a json field, not a state document')
end
if (current[1] or '0') ~= ARGV[1] then
  if current[2] then return {0, current[1] or '0', current[2]} end
  return {0}
end
local deletes = tonumber(ARGV[7])
for i = 3, 2 + deletes do redis.call('DEL', KEYS[i]) end
local a = 8
for i = 3 + deletes, #KEYS do
  redis.call('DEL', KEYS[i])
  local n = tonumber(ARGV[a])
  for f = a + 1, a + 2 * n, 2 do redis.call('HSET', KEYS[i], ARGV[f], ARGV[f + 1]) end
  a = a + 1 + 2 * n
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  local now = redis.call('TIME')
  redis.call('SET', KEYS[2], now[1] .. string.format('%06d', tonumber(now[2])))
end
local version = redis.call('INCR', KEYS[2])
local written = 0
if ARGV[2] == '1' then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'json', ARGV[3], 'version', string.format('%d', version))
  written = version
else
  redis.call('DEL', KEYS[1])
end
if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[4], ARGV[5] .. string.format('%d', version) .. ARGV[6]) end
return {1, written}
"#;

/// The script's SHA1, loaded into the server on first use.
#[derive(Default)]
pub(super) struct Scripts {
    commit: OnceCell<String>,
}

pub(super) async fn doc_get(manager: &ConnectionManager, key: &str) -> Result<Option<StoredDoc>> {
    let ((version, json), exists): ((Option<u64>, Option<Vec<u8>>), bool) = redis::pipe()
        .cmd("HMGET")
        .arg(key)
        .arg("version")
        .arg("json")
        .cmd("EXISTS")
        .arg(key)
        .query_async(&mut manager.clone())
        .await
        .map_err(map_error)?;
    match json {
        // A document another program wrote without a version reads as
        // version 0, which the script also compares it as.
        Some(json) => Ok(Some(StoredDoc {
            version: version.unwrap_or(0),
            json,
        })),
        // Another program's hash (a REEM array, say) is not taken for an
        // absent document, which a write would replace; the script refuses
        // it likewise.
        None if exists => Err(Error::WrongType {
            path: key.to_owned(),
            expected: "a state document (a hash with a `json` field)".to_owned(),
            found: "a Redis hash without a `json` field".to_owned(),
        }),
        None => Ok(None),
    }
}

pub(super) async fn hash_get_all(manager: &ConnectionManager, key: &str) -> Result<HashFields> {
    redis::cmd("HGETALL")
        .arg(key)
        .query_async(&mut manager.clone())
        .await
        .map_err(map_error)
}

pub(super) async fn doc_commit(
    manager: &ConnectionManager,
    scripts: &Scripts,
    commit: &Commit,
) -> Result<CommitOutcome> {
    let mut cmd = redis::cmd("EVALSHA");
    let sha = load(manager, scripts, false).await?;
    cmd.arg(sha.as_str())
        .arg(2 + commit.delete.len() + commit.hashes.len())
        .arg(&commit.key)
        .arg(CLOCK_KEY);
    for key in &commit.delete {
        cmd.arg(key);
    }
    for (key, _) in &commit.hashes {
        cmd.arg(key);
    }
    let publish = commit.publish.clone().unwrap_or_default();
    cmd.arg(commit.expected)
        .arg(if commit.json.is_some() { "1" } else { "0" })
        .arg(commit.json.as_deref().unwrap_or_default())
        .arg(&publish.channel)
        .arg(&publish.head)
        .arg(&publish.tail)
        .arg(commit.delete.len());
    for (_, fields) in &commit.hashes {
        cmd.arg(fields.len());
        for (field, value) in fields {
            cmd.arg(field).arg(value);
        }
    }
    let reply: Vec<Value> = match cmd.query_async(&mut manager.clone()).await {
        // The server forgot the script (restart, `SCRIPT FLUSH`): load it
        // again and run it once more. It had not run, so nothing is doubled.
        Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
            load(manager, scripts, true).await?;
            cmd.query_async(&mut manager.clone()).await
        }
        other => other,
    }
    .map_err(map_error)?;
    outcome(reply)
}

/// Loads the script (again, when `reload`), returning its SHA1.
async fn load(manager: &ConnectionManager, scripts: &Scripts, reload: bool) -> Result<String> {
    let load = || async {
        redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(COMMIT_SCRIPT)
            .query_async::<String>(&mut manager.clone())
            .await
            .map_err(map_error)
    };
    if reload {
        // Same script, same SHA1: the cached value stays right.
        return load().await;
    }
    scripts.commit.get_or_try_init(load).await.cloned()
}

fn outcome(reply: Vec<Value>) -> Result<CommitOutcome> {
    let int = |value: &Value| -> Option<u64> {
        match value {
            Value::Int(n) => u64::try_from(*n).ok(),
            Value::BulkString(bytes) => std::str::from_utf8(bytes).ok()?.parse().ok(),
            _ => None,
        }
    };
    let unexpected = || Error::Command {
        source: format!("unexpected reply from the commit script: {reply:?}").into(),
    };
    match reply.as_slice() {
        [status, version] if int(status) == Some(1) => {
            Ok(CommitOutcome::Committed(int(version).ok_or_else(unexpected)?))
        }
        [status] if int(status) == Some(0) => Ok(CommitOutcome::Conflict(None)),
        [status, version, Value::BulkString(json)] if int(status) == Some(0) => {
            Ok(CommitOutcome::Conflict(Some(StoredDoc {
                version: int(version).ok_or_else(unexpected)?,
                json: json.clone(),
            })))
        }
        _ => Err(unexpected()),
    }
}

/// How a subscription's connection is made and watched.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timing {
    /// How long connecting and subscribing may take.
    pub(super) connect_timeout: Duration,
    /// How often the connection is checked with a `PING`.
    pub(super) ping_interval: Duration,
    /// How long a `PING` may wait for its reply before the connection counts
    /// as dropped.
    pub(super) ping_timeout: Duration,
}

/// Subscribes on a pub/sub connection of its own, kept by a task that
/// reconnects and resubscribes until the [`Subscription`] is dropped.
pub(super) async fn subscribe(
    client: &Client,
    timing: Timing,
    channels: &[String],
    patterns: &[String],
) -> Result<Subscription> {
    let (events, receiver) = mpsc::channel(EVENT_BUFFER);
    let (ready, first) = oneshot::channel();
    let listener = Listener {
        client: client.clone(),
        timing,
        channels: channels.to_vec(),
        patterns: patterns.to_vec(),
        events,
    };
    tokio::spawn(listener.run(ready));
    first.await.map_err(|_| Error::Connection {
        source: "the subscription task ended".into(),
    })??;
    Ok(Box::pin(futures::stream::unfold(receiver, |mut receiver| async move {
        let event = receiver.recv().await?;
        Some((event, receiver))
    })))
}

struct Listener {
    client: Client,
    timing: Timing,
    channels: Vec<String>,
    patterns: Vec<String>,
    events: mpsc::Sender<PubSubEvent>,
}

/// Why [`Listener::forward`] stopped.
enum Stopped {
    /// The connection dropped, stopped answering, or the subscriber fell
    /// too far behind: reconnect.
    Dropped,
    /// The [`Subscription`] was dropped: stop.
    Unsubscribed,
}

impl Listener {
    /// Connects, reports the first outcome on `ready`, then forwards
    /// messages, reconnecting with backoff whenever the connection drops.
    async fn run(self, ready: oneshot::Sender<Result<()>>) {
        let mut ready = Some(ready);
        let mut backoff = BACKOFF.0;
        loop {
            match self.connect().await {
                Ok(pubsub) => {
                    match ready.take() {
                        Some(ready) => {
                            let _ = ready.send(Ok(()));
                        }
                        None => {
                            if self.events.send(PubSubEvent::Resubscribed).await.is_err() {
                                return;
                            }
                        }
                    }
                    let connected = Instant::now();
                    if let Stopped::Unsubscribed = self.forward(pubsub).await {
                        return;
                    }
                    tracing::debug!("pub/sub connection lost; resubscribing");
                    if self.events.send(PubSubEvent::Disconnected).await.is_err() {
                        return;
                    }
                    // Only a connection that stayed up a while earns a
                    // quick retry; one dropped at once waits longer each
                    // time, as a failed connect does.
                    if connected.elapsed() >= BACKOFF.1 {
                        backoff = BACKOFF.0;
                    }
                }
                Err(error) => {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(Err(error));
                        return;
                    }
                    tracing::debug!("resubscribing failed: {error}");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.events.closed() => return,
            }
            backoff = (backoff * 2).min(BACKOFF.1);
        }
    }

    async fn connect(&self) -> Result<redis::aio::PubSub> {
        let connect = async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            if !self.channels.is_empty() {
                pubsub.subscribe(&self.channels).await?;
            }
            if !self.patterns.is_empty() {
                pubsub.psubscribe(&self.patterns).await?;
            }
            Ok(pubsub)
        };
        let timeout = self.timing.connect_timeout;
        match tokio::time::timeout(timeout, connect).await {
            Ok(result) => result.map_err(map_error),
            Err(_) => Err(Error::Connection {
                source: format!("subscribing took longer than {timeout:?}").into(),
            }),
        }
    }

    /// Forwards messages until the connection drops or the subscription is
    /// dropped.
    ///
    /// Never waits for the subscriber: the `redis` crate keeps reading the
    /// socket into an unbounded queue whatever we do, so waiting here would
    /// only move the growing backlog there. A full buffer drops the
    /// connection instead, and the subscriber learns of the gap.
    ///
    /// A connection whose peer vanished without closing it (a cut cable, a
    /// crashed host) delivers nothing and reports no error, so a `PING`
    /// every [`Timing::ping_interval`] must be answered within
    /// [`Timing::ping_timeout`]. The `redis` crate's own task reads the
    /// reply, whatever the subscriber's pace, so a slow subscriber is not
    /// mistaken for a dead connection.
    async fn forward(&self, pubsub: redis::aio::PubSub) -> Stopped {
        let (mut sink, mut messages) = pubsub.split();
        let timing = self.timing;
        let heartbeat = async move {
            loop {
                tokio::time::sleep(timing.ping_interval).await;
                match tokio::time::timeout(timing.ping_timeout, sink.ping::<Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => {
                        tracing::debug!("pub/sub PING failed: {error}");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!("pub/sub PING unanswered for {:?}", timing.ping_timeout);
                        return;
                    }
                }
            }
        };
        tokio::pin!(heartbeat);
        loop {
            tokio::select! {
                message = messages.next() => {
                    let Some(message) = message else { return Stopped::Dropped };
                    let event = PubSubEvent::Message {
                        channel: message.get_channel_name().to_owned(),
                        payload: message.get_payload_bytes().to_vec(),
                    };
                    match self.events.try_send(event) {
                        Ok(()) => {}
                        Err(TrySendError::Full(_)) => {
                            tracing::warn!(
                                "a subscriber fell {EVENT_BUFFER} messages behind; dropping its connection"
                            );
                            return Stopped::Dropped;
                        }
                        Err(TrySendError::Closed(_)) => return Stopped::Unsubscribed,
                    }
                }
                () = &mut heartbeat => return Stopped::Dropped,
                _ = self.events.closed() => return Stopped::Unsubscribed,
            }
        }
    }
}
