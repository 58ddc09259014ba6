//! Serving a service on a queue.
//!
//! A [`Server`] pops requests from its queue, runs each, and pushes the
//! reply to the queue the request names. It is built to stay up whatever a
//! client pushes:
//!
//! * a message that is not a request is logged, counted and dropped;
//! * an unknown method, a missing, extra or mistyped argument, a handler
//!   error, a panic, or a result JSON cannot carry each become an
//!   `exception` reply, and the server goes on;
//! * replies only go to `<queue>:rpc:…` keys, so a request cannot make the
//!   server write anywhere else in the store;
//! * every reply queue expires, so replies nobody collects do not pile up.
//!
//! Every server also answers [`rpc.describe`](crate::describe::DESCRIBE_METHOD)
//! with its service's description.
//!
//! At most `concurrency` calls run at once; the server takes a request from
//! the queue only when it has room to run it, so servers sharing a queue
//! share its load. Shutdown stops taking requests, then finishes and answers
//! the ones already taken.
//!
//! The way of one request is `request.rs`; its reply goes out with others
//! that ended at about the same time (`replies.rs`), and a caller's notice
//! that it gave up reaches its call through `cancels.rs`. A call that
//! finishes at its first poll, as most do, runs on the serving loop's own
//! task; the others get tasks of their own (see [`Inline`]).
//!
//! Every server keeps a liveness record in Redis (`liveness.rs`). In
//! [`Delivery::AtLeastOnce`] mode it also holds what it takes in a list of
//! its own until the reply is pushed, and returns the held requests of
//! servers that died to the queue (see the README's "At-least-once
//! delivery").

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use self::request::{Context, Warnings};
use crate::Result;
use crate::backend::{HeldKeys, IntoBackend, SharedBackend};
use crate::backoff::Backoff;
use crate::describe::DESCRIBE_METHOD;
use crate::service::Service;

mod cancels;
mod liveness;
pub mod metrics;
mod replies;
mod request;

/// Serves one [`Service`] on one queue. Configure it with the builder
/// methods, then [`run`](Server::run) it.
pub struct Server {
    backend: SharedBackend,
    queue: String,
    service: Arc<dyn Service>,
    concurrency: usize,
    reply_ttl: Duration,
    clear_queue: bool,
    cancellation: Cancellation,
    max_request_size: usize,
    delivery: Delivery,
    max_deliveries: u64,
    handle: ServerHandle,
}

/// What becomes of a request whose server dies running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Delivery {
    /// It is lost, and its caller times out (the default, and what every
    /// RedisRPC peer does): no call ever runs twice.
    #[default]
    AtMostOnce,
    /// It runs again on another server: a request taken moves atomically to
    /// a list held for this server, leaves it only with its reply, and a
    /// live server returns a dead one's held requests to the head of the
    /// queue. A handler may therefore run twice; use it for idempotent
    /// work (see the README's "At-least-once delivery").
    AtLeastOnce,
}

impl Delivery {
    /// `at-most-once` or `at-least-once`.
    pub fn name(self) -> &'static str {
        match self {
            Delivery::AtMostOnce => "at-most-once",
            Delivery::AtLeastOnce => "at-least-once",
        }
    }
}

impl std::str::FromStr for Delivery {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        match text {
            "at-most-once" => Ok(Delivery::AtMostOnce),
            "at-least-once" => Ok(Delivery::AtLeastOnce),
            other => Err(format!("unknown delivery mode `{other}` (at-most-once, at-least-once)")),
        }
    }
}

/// The default of [`Server::with_max_deliveries`].
pub const DEFAULT_MAX_DELIVERIES: u64 = 5;

/// What a server does with a call whose caller gave up while it runs (its
/// deadline passed, or it dropped the call or timed out). Either way the
/// call's [`CallContext`](crate::service::CallContext) says so, and no call is ever *started* after its
/// deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Cancellation {
    /// Let the method finish, and reply (the default). A method that should
    /// stop early watches [`CallContext::cancelled`](crate::service::CallContext::cancelled): the choice is then the
    /// method's.
    #[default]
    RunToCompletion,
    /// Drop the method's future at once, as tarpc does; no reply is sent.
    /// Code after the method's current `.await` never runs, so use it for
    /// services whose methods can stop at any `.await`.
    Drop,
}

/// The default of [`Server::with_max_request_size`]: 64 MiB.
pub const DEFAULT_MAX_REQUEST_SIZE: usize = 64 << 20;

/// Controls a running [`Server`] from elsewhere: shut it down, read its counters.
#[derive(Clone, Debug, Default)]
pub struct ServerHandle {
    shutdown: CancellationToken,
    stats: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    served: AtomicU64,
    failed: AtomicU64,
    malformed: AtomicU64,
    refused: AtomicU64,
    reply_errors: AtomicU64,
    expired: AtomicU64,
    cancelled: AtomicU64,
    redelivered: AtomicU64,
    poisoned: AtomicU64,
    in_flight: AtomicU64,
}

/// What a server has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ServerStats {
    /// Calls answered with a return value.
    pub served: u64,
    /// Calls answered with an exception (unknown method, bad arguments,
    /// handler error or panic, unrepresentable result, unusable call).
    pub failed: u64,
    /// Messages dropped because they are not requests at all.
    pub malformed: u64,
    /// Requests dropped because their response queue is not `<queue>:rpc:…`.
    pub refused: u64,
    /// Replies that could not be pushed because the backend failed.
    pub reply_errors: u64,
    /// Requests dropped unstarted because their deadline had passed.
    pub expired: u64,
    /// Calls whose caller gave up while they ran, dropped unfinished
    /// ([`Cancellation::Drop`]).
    pub cancelled: u64,
    /// Requests taken that had been delivered before, to a server that
    /// died ([`Delivery::AtLeastOnce`]).
    pub redelivered: u64,
    /// Requests answered with an exception instead of run, for having been
    /// delivered more than [`Server::with_max_deliveries`] times.
    pub poisoned: u64,
    /// Calls running now.
    pub in_flight: u64,
}

impl ServerHandle {
    /// Asks the server to stop taking requests; it then finishes and answers
    /// the ones in flight, and [`Server::run`] returns.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// The server's counters so far.
    pub fn stats(&self) -> ServerStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let c = &self.stats;
        ServerStats {
            served: read(&c.served),
            failed: read(&c.failed),
            malformed: read(&c.malformed),
            refused: read(&c.refused),
            reply_errors: read(&c.reply_errors),
            expired: read(&c.expired),
            cancelled: read(&c.cancelled),
            redelivered: read(&c.redelivered),
            poisoned: read(&c.poisoned),
            in_flight: read(&c.in_flight),
        }
    }
}

impl Server {
    /// A server of `service` on `queue`, running up to 64 calls at once.
    pub fn new(backend: impl IntoBackend, queue: impl Into<String>, service: impl Service) -> Self {
        Server {
            backend: backend.into_backend(),
            queue: queue.into(),
            service: Arc::new(service),
            concurrency: 64,
            reply_ttl: Duration::from_secs(60),
            clear_queue: false,
            cancellation: Cancellation::default(),
            max_request_size: DEFAULT_MAX_REQUEST_SIZE,
            delivery: Delivery::default(),
            max_deliveries: DEFAULT_MAX_DELIVERIES,
            handle: ServerHandle::default(),
        }
    }

    /// How many calls may run at once (at least 1).
    pub fn with_concurrency(mut self, limit: usize) -> Self {
        self.concurrency = limit.max(1);
        self
    }

    /// How long a reply waits in its queue for the caller before it expires
    /// (default 60 s; at least 1 ms).
    pub fn with_reply_ttl(mut self, ttl: Duration) -> Self {
        self.reply_ttl = ttl.max(Duration::from_millis(1));
        self
    }

    /// Whether to delete the queue, and any requests waiting in it, when the
    /// server starts (as the Python and PHP peers always do). Off by default:
    /// other servers may be serving the same queue.
    pub fn with_clear_queue_on_start(mut self, clear: bool) -> Self {
        self.clear_queue = clear;
        self
    }

    /// What to do with a call whose caller gave up while it runs (default
    /// [`Cancellation::RunToCompletion`]).
    pub fn with_cancellation(mut self, cancellation: Cancellation) -> Self {
        self.cancellation = cancellation;
        self
    }

    /// The largest request, in bytes, the server decodes (default
    /// [`DEFAULT_MAX_REQUEST_SIZE`]); a larger one is answered with an
    /// exception saying so.
    pub fn with_max_request_size(mut self, bytes: usize) -> Self {
        self.max_request_size = bytes;
        self
    }

    /// What becomes of the requests of a server that dies (default
    /// [`Delivery::AtMostOnce`]). Servers of both modes may share a queue:
    /// each request then has the fate of the server that took it.
    pub fn with_delivery(mut self, delivery: Delivery) -> Self {
        self.delivery = delivery;
        self
    }

    /// At least once: how many deliveries a request may have had without an
    /// answer (its servers died running it) before it is answered with an
    /// exception instead of run again (default [`DEFAULT_MAX_DELIVERIES`]).
    pub fn with_max_deliveries(mut self, deliveries: u64) -> Self {
        self.max_deliveries = deliveries.max(1);
        self
    }

    /// A handle to shut the server down and read its counters.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Serves until [`ServerHandle::shutdown`] is called, then finishes the
    /// calls in flight and returns the counters.
    ///
    /// Backend failures do not end it: it logs them and retries with a
    /// growing pause (up to 2 s), so a server outlives a Redis restart.
    pub async fn run(self) -> Result<ServerStats> {
        let mut known = self.service.method_names();
        known.push(DESCRIBE_METHOD.to_owned());
        let metrics = Arc::new(metrics::Metrics::new(&self.queue, known));
        let instance = Uuid::new_v4().simple().to_string();
        let keys = HeldKeys::new(&self.queue, &instance);
        let context = Arc::new(Context {
            held: (self.delivery == Delivery::AtLeastOnce).then(|| keys.clone()),
            max_deliveries: self.max_deliveries,
            backend: self.backend,
            reply_prefix: format!("{}:rpc:", self.queue),
            queue: self.queue,
            service: self.service,
            reply_ttl: self.reply_ttl,
            cancellation: self.cancellation,
            max_request_size: self.max_request_size,
            stats: self.handle.stats.clone(),
            running: Mutex::default(),
            warnings: Warnings::default(),
            metrics: metrics.clone(),
            replies: Default::default(),
        });
        if self.clear_queue {
            context.backend.del(&context.queue).await?;
        }
        let shutdown = self.handle.shutdown.clone();
        let listener = tokio::spawn(cancels::listen_for_cancels(context.clone(), shutdown.child_token()));
        let room = Arc::new(Semaphore::new(self.concurrency));
        let record = liveness::Record::new(&keys, self.delivery, self.concurrency);
        let beating = tokio::spawn(liveness::beat(
            context.backend.clone(),
            record,
            self.handle.clone(),
            metrics,
        ));
        let reaping = (self.delivery == Delivery::AtLeastOnce)
            .then(|| tokio::spawn(liveness::reap(context.backend.clone(), keys.clone())));
        let mut in_flight = JoinSet::new();
        let mut pause = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
        tracing::info!(queue = %context.queue, concurrency = self.concurrency, delivery = self.delivery.name(), %instance, "serving");
        // One wait for the shutdown, registered once, for every turn.
        let stopping = shutdown.cancelled();
        let mut stopping = std::pin::pin!(stopping);
        loop {
            // Take a request only when there is room to run it, so that
            // requests this server cannot start yet stay in the queue for
            // the other servers.
            let permit = tokio::select! {
                biased;
                () = &mut stopping => break,
                permit = room.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            };
            // Take as many waiting requests as there is room for, in one
            // round trip. Only this loop acquires permits, so the ones
            // counted free now are still free when the batch arrives.
            let room_for = 1 + room.available_permits();
            // Dropping the pop on shutdown is safe: backends put back the
            // elements handed to an abandoned pop, and an abandoned take
            // leaves them held, returned to the queue below.
            let popped = tokio::select! {
                biased;
                () = &mut stopping => break,
                popped = context.take(room_for) => popped,
            };
            match popped {
                Ok(messages) => {
                    pause.reset();
                    let mut permit = Some(permit);
                    let mut inline = Inline::default();
                    for message in messages {
                        let permit = match permit.take() {
                            Some(permit) => permit,
                            None => room
                                .clone()
                                .try_acquire_owned()
                                .expect("counted as free before the pop"),
                        };
                        let context = context.clone();
                        let call = async move {
                            context.handle(message).await;
                            drop(permit);
                        };
                        inline.start(call, &mut in_flight).await;
                    }
                    // Let the replies just handed to the connection's writer
                    // go out before the next pop is written.
                    if !context.backend.answers_in_place() {
                        tokio::task::yield_now().await;
                    }
                }
                Err(error) => {
                    let pause = pause.next_pause();
                    tracing::error!(queue = %context.queue, %error, retry_in = ?pause, "cannot take requests");
                    tokio::select! {
                        () = &mut stopping => break,
                        () = tokio::time::sleep(pause) => {}
                    }
                }
            }
            while in_flight.try_join_next().is_some() {}
        }
        while in_flight.try_join_next().is_some() {}
        tracing::info!(queue = %context.queue, in_flight = in_flight.len(), "shutting down");
        while in_flight.join_next().await.is_some() {}
        // The pop abandoned at shutdown may have taken requests; make sure
        // they are back in the queue before the program can exit.
        context.backend.settle().await;
        listener.abort();
        beating.abort();
        if let Some(reaping) = reaping {
            reaping.abort();
        }
        liveness::leave(&context.backend, &keys).await;
        Ok(self.handle.stats())
    }

    /// Serves until Ctrl-C (SIGINT), then shuts down gracefully.
    pub async fn run_until_ctrl_c(self) -> Result<ServerStats> {
        let handle = self.handle();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("Ctrl-C received");
            }
            handle.shutdown();
        });
        self.run().await
    }
}

/// How long the calls of one batch may run on the serving loop's own task
/// (see [`Inline`]) before the rest of the batch goes to tasks of their
/// own.
const INLINE_BUDGET: Duration = Duration::from_micros(200);

/// Starts a batch's calls on the serving loop's own task while they finish
/// at once, as most do: a call that completes at its first poll costs no
/// task, no wake-up and no hop between threads. A call still pending after
/// that poll goes on in a task of its own, as does every call of the batch
/// once its calls have taken [`INLINE_BUDGET`] of the loop's time, so that
/// a slow method (a plain `fn` that computes for long) holds up the loop
/// once per batch at most, and the rest of the batch runs on every worker.
#[derive(Default)]
struct Inline {
    /// When the batch's first call started.
    since: Option<std::time::Instant>,
    spent: bool,
}

impl Inline {
    async fn start(&mut self, call: impl Future<Output = ()> + Send + 'static, tasks: &mut JoinSet<()>) {
        if self.spent {
            tasks.spawn(call);
            return;
        }
        let mut call = Box::pin(call);
        let since = *self.since.get_or_insert_with(std::time::Instant::now);
        // A panic stays in the call, as it would in a task of its own.
        let polled = std::future::poll_fn(|cx| {
            Poll::Ready(std::panic::catch_unwind(AssertUnwindSafe(|| call.as_mut().poll(cx))))
        })
        .await;
        self.spent = since.elapsed() >= INLINE_BUDGET;
        match polled {
            Ok(Poll::Ready(())) => {}
            Ok(Poll::Pending) => {
                tasks.spawn(call);
            }
            Err(_) => tracing::error!("a call's task panicked"),
        }
    }
}
