//! The in-process backend: Redis's list and key semantics without a server.
//!
//! [`Memory`] exists for programs whose clients and servers all live in one
//! process (tools, robots' internal services), for examples that should run
//! without installing anything, and for tests that should be fast and need no
//! `redis-server`. It passes the same conformance suite as the Redis backend,
//! so code moves between the two unchanged.
//!
//! # How it works
//!
//! All state sits behind one [`std::sync::Mutex`]: one keyspace of lists and
//! hashes (documents and binary values), with Redis's type rules between
//! them (`store.rs`, `documents.rs`). Every operation is a short critical
//! section that never awaits, which is what makes each operation atomic, as
//! a Redis command is, and why a blocking mutex is the right tool here (an
//! async mutex would only add overhead). One lock rather than one for lists
//! and one for documents: a type check spans both, and a document commit
//! holds it only to swap in what it copied beforehand.
//!
//! **Blocking pops hand elements over directly, as Redis does.** Each key has a
//! FIFO of waiting [`blpop`](Backend::blpop) calls. A push gives each value to
//! the longest-waiting pop and only appends to the list what no waiter takes,
//! so a waiting pop wakes as soon as the value is pushed, and waiters are
//! served in the order they started waiting. A pop whose future is dropped
//! after a value was handed to it puts the value back at the head: to the next
//! waiter, or at the front of the list, with the expiry its key had (unless
//! that has passed meanwhile: then the element went with its key, as it would
//! have in Redis). A pop that times out just as a value is handed to it
//! returns the value. Nothing is lost or duplicated.
//!
//! **Expiry needs no background task.** Every access first checks the key it
//! touches, and every operation purges the keys whose deadline has passed,
//! from a min-heap of deadlines (amortised `O(log n)` per expired key), so
//! reply queues nobody reads do not pile up even if their keys are never
//! touched again. Deadlines use [`tokio::time::Instant`], which is the system
//! clock in normal use (no runtime needed) and follows tokio's paused clock in
//! tests that pause time, consistently with the timeouts of `blpop`.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::oneshot;
use tokio::time::Instant;

use self::documents::{Prepared, PubSub};
use self::store::{Delivery, Store, deadline_after};
use super::delivery::{self, HeldKeys, HeldReply, Taken};
use super::{Backend, Commit, CommitOutcome, HashFields, StoredDoc, Subscription, Ttl};
use crate::Result;

mod documents;
mod glob;
mod store;

/// An in-process store with the semantics of Redis lists and key expiry.
///
/// Clones share one store, so a client and a server built from clones of the
/// same `Memory` talk to each other. Separate `Memory::new()` values are
/// separate stores. Operations never fail.
///
/// Expiry works without any runtime; [`Backend::blpop`] with a timeout needs
/// a tokio runtime with time enabled (as any tokio timeout does).
///
/// ```
/// use redisrpc::backend::{Backend, Memory};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> redisrpc::Result<()> {
/// let store = Memory::new();
/// let peer = store.clone();
/// store.rpush("queue", &[b"hello"]).await?;
/// assert_eq!(peer.blpop("queue", None).await?, Some(b"hello".to_vec()));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Memory {
    /// The one keyspace: lists, documents and binary hashes (`store.rs`,
    /// `documents.rs`).
    store: Arc<Mutex<Store>>,
    /// The shared state's notifications (`documents.rs`).
    pubsub: Arc<PubSub>,
}

impl Memory {
    /// A new, empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` on the store, after dropping the keys that have expired.
    fn with<T>(&self, f: impl FnOnce(&mut Store, Instant) -> T) -> T {
        let mut store = lock(&self.store);
        let now = Instant::now();
        store.purge_expired(now);
        f(&mut store, now)
    }
}

impl fmt::Debug for Memory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Memory");
        let store = match self.store.try_lock() {
            Ok(store) => Some(store),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        };
        match store {
            Some(store) => out.field("keys", &store.entries.len()).field(
                "waiting_pops",
                &store.waiters.values().map(store::Waiters::len).sum::<usize>(),
            ),
            None => out.field("store", &format_args!("<in use>")),
        };
        out.finish()
    }
}

/// Locks the store. A panic while it was held cannot leave it half-updated in
/// a way later operations would trip on (no operation panics midway by
/// design), so a poisoned lock is simply taken over.
fn lock(store: &Mutex<Store>) -> MutexGuard<'_, Store> {
    store.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The registration of a waiting pop. Dropping it (the pop's future was
/// dropped) withdraws the registration and puts back an element that was
/// handed over in the meantime.
struct Wait<'a> {
    store: &'a Mutex<Store>,
    key: &'a str,
    id: u64,
    rx: oneshot::Receiver<Delivery>,
    finished: bool,
}

impl Wait<'_> {
    /// Withdraws the registration; returns what was handed over before that.
    fn withdraw(&mut self, store: &mut Store) -> Option<Delivery> {
        self.finished = true;
        store.remove_waiter(self.key, self.id);
        // Hand-offs happen under the lock we hold, so one that happened is
        // visible here, and none can happen any more.
        self.rx.try_recv().ok()
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut store = lock(self.store);
        if let Some(delivery) = self.withdraw(&mut store) {
            store.put_back(self.key, delivery, Instant::now());
        }
    }
}

impl Memory {
    /// [`Backend::blpop`], here rather than in the trait so that
    /// [`Backend::wait_reply`] runs it without a second boxed future.
    async fn pop_or_wait(&self, key: &str, timeout: Option<Duration>) -> Result<Option<Vec<u8>>> {
        let (mut wait, now) = {
            let mut store = lock(&self.store);
            let now = Instant::now();
            store.purge_expired(now);
            if let Some(value) = store.pop_front(key, now)? {
                return Ok(Some(value));
            }
            if timeout == Some(Duration::ZERO) {
                return Ok(None);
            }
            let (id, rx) = store.add_waiter(key);
            let wait = Wait {
                store: &self.store,
                key,
                id,
                rx,
                finished: false,
            };
            (wait, now)
        };
        let received = match timeout {
            None => (&mut wait.rx).await.ok(),
            // Timed from the moment the pop found the list empty.
            Some(timeout) => tokio::time::timeout_at(deadline_after(now, timeout), &mut wait.rx)
                .await
                .ok()
                .and_then(Result::ok),
        };
        let delivery = match received {
            Some(delivery) => {
                // The pusher removed our registration when it handed over.
                wait.finished = true;
                Some(delivery)
            }
            // Timed out (the sender cannot be dropped unused while we hold
            // the store). An element handed over at this very moment is ours
            // to return: the pop was served before it withdrew.
            None => wait.withdraw(&mut lock(&self.store)),
        };
        Ok(delivery.map(|delivery| delivery.value))
    }
}

#[async_trait]
impl Backend for Memory {
    fn answers_in_place(&self) -> bool {
        true
    }

    async fn rpush(&self, key: &str, values: &[&[u8]]) -> Result<usize> {
        self.with(|store, now| store.push_back(key, values, now, None))
    }

    async fn rpush_expire(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
        self.with(|store, now| {
            store.list(key, now)?;
            if ttl.is_zero() {
                // As `PEXPIRE 0` in the transaction: the key is deleted before
                // any waiting pop could be served.
                store.entries.remove(key);
                return Ok(());
            }
            let deadline = deadline_after(now, ttl);
            store.push_back(key, &[value], now, Some(deadline))?;
            store.set_deadline(key, deadline);
            Ok(())
        })
    }

    async fn lpush(&self, key: &str, value: &[u8]) -> Result<usize> {
        self.with(|store, now| store.push_front(key, value, now))
    }

    async fn lpop(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.with(|store, now| store.pop_front(key, now))
    }

    async fn blpop(&self, key: &str, timeout: Option<Duration>) -> Result<Option<Vec<u8>>> {
        self.pop_or_wait(key, timeout).await
    }

    async fn wait_reply(&self, queue: &str, timeout: Option<Duration>) -> Result<Option<Vec<u8>>> {
        self.pop_or_wait(queue, timeout).await
    }

    async fn blpop_many(&self, key: &str, max: usize, timeout: Option<Duration>) -> Result<Vec<Vec<u8>>> {
        let batch = self.with(|store, now| {
            let mut batch = Vec::new();
            while batch.len() < max.max(1) {
                match store.pop_front(key, now)? {
                    Some(value) => batch.push(value),
                    None => break,
                }
            }
            Ok::<_, crate::Error>(batch)
        })?;
        if !batch.is_empty() {
            return Ok(batch);
        }
        // Nothing there: wait for one element, as `blpop` does.
        Ok(self.blpop(key, timeout).await?.into_iter().collect())
    }

    async fn lrem(&self, key: &str, count: isize, value: &[u8]) -> Result<usize> {
        self.with(|store, now| store.lrem(key, count, value, now))
    }

    async fn llen(&self, key: &str) -> Result<usize> {
        self.with(|store, now| Ok(store.list(key, now)?.map_or(0, |list| list.len())))
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        Ok(self.with(|store, now| {
            if store.entry(key, now).is_none() {
                return false;
            }
            if ttl.is_zero() {
                // As `PEXPIRE 0`: the key is deleted at once.
                store.entries.remove(key);
            } else {
                store.set_deadline(key, deadline_after(now, ttl));
            }
            true
        }))
    }

    async fn ttl(&self, key: &str) -> Result<Ttl> {
        Ok(self.with(|store, now| match store.entry(key, now) {
            None => Ttl::Missing,
            Some(entry) => match entry.expires_at {
                None => Ttl::Persistent,
                Some(deadline) => Ttl::Expires(deadline.saturating_duration_since(now)),
            },
        }))
    }

    async fn del(&self, key: &str) -> Result<bool> {
        Ok(self.with(|store, now| store.entry(key, now).is_some() && store.entries.remove(key).is_some()))
    }

    async fn doc_get(&self, key: &str) -> Result<Option<StoredDoc>> {
        self.with(|store, now| store.doc_get(key, now))
    }

    async fn doc_commit(&self, commit: &Commit) -> Result<CommitOutcome> {
        // Copy a frame's bytes before the lock, not while holding it.
        let prepared = Prepared::new(commit);
        self.with(|store, now| {
            let (outcome, published) = store.commit(prepared, now)?;
            if let Some(message) = published {
                // Under the lock, so notifications keep the order of the writes.
                self.pubsub.send(message);
            }
            Ok(outcome)
        })
    }

    async fn hash_get_all(&self, key: &str) -> Result<HashFields> {
        self.with(|store, now| store.hash_get_all(key, now))
    }

    async fn publish(&self, channel: &str, message: &[u8]) -> Result<()> {
        // Under the lock, as commits publish, so messages keep their order.
        self.with(|_, _| self.pubsub.send(Arc::new((channel.to_owned(), message.to_vec()))));
        Ok(())
    }

    async fn now(&self, key: &str) -> Result<Duration> {
        Ok(self.now_known(key).unwrap_or_default())
    }

    fn now_known(&self, _key: &str) -> Option<Duration> {
        // One process, one clock.
        Some(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default(),
        )
    }

    async fn take_held(&self, keys: &HeldKeys, max: usize, timeout: Option<Duration>) -> Result<Vec<Taken>> {
        // The pop is cancel safe; what it returns is held before the next
        // `.await`, so nothing taken is ever outside both lists for longer
        // than this process lives.
        let popped = self.blpop_many(&keys.queue, max, timeout).await?;
        self.with(|store, now| {
            let mut taken = Vec::with_capacity(popped.len());
            let counted = store.hash(&keys.deliveries, now)?.is_some();
            for request in popped {
                store.push_back(&keys.held, &[&request], now, None)?;
                let before = if counted {
                    store.hash_count(&keys.deliveries, &delivery::digest(&request), now)?
                } else {
                    0
                };
                taken.push(Taken {
                    request,
                    delivery: before + 1,
                });
            }
            Ok(taken)
        })
    }

    async fn release_held(&self, keys: &HeldKeys, taken: &Taken, reply: Option<HeldReply<'_>>) -> Result<()> {
        self.with(|store, now| {
            if let Some(reply) = &reply {
                // Checked first, so that a refused push releases nothing.
                store.list(reply.queue, now)?;
            }
            store.lrem(&keys.held, 1, &taken.request, now)?;
            if let Some(field) = taken.counted_as() {
                store.hash_del(&keys.deliveries, &field, now)?;
            }
            if let Some(reply) = reply {
                let deadline = deadline_after(now, reply.ttl.max(Duration::from_millis(1)));
                store.push_back(reply.queue, &[reply.reply], now, Some(deadline))?;
                store.set_deadline(reply.queue, deadline);
            }
            Ok(())
        })
    }

    async fn requeue_held(&self, keys: &HeldKeys, only_if_dead: bool) -> Result<Option<usize>> {
        self.with(|store, now| {
            if only_if_dead && store.entry(&keys.liveness, now).is_some() {
                return Ok(None);
            }
            // As on Redis: what was being taken first (this backend takes
            // straight onto the held list, so there is never any), then
            // the held list from its tail.
            let mut moved = 0;
            for from in [&keys.taking, &keys.held] {
                while let Some(request) = store.list(from, now)?.and_then(|list| list.pop_back()) {
                    if from == &keys.held {
                        store.hash_increment(&keys.deliveries, &delivery::digest(&request), now)?;
                    }
                    store.push_front(&keys.queue, &request, now)?;
                    moved += 1;
                }
                store.entries.remove(from);
            }
            store.hash_del(&keys.servers, &keys.instance, now)?;
            Ok(Some(moved))
        })
    }

    async fn hash_replace(&self, key: &str, fields: &[(&str, &[u8])], ttl: Duration) -> Result<()> {
        self.with(|store, now| {
            let fields = fields
                .iter()
                .map(|(name, value)| (name.to_string(), bytes::Bytes::copy_from_slice(value)))
                .collect();
            store.insert(key, store::Value::Hash(fields));
            store.set_deadline(key, deadline_after(now, ttl.max(Duration::from_millis(1))));
            Ok(())
        })
    }

    async fn hash_set(&self, key: &str, field: &str, value: &[u8]) -> Result<()> {
        self.with(|store, now| store.hash_set(key, field, value, now))
    }

    async fn hash_del(&self, key: &str, field: &str) -> Result<bool> {
        self.with(|store, now| store.hash_del(key, field, now))
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.with(|store, now| store.entry(key, now).is_some()))
    }

    async fn subscribe(&self, channels: &[String], patterns: &[String]) -> Result<Subscription> {
        Ok(self.pubsub.subscribe(channels, patterns))
    }
}

#[cfg(test)]
mod tests;
