//! The storage the framework runs on: one trait, two implementations.
//!
//! RPC needs only a handful of Redis list and key operations. [`Backend`]
//! names exactly those, so the client and server are written once and run
//! unchanged on a real Redis server ([`Redis`]) or on the in-process store
//! ([`Memory`]). Both implementations pass the same conformance suite
//! (`tests/backend_conformance.rs`): what a test observes on one, it observes
//! on the other.
//!
//! Values are raw bytes; keys are strings. Every method is one atomic
//! operation on the store.
//!
//! Beside the list operations of RPC, the trait has the few document-level
//! primitives the shared state ([`crate::state`]) is built on (see
//! [`document`]): a versioned read, an atomic compare-and-set write that can
//! publish a notification, a hash read, and a pub/sub subscription.

pub mod delivery;
pub mod document;
pub mod memory;
pub mod redis;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use self::delivery::{HeldKeys, HeldReply, Taken};
pub(crate) use self::document::reem_not_offered;
pub use self::document::{
    Commit, CommitOutcome, HashFields, Notification, PubSubEvent, ReemCommit, ReemDoc, StoredDoc, Subscription,
};
pub use self::memory::Memory;
pub use self::redis::{Deployment, Redis, RedisConnection, RedisOptions, TlsIdentity};
use crate::Result;

/// How long a key has left to live, as Redis `PTTL` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// The key does not exist.
    Missing,
    /// The key exists and has no expiry.
    Persistent,
    /// The key exists and expires after this long.
    Expires(Duration),
}

/// The list and key operations the framework needs from a store.
///
/// The trait is sealed: [`Redis`] and [`Memory`] are its only
/// implementations. Beside plain list commands it has the shared state's
/// compare-and-set ([`Backend::doc_commit`]), whose exact semantics (those
/// of the Lua script in `redis/documents.rs`) a third backend would have to
/// recreate; the conformance suite holds the two that exist to one
/// behaviour. Code written against `SharedBackend` runs on either.
///
/// # Cancel safety
///
/// Dropping the future of [`Backend::blpop`] before it completes never loses
/// an element: an element the store handed over to the abandoned pop is put
/// back at the head of its list. Clients rely on this to time out, and
/// servers to shut down, without swallowing a message pushed at that moment.
#[async_trait]
pub trait Backend: sealed::Sealed + Send + Sync + std::fmt::Debug + 'static {
    /// Appends `values` to the tail of the list at `key` (`RPUSH`), creating
    /// it if needed; returns the list's new length.
    async fn rpush(&self, key: &str, values: &[&[u8]]) -> Result<usize>;

    /// Appends `value` to the list at `key` and sets the key to expire after
    /// `ttl`, as one atomic step (`RPUSH` then `PEXPIRE` in one script).
    /// When the push is refused (the key is not a list), the expiry is not
    /// set either.
    async fn rpush_expire(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()>;

    /// Pushes each `(key, value)` of `pushes` as [`Backend::rpush_expire`]
    /// does, all with the expiry `ttl`, in as few round trips as the store
    /// allows: one on a single Redis server, one per hash slot on a
    /// cluster. A server answering many calls at once pushes their replies
    /// this way. Returns each push's outcome, in order: a refused push
    /// (the key is not a list) fails alone, and each push is atomic on its
    /// own, not the batch as a whole.
    async fn rpush_expire_each(&self, pushes: &[(&str, &[u8])], ttl: Duration) -> Vec<Result<()>> {
        let mut outcomes = Vec::with_capacity(pushes.len());
        for (key, value) in pushes {
            outcomes.push(self.rpush_expire(key, value, ttl).await);
        }
        outcomes
    }

    /// Pushes `value` onto the head of the list at `key` (`LPUSH`), creating
    /// it if needed, so that the next pop takes it before anything already
    /// waiting; returns the list's new length.
    async fn lpush(&self, key: &str, value: &[u8]) -> Result<usize>;

    /// Removes and returns the head of the list at `key` (`LPOP`), or `None`
    /// when the list is empty or missing.
    async fn lpop(&self, key: &str) -> Result<Option<Vec<u8>>>;

    /// Removes and returns the head of the list at `key`, waiting for an
    /// element to be pushed when the list is empty (`BLPOP`). Waits at most
    /// `timeout` (`None`: forever) and then returns `None`. Callers waiting
    /// on the same key are served in the order they started waiting.
    ///
    /// The wait is never cut short by a client library's own response
    /// timeout, and the future is cancel safe (see the trait docs).
    async fn blpop(&self, key: &str, timeout: Option<Duration>) -> Result<Option<Vec<u8>>>;

    /// A caller's wait for the reply to its call, on `queue`: what
    /// [`Backend::blpop`] does, for a key only this caller waits on. A
    /// backend may wait for many callers' replies together (Redis waits on
    /// one connection for every caller waiting at once), so the wait is
    /// kept for that use. Cancel safe, like `blpop`.
    async fn wait_reply(&self, queue: &str, timeout: Option<Duration>) -> Result<Option<Vec<u8>>> {
        self.blpop(queue, timeout).await
    }

    /// Like [`Backend::blpop`], but once the list holds elements, removes and
    /// returns up to `max` of them from its head in one step (`BLMPOP … LEFT
    /// COUNT max`, Redis ≥ 7). Returns an empty vector on timeout. A server
    /// uses it to take every request it has room for in one round trip.
    /// Cancel safe, like `blpop`: abandoned elements go back in order.
    async fn blpop_many(&self, key: &str, max: usize, timeout: Option<Duration>) -> Result<Vec<Vec<u8>>>;

    /// Removes elements equal to `value` from the list at `key` (`LREM`):
    /// the first `count` from the head when `count > 0`, the last `-count`
    /// from the tail when `count < 0`, all when `count == 0`. Returns how
    /// many were removed.
    async fn lrem(&self, key: &str, count: isize, value: &[u8]) -> Result<usize>;

    /// The length of the list at `key` (`LLEN`); 0 when it does not exist.
    async fn llen(&self, key: &str) -> Result<usize>;

    /// Sets `key` to expire after `ttl` (`PEXPIRE`); false when the key does
    /// not exist.
    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool>;

    /// How long `key` has left to live (`PTTL`).
    async fn ttl(&self, key: &str) -> Result<Ttl>;

    /// Deletes `key` (`DEL`); false when it did not exist.
    async fn del(&self, key: &str) -> Result<bool>;

    /// Waits until the background work behind abandoned pops is done: every
    /// element they had taken is back in its list. A server calls it when it
    /// shuts down, so the program may exit right after without losing a
    /// request that arrived at that moment. Backends that put elements back
    /// synchronously need not override it.
    async fn settle(&self) {}

    /// The document at `key` with its version, or `None` when absent.
    async fn doc_get(&self, key: &str) -> Result<Option<StoredDoc>>;

    /// Applies `commit` atomically if the document's version is still
    /// `commit.expected` (see [`Commit`]).
    async fn doc_commit(&self, commit: &Commit) -> Result<CommitOutcome>;

    /// The document at `key` in REEM's layout (see
    /// [`Layout::Reem`](crate::state::Layout::Reem)), or `None` when
    /// absent. Only a single Redis server with the RedisJSON module keeps
    /// this layout; any other backend refuses with [`Error::Config`](crate::Error::Config).
    async fn reem_get(&self, key: &str) -> Result<Option<ReemDoc>> {
        let _ = key;
        Err(reem_not_offered())
    }

    /// Applies `commit` in REEM's layout, atomically, if the document is
    /// still the one of version `commit.expected` (see [`ReemCommit`]).
    async fn reem_commit(&self, commit: &ReemCommit) -> Result<CommitOutcome<ReemDoc>> {
        let _ = commit;
        Err(reem_not_offered())
    }

    /// Every field of the hash at `key` (`HGETALL`); empty when absent.
    async fn hash_get_all(&self, key: &str) -> Result<HashFields>;

    /// Sends `message` to the current subscribers of `channel` (`PUBLISH`).
    async fn publish(&self, channel: &str, message: &[u8]) -> Result<()>;

    /// The store's clock: the time since the Unix epoch as the store sees
    /// it (Redis `TIME`), which every process sharing the store agrees on
    /// whatever their own clocks say. The Redis backend learns its offset to
    /// the server's clock once and refreshes it in the background, so this
    /// seldom costs a round trip. On a cluster each node has a clock of its
    /// own: this is the clock of the node that holds `key` (the queue whose
    /// deadlines are being set or checked).
    async fn now(&self, key: &str) -> Result<Duration>;

    /// The store's clock as [`Backend::now`] reads it, when it can be read
    /// without waiting (the embedded store's, or Redis's once its offset
    /// is learned); `None` when it needs a round trip. Calls read it once
    /// each, so this spares them an `await` and an allocation.
    fn now_known(&self, key: &str) -> Option<Duration> {
        let _ = key;
        None
    }

    /// At-least-once delivery (see [`delivery`]): moves up to `max`
    /// requests from the head of `keys.queue` to the tail of `keys.held`,
    /// waiting up to `timeout` (`None`: forever) for the first, each with
    /// its delivery: 1 more than its count in `keys.deliveries` (see
    /// [`Backend::requeue_held`]). Each move is atomic, so a request is always in
    /// one of the two lists, whatever dies when. Cancel safe: a request
    /// moved for an abandoned call stays held, for the server's shutdown or
    /// the reaper to return.
    async fn take_held(&self, keys: &HeldKeys, max: usize, timeout: Option<Duration>) -> Result<Vec<Taken>>;

    /// Removes `taken`'s request from `keys.held`, with its delivery count
    /// if it was delivered before, and pushes `reply` (expiring) if given,
    /// as one atomic step.
    async fn release_held(&self, keys: &HeldKeys, taken: &Taken, reply: Option<HeldReply<'_>>) -> Result<()>;

    /// Releases each `(request, reply)` of `released` as
    /// [`Backend::release_held`] does with a reply, in as few round trips
    /// as the store allows (see [`Backend::rpush_expire_each`]). Returns
    /// each release's outcome, in order; a refused push releases nothing
    /// of its own request and fails alone.
    async fn release_held_each(&self, keys: &HeldKeys, released: &[(&Taken, HeldReply<'_>)]) -> Vec<Result<()>> {
        let mut outcomes = Vec::with_capacity(released.len());
        for (taken, reply) in released {
            outcomes.push(self.release_held(keys, taken, Some(*reply)).await);
        }
        outcomes
    }

    /// Returns every request of `keys.held` to the head of `keys.queue`, in
    /// the order they were taken, counting a delivery of each in
    /// `keys.deliveries`, and removes the server from `keys.servers`; when `only_if_dead`, does nothing (and returns
    /// `None`) while the server's liveness record exists. One atomic step,
    /// so two reapers never return a request twice.
    async fn requeue_held(&self, keys: &HeldKeys, only_if_dead: bool) -> Result<Option<usize>>;

    /// Replaces the hash at `key` with `fields`, expiring after `ttl`.
    async fn hash_replace(&self, key: &str, fields: &[(&str, &[u8])], ttl: Duration) -> Result<()>;

    /// Sets `field` of the hash at `key` (`HSET`).
    async fn hash_set(&self, key: &str, field: &str, value: &[u8]) -> Result<()>;

    /// Deletes `field` of the hash at `key` (`HDEL`); false when absent.
    async fn hash_del(&self, key: &str, field: &str) -> Result<bool>;

    /// Whether `key` exists (`EXISTS`).
    async fn exists(&self, key: &str) -> Result<bool>;

    /// Subscribes to the exact `channels` and the glob `patterns` (Redis
    /// `PSUBSCRIBE` syntax: `*`, `?`, `[abc]`, `[^a-z]`, `\` escapes). The
    /// subscription is active when this returns: everything published after
    /// is delivered. After a lost connection it resubscribes by itself and
    /// reports the gap (see [`PubSubEvent`]).
    async fn subscribe(&self, channels: &[String], patterns: &[String]) -> Result<Subscription>;

    /// Whether every operation completes in place, with no round trip to
    /// a server (the embedded store). Batching the replies of calls that
    /// end together, or a local timer beside a wait the store itself
    /// bounds, then only add work; over a connection they are what keeps
    /// throughput up and timeouts holding.
    fn answers_in_place(&self) -> bool {
        false
    }

    /// The same store through connections of its own, made on the Tokio
    /// runtime this runs on; `None` for a backend without connections (the
    /// embedded store, whose values are shared by every clone). A Redis
    /// connection is driven by the runtime that made it, so the blocking
    /// API gives each calling thread its own (see `blocking`'s module
    /// docs). Connection errors as [`Redis::connect_with`].
    async fn connect_anew(&self) -> Result<Option<SharedBackend>> {
        Ok(None)
    }
}

/// Keeps [`Backend`] to this crate's implementations.
mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Memory {}
    impl Sealed for super::Redis {}
}

/// A backend shared by clients and servers; cheap to clone.
pub type SharedBackend = Arc<dyn Backend>;

/// Anything a client or server can run on: a backend value, or an already
/// shared one.
pub trait IntoBackend {
    /// Wraps `self` for sharing.
    fn into_backend(self) -> SharedBackend;
}

impl<B: Backend> IntoBackend for B {
    fn into_backend(self) -> SharedBackend {
        Arc::new(self)
    }
}

impl IntoBackend for SharedBackend {
    fn into_backend(self) -> SharedBackend {
        self
    }
}
