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
//! All state sits behind one [`std::sync::Mutex`]. Every operation is a short
//! critical section that never awaits, which is what makes each operation
//! atomic, as a Redis command is, and why a blocking mutex is the right tool
//! here (an async mutex would only add overhead).
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

use std::cmp::Reverse;
use std::collections::binary_heap::PeekMut;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::oneshot;
use tokio::time::Instant;

use self::documents::Documents;
use super::{Backend, Commit, CommitOutcome, HashFields, StoredDoc, Subscription, Ttl};
use crate::Result;

mod documents;
mod glob;

/// Expiry times beyond this are clamped to it, so that no deadline overflows
/// the clock (Redis refuses them outright; a century is "never" in practice).
const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// Once the deadline heap holds this many more entries than twice the number
/// of keys, it is rebuilt from the keys (stale deadlines of re-expired or
/// deleted keys otherwise stay in it until they pass).
const HEAP_SLACK: usize = 64;

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
    store: Arc<Mutex<Store>>,
    /// The shared state's documents, hashes and pub/sub (`documents.rs`).
    documents: Arc<Documents>,
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
                &store.waiters.values().map(VecDeque::len).sum::<usize>(),
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

fn deadline_after(now: Instant, ttl: Duration) -> Instant {
    now + ttl.min(MAX_TTL)
}

#[derive(Default)]
struct Store {
    /// The keys that exist. A list never stays here empty: its key goes away
    /// with its last element, as in Redis.
    entries: HashMap<String, Entry>,
    /// The pops waiting on each key, longest-waiting first. A key only has
    /// waiters while its list is empty (missing): a push serves the waiters
    /// before it appends anything.
    waiters: HashMap<String, VecDeque<Waiter>>,
    /// Every deadline set on a key, earliest first; stale ones (of keys since
    /// deleted or given another deadline) are skipped when they come up.
    deadlines: BinaryHeap<Reverse<(Instant, String)>>,
    next_waiter_id: u64,
}

struct Entry {
    list: VecDeque<Vec<u8>>,
    expires_at: Option<Instant>,
}

impl Entry {
    fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|deadline| deadline <= now)
    }
}

/// A waiting [`Backend::blpop`].
struct Waiter {
    id: u64,
    tx: oneshot::Sender<Delivery>,
}

/// An element handed to a waiting pop, with the deadline its key had at that
/// moment, so that a pop abandoned after the hand-off can put the element
/// back exactly as it would have stayed in the key.
struct Delivery {
    value: Vec<u8>,
    expires_at: Option<Instant>,
}

impl Store {
    /// Drops every key whose deadline has passed.
    fn purge_expired(&mut self, now: Instant) {
        while let Some(top) = self.deadlines.peek_mut() {
            if top.0.0 > now {
                break;
            }
            let Reverse((deadline, key)) = PeekMut::pop(top);
            if self
                .entries
                .get(&key)
                .is_some_and(|entry| entry.expires_at == Some(deadline))
            {
                self.entries.remove(&key);
            }
        }
    }

    /// The live entry at `key`; drops it first if it has expired.
    fn entry(&mut self, key: &str, now: Instant) -> Option<&mut Entry> {
        if self.entries.get(key)?.is_expired(now) {
            self.entries.remove(key);
            return None;
        }
        self.entries.get_mut(key)
    }

    /// Sets the deadline of the existing `key`.
    fn set_deadline(&mut self, key: &str, deadline: Instant) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        entry.expires_at = Some(deadline);
        self.deadlines.push(Reverse((deadline, key.to_owned())));
        if self.deadlines.len() > 2 * self.entries.len() + HEAP_SLACK {
            self.deadlines = self
                .entries
                .iter()
                .filter_map(|(key, entry)| Some(Reverse((entry.expires_at?, key.clone()))))
                .collect();
        }
    }

    /// Creates `key` holding just `value`.
    fn create(&mut self, key: &str, value: Vec<u8>, expires_at: Option<Instant>) {
        let entry = Entry {
            list: VecDeque::from([value]),
            expires_at: None,
        };
        self.entries.insert(key.to_owned(), entry);
        if let Some(deadline) = expires_at {
            self.set_deadline(key, deadline);
        }
    }

    /// Gives `delivery` to the longest-waiting pop on `key`; returns it when
    /// no pop takes it.
    fn hand_off(&mut self, key: &str, delivery: Delivery) -> Option<Delivery> {
        let Some(queue) = self.waiters.get_mut(key) else {
            return Some(delivery);
        };
        let mut unsent = Some(delivery);
        while let Some(delivery) = unsent.take() {
            let Some(waiter) = queue.pop_front() else {
                unsent = Some(delivery);
                break;
            };
            // Waiters deregister under the lock before their receiver goes
            // away, so a send fails only in theory; then try the next one.
            unsent = waiter.tx.send(delivery).err();
        }
        if queue.is_empty() {
            self.waiters.remove(key);
        }
        unsent
    }

    /// `RPUSH`, handing values to waiting pops first. `hand_off_deadline` is
    /// the deadline the key will have once the command completes, recorded
    /// with each value handed over.
    fn push_back(&mut self, key: &str, values: &[&[u8]], now: Instant, hand_off_deadline: Option<Instant>) -> usize {
        let len_before = self.entry(key, now).map_or(0, |entry| entry.list.len());
        for value in values {
            let value = value.to_vec();
            match self.entries.get_mut(key) {
                Some(entry) => entry.list.push_back(value),
                None => {
                    let delivery = Delivery {
                        value,
                        expires_at: hand_off_deadline,
                    };
                    if let Some(refused) = self.hand_off(key, delivery) {
                        self.create(key, refused.value, None);
                    }
                }
            }
        }
        // Like Redis, the length counts the values served to waiting pops:
        // they were in the list when the command completed.
        len_before + values.len()
    }

    fn pop_front(&mut self, key: &str, now: Instant) -> Option<Vec<u8>> {
        let entry = self.entry(key, now)?;
        let value = entry.list.pop_front();
        if entry.list.is_empty() {
            self.entries.remove(key);
        }
        value
    }

    /// Puts back an element that was handed to a pop which then gave up: it
    /// was the head of the list, so it goes to the next waiting pop, or else
    /// in front of anything pushed since.
    fn put_back(&mut self, key: &str, delivery: Delivery, now: Instant) {
        if delivery.expires_at.is_some_and(|deadline| deadline <= now) {
            // Its key would have expired by now, taking the element along.
            return;
        }
        if let Some(entry) = self.entry(key, now) {
            entry.list.push_front(delivery.value);
        } else if let Some(refused) = self.hand_off(key, delivery) {
            self.create(key, refused.value, refused.expires_at);
        }
    }

    fn add_waiter(&mut self, key: &str) -> (u64, oneshot::Receiver<Delivery>) {
        let id = self.next_waiter_id;
        self.next_waiter_id += 1;
        let (tx, rx) = oneshot::channel();
        self.waiters
            .entry(key.to_owned())
            .or_default()
            .push_back(Waiter { id, tx });
        (id, rx)
    }

    fn remove_waiter(&mut self, key: &str, id: u64) {
        if let Some(queue) = self.waiters.get_mut(key) {
            queue.retain(|waiter| waiter.id != id);
            if queue.is_empty() {
                self.waiters.remove(key);
            }
        }
    }

    fn lrem(&mut self, key: &str, count: isize, value: &[u8], now: Instant) -> usize {
        let Some(entry) = self.entry(key, now) else {
            return 0;
        };
        let list = &mut entry.list;
        let len_before = list.len();
        let limit = if count == 0 { usize::MAX } else { count.unsigned_abs() };
        // Removing the last `limit` matches is keeping the first
        // `matches - limit` of them.
        let keep_first = if count < 0 {
            let matches = list.iter().filter(|v| v.as_slice() == value).count();
            matches.saturating_sub(limit)
        } else {
            0
        };
        let mut seen = 0;
        list.retain(|v| {
            if v.as_slice() != value {
                return true;
            }
            seen += 1;
            if count < 0 { seen <= keep_first } else { seen > limit }
        });
        let removed = len_before - list.len();
        if list.is_empty() {
            self.entries.remove(key);
        }
        removed
    }
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

#[async_trait]
impl Backend for Memory {
    async fn rpush(&self, key: &str, values: &[&[u8]]) -> Result<usize> {
        Ok(self.with(|store, now| store.push_back(key, values, now, None)))
    }

    async fn rpush_expire(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
        self.with(|store, now| {
            if ttl.is_zero() {
                // As `PEXPIRE 0` in the transaction: the key is deleted before
                // any waiting pop could be served.
                store.entries.remove(key);
                return;
            }
            let deadline = deadline_after(now, ttl);
            store.push_back(key, &[value], now, Some(deadline));
            store.set_deadline(key, deadline);
        });
        Ok(())
    }

    async fn lpop(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.with(|store, now| store.pop_front(key, now)))
    }

    async fn blpop(&self, key: &str, timeout: Option<Duration>) -> Result<Option<Vec<u8>>> {
        let mut wait = {
            let mut store = lock(&self.store);
            let now = Instant::now();
            store.purge_expired(now);
            if let Some(value) = store.pop_front(key, now) {
                return Ok(Some(value));
            }
            if timeout == Some(Duration::ZERO) {
                return Ok(None);
            }
            let (id, rx) = store.add_waiter(key);
            Wait {
                store: &self.store,
                key,
                id,
                rx,
                finished: false,
            }
        };
        let received = match timeout {
            None => (&mut wait.rx).await.ok(),
            Some(timeout) => tokio::time::timeout(timeout, &mut wait.rx)
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

    async fn blpop_many(&self, key: &str, max: usize, timeout: Option<Duration>) -> Result<Vec<Vec<u8>>> {
        let batch = self.with(|store, now| {
            let mut batch = Vec::new();
            while batch.len() < max.max(1) {
                match store.pop_front(key, now) {
                    Some(value) => batch.push(value),
                    None => break,
                }
            }
            batch
        });
        if !batch.is_empty() {
            return Ok(batch);
        }
        // Nothing there: wait for one element, as `blpop` does.
        Ok(self.blpop(key, timeout).await?.into_iter().collect())
    }

    async fn lrem(&self, key: &str, count: isize, value: &[u8]) -> Result<usize> {
        Ok(self.with(|store, now| store.lrem(key, count, value, now)))
    }

    async fn llen(&self, key: &str) -> Result<usize> {
        Ok(self.with(|store, now| store.entry(key, now).map_or(0, |entry| entry.list.len())))
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
            Some(Entry { expires_at: None, .. }) => Ttl::Persistent,
            Some(Entry {
                expires_at: Some(deadline),
                ..
            }) => Ttl::Expires(deadline.saturating_duration_since(now)),
        }))
    }

    async fn doc_get(&self, key: &str) -> Result<Option<StoredDoc>> {
        Ok(self.documents.get(key))
    }

    async fn doc_commit(&self, commit: &Commit) -> Result<CommitOutcome> {
        Ok(self.documents.commit(commit))
    }

    async fn hash_get_all(&self, key: &str) -> Result<HashFields> {
        Ok(self.documents.hash_get_all(key))
    }

    async fn subscribe(&self, channels: &[String], patterns: &[String]) -> Result<Subscription> {
        Ok(self.documents.subscribe(channels, patterns))
    }

    async fn del(&self, key: &str) -> Result<bool> {
        let list = self.with(|store, now| store.entry(key, now).is_some() && store.entries.remove(key).is_some());
        // As in Redis, one key space: documents and hashes go too.
        let document = self.documents.remove(key);
        Ok(list || document)
    }
}

#[cfg(test)]
mod tests;
