//! Callers' replies awaited together, on one connection.
//!
//! A call waits for its reply with `BLPOP` on its own reply queue. On a
//! connection of its own, each reply costs Redis a read and a write, and
//! the client a send and a receive: at 64 calls in flight, writing replies
//! one socket at a time was most of Redis's work. So when several calls
//! wait at once, one connection waits for all their queues: `BLPOP q1 q2 …`
//! returns the first reply to arrive, and an `LPOP` of each queue takes
//! every other reply already there. The `LPOP`s go out in the same write as
//! the wait, behind it: Redis holds a blocked client's next commands and
//! runs them the moment the wait ends, so a server's batch of replies comes
//! back in one round trip, whatever its size. (Over TLS, where the redis
//! crate's connection reads replies for us, the take follows the wait in a
//! second round trip, for the queues still waiting.) A second reply that
//! the take finds behind the one the wait handed to its caller (a request
//! run again) is dropped, as it would have expired.
//!
//! A lone call still pops on a connection of its own, in its own task, so
//! a caller making one call at a time waits exactly as before. Only calls
//! that find another waiting join the gathered wait. A wait under way
//! learns of a newcomer by being cut short (`CLIENT UNBLOCK`); it then waits
//! again on every queue. Calls pop alone for an ACL user without `CLIENT`,
//! beyond [`MAX_GATHERED`] waiting, and whenever Redis refuses a gathered
//! wait (a queue that is not a list): each call then gets its own answer.
//!
//! On a cluster, one `BLPOP`'s keys must share a hash slot, so calls gather
//! by slot ([`BySlot`]), each slot on a connection to its node. Our
//! clients' reply queues carry their service queue's hash tag, so the
//! calls to one service gather together. A wait sent to a node that does
//! not own the slot (the first, before the owner is known, or after the
//! slot moved) is refused with `MOVED`: the owner it names is remembered
//! and the wait goes there, up to [`MAX_MOVES`] times in a row. On `ASK` (a
//! slot half moved) the callers pop alone, and their pops follow it.
//!
//! Cancel safety is a pop's: a caller who leaves is taken out of the next
//! wait, and replies taken for a caller who has left go back to the head
//! of its queue, in order, where the caller's own clean-up finds them.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use redis::{RedisError, RedisResult};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use super::blocking::{Blocking, Dedicated, PopConnection};
use super::direct::Direct;
use super::topology::{Redirect, Topology, redirect_of};
use super::{map_error, slot};
use crate::backoff::Backoff;
use crate::{Error, Result};

/// The most calls waiting together; more pop alone.
const MAX_GATHERED: usize = 512;

/// How often in a row a gathered wait follows its slot to another node.
const MAX_MOVES: u32 = 5;

/// The longest one gathered wait lasts in Redis. Every newcomer cuts the
/// wait short; this only bounds how late one whose `CLIENT UNBLOCK` went
/// astray gets its reply.
const WAIT_SLICE: &str = "5";

/// How often a newcomer asks the wait under way to end when Redis answers
/// that it is not blocked (the wait is still on its way there), pausing by
/// [`CUT_BACKOFF`] in between.
const CUT_ATTEMPTS: u32 = 12;

const CUT_BACKOFF: Backoff = Backoff::new(Duration::from_micros(200), Duration::from_millis(50));

/// The replies awaited together on one [`super::Redis`], a gathering per
/// hash slot on a cluster, one otherwise.
pub(super) struct BySlot {
    blocking: Arc<Blocking>,
    topology: Arc<Topology>,
    slots: Mutex<HashMap<u16, Arc<Gathered>>>,
}

impl BySlot {
    pub(super) fn new(blocking: Arc<Blocking>, topology: Arc<Topology>) -> BySlot {
        BySlot {
            blocking,
            topology,
            slots: Mutex::default(),
        }
    }

    /// [`Gathered::pop`] in the gathering of `queue`'s slot. There is one
    /// per slot that replies were awaited on (on a cluster, about one per
    /// service called); an idle one holds no connection.
    pub(super) async fn pop(&self, queue: &str, timeout: Option<Duration>) -> Result<Option<Vec<u8>>> {
        let slot = if self.topology.is_cluster() { slot::of(queue) } else { 0 };
        let gathered = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            match slots.entry(slot) {
                Entry::Occupied(gathered) => Arc::clone(gathered.get()),
                Entry::Vacant(vacant) => {
                    Arc::clone(vacant.insert(Gathered::new(Arc::clone(&self.blocking), Arc::clone(&self.topology))))
                }
            }
        };
        gathered.pop(queue, timeout).await
    }
}

/// The replies awaited together in one hash slot.
struct Gathered {
    blocking: Arc<Blocking>,
    topology: Arc<Topology>,
    state: Mutex<State>,
}

/// What a gathered caller is told.
enum Delivery {
    Reply(Vec<u8>),
    Failed(Error),
    /// Pop alone instead: the gathered wait cannot serve this caller.
    Alone,
}

#[derive(Default)]
struct State {
    /// The gathered callers, by reply queue.
    waiting: HashMap<String, oneshot::Sender<Delivery>>,
    /// Callers popping on connections of their own.
    alone: usize,
    /// Whether the gathering task runs.
    gathering: bool,
    /// The gathered wait under way in Redis, if one is.
    wait: Option<Wait>,
    /// Counts the waits, so that a late cut does not end a later wait.
    waits: u64,
    /// Set once a connection had no `CLIENT ID`: waits cannot be cut, so
    /// every call pops alone.
    uncuttable: bool,
}

impl State {
    /// The wait under way, to be cut short, unless somebody asked already.
    fn cut_wait(&mut self) -> Option<Wait> {
        let wait = self.wait.as_mut().filter(|wait| !wait.cut)?;
        wait.cut = true;
        Some(wait.clone())
    }
}

#[derive(Clone)]
struct Wait {
    /// The connection's `CLIENT ID`, and its server.
    id: i64,
    node: String,
    number: u64,
    /// Whether a newcomer has asked it to end.
    cut: bool,
}

/// Which step of a gathered wait failed: a failed wait took nothing.
enum Failed {
    Waiting(RedisError),
    Taking(RedisError),
}

/// How a caller waits.
enum Joined {
    Alone,
    Gathered {
        delivered: oneshot::Receiver<Delivery>,
        start: bool,
        cut: Option<Wait>,
    },
}

impl Gathered {
    fn new(blocking: Arc<Blocking>, topology: Arc<Topology>) -> Arc<Gathered> {
        Arc::new(Gathered {
            blocking,
            topology,
            state: Mutex::default(),
        })
    }

    /// `BLPOP queue timeout` for a caller's reply queue, gathered with the
    /// other callers' waits when there are some; `timeout` is not zero.
    /// Cancel safe.
    async fn pop(self: &Arc<Self>, queue: &str, timeout: Option<Duration>) -> Result<Option<Vec<u8>>> {
        let started = tokio::time::Instant::now();
        let runtime = Handle::try_current()
            .map_err(|_| Error::Config("the Redis backend must run inside a Tokio runtime".into()))?;
        let (delivered, start, cut) = match self.join(queue) {
            Joined::Alone => return self.pop_alone(queue, timeout).await,
            Joined::Gathered { delivered, start, cut } => (delivered, start, cut),
        };
        let mut leaving = Leaving {
            gathered: self,
            runtime: runtime.clone(),
            queue,
            delivered: Some(delivered),
        };
        if start {
            runtime.spawn(Arc::clone(self).gather());
        }
        if let Some(wait) = cut {
            runtime.spawn(Arc::clone(self).cut(wait));
        }
        let receiving = leaving.delivered.as_mut().expect("set above");
        let delivery = match timeout {
            None => receiving.await,
            Some(timeout) => match tokio::time::timeout(timeout, &mut *receiving).await {
                Ok(delivery) => delivery,
                // Out of time: a reply delivered meanwhile is still taken.
                Err(_) => match receiving.try_recv() {
                    Ok(delivery) => Ok(delivery),
                    Err(_) => return Ok(None),
                },
            },
        };
        leaving.delivered = None;
        drop(leaving);
        match delivery {
            Ok(Delivery::Reply(reply)) => Ok(Some(reply)),
            Ok(Delivery::Failed(error)) => Err(error),
            Ok(Delivery::Alone) => {
                let left = timeout.map(|timeout| timeout.saturating_sub(started.elapsed()));
                match left {
                    Some(left) if left.is_zero() => Ok(None),
                    left => {
                        self.state().alone += 1;
                        self.pop_alone(queue, left).await
                    }
                }
            }
            Err(_) => Err(Error::Connection {
                source: "the wait for replies ended before this one arrived".into(),
            }),
        }
    }

    fn join(&self, queue: &str) -> Joined {
        let mut state = self.state();
        let alone = state.uncuttable
            || (state.waiting.is_empty() && state.alone == 0)
            || state.waiting.len() >= MAX_GATHERED
            || state.waiting.contains_key(queue);
        if alone {
            state.alone += 1;
            return Joined::Alone;
        }
        let (deliver, delivered) = oneshot::channel();
        state.waiting.insert(queue.to_owned(), deliver);
        let start = !std::mem::replace(&mut state.gathering, true);
        let cut = state.cut_wait();
        Joined::Gathered { delivered, start, cut }
    }

    /// A pop on a connection of its own, counted (by the caller) as such
    /// until it ends.
    async fn pop_alone(&self, queue: &str, timeout: Option<Duration>) -> Result<Option<Vec<u8>>> {
        struct Counted<'a>(&'a Gathered);
        impl Drop for Counted<'_> {
            fn drop(&mut self) {
                self.0.state().alone -= 1;
            }
        }
        let _counted = Counted(self);
        Ok(self.blocking.pop(queue, 1, timeout).await?.pop())
    }

    /// Gathers until nobody waits: one wait on every caller's queue, then
    /// every other reply that arrived, again and again.
    async fn gather(self: Arc<Self>) {
        let runtime = Handle::current();
        let mut conn: Option<(Dedicated, bool)> = None;
        // After a pooled connection turned out dead, the next is made anew.
        let mut fresh = false;
        // Redirects in a row: a slot that keeps moving sends its callers
        // to pop alone.
        let mut moves = 0;
        loop {
            let Some(first) = self.state().waiting.keys().next().cloned() else {
                if self.stop_if_idle(&mut conn) {
                    return;
                }
                continue;
            };
            let (mut dedicated, pooled) = match conn.take() {
                Some(held) => held,
                None => match self.connect(&first, fresh).await {
                    Ok(made) => made,
                    Err(error) => {
                        self.fail_all(&map_error(error));
                        continue;
                    }
                },
            };
            fresh = false;
            let Some(id) = dedicated.id else {
                // Without CLIENT ID a wait cannot be cut short for a newcomer.
                tracing::debug!("replies are awaited alone: this ACL user may not run CLIENT");
                self.blocking.put(dedicated);
                let mut state = self.state();
                state.uncuttable = true;
                for (_, deliver) in state.waiting.drain() {
                    let _ = deliver.send(Delivery::Alone);
                }
                state.gathering = false;
                return;
            };
            let Some(queues) = self.start_wait(id, &dedicated.node) else {
                conn = Some((dedicated, pooled));
                continue;
            };
            match self.wait_and_take(&runtime, &mut dedicated, queues).await {
                Ok(()) => {
                    conn = Some((dedicated, false));
                    moves = 0;
                }
                // A pooled connection may have died idle: nothing was taken.
                Err(Failed::Waiting(error)) if pooled && error.is_connection_dropped() => fresh = true,
                // The slot lives elsewhere (a cluster's first wait, or the
                // slot moved): wait there, on another connection.
                Err(Failed::Waiting(error)) if moves < MAX_MOVES && self.moved(&first, &error) => {
                    self.blocking.put(dedicated);
                    moves += 1;
                }
                Err(Failed::Waiting(error) | Failed::Taking(error)) => self.failed(&dedicated, error),
            }
        }
    }

    /// One wait on `queues`, then every other reply already there.
    async fn wait_and_take(
        &self,
        runtime: &Handle,
        dedicated: &mut Dedicated,
        queues: Vec<String>,
    ) -> std::result::Result<(), Failed> {
        let mut wait = redis::cmd("BLPOP");
        wait.arg(&queues).arg(WAIT_SLICE);
        if let PopConnection::Direct(direct) = &mut dedicated.conn {
            return self.wait_with_take_behind(runtime, direct, &wait, queues).await;
        }
        let waited = wait.query_async::<Option<(String, Vec<u8>)>>(&mut dedicated.conn).await;
        self.state().wait = None;
        let Some((queue, reply)) = waited.map_err(Failed::Waiting)? else {
            // Cut short for a newcomer, or the slice ended.
            return Ok(());
        };
        self.deliver(runtime, queue, reply);
        let rest: Vec<String> = {
            let state = self.state();
            queues
                .into_iter()
                .filter(|queue| state.waiting.contains_key(queue))
                .collect()
        };
        if rest.is_empty() {
            return Ok(());
        }
        // Each `LPOP` keeps its own outcome: one refused (a queue that is
        // not a list, a slot on its way to another node) must not cost the
        // others the replies they took.
        let mut take = redis::pipe();
        take.ignore_errors();
        for queue in &rest {
            take.cmd("LPOP").arg(queue);
        }
        let taken: Vec<RedisResult<Option<Vec<u8>>>> =
            take.query_async(&mut dedicated.conn).await.map_err(Failed::Taking)?;
        if taken.len() != rest.len() {
            let why = format!("{} pops were answered with {} replies", rest.len(), taken.len());
            return Err(Failed::Taking(RedisError::from((
                redis::ErrorKind::Io,
                "a broken take",
                why,
            ))));
        }
        for (queue, reply) in rest.into_iter().zip(taken) {
            self.taken(runtime, queue, reply);
        }
        Ok(())
    }

    /// The wait with an `LPOP` of each of its queues behind it, in one
    /// write: Redis runs the take as soon as the wait ends, however it
    /// ends, so the replies that arrived together come back together.
    /// Every reply owed is read, whatever the wait's outcome, so that the
    /// connection is left clean and no reply the take took is lost: one
    /// taken for a caller who has left goes back to its queue, after the
    /// one the wait took for it, if any.
    async fn wait_with_take_behind(
        &self,
        runtime: &Handle,
        direct: &mut Direct,
        wait: &redis::Cmd,
        queues: Vec<String>,
    ) -> std::result::Result<(), Failed> {
        let mut packed = wait.get_packed_command();
        for queue in &queues {
            packed.extend_from_slice(&redis::cmd("LPOP").arg(queue).get_packed_command());
        }
        direct.send(&packed, 1 + queues.len()).await.map_err(Failed::Waiting)?;
        let waited = direct.receive().await;
        self.state().wait = None;
        let waited = waited.map_err(Failed::Waiting)?;
        // Replies taken for callers who have left, by queue, in the order
        // taken: each queue's go back to its head together, in that order.
        let mut unclaimed: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
        let mut give_back = |queue: String, reply: Vec<u8>| match unclaimed.iter_mut().find(|(at, _)| *at == queue) {
            Some((_, replies)) => replies.push(reply),
            None => unclaimed.push((queue, vec![reply])),
        };
        // The queue whose caller the wait answered, if it did.
        let (waited, answered) = match decode::<Option<(String, Vec<u8>)>>(waited) {
            Ok(Some((queue, reply))) => match self.hand_over(&queue, reply) {
                Ok(()) => (Ok(()), Some(queue)),
                Err(reply) => {
                    give_back(queue, reply);
                    (Ok(()), None)
                }
            },
            // Cut short for a newcomer, or the slice ended.
            Ok(None) => (Ok(()), None),
            Err(error) => (Err(error), None),
        };
        let mut broken = None;
        for queue in queues {
            let reply = match direct.receive().await {
                Ok(value) => decode::<Option<Vec<u8>>>(value),
                Err(error) => {
                    broken = Some(error);
                    break;
                }
            };
            match reply {
                // A second reply for the caller the wait just answered (its
                // request ran again): one is enough, the rest are there to
                // expire.
                Ok(Some(_)) if answered.as_deref() == Some(queue.as_str()) => {
                    tracing::debug!(queue, "dropped a second reply to a caller answered already");
                }
                Ok(Some(reply)) => {
                    if let Err(reply) = self.hand_over(&queue, reply) {
                        give_back(queue, reply);
                    }
                }
                // A wait refused is refused for its take too: the wait's
                // error speaks for them all.
                Err(_) if waited.is_err() => {}
                reply => self.taken(runtime, queue, reply),
            }
        }
        for (queue, replies) in unclaimed {
            self.blocking.put_back(runtime, queue, replies);
        }
        if let Some(error) = broken {
            return Err(Failed::Taking(error));
        }
        waited.map_err(Failed::Waiting)
    }

    /// Hands over a reply the take took, or sends its caller to pop alone
    /// when the take was refused (a queue that is not a list, a slot on its
    /// way to another node): its own pop gets it an answer of its own.
    fn taken(&self, runtime: &Handle, queue: String, reply: RedisResult<Option<Vec<u8>>>) {
        match reply {
            Ok(Some(reply)) => self.deliver(runtime, queue, reply),
            Ok(None) => {}
            Err(error) => {
                tracing::debug!(queue, %error, "a gathered take was refused; its caller pops alone");
                if let Some(deliver) = self.state().waiting.remove(&queue) {
                    let _ = deliver.send(Delivery::Alone);
                }
            }
        }
    }

    /// Ends the gathering when nobody waits (returning its connection to
    /// the pool); false when somebody came meanwhile.
    fn stop_if_idle(&self, conn: &mut Option<(Dedicated, bool)>) -> bool {
        let mut state = self.state();
        if !state.waiting.is_empty() {
            return false;
        }
        state.gathering = false;
        drop(state);
        if let Some((dedicated, _)) = conn.take() {
            self.blocking.put(dedicated);
        }
        true
    }

    async fn connect(&self, queue: &str, fresh: bool) -> RedisResult<(Dedicated, bool)> {
        let node = self
            .topology
            .node_for(queue)
            .await
            .map_err(|error| RedisError::from((redis::ErrorKind::Io, "no server to wait on", error.to_string())))?;
        self.blocking.connection(&node, fresh).await
    }

    /// Marks a wait as under way and returns the queues it waits on; `None`
    /// when nobody waits any more.
    fn start_wait(&self, id: i64, node: &str) -> Option<Vec<String>> {
        let mut state = self.state();
        if state.waiting.is_empty() {
            return None;
        }
        state.waits += 1;
        state.wait = Some(Wait {
            id,
            node: node.to_owned(),
            number: state.waits,
            cut: false,
        });
        Some(state.waiting.keys().cloned().collect())
    }

    /// Asks `wait` to end, so that it starts again with the newcomer's
    /// queue; asks again while Redis answers that it is not blocked yet.
    async fn cut(self: Arc<Self>, wait: Wait) {
        let mut pause = CUT_BACKOFF;
        for _ in 0..CUT_ATTEMPTS {
            let under_way = self.state().wait.as_ref().map(|now| now.number);
            if under_way != Some(wait.number) {
                return;
            }
            match self.blocking.unblock(wait.id, &wait.node).await {
                Ok(0) => tokio::time::sleep(pause.next_pause()).await,
                Ok(_) => return,
                Err(error) => {
                    tracing::debug!(%error, "cannot cut a gathered wait short; it ends within its slice");
                    return;
                }
            }
        }
    }

    /// Hands `reply` to its caller, or puts it back if the caller left.
    fn deliver(&self, runtime: &Handle, queue: String, reply: Vec<u8>) {
        if let Err(unclaimed) = self.hand_over(&queue, reply) {
            self.blocking.put_back(runtime, queue, vec![unclaimed]);
        }
    }

    /// Hands `reply` to its caller; gives it back when the caller has left.
    fn hand_over(&self, queue: &str, reply: Vec<u8>) -> std::result::Result<(), Vec<u8>> {
        let Some(deliver) = self.state().waiting.remove(queue) else {
            return Err(reply);
        };
        match deliver.send(Delivery::Reply(reply)) {
            Err(Delivery::Reply(reply)) => Err(reply),
            _ => Ok(()),
        }
    }

    /// Whether `error` says that `queue`'s slot lives on another node now:
    /// then it is remembered, so that the next wait goes there. (`ASK`, a
    /// slot half moved, is for each caller's own pop to follow.)
    fn moved(&self, queue: &str, error: &RedisError) -> bool {
        let Some(Redirect::Moved(to)) = redirect_of(error) else {
            return false;
        };
        tracing::debug!(queue, to, "a gathered wait's slot moved");
        self.topology.moved(queue, &to);
        true
    }

    /// A wait or a take failed. A refusal by Redis (say a queue that is
    /// not a list) sends every caller to pop alone, to get an answer of its
    /// own; a broken connection fails them all, as it would their own pops.
    fn failed(&self, conn: &Dedicated, error: RedisError) {
        let no_permission = error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoPerm);
        self.topology.failed(&conn.node, &error);
        let error = map_error(error);
        if !error.is_connection() {
            tracing::debug!(%error, "a gathered wait was refused; its callers pop alone");
            let mut state = self.state();
            // A command this ACL user may not run here, it never will.
            state.uncuttable |= no_permission;
            for (_, deliver) in state.waiting.drain() {
                let _ = deliver.send(Delivery::Alone);
            }
            return;
        }
        self.fail_all(&error);
    }

    fn fail_all(&self, error: &Error) {
        let waiting: Vec<_> = self.state().waiting.drain().collect();
        for (_, deliver) in waiting {
            let _ = deliver.send(Delivery::Failed(Error::Connection {
                source: error.to_string().into(),
            }));
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A gathered caller on its way out, however it leaves: its queue leaves
/// the wait (one under way is cut short, so that a reply arriving later is
/// not taken for nobody and put back without the expiry it came with), and
/// a reply delivered to it unread goes back to its queue.
struct Leaving<'a> {
    gathered: &'a Arc<Gathered>,
    runtime: Handle,
    queue: &'a str,
    /// `None` once the delivery was read.
    delivered: Option<oneshot::Receiver<Delivery>>,
}

impl Drop for Leaving<'_> {
    fn drop(&mut self) {
        let cut = {
            let mut state = self.gathered.state();
            let left_unanswered = state.waiting.remove(self.queue).is_some();
            if left_unanswered { state.cut_wait() } else { None }
        };
        if let Some(wait) = cut {
            self.runtime.spawn(Arc::clone(self.gathered).cut(wait));
        }
        if let Some(mut delivered) = self.delivered.take()
            && let Ok(Delivery::Reply(reply)) = delivered.try_recv()
        {
            self.gathered
                .blocking
                .put_back(&self.runtime, self.queue.to_owned(), vec![reply]);
        }
    }
}

/// A reply read off a direct connection, as a command's answer: Redis's
/// refusal as the error, else the value as `T`.
fn decode<T: redis::FromRedisValue>(value: redis::Value) -> RedisResult<T> {
    redis::from_redis_value(value.extract_error()?).map_err(RedisError::from)
}
