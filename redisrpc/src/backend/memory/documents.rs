//! The embedded backend's documents, binary hashes and pub/sub: the same
//! semantics as the Lua scripts of the Redis backend.
//!
//! Documents and binary values are hashes in the one keyspace of
//! [`Store`], laid out as on Redis (a document is a hash of `json` and
//! `version`), so a key's type rules and what `hash_get_all` sees are the
//! same on both backends. A commit is one short critical section that never
//! awaits, which makes it atomic; whatever can be copied before it (a
//! frame's bytes) is copied before the lock is taken. Notifications are
//! sent on a [`broadcast`] channel while the lock is held, so every
//! subscriber sees them in the order of the writes.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use super::glob;
use super::store::{Store, Value};
use crate::Result;
use crate::backend::document::not_a_document;
use bytes::Bytes;

use crate::backend::{Commit, CommitOutcome, HashFields, PubSubEvent, StoredDoc, Subscription};

/// How many notifications a subscriber may fall behind before it misses
/// some (it is then told, as after a lost connection in Redis).
const CHANNEL_CAPACITY: usize = 4096;

/// A published message: channel and payload.
type Published = Arc<(String, Vec<u8>)>;

/// A commit with everything it writes already copied, ready to apply under
/// the lock.
pub(super) struct Prepared<'a> {
    commit: &'a Commit,
    json: Option<Vec<u8>>,
    hashes: Vec<(String, HashFields)>,
}

impl<'a> Prepared<'a> {
    pub(super) fn new(commit: &'a Commit) -> Self {
        Prepared {
            commit,
            json: commit.json.clone(),
            hashes: commit
                .hashes
                .iter()
                .map(|(key, fields)| (key.clone(), HashFields::clone(fields)))
                .collect(),
        }
    }
}

impl Store {
    /// The document at `key`, read as the Redis backend's read script does.
    pub(super) fn doc_get(&mut self, key: &str, now: Instant) -> Result<Option<StoredDoc>> {
        let Some(entry) = self.entry(key, now) else {
            return Ok(None);
        };
        let Value::Hash(fields) = &entry.value else {
            return Err(not_a_document(key, entry.value.type_name()));
        };
        let field = |name: &str| fields.iter().find(|(field, _)| field == name).map(|(_, value)| value);
        let Some(json) = field("json") else {
            return Err(not_a_document(key, "hash"));
        };
        // As on Redis: a version that is missing or not a number reads as 0.
        let version = field("version")
            .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
            .unwrap_or(0);
        Ok(Some(StoredDoc {
            version,
            json: json.to_vec(),
        }))
    }

    /// Applies `prepared` if the document's version is the expected one;
    /// returns the outcome and the notification's payload, if it publishes.
    pub(super) fn commit(
        &mut self,
        prepared: Prepared<'_>,
        now: Instant,
    ) -> Result<(CommitOutcome, Option<Published>)> {
        let commit = prepared.commit;
        let current = self.doc_get(&commit.key, now)?;
        if current.as_ref().map_or(0, |doc| doc.version) != commit.expected {
            return Ok((CommitOutcome::Conflict(current), None));
        }
        for key in &commit.delete {
            self.entries.remove(key);
        }
        for (key, fields) in prepared.hashes {
            self.insert(&key, Value::Hash(fields));
        }
        self.clock += 1;
        let version = self.clock;
        let stored = match prepared.json {
            Some(json) => {
                let fields = vec![
                    ("json".to_owned(), Bytes::from(json)),
                    ("version".to_owned(), Bytes::from(version.to_string())),
                ];
                self.insert(&commit.key, Value::Hash(fields));
                version
            }
            None => {
                self.entries.remove(&commit.key);
                0
            }
        };
        let published = commit
            .publish
            .as_ref()
            .map(|notification| Arc::new((notification.channel.clone(), notification.payload(version))));
        Ok((CommitOutcome::Committed(stored), published))
    }

    pub(super) fn hash_get_all(&mut self, key: &str, now: Instant) -> Result<HashFields> {
        Ok(self.hash(key, now)?.cloned().unwrap_or_default())
    }
}

/// The publish side of pub/sub: one broadcast channel, filtered by each
/// subscriber.
pub(super) struct PubSub {
    events: broadcast::Sender<Published>,
}

impl Default for PubSub {
    fn default() -> Self {
        PubSub {
            events: broadcast::channel(CHANNEL_CAPACITY).0,
        }
    }
}

impl PubSub {
    /// Sends `message` to every subscriber. Call it with the store locked,
    /// so messages go out in the order of the writes.
    pub(super) fn send(&self, message: Published) {
        // No receivers is not an error: nobody is listening.
        let _ = self.events.send(message);
    }

    pub(super) fn subscribe(&self, channels: &[String], patterns: &[String]) -> Subscription {
        let state = Listener {
            receiver: self.events.subscribe(),
            channels: channels.to_vec(),
            patterns: patterns.to_vec(),
            pending: VecDeque::new(),
        };
        Box::pin(futures::stream::unfold(state, |mut state| async move {
            let event = state.next().await?;
            Some((event, state))
        }))
    }
}

struct Listener {
    receiver: broadcast::Receiver<Published>,
    channels: Vec<String>,
    patterns: Vec<String>,
    pending: VecDeque<PubSubEvent>,
}

impl Listener {
    async fn next(&mut self) -> Option<PubSubEvent> {
        if let Some(event) = self.pending.pop_front() {
            return Some(event);
        }
        loop {
            match self.receiver.recv().await {
                Ok(message) => {
                    let (channel, payload) = &*message;
                    let wanted = self.channels.iter().any(|c| c == channel)
                        || self.patterns.iter().any(|p| glob::matches(p, channel));
                    if wanted {
                        return Some(PubSubEvent::Message {
                            channel: channel.clone(),
                            payload: payload.clone(),
                        });
                    }
                }
                // Fell behind: reported as a lost connection, as the Redis
                // backend does when its buffer fills; the receiver already
                // skipped ahead to the oldest message it still has.
                Err(RecvError::Lagged(_)) => {
                    self.pending.push_back(PubSubEvent::Resubscribed);
                    return Some(PubSubEvent::Disconnected);
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}
