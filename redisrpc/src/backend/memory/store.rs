//! The embedded backend's one keyspace: every key holds a list or a hash,
//! with Redis's type rules between them, an optional expiry, and the pops
//! waiting on it.
//!
//! Lists and hashes share one map, as in Redis, so a queue and a document
//! can never both be named `arm`: the operation of the wrong type is
//! refused with Redis's own `WRONGTYPE` error (list operations), or the
//! shared state's [`Error::WrongType`] (document operations), on both
//! backends alike.

use std::cmp::Reverse;
use std::collections::binary_heap::PeekMut;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use bytes::Bytes;

use crate::backend::HashFields;
use crate::{Error, Result};

/// Expiry times beyond this are clamped to it, so that no deadline overflows
/// the clock (Redis refuses them outright; a century is "never" in practice).
const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// Once the deadline heap holds this many more entries than twice the number
/// of keys, it is rebuilt from the keys (stale deadlines of re-expired or
/// deleted keys otherwise stay in it until they pass).
pub(super) const HEAP_SLACK: usize = 64;

pub(super) fn deadline_after(now: Instant, ttl: Duration) -> Instant {
    now + ttl.min(MAX_TTL)
}

/// Redis's error for a command on a key of another type.
pub(super) fn wrong_type() -> Error {
    Error::Command {
        source: "WRONGTYPE Operation against a key holding the wrong kind of value".into(),
    }
}

/// The keys' hasher: every call looks up its queue and its reply queue, and
/// SipHash's resistance to chosen keys buys nothing in one process's store.
type FastHash = foldhash::fast::RandomState;

#[derive(Default)]
pub(super) struct Store {
    /// The keys that exist. A list never stays here empty: its key goes away
    /// with its last element, as in Redis.
    pub(super) entries: HashMap<String, Entry, FastHash>,
    /// The pops waiting on each key, longest-waiting first. A key only has
    /// waiters while it holds no list (it is missing): a push serves the
    /// waiters before it appends anything.
    pub(super) waiters: HashMap<String, Waiters, FastHash>,
    /// Every deadline set on a key, earliest first; stale ones (of keys since
    /// deleted or given another deadline) are skipped when they come up.
    pub(super) deadlines: BinaryHeap<Reverse<(Instant, String)>>,
    next_waiter_id: u64,
    /// The last document version given out, shared by all documents so
    /// that no version is ever reused.
    pub(super) clock: u64,
}

pub(super) struct Entry {
    pub(super) value: Value,
    pub(super) expires_at: Option<Instant>,
}

/// What a key holds.
pub(super) enum Value {
    List(VecDeque<Vec<u8>>),
    /// A hash: a document (fields `json` and `version`) or a binary value.
    Hash(HashFields),
}

impl Value {
    /// The name Redis's `TYPE` gives it.
    pub(super) fn type_name(&self) -> &'static str {
        match self {
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
        }
    }
}

impl Entry {
    fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|deadline| deadline <= now)
    }
}

/// A waiting `blpop`.
pub(super) struct Waiter {
    id: u64,
    tx: oneshot::Sender<Delivery>,
}

/// The pops waiting on one key, longest-waiting first. Nearly always there
/// is one (a caller waiting on its reply queue), held without an allocation
/// of its own; the others queue behind it.
#[derive(Default)]
pub(super) struct Waiters {
    /// The longest-waiting pop; `None` only when none waits.
    first: Option<Waiter>,
    rest: VecDeque<Waiter>,
}

impl Waiters {
    pub(super) fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    fn push_back(&mut self, waiter: Waiter) {
        match self.first {
            None => self.first = Some(waiter),
            Some(_) => self.rest.push_back(waiter),
        }
    }

    fn pop_front(&mut self) -> Option<Waiter> {
        let first = self.first.take();
        self.first = self.rest.pop_front();
        first
    }

    fn remove(&mut self, id: u64) {
        if self.first.as_ref().is_some_and(|waiter| waiter.id == id) {
            self.first = self.rest.pop_front();
        } else {
            self.rest.retain(|waiter| waiter.id != id);
        }
    }
}

/// An element handed to a waiting pop, with the deadline its key had at that
/// moment, so that a pop abandoned after the hand-off can put the element
/// back exactly as it would have stayed in the key.
pub(super) struct Delivery {
    pub(super) value: Vec<u8>,
    pub(super) expires_at: Option<Instant>,
}

impl Store {
    /// Drops every key whose deadline has passed.
    pub(super) fn purge_expired(&mut self, now: Instant) {
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

    /// The live entry at `key`, of any type; drops it first if it has expired.
    pub(super) fn entry(&mut self, key: &str, now: Instant) -> Option<&mut Entry> {
        if self.entries.get(key)?.is_expired(now) {
            self.entries.remove(key);
            return None;
        }
        self.entries.get_mut(key)
    }

    /// The list at `key`: `None` when the key is missing, `WRONGTYPE` when
    /// it holds something else.
    pub(super) fn list(&mut self, key: &str, now: Instant) -> Result<Option<&mut VecDeque<Vec<u8>>>> {
        match self.entry(key, now) {
            None => Ok(None),
            Some(Entry {
                value: Value::List(list),
                ..
            }) => Ok(Some(list)),
            Some(_) => Err(wrong_type()),
        }
    }

    /// The hash at `key`: `None` when the key is missing, `WRONGTYPE` when
    /// it holds something else.
    pub(super) fn hash(&mut self, key: &str, now: Instant) -> Result<Option<&HashFields>> {
        match self.entry(key, now) {
            None => Ok(None),
            Some(Entry {
                value: Value::Hash(fields),
                ..
            }) => Ok(Some(fields)),
            Some(_) => Err(wrong_type()),
        }
    }

    /// The hash at `key` to change, created empty when missing (as `HSET`
    /// does); `WRONGTYPE` when it holds something else.
    pub(super) fn hash_mut(&mut self, key: &str, now: Instant) -> Result<&mut HashFields> {
        if self.entry(key, now).is_none() {
            self.insert(key, Value::Hash(Vec::new()));
        }
        match self.entry(key, now) {
            Some(Entry {
                value: Value::Hash(fields),
                ..
            }) => Ok(fields),
            _ => Err(wrong_type()),
        }
    }

    /// `HSET key field value`.
    pub(super) fn hash_set(&mut self, key: &str, field: &str, value: &[u8], now: Instant) -> Result<()> {
        let fields = self.hash_mut(key, now)?;
        match fields.iter_mut().find(|(name, _)| name == field) {
            Some((_, old)) => *old = Bytes::copy_from_slice(value),
            None => fields.push((field.to_owned(), Bytes::copy_from_slice(value))),
        }
        Ok(())
    }

    /// `HGET key field` of a count: 0 when absent.
    pub(super) fn hash_count(&mut self, key: &str, field: &str, now: Instant) -> Result<u64> {
        let count = self
            .hash(key, now)?
            .and_then(|fields| fields.iter().find(|(name, _)| name == field))
            .and_then(|(_, value)| std::str::from_utf8(value).ok()?.parse().ok());
        Ok(count.unwrap_or(0))
    }

    /// `HINCRBY key field 1`; returns the new count.
    pub(super) fn hash_increment(&mut self, key: &str, field: &str, now: Instant) -> Result<u64> {
        let fields = self.hash_mut(key, now)?;
        let count = match fields.iter_mut().find(|(name, _)| name == field) {
            Some((_, value)) => {
                let count = std::str::from_utf8(value)
                    .ok()
                    .and_then(|text| text.parse::<u64>().ok())
                    .unwrap_or(0)
                    + 1;
                *value = Bytes::from(count.to_string());
                count
            }
            None => {
                fields.push((field.to_owned(), Bytes::from_static(b"1")));
                1
            }
        };
        Ok(count)
    }

    /// `HDEL key field`: false when absent; a hash left empty disappears.
    pub(super) fn hash_del(&mut self, key: &str, field: &str, now: Instant) -> Result<bool> {
        if self.hash(key, now)?.is_none() {
            return Ok(false);
        }
        let fields = self.hash_mut(key, now)?;
        let before = fields.len();
        fields.retain(|(name, _)| name != field);
        let removed = fields.len() < before;
        if fields.is_empty() {
            self.entries.remove(key);
        }
        Ok(removed)
    }

    /// Sets the deadline of the existing `key`.
    pub(super) fn set_deadline(&mut self, key: &str, deadline: Instant) {
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

    /// Puts `value` at `key`, replacing whatever was there, with no expiry.
    pub(super) fn insert(&mut self, key: &str, value: Value) {
        let entry = Entry {
            value,
            expires_at: None,
        };
        self.entries.insert(key.to_owned(), entry);
    }

    /// Creates `key` holding a list of just `value`.
    fn create_list(&mut self, key: &str, value: Vec<u8>, expires_at: Option<Instant>) {
        self.insert(key, Value::List(VecDeque::from([value])));
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
    pub(super) fn push_back(
        &mut self,
        key: &str,
        values: &[&[u8]],
        now: Instant,
        hand_off_deadline: Option<Instant>,
    ) -> Result<usize> {
        let len_before = self.list(key, now)?.map_or(0, |list| list.len());
        for value in values {
            let value = value.to_vec();
            match self.list(key, now)? {
                Some(list) => list.push_back(value),
                None => {
                    let delivery = Delivery {
                        value,
                        expires_at: hand_off_deadline,
                    };
                    if let Some(refused) = self.hand_off(key, delivery) {
                        self.create_list(key, refused.value, None);
                    }
                }
            }
        }
        // Like Redis, the length counts the values served to waiting pops:
        // they were in the list when the command completed.
        Ok(len_before + values.len())
    }

    /// `LPUSH` of one value: to a waiting pop if there is one (the list is
    /// then empty, so the value would be its head), else the list's head.
    pub(super) fn push_front(&mut self, key: &str, value: &[u8], now: Instant) -> Result<usize> {
        match self.list(key, now)? {
            Some(list) => {
                list.push_front(value.to_vec());
                Ok(list.len())
            }
            None => {
                let delivery = Delivery {
                    value: value.to_vec(),
                    expires_at: None,
                };
                if let Some(refused) = self.hand_off(key, delivery) {
                    self.create_list(key, refused.value, None);
                }
                Ok(1)
            }
        }
    }

    pub(super) fn pop_front(&mut self, key: &str, now: Instant) -> Result<Option<Vec<u8>>> {
        let Some(list) = self.list(key, now)? else {
            return Ok(None);
        };
        let value = list.pop_front();
        if list.is_empty() {
            self.entries.remove(key);
        }
        Ok(value)
    }

    /// Puts back an element that was handed to a pop which then gave up: it
    /// was the head of the list, so it goes to the next waiting pop, or else
    /// in front of anything pushed since.
    pub(super) fn put_back(&mut self, key: &str, delivery: Delivery, now: Instant) {
        if delivery.expires_at.is_some_and(|deadline| deadline <= now) {
            // Its key would have expired by now, taking the element along.
            return;
        }
        match self.list(key, now) {
            Ok(Some(list)) => list.push_front(delivery.value),
            Ok(None) => {
                if let Some(refused) = self.hand_off(key, delivery) {
                    self.create_list(key, refused.value, refused.expires_at);
                }
            }
            // The key became a hash meanwhile: the Redis backend's `LPUSH`
            // would be refused just so.
            Err(_) => {}
        }
    }

    pub(super) fn add_waiter(&mut self, key: &str) -> (u64, oneshot::Receiver<Delivery>) {
        let id = self.next_waiter_id;
        self.next_waiter_id += 1;
        let (tx, rx) = oneshot::channel();
        self.waiters
            .entry(key.to_owned())
            .or_default()
            .push_back(Waiter { id, tx });
        (id, rx)
    }

    pub(super) fn remove_waiter(&mut self, key: &str, id: u64) {
        if let Some(queue) = self.waiters.get_mut(key) {
            queue.remove(id);
            if queue.is_empty() {
                self.waiters.remove(key);
            }
        }
    }

    pub(super) fn lrem(&mut self, key: &str, count: isize, value: &[u8], now: Instant) -> Result<usize> {
        let Some(list) = self.list(key, now)? else {
            return Ok(0);
        };
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
        Ok(removed)
    }
}
