//! The embedded backend's documents, binary hashes and pub/sub: the same
//! semantics as the Lua script of the Redis backend.
//!
//! Documents sit behind their own [`std::sync::Mutex`], apart from the
//! lists: a commit is a short critical section that never awaits, which
//! makes it atomic, and RPC traffic on the lists never waits for it.
//! Notifications are sent on a [`broadcast`] channel while the lock is held,
//! so every subscriber sees them in the order of the writes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use super::glob;
use crate::backend::{Commit, CommitOutcome, HashFields, PubSubEvent, StoredDoc, Subscription};

/// How many notifications a subscriber may fall behind before it misses
/// some (it is then told, as after a lost connection in Redis).
const CHANNEL_CAPACITY: usize = 4096;

/// A published message: channel and payload.
type Published = Arc<(String, Vec<u8>)>;

pub(super) struct Documents {
    store: Mutex<DocStore>,
    events: broadcast::Sender<Published>,
}

#[derive(Default)]
struct DocStore {
    docs: HashMap<String, StoredDoc>,
    hashes: HashMap<String, HashFields>,
    /// The last version given out, shared by all documents so that no
    /// version is ever reused.
    clock: u64,
}

impl Default for Documents {
    fn default() -> Self {
        Documents {
            store: Mutex::default(),
            events: broadcast::channel(CHANNEL_CAPACITY).0,
        }
    }
}

impl Documents {
    fn lock(&self) -> MutexGuard<'_, DocStore> {
        // No operation panics midway, so a poisoned lock holds consistent data.
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn get(&self, key: &str) -> Option<StoredDoc> {
        self.lock().docs.get(key).cloned()
    }

    /// Deletes the document or hash at `key`; false when there was none.
    pub(super) fn remove(&self, key: &str) -> bool {
        let mut store = self.lock();
        let document = store.docs.remove(key).is_some();
        store.hashes.remove(key).is_some() || document
    }

    pub(super) fn hash_get_all(&self, key: &str) -> HashFields {
        self.lock().hashes.get(key).cloned().unwrap_or_default()
    }

    pub(super) fn commit(&self, commit: &Commit) -> CommitOutcome {
        let mut store = self.lock();
        let current = store.docs.get(&commit.key);
        if current.map_or(0, |doc| doc.version) != commit.expected {
            return CommitOutcome::Conflict(current.cloned());
        }
        for key in &commit.delete {
            store.hashes.remove(key);
        }
        for (key, fields) in &commit.hashes {
            store.hashes.insert(key.clone(), fields.clone());
        }
        store.clock += 1;
        let version = store.clock;
        let stored = match &commit.json {
            Some(json) => {
                let doc = StoredDoc {
                    version,
                    json: json.clone(),
                };
                store.docs.insert(commit.key.clone(), doc);
                version
            }
            None => {
                store.docs.remove(&commit.key);
                0
            }
        };
        if let Some(notification) = &commit.publish {
            // No receivers is not an error: nobody is listening.
            let _ = self
                .events
                .send(Arc::new((notification.channel.clone(), notification.payload(version))));
        }
        CommitOutcome::Committed(stored)
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
