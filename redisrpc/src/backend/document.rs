//! The document-level primitives the shared state ([`crate::state`]) needs
//! from a backend, and the values they exchange.
//!
//! The state module computes every change in Rust and hands the backend a
//! finished [`Commit`], which the backend applies atomically if the
//! document's version is still the one the change was computed from. Keeping
//! the backends to this small compare-and-set keeps all document logic, and
//! the exactness of its numbers, in one place that both backends share.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

use futures::Stream;

use crate::Error;

/// The error for a document operation on a key that holds something else:
/// `redis_type` is what Redis's `TYPE` says it is (`hash` for a hash with
/// no `json` field, such as another program's array). Both backends refuse
/// with exactly this error.
pub(crate) fn not_a_document(key: &str, redis_type: &str) -> Error {
    let found = match redis_type {
        "hash" => "a Redis hash without a `json` field".to_owned(),
        other => format!("a Redis {other}"),
    };
    Error::WrongType {
        path: key.to_owned(),
        expected: "a state document (a hash with a `json` field)".to_owned(),
        found,
    }
}

/// The fields of a Redis hash: `(name, value)` pairs. A value is shared,
/// not copied, when it is cloned: an array's bytes go from the array to
/// the store without a copy of their own.
pub type HashFields = Vec<(String, Bytes)>;

/// A document as stored: the version of its last write and its JSON text.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredDoc {
    /// Strictly increasing over the writes of the document, so a version is
    /// never reused, not even after the document is deleted and created
    /// again. 0 only for a document another program wrote without a
    /// version.
    pub version: u64,
    /// The document, as JSON text.
    pub json: Vec<u8>,
}

impl fmt::Debug for StoredDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredDoc")
            .field("version", &self.version)
            .field("json", &String::from_utf8_lossy(&self.json))
            .finish()
    }
}

/// One atomic write of a document, with the side writes that go with it.
///
/// Applied all or nothing, and only when the document's current version is
/// [`Commit::expected`]. In order: the keys in [`Commit::delete`] are
/// deleted, the hashes in [`Commit::hashes`] replace what was at their keys,
/// the document is written (or deleted) with a new version, and the
/// notification, if any, is published.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    /// The document's key.
    pub key: String,
    /// The version the change was computed from; 0 when the document was
    /// absent.
    pub expected: u64,
    /// The new JSON text; `None` deletes the document.
    pub json: Option<Vec<u8>>,
    /// Keys to delete (binary values no longer referenced).
    pub delete: Vec<String>,
    /// Hashes to write, each replacing its key entirely: `(key, fields)`.
    /// Shared, so that a change tried again after a conflict does not copy
    /// a camera frame each time.
    pub hashes: Vec<(String, Arc<HashFields>)>,
    /// The notification to publish once written.
    pub publish: Option<Notification>,
}

/// A pub/sub message published by a [`Commit`]. Its payload is
/// `head`, the commit's new version in decimal, then `tail`: the version is
/// only known once the commit is applied.
#[derive(Debug, Clone, Default)]
pub struct Notification {
    /// The channel.
    pub channel: String,
    /// The payload before the version.
    pub head: Vec<u8>,
    /// The payload after the version.
    pub tail: Vec<u8>,
}

impl Notification {
    /// The payload for a commit that got `version`.
    pub fn payload(&self, version: u64) -> Vec<u8> {
        let version = version.to_string();
        let mut payload = Vec::with_capacity(self.head.len() + version.len() + self.tail.len());
        payload.extend_from_slice(&self.head);
        payload.extend_from_slice(version.as_bytes());
        payload.extend_from_slice(&self.tail);
        payload
    }
}

/// What became of a [`Commit`] (or a [`ReemCommit`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome<D = StoredDoc> {
    /// Applied; the document now has this version (0 when it was deleted).
    Committed(u64),
    /// Not applied: the document changed since it was read. It is now this
    /// (`None`: absent), so the caller can recompute without another read.
    Conflict(Option<D>),
}

/// A document in REEM's layout, as stored: the RedisJSON document `K` and
/// its metadata `K&&&&metadata`.
#[derive(Clone, PartialEq, Eq)]
pub struct ReemDoc {
    /// REEM keeps no version: this one is a fingerprint of the document and
    /// its metadata, which changes whenever either does (not 0).
    pub version: u64,
    /// The JSON text of `K`.
    pub json: Vec<u8>,
    /// The JSON text of `K&&&&metadata`; `None` when there is none.
    pub metadata: Option<Vec<u8>>,
}

impl fmt::Debug for ReemDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReemDoc")
            .field("version", &self.version)
            .field("json", &String::from_utf8_lossy(&self.json))
            .field("metadata", &self.metadata.as_deref().map(String::from_utf8_lossy))
            .finish()
    }
}

/// One atomic write of a document in REEM's layout, applied only when the
/// document is still the one of version [`ReemCommit::expected`]. In order:
/// the keys in `delete` are deleted, the hashes replace what was at their
/// keys, the document is written (or deleted), the metadata is written if
/// given (announced on REEM's `__keyspace@0__:K&&&&metadata` channel, as
/// REEM's writers expect), and `publish`, if given, gets REEM's `Publish`.
#[derive(Debug, Clone, Default)]
pub struct ReemCommit {
    /// The document's key, `K`.
    pub key: String,
    /// The version the change was computed from; 0 when it was absent.
    pub expected: u64,
    /// The new JSON text of `K`; `None` deletes it.
    pub json: Option<Vec<u8>>,
    /// The new metadata text, when the arrays' paths changed.
    pub metadata: Option<Vec<u8>>,
    /// Keys to delete (arrays no longer in the document).
    pub delete: Vec<String>,
    /// Hashes to write, each replacing its key: `(key, fields)`.
    pub hashes: Vec<(String, Arc<HashFields>)>,
    /// The channel to publish REEM's `Publish` on once written.
    pub publish: Option<String>,
}

/// The refusal of the REEM layout by a backend that does not keep it.
pub(crate) fn reem_not_offered() -> Error {
    Error::Config(
        "REEM's layout needs a single Redis server (or a Sentinel-managed master) with the RedisJSON module; \
         the embedded backend and Redis Cluster do not offer it"
            .into(),
    )
}

/// What a [`Subscription`] delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PubSubEvent {
    /// A message published on a subscribed channel or one matching a
    /// subscribed pattern.
    Message {
        /// The channel it was published on.
        channel: String,
        /// The payload.
        payload: Vec<u8>,
    },
    /// The subscription stopped receiving: the connection dropped, or the
    /// subscriber fell too far behind. Messages from now until the next
    /// [`PubSubEvent::Resubscribed`] are lost.
    Disconnected,
    /// The subscription receives again, after a [`PubSubEvent::Disconnected`].
    /// Whoever keeps state from the messages must re-read it now.
    Resubscribed,
}

/// A live subscription: a stream of [`PubSubEvent`]s that ends only when the
/// backend is gone. Dropping it unsubscribes.
pub type Subscription = Pin<Box<dyn Stream<Item = PubSubEvent> + Send>>;
