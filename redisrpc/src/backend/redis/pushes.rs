//! Pushes in batches: `RPUSH`es that callers make while another is on its
//! way go out together, as one pipeline, when it is back.
//!
//! Every call pushes its request. The shared connection would write each
//! push as it comes, one write (and one read for Redis) each; under load
//! most of them come while an earlier push is on its way. So the first push
//! goes at once, as before, and the pushes that come meanwhile wait for it
//! and then go in one pipeline, and so on while they keep coming (group
//! commit). A lone push costs nothing more; under load, one write carries
//! every push made during the previous one's round trip.
//!
//! A push on its way for far longer than a round trip (it went to a master
//! that died, and waits on its connection) does not hold up the pushes
//! after it: after [`STALLED_AFTER`] the next push goes at
//! once again, through the connection as it is by then.
//!
//! Each push keeps its own outcome (a refused push fails alone). The batch
//! is sent by whoever was first; if that caller stops waiting, a task of
//! its own sends what is left, so no push is ever stranded.
//!
//! A cluster's pushes go alone: its client routes each command by its key.
//! A pipeline would have to keep to one slot, and the `redis` crate's
//! cluster client sends a whole pipeline again where a redirect points
//! when any one command of it was redirected: while a slot moves, a push
//! that had landed on the old owner would land a second time, and its call
//! would run twice.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::{Cmd, RedisResult};
use tokio::sync::oneshot;

use super::map_error;
use super::shared::Shared;
use crate::{Error, Result};

/// The most pushes one pipeline carries; the rest go in the next.
const MAX_BATCH: usize = 256;

/// How long a push on its way holds up the pushes after it, at most; far
/// longer than a round trip.
const STALLED_AFTER: Duration = Duration::from_millis(50);

/// The pushes of one shared connection (see the module docs).
pub(super) struct Pushes {
    manager: Shared,
    waiting: Mutex<Waiting>,
}

#[derive(Default)]
struct Waiting {
    pushes: Vec<(Cmd, oneshot::Sender<Result<usize>>)>,
    /// Since when the push (or batch) on its way has been, if one is:
    /// whoever sent it sends these next.
    sending: Option<Instant>,
}

impl Pushes {
    pub(super) fn new(manager: Shared) -> Arc<Pushes> {
        Arc::new(Pushes {
            manager,
            waiting: Mutex::default(),
        })
    }

    /// `RPUSH key values…`; `values` is not empty.
    pub(super) async fn rpush(self: &Arc<Self>, key: &str, values: &[&[u8]]) -> Result<usize> {
        let mut cmd = redis::cmd("RPUSH");
        cmd.arg(key);
        for value in values {
            cmd.arg(*value);
        }
        if matches!(self.manager, Shared::Cluster(_)) {
            return self.send_alone(&cmd).await;
        }
        match self.join(cmd) {
            Ok(outcome) => outcome.await.unwrap_or_else(|_| {
                Err(Error::Connection {
                    source: "the push was dropped unsent".into(),
                })
            }),
            Err(cmd) => {
                // On the way out, however this caller leaves, the pushes that
                // came meanwhile are sent.
                let _then = SendWaiting(Arc::clone(self));
                self.send_alone(&cmd).await
            }
        }
    }

    /// Queues `cmd` behind the push on its way, for its outcome; or, when
    /// none is, hands it back to be sent at once.
    fn join(&self, cmd: Cmd) -> std::result::Result<oneshot::Receiver<Result<usize>>, Cmd> {
        let mut waiting = self.waiting();
        match waiting.sending {
            Some(since) if since.elapsed() < STALLED_AFTER => {
                let (done, outcome) = oneshot::channel();
                waiting.pushes.push((cmd, done));
                Ok(outcome)
            }
            _ => {
                waiting.sending = Some(Instant::now());
                Err(cmd)
            }
        }
    }

    async fn send_alone(&self, cmd: &Cmd) -> Result<usize> {
        cmd.query_async(&mut self.manager.clone()).await.map_err(map_error)
    }

    /// Sends what waits, batch after batch, until nothing does.
    async fn send_waiting(&self) {
        while let Some(batch) = self.next_batch() {
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            let mut outcomes = Vec::with_capacity(batch.len());
            for (cmd, done) in batch {
                pipe.add_command(cmd);
                outcomes.push(done);
            }
            let pushed: RedisResult<Vec<RedisResult<usize>>> = pipe.query_async(&mut self.manager.clone()).await;
            match pushed {
                Ok(lengths) if lengths.len() == outcomes.len() => {
                    for (done, length) in outcomes.into_iter().zip(lengths) {
                        let _ = done.send(length.map_err(map_error));
                    }
                }
                Ok(lengths) => {
                    let why = format!("{} pushes were answered with {} replies", outcomes.len(), lengths.len());
                    for done in outcomes {
                        let _ = done.send(Err(Error::Connection {
                            source: why.clone().into(),
                        }));
                    }
                }
                Err(error) => {
                    for done in outcomes {
                        let _ = done.send(Err(map_error(error.clone())));
                    }
                }
            }
        }
    }

    /// The pushes waiting, at most [`MAX_BATCH`]; `None` when there are
    /// none, and then nothing is being sent any more.
    fn next_batch(&self) -> Option<Vec<(Cmd, oneshot::Sender<Result<usize>>)>> {
        let mut waiting = self.waiting();
        if waiting.pushes.is_empty() {
            waiting.sending = None;
            return None;
        }
        waiting.sending = Some(Instant::now());
        let first = waiting.pushes.len().min(MAX_BATCH);
        let rest = waiting.pushes.split_off(first);
        Some(std::mem::replace(&mut waiting.pushes, rest))
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, Waiting> {
        // Every critical section is a push, a flag or a swap.
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Sends the pushes that came while the first was on its way, once it is
/// back or its caller stopped waiting: in a task of its own, which ends
/// when nothing waits any more.
struct SendWaiting(Arc<Pushes>);

impl Drop for SendWaiting {
    fn drop(&mut self) {
        let pushes = Arc::clone(&self.0);
        {
            let mut waiting = pushes.waiting();
            if waiting.pushes.is_empty() {
                waiting.sending = None;
                return;
            }
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { pushes.send_waiting().await });
            }
            // Outside a runtime nothing can be sent: the waiting pushes
            // fail (their senders are dropped).
            Err(_) => {
                let mut waiting = pushes.waiting();
                waiting.pushes.clear();
                waiting.sending = None;
            }
        }
    }
}
