//! `BLPOP` on dedicated connections, and its cancel safety.
//!
//! See the parent module's docs for why blocking pops need connections of
//! their own and why those have no response timeout.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use std::collections::HashMap;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncConnectionConfig, ErrorKind, RedisError, RedisFuture, RedisResult, ServerErrorKind, Value};
use tokio::runtime::Handle;
use tokio::sync::Notify;

use super::direct::Direct;
use super::shared::Shared;
use super::topology::{Node, Redirect, Topology, redirect_of};
use super::{map_error, millis_ceil};
use crate::backoff::Backoff;
use crate::{Error, Result};

/// Timeouts longer than this (about 10 years) are sent as `0`, "forever":
/// Redis rejects timeouts that overflow its clock, and nobody can tell the
/// difference.
const FOREVER_AFTER_MILLIS: u128 = 10 * 365 * 24 * 3600 * 1000;

/// How often a cancelled pop is asked to unblock before the cleanup just
/// waits for it (see [`Blocking::unblock_and_join`]).
const UNBLOCK_ATTEMPTS: u32 = 20;

/// The longest a pop waits inside Redis on a connection that `CLIENT
/// UNBLOCK` cannot reach (the ACL user may not run `CLIENT`): a longer wait
/// is made of such slices, so that a cancelled pop ends, and a server shuts
/// down, within this long.
const UNINTERRUPTIBLE_SLICE: Duration = Duration::from_millis(250);

/// How many times one pop follows `MOVED` or `ASK` to another cluster node
/// before it reports the redirect as an error (the slot is moving faster
/// than it can follow; the caller retries later).
const MAX_REDIRECTS: usize = 5;

/// A connection used only for `BLPOP`, one pop at a time.
pub(super) struct Dedicated {
    pub(super) conn: PopConnection,
    /// Its `CLIENT ID`, for `CLIENT UNBLOCK`. `None` when the ACL user may
    /// not run `CLIENT ID`.
    pub(super) id: Option<i64>,
    /// The server it is connected to (`host:port`).
    pub(super) node: String,
}

/// A pop's connection: driven by the popping task itself over plain TCP
/// or a Unix socket (`direct.rs`), or the redis crate's connection over
/// TLS.
pub(super) enum PopConnection {
    Direct(Direct),
    Multiplexed(MultiplexedConnection),
}

impl ConnectionLike for PopConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, Value> {
        match self {
            PopConnection::Direct(conn) => conn.req_packed_command(cmd),
            PopConnection::Multiplexed(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            PopConnection::Direct(conn) => conn.req_packed_commands(pipeline, offset, count),
            PopConnection::Multiplexed(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            PopConnection::Direct(conn) => conn.get_db(),
            PopConnection::Multiplexed(conn) => conn.get_db(),
        }
    }
}

/// What a pop hands back: its connection, and the pop's result.
type PopOutcome = (Dedicated, RedisResult<Vec<Vec<u8>>>);

/// A pop under way. Its caller drives it; if the caller stops waiting,
/// the pop is moved into a task of its own that finishes it properly (see
/// [`PendingPop`]). Boxed, so that it can move once started.
type RunningPop = Pin<Box<dyn Future<Output = PopOutcome> + Send>>;

/// Which blocking command a pop is.
#[derive(Debug, Clone)]
pub(super) enum Pop {
    /// `BLPOP` (`max` = 1) or `BLMPOP … COUNT max`: elements leave the list,
    /// and an abandoned pop's are pushed back.
    Head { max: usize },
    /// `BLMOVE key to LEFT RIGHT`, pipelined with `then` (a script, run by
    /// Redis as soon as the move completes, in the same round trip), whose
    /// reply is the pop's: the elements stay where they moved even when
    /// the pop was abandoned (their owner returns them).
    MoveTo { to: String, then: redis::Cmd },
}

/// Opens a dedicated connection to `node` and learns its `CLIENT ID`.
pub(super) async fn connect(node: &Node, connect_timeout: Duration) -> RedisResult<Dedicated> {
    let info = node.client.get_connection_info();
    let mut conn = if Direct::reaches(info) {
        PopConnection::Direct(Direct::connect(info, connect_timeout).await?)
    } else {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            // No response timeout: the crate's default (500 ms) would abandon a
            // pop that is still waiting inside Redis, and that pop would then
            // swallow the next element pushed to its list. Redis enforces the
            // pop's own timeout.
            .set_response_timeout(None);
        PopConnection::Multiplexed(
            node.client
                .get_multiplexed_async_connection_with_config(&config)
                .await?,
        )
    };
    let id = match redis::cmd("CLIENT").arg("ID").query_async::<i64>(&mut conn).await {
        Ok(id) => Some(id),
        // An ACL user without CLIENT can still pop; its cancelled pops just
        // cannot be cut short (see `unblock_and_join`).
        Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoPerm) => None,
        Err(e) => return Err(e),
    };
    Ok(Dedicated {
        conn,
        id,
        node: node.id.clone(),
    })
}

/// The dedicated connections of one [`super::Redis`], and the pops on them.
pub(super) struct Blocking {
    /// Which node each pop waits on.
    topology: Arc<Topology>,
    /// The shared connection, for putting elements back (and, on one
    /// server, `CLIENT UNBLOCK`): it must work while the dedicated
    /// connection is busy.
    manager: Shared,
    max_idle: usize,
    /// Idle connections by node, most recently used last. A plain mutex: it
    /// is held only to push or pop one element, never across an `.await`.
    idle: Mutex<HashMap<String, Vec<Dedicated>>>,
    /// How many cleanups of abandoned pops are still running, and a signal
    /// for when that count drops to zero (see [`Blocking::settle`]).
    abandoned: AtomicUsize,
    all_settled: Notify,
}

impl Blocking {
    pub(super) fn new(topology: Arc<Topology>, manager: Shared, max_idle: usize) -> Blocking {
        Blocking {
            topology,
            manager,
            max_idle,
            idle: Mutex::default(),
            abandoned: AtomicUsize::new(0),
            all_settled: Notify::new(),
        }
    }

    pub(super) fn idle_count(&self) -> usize {
        self.idle_list().values().map(Vec::len).sum()
    }

    /// Waits until every cleanup of an abandoned pop has finished, so that
    /// the elements those pops took are back in their lists.
    pub(super) async fn settle(&self) {
        loop {
            let notified = self.all_settled.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the count is read, so a cleanup finishing
            // in between still wakes us.
            notified.as_mut().enable();
            if self.abandoned.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Returns a healthy connection to the pool, or closes it (by dropping
    /// it) when the pool is full or replies are still owed on it (they
    /// would answer its next command).
    pub(super) fn put(&self, conn: Dedicated) {
        if matches!(&conn.conn, PopConnection::Direct(direct) if direct.owes()) {
            return;
        }
        let mut idle = self.idle_list();
        let of_node = idle.entry(conn.node.clone()).or_default();
        if of_node.len() < self.max_idle {
            of_node.push(conn);
        }
    }

    fn idle_list(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Dedicated>>> {
        // The list stays consistent even if a holder panicked: every
        // critical section is a single push, pop or len.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `BLPOP key timeout` (`max` = 1) or `BLMPOP timeout 1 key LEFT COUNT max`
    /// on a dedicated connection; `timeout` is not zero (the caller turns that
    /// into `LPOP`). Cancel safe.
    pub(super) async fn pop(
        self: &Arc<Self>,
        key: &str,
        max: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<Vec<u8>>> {
        self.blocking(key, Pop::Head { max }, timeout).await
    }

    /// `BLMOVE key to LEFT RIGHT timeout` then `then` on a dedicated
    /// connection, in one round trip; returns `then`'s reply, as a list of
    /// byte strings.
    pub(super) async fn move_then(
        self: &Arc<Self>,
        key: &str,
        to: &str,
        then: redis::Cmd,
        timeout: Option<Duration>,
    ) -> Result<Vec<Vec<u8>>> {
        let pop = Pop::MoveTo {
            to: to.to_owned(),
            then,
        };
        self.blocking(key, pop, timeout).await
    }

    /// Pops on the node that holds `key`, following `MOVED` and `ASK` on a
    /// cluster.
    async fn blocking(self: &Arc<Self>, key: &str, pop: Pop, timeout: Option<Duration>) -> Result<Vec<Vec<u8>>> {
        let mut node = self.topology.node_for(key).await?;
        let mut asking = false;
        for _ in 0..MAX_REDIRECTS {
            match self.blocking_on(&node, key, &pop, timeout, asking).await {
                Err(error) => match redirect_of(&error) {
                    Some(Redirect::Moved(to)) => {
                        self.topology.moved(key, &to);
                        node = self.topology.node_by_id(&to)?;
                        asking = false;
                    }
                    Some(Redirect::Ask(to)) => {
                        node = self.topology.node_by_id(&to)?;
                        asking = true;
                    }
                    None => {
                        self.topology.failed(&node.id, &error);
                        return Err(map_error(error));
                    }
                },
                Ok(popped) => return Ok(popped),
            }
        }
        Err(Error::Connection {
            source: format!("`{key}` moved between cluster nodes more than {MAX_REDIRECTS} times during one pop")
                .into(),
        })
    }

    /// One pop on `node`; a redirect comes back as the error it is.
    async fn blocking_on(
        self: &Arc<Self>,
        node: &Node,
        key: &str,
        pop: &Pop,
        timeout: Option<Duration>,
        asking: bool,
    ) -> RedisResult<Vec<Vec<u8>>> {
        // The cleanup of a cancelled pop is spawned from a destructor, which
        // may run outside the runtime's context: remember the runtime now.
        let runtime = Handle::try_current()
            .map_err(|_| RedisError::from((ErrorKind::Client, "the Redis backend must run inside a Tokio runtime")))?;
        let pooled = self.idle_of(&node.id);
        let from_pool = pooled.is_some();
        let conn = match pooled {
            Some(conn) => conn,
            None => self.connect(node).await?,
        };
        if conn.id.is_none() {
            return self
                .pop_in_slices(&runtime, conn, node, key, pop, timeout, asking)
                .await;
        }
        let seconds = timeout_arg(timeout);
        match self.pop_on(&runtime, conn, key, pop, &seconds, asking).await {
            // An idle connection can have died unnoticed (server restart,
            // idle timeout). That is not the caller's problem: pop again on
            // a fresh connection, which fails too if the server is down.
            Err(e) if from_pool && e.is_connection_dropped() => {
                let conn = self.connect(node).await?;
                self.pop_on(&runtime, conn, key, pop, &seconds, asking).await
            }
            result => result,
        }
    }

    fn idle_of(&self, node: &str) -> Option<Dedicated> {
        self.idle_list().get_mut(node).and_then(Vec::pop)
    }

    /// A pop on a connection that cannot be unblocked, as successive pops of
    /// at most [`UNINTERRUPTIBLE_SLICE`] until `timeout`.
    #[allow(clippy::too_many_arguments)]
    async fn pop_in_slices(
        self: &Arc<Self>,
        runtime: &Handle,
        conn: Dedicated,
        node: &Node,
        key: &str,
        pop: &Pop,
        timeout: Option<Duration>,
        asking: bool,
    ) -> RedisResult<Vec<Vec<u8>>> {
        let end = timeout.map(|timeout| tokio::time::Instant::now() + timeout);
        let mut conn = Some(conn);
        loop {
            let slice = match end {
                Some(end) => end
                    .saturating_duration_since(tokio::time::Instant::now())
                    .min(UNINTERRUPTIBLE_SLICE),
                None => UNINTERRUPTIBLE_SLICE,
            };
            if slice.is_zero() {
                return Ok(Vec::new());
            }
            let this = match conn.take().or_else(|| self.idle_of(&node.id)) {
                Some(conn) => conn,
                None => self.connect(node).await?,
            };
            let popped = self
                .pop_on(runtime, this, key, pop, &timeout_arg(Some(slice)), asking)
                .await?;
            if !popped.is_empty() {
                return Ok(popped);
            }
        }
    }

    async fn connect(&self, node: &Node) -> RedisResult<Dedicated> {
        connect(node, self.topology.connect_timeout()).await
    }

    /// A dedicated connection to `node`: an idle one unless `fresh`, else
    /// a new one. Says whether it came from the pool (it may have died
    /// unnoticed there).
    pub(super) async fn connection(&self, node: &Node, fresh: bool) -> RedisResult<(Dedicated, bool)> {
        match self.idle_of(&node.id).filter(|_| !fresh) {
            Some(conn) => Ok((conn, true)),
            None => Ok((self.connect(node).await?, false)),
        }
    }

    /// Puts `values`, taken in this order from the head of the list at
    /// `key` for a caller who has gone, back at its head in the same order,
    /// in a task of its own that [`Blocking::settle`] waits for.
    pub(super) fn put_back(self: &Arc<Self>, runtime: &Handle, key: String, values: Vec<Vec<u8>>) {
        let blocking = Arc::clone(self);
        blocking.abandoned.fetch_add(1, Ordering::SeqCst);
        runtime.spawn(async move {
            let counted = Abandoned(Arc::clone(&blocking));
            blocking.push_back(&key, &values).await;
            drop(counted);
        });
    }

    /// Puts `values`, popped for nobody, back where they were at the head
    /// of `key`, in order, ahead of anything pushed since (`LPUSH` pushes
    /// its arguments to the head one after another).
    async fn push_back(&self, key: &str, values: &[Vec<u8>]) {
        let pushed = redis::cmd("LPUSH")
            .arg(key)
            .arg(values.iter().rev().collect::<Vec<_>>())
            .query_async::<i64>(&mut self.manager.clone())
            .await;
        match pushed {
            Ok(_) => tracing::debug!(key, "put back an element popped for nobody"),
            Err(e) => tracing::error!(
                key,
                count = values.len(),
                error = %e,
                "lost an element popped for nobody: cannot push it back"
            ),
        }
    }

    /// Runs one `BLPOP` on `conn`, in the caller's task unless the caller
    /// stops waiting for it: the pop then moves to a task of its own that
    /// finishes it properly.
    async fn pop_on(
        self: &Arc<Self>,
        runtime: &Handle,
        conn: Dedicated,
        key: &str,
        pop: &Pop,
        seconds: &str,
        asking: bool,
    ) -> RedisResult<Vec<Vec<u8>>> {
        let id = conn.id.map(|id| (id, conn.node.clone()));
        let running: RunningPop = Box::pin(run_pop(conn, key.to_owned(), pop.clone(), seconds.to_owned(), asking));
        let mut guard = PendingPop {
            running: Some(running),
            blocking: Arc::clone(self),
            runtime: runtime.clone(),
            key: key.to_owned(),
            pop: pop.clone(),
            id,
        };
        // Driven here, with no task of its own in between: if this await
        // is cancelled, `guard`'s destructor takes over.
        let (conn, popped) = guard.running.as_mut().expect("set above").await;
        guard.running = None; // completed: nothing left for the guard to do
        match popped {
            Ok(popped) => {
                self.put(conn);
                Ok(popped)
            }
            // A connection that failed is not reused: its state is unknown.
            Err(e) => Err(e),
        }
    }

    /// Finishes a pop whose caller went away: unblocks it, waits for its
    /// reply, puts a popped element back at the head of its list, and
    /// returns the connection to the pool.
    async fn finish_cancelled(
        self: Arc<Self>,
        mut running: RunningPop,
        key: String,
        pop: Pop,
        id: Option<(i64, String)>,
    ) {
        match self.unblock_and_join(&mut running, id).await {
            (conn, Ok(values)) if values.is_empty() => self.put(conn),
            // Moved, not popped: the element is safe where it went.
            (conn, Ok(_)) if matches!(pop, Pop::MoveTo { .. }) => self.put(conn),
            (conn, Ok(values)) => {
                // The pop took elements nobody will receive.
                self.push_back(&key, &values).await;
                // The dedicated connection itself is fine either way.
                self.put(conn);
            }
            // The pop failed, so it took nothing; its connection is dropped.
            (_conn, Err(_)) => {}
        }
    }

    /// Makes a cancelled pop return soon, then waits for it.
    ///
    /// `CLIENT UNBLOCK` makes a waiting `BLPOP` return nil at once. It
    /// answers 0 when the connection is not blocked: either the `BLPOP` has
    /// not reached Redis yet (it travels on another connection than the
    /// `UNBLOCK`), or it has already been answered. In both cases we wait
    /// briefly for the pop and ask again, with growing pauses. If we cannot
    /// unblock it (no `CLIENT ID`, no permission, shared connection down),
    /// the pop ends at its own timeout or when an element arrives, and the
    /// element is then put back.
    async fn unblock_and_join(&self, running: &mut RunningPop, id: Option<(i64, String)>) -> PopOutcome {
        if let Some((id, node)) = id {
            let mut pause = Backoff::new(Duration::from_millis(5), Duration::from_millis(500));
            for _ in 0..UNBLOCK_ATTEMPTS {
                let unblocked = self.unblock(id, &node).await;
                match unblocked {
                    Ok(0) => {
                        if let Ok(outcome) = tokio::time::timeout(pause.next_pause(), &mut *running).await {
                            return outcome;
                        }
                    }
                    // Unblocked: its nil reply is on the way.
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(client_id = id, error = %e, "cannot unblock a cancelled BLPOP");
                        break;
                    }
                }
            }
        }
        running.await
    }
}

impl Blocking {
    /// `CLIENT UNBLOCK id` on `node`, the server of the connection: over the
    /// shared connection on one server, else over the node's control
    /// connection (the shared one may be on another node by now).
    pub(super) async fn unblock(&self, id: i64, node: &str) -> RedisResult<i64> {
        let mut unblock = redis::cmd("CLIENT");
        unblock.arg("UNBLOCK").arg(id);
        if let Shared::Single(manager) = &self.manager {
            return unblock.query_async(&mut manager.clone()).await;
        }
        let mut control = self.topology.control(node).await?;
        let unblocked = unblock.query_async(&mut control).await;
        if unblocked.is_err() {
            self.topology.drop_control(node).await;
        }
        unblocked
    }
}

/// Finishes a pop properly, in a task of its own, if dropped before the pop
/// completed.
struct PendingPop {
    /// `None` once the pop has completed and been handled.
    running: Option<RunningPop>,
    blocking: Arc<Blocking>,
    runtime: Handle,
    key: String,
    pop: Pop,
    id: Option<(i64, String)>,
}

impl Drop for PendingPop {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            // Not dropped: that would lose an element Redis may already
            // have sent on the connection.
            let blocking = Arc::clone(&self.blocking);
            let key = std::mem::take(&mut self.key);
            let pop = self.pop.clone();
            let id = self.id.take();
            blocking.abandoned.fetch_add(1, Ordering::SeqCst);
            self.runtime.spawn(async move {
                let counted = Abandoned(Arc::clone(&blocking));
                blocking.finish_cancelled(running, key, pop, id).await;
                drop(counted);
            });
        }
    }
}

/// Counts one running cleanup of an abandoned pop, until dropped (even by a
/// panic, so that [`Blocking::settle`] cannot wait forever).
struct Abandoned(Arc<Blocking>);

impl Drop for Abandoned {
    fn drop(&mut self) {
        if self.0.abandoned.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.all_settled.notify_waiters();
        }
    }
}

/// The body of a pop task.
/// `asking` sends `ASKING` first, for a key a cluster is moving to this node.
async fn run_pop(mut conn: Dedicated, key: String, pop: Pop, seconds: String, asking: bool) -> PopOutcome {
    if asking && let Err(error) = redis::cmd("ASKING").query_async::<()>(&mut conn.conn).await {
        return (conn, Err(error));
    }
    let max = match pop {
        Pop::Head { max } => max,
        Pop::MoveTo { to, then } => {
            let mut pipe = redis::pipe();
            pipe.cmd("BLMOVE")
                .arg(&key)
                .arg(&to)
                .arg("LEFT")
                .arg("RIGHT")
                .arg(&seconds)
                .ignore();
            if asking {
                // ASKING holds for one command: the script needs it again.
                pipe.cmd("ASKING").ignore();
            }
            pipe.add_command(then);
            let reply = pipe
                .query_async::<(Vec<Vec<u8>>,)>(&mut conn.conn)
                .await
                .map(|(values,)| values);
            return (conn, reply);
        }
    };
    let reply = if max <= 1 {
        redis::cmd("BLPOP")
            .arg(&key)
            .arg(&seconds)
            .query_async::<Option<(Vec<u8>, Vec<u8>)>>(&mut conn.conn)
            .await
            .map(|popped| popped.map(|(_key, value)| value).into_iter().collect())
    } else {
        redis::cmd("BLMPOP")
            .arg(&seconds)
            .arg(1)
            .arg(&key)
            .arg("LEFT")
            .arg("COUNT")
            .arg(max)
            .query_async::<Option<(Vec<u8>, Vec<Vec<u8>>)>>(&mut conn.conn)
            .await
            .map(|popped| popped.map(|(_key, values)| values).unwrap_or_default())
    };
    (conn, reply)
}

/// The `BLPOP` timeout argument: `0` waits forever; otherwise seconds with
/// millisecond decimals (Redis ≥ 6), rounded up so a short wait is not 0.
fn timeout_arg(timeout: Option<Duration>) -> String {
    match timeout.map(millis_ceil) {
        Some(ms) if ms <= FOREVER_AFTER_MILLIS => format!("{}.{:03}", ms / 1000, ms % 1000),
        _ => "0".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_arg_rounds_up_to_the_millisecond() {
        assert_eq!(timeout_arg(None), "0");
        assert_eq!(timeout_arg(Some(Duration::from_nanos(1))), "0.001");
        assert_eq!(timeout_arg(Some(Duration::from_millis(1500))), "1.500");
        assert_eq!(timeout_arg(Some(Duration::from_micros(2_000_001))), "2.001");
        assert_eq!(timeout_arg(Some(Duration::MAX)), "0");
    }
}
