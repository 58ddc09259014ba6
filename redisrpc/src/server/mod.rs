//! Serving a service on a queue.
//!
//! A [`Server`] pops requests from its queue, runs each on its own task, and
//! pushes the reply to the queue the request names. It is built to stay up
//! whatever a client pushes:
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
//! Every server keeps a liveness record in Redis (`liveness.rs`). In
//! [`Delivery::AtLeastOnce`] mode it also holds what it takes in a list of
//! its own until the reply is pushed, and returns the held requests of
//! servers that died to the queue (see the README's "At-least-once
//! delivery").

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::backend::{HeldKeys, HeldReply, IntoBackend, PubSubEvent, SharedBackend, Taken};
use crate::backoff::Backoff;
use crate::describe::DESCRIBE_METHOD;
use crate::protocol::{self, Incoming, JsonText, Reply, RequestError};
use crate::service::{CallContext, CallError, CallErrorKind, Service};
use crate::telemetry::{self, ServerSpan};
use crate::throttle::Throttle;
use crate::{Result, layout};

mod liveness;
pub mod metrics;

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
/// call's [`CallContext`] says so, and no call is ever *started* after its
/// deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Cancellation {
    /// Let the method finish, and reply (the default). A method that should
    /// stop early watches [`CallContext::cancelled`]: the choice is then the
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
        });
        if self.clear_queue {
            context.backend.del(&context.queue).await?;
        }
        let shutdown = self.handle.shutdown.clone();
        let listener = tokio::spawn(listen_for_cancels(context.clone(), shutdown.child_token()));
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
        loop {
            // Take a request only when there is room to run it, so that
            // requests this server cannot start yet stay in the queue for
            // the other servers.
            let permit = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
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
                () = shutdown.cancelled() => break,
                popped = context.take(room_for) => popped,
            };
            match popped {
                Ok(messages) => {
                    pause.reset();
                    let mut permit = Some(permit);
                    for message in messages {
                        let permit = match permit.take() {
                            Some(permit) => permit,
                            None => room
                                .clone()
                                .try_acquire_owned()
                                .expect("counted as free before the pop"),
                        };
                        let context = context.clone();
                        in_flight.spawn(async move {
                            context.handle(message).await;
                            drop(permit);
                        });
                    }
                }
                Err(error) => {
                    let pause = pause.next_pause();
                    tracing::error!(queue = %context.queue, %error, retry_in = ?pause, "cannot take requests");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
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

/// What every call's task needs, shared.
struct Context {
    /// At least once: this server's held list and its companions.
    held: Option<HeldKeys>,
    max_deliveries: u64,
    backend: SharedBackend,
    queue: String,
    reply_prefix: String,
    service: Arc<dyn Service>,
    reply_ttl: Duration,
    cancellation: Cancellation,
    max_request_size: usize,
    stats: Arc<Counters>,
    /// The calls running now, by reply queue, so that a caller's notice
    /// that it gave up reaches its call.
    running: Mutex<HashMap<String, CallContext>>,
    warnings: Warnings,
    metrics: Arc<metrics::Metrics>,
}

/// The warnings a client can provoke, each limited (see [`Throttle`]).
#[derive(Default)]
struct Warnings {
    malformed: Throttle,
    refused: Throttle,
    expired: Throttle,
}

/// Follows the callers' notices that they gave up a call, and cancels the
/// call if it runs here. Without the notices (no subscription possible),
/// calls are still cancelled at their deadline.
async fn listen_for_cancels(context: Arc<Context>, stop: CancellationToken) {
    let channel = layout::cancel_channel(&context.queue);
    let mut pause = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let mut notices = loop {
        match context.backend.subscribe(std::slice::from_ref(&channel), &[]).await {
            Ok(notices) => break notices,
            Err(error) => {
                // Meanwhile calls still stop at their deadline.
                let pause = pause.next_pause();
                tracing::warn!(queue = %context.queue, %error, retry_in = ?pause, "cannot follow cancelled calls");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(pause) => {}
                }
            }
        }
    };
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => return,
            event = notices.next() => event,
        };
        match event {
            Some(PubSubEvent::Message { payload, .. }) => {
                let Ok(response_queue) = std::str::from_utf8(&payload) else {
                    continue;
                };
                let running = context.running.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(call) = running.get(response_queue) {
                    call.cancel();
                }
            }
            Some(_) => {}
            None => return,
        }
    }
}

/// Counts a call in [`ServerStats::in_flight`] until dropped.
struct InFlightCall<'a>(&'a Counters);

impl Drop for InFlightCall<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the store's clock tells of a request ([`Context::timing`]).
struct Timing {
    /// Its deadline on this process's clock.
    deadline: Option<Instant>,
    /// How long it waited in the queue, when it says when it was sent.
    waited: Option<Duration>,
}

/// Keeps a call in [`Context::running`] while it runs.
struct Running<'a> {
    context: &'a Context,
    response_queue: &'a str,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.context
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(self.response_queue);
    }
}

impl Context {
    /// Takes up to `max` requests, waiting for the first.
    async fn take(&self, max: usize) -> Result<Vec<Taken>> {
        match &self.held {
            Some(keys) => self.backend.take_held(keys, max, None).await,
            None => Ok(self
                .backend
                .blpop_many(&self.queue, max, None)
                .await?
                .into_iter()
                .map(|request| Taken { request, delivery: 1 })
                .collect()),
        }
    }

    /// Runs one request taken from the queue (delivered `taken.delivery`
    /// times, this one included), replies, and in at-least-once mode
    /// releases it from the held list with the reply, or without one when
    /// there is nobody to answer.
    async fn handle(&self, taken: Taken) {
        self.stats.in_flight.fetch_add(1, Ordering::Relaxed);
        let _done = InFlightCall(&self.stats);
        if taken.delivery > 1 {
            self.stats.redelivered.fetch_add(1, Ordering::Relaxed);
        }
        let request = match self.decode(&taken.request) {
            Ok(request) => request,
            Err(Some((response_queue, error))) => {
                return self.reply(&response_queue, Err(error), &taken.request).await;
            }
            Err(None) => return self.release_unanswered(&taken.request).await,
        };
        let span = ServerSpan::start(
            &self.queue,
            &request.method,
            &request.response_queue,
            taken.delivery,
            request.traceparent,
        );
        let served = async {
            match self.run(request, taken.delivery, &span).await {
                Some((response_queue, outcome)) => self.reply(&response_queue, outcome, &taken.request).await,
                None => self.release_unanswered(&taken.request).await,
            }
        };
        served.instrument(span.span.clone()).await;
    }

    /// The request in `message`, or else what to reply and where (`None`:
    /// nobody is to be answered, the message being malformed or refused).
    #[allow(clippy::type_complexity)]
    fn decode(&self, message: &[u8]) -> Result<Incoming, Option<(String, CallError)>> {
        if message.len() > self.max_request_size {
            let reason = format!(
                "the request is {} bytes, over this server's limit of {} bytes",
                message.len(),
                self.max_request_size
            );
            return Err(match protocol::find_response_queue(message) {
                Some(response_queue) if self.may_reply_to(&response_queue) => {
                    let error = CallError::new(CallErrorKind::BadRequest, format!("bad request: {reason}"));
                    Some((response_queue, error))
                }
                Some(_) => None,
                None => {
                    self.drop_malformed(message, &reason);
                    None
                }
            });
        }
        match Incoming::decode(message) {
            Ok(request) if self.may_reply_to(&request.response_queue) => Ok(request),
            Ok(_) => Err(None),
            Err(RequestError::Undecodable(reason)) => {
                self.drop_malformed(message, &reason);
                Err(None)
            }
            Err(RequestError::BadCall { response_queue, reason }) => {
                let error = CallError::new(CallErrorKind::BadRequest, format!("bad request: {reason}"));
                Err(self.may_reply_to(&response_queue).then_some((response_queue, error)))
            }
        }
    }

    /// Runs `request`, its `delivery`-th, and says what to reply and where;
    /// `None` when nobody is to be answered (expired, dropped on
    /// cancellation).
    async fn run(
        &self,
        request: Incoming,
        delivery: u64,
        span: &ServerSpan,
    ) -> Option<(String, Result<JsonText, CallError>)> {
        let Incoming {
            method,
            args,
            response_queue,
            deadline,
            sent,
            ..
        } = request;
        if delivery > 1 {
            self.metrics.redelivered(&method);
        }
        let Timing { deadline, waited } = self.timing(deadline, sent, &method, span).await?;
        if delivery > self.max_deliveries {
            // Its server died every time it ran it: stop the crashes.
            self.stats.poisoned.fetch_add(1, Ordering::Relaxed);
            self.metrics.ran(&method, Duration::ZERO, waited, Err("poisoned"));
            span.record_outcome("poisoned");
            tracing::warn!(queue = %self.queue, %method, delivery, "dropped a request delivered too often without an answer");
            let error = CallError::new(
                CallErrorKind::Failed,
                format!(
                    "{method}() was delivered {} times without an answer (its servers died running it); dropped",
                    delivery - 1
                ),
            );
            return Some((response_queue, Err(error)));
        }
        let call = CallContext::new(deadline, delivery).with_trace(span.context);
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(response_queue.clone(), call.clone());
        let running = Running {
            context: self,
            response_queue: &response_queue,
        };
        let started = std::time::Instant::now();
        // The call is made inside the guarded future, so a panic while the
        // service sets the call up is caught as well as one while it runs.
        let run = AssertUnwindSafe(call.clone().scope(async {
            if method == DESCRIBE_METHOD {
                self.describe()
            } else {
                self.service.call(&method, args).await
            }
        }))
        .catch_unwind();
        let mut run = std::pin::pin!(run);
        let given_up = async {
            match deadline {
                Some(deadline) => tokio::select! {
                    () = tokio::time::sleep_until(deadline) => {}
                    () = call.cancelled() => {}
                },
                None => call.cancelled().await,
            }
            call.cancel();
        };
        let finished = match self.cancellation {
            Cancellation::RunToCompletion => tokio::select! {
                biased;
                finished = &mut run => finished,
                () = given_up => run.await,
            },
            // The notice first: a handler that itself watches for it must
            // not finish in the same instant and escape being dropped.
            Cancellation::Drop => tokio::select! {
                biased;
                () = given_up => {
                    self.stats.cancelled.fetch_add(1, Ordering::Relaxed);
                    self.metrics.cancelled(&method, waited);
                    span.record_outcome("cancelled");
                    tracing::debug!(queue = %self.queue, %method, "dropped a call its caller gave up");
                    return None;
                }
                finished = &mut run => finished,
            },
        };
        let outcome = finished.unwrap_or_else(|panic| Err(panicked(&method, panic.as_ref())));
        let took = started.elapsed();
        let ended = outcome.as_ref().map(drop).map_err(CallError::kind);
        self.metrics
            .ran(&method, took, waited, ended.map_err(telemetry::kind_name));
        span.finish(ended, took);
        drop(running);
        Some((response_queue, outcome))
    }

    /// What the store's clock tells of a request: its deadline on this
    /// process's clock, and how long it waited in the queue (when it says
    /// when it was sent). `None` when its deadline has passed: it is then
    /// counted and dropped unstarted.
    async fn timing(
        &self,
        deadline: Option<Duration>,
        sent: Option<Duration>,
        method: &str,
        span: &ServerSpan,
    ) -> Option<Timing> {
        let untimed = Timing {
            deadline: None,
            waited: None,
        };
        if deadline.is_none() && sent.is_none() {
            return Some(untimed);
        }
        let now = match self.backend.now(&self.queue).await {
            Ok(now) => now,
            Err(error) => {
                // Without the store's clock nothing can be told: run it, as a
                // request without a deadline would be.
                tracing::warn!(queue = %self.queue, %error, "cannot read the store's clock to check a deadline");
                return Some(untimed);
            }
        };
        let waited = sent.map(|sent| now.saturating_sub(sent));
        if let Some(wait) = waited {
            span.record_queue_wait(wait);
        }
        let Some(deadline) = deadline else {
            return Some(Timing { deadline: None, waited });
        };
        match deadline.checked_sub(now) {
            Some(left) if !left.is_zero() => Some(Timing {
                deadline: Some(Instant::now() + left),
                waited,
            }),
            _ => {
                self.stats.expired.fetch_add(1, Ordering::Relaxed);
                self.metrics.expired(method, waited);
                span.record_outcome("expired");
                if let Some(left_out) = self.warnings.expired.admit() {
                    tracing::warn!(queue = %self.queue, %method, late = ?now.saturating_sub(deadline), similar_left_out = left_out, "dropped a request whose deadline had passed");
                }
                None
            }
        }
    }

    fn drop_malformed(&self, message: &[u8], reason: &str) {
        self.stats.malformed.fetch_add(1, Ordering::Relaxed);
        if let Some(left_out) = self.warnings.malformed.admit() {
            let excerpt = String::from_utf8_lossy(&message[..message.len().min(200)]).into_owned();
            tracing::warn!(queue = %self.queue, %reason, %excerpt, similar_left_out = left_out, "dropped a message that is not a request");
        }
    }

    /// The answer to [`DESCRIBE_METHOD`], whatever arguments came with it.
    fn describe(&self) -> Result<JsonText, CallError> {
        JsonText::encode(&self.service.describe())
            .map_err(|e| CallError::new(CallErrorKind::Unrepresentable, e.to_string()))
    }

    /// Replies go only to this queue's reply keys, so a request cannot make
    /// the server write to any other key in the store. Every peer complies.
    fn may_reply_to(&self, response_queue: &str) -> bool {
        let allowed = response_queue.len() > self.reply_prefix.len() && response_queue.starts_with(&self.reply_prefix);
        if !allowed {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            if let Some(left_out) = self.warnings.refused.admit() {
                tracing::warn!(queue = %self.queue, %response_queue, similar_left_out = left_out, "refused a request whose response queue is not `{}…`", self.reply_prefix);
            }
        }
        allowed
    }

    async fn reply(&self, response_queue: &str, outcome: Result<JsonText, CallError>, request: &[u8]) {
        let reply = match &outcome {
            Ok(value) => Reply::encode_json_return(value),
            Err(error) => {
                tracing::debug!(queue = %self.queue, %error, "call failed");
                Reply::encode_exception(error.message())
            }
        };
        match self.push_reply(response_queue, &reply, request).await {
            Ok(()) => {
                let counter = if outcome.is_ok() {
                    &self.stats.served
                } else {
                    &self.stats.failed
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                self.stats.reply_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(queue = %self.queue, %response_queue, %error, "cannot push the reply");
                if !error.is_connection() {
                    // Refused for good (the key is no list): answered as
                    // well as it can be.
                    self.release_unanswered(request).await;
                }
            }
        }
    }

    /// In at-least-once mode, releases a request nobody is to be answered
    /// for, so that it is not run again.
    async fn release_unanswered(&self, request: &[u8]) {
        let Some(keys) = &self.held else { return };
        let mut pause = REPLY_BACKOFF;
        for attempts_left in (0..REPLY_ATTEMPTS).rev() {
            match self.backend.release_held(keys, request, None).await {
                Err(error) if error.is_connection() && attempts_left > 0 => {
                    tokio::time::sleep(pause.next_pause()).await;
                }
                Err(error) => {
                    tracing::error!(queue = %self.queue, %error, "cannot release a request; it may run again");
                    return;
                }
                Ok(()) => return,
            }
        }
    }

    /// Pushes a reply, trying again when the connection broke: the caller is
    /// waiting for it, and a reply pushed twice is harmless (the caller takes
    /// one; the other expires with its queue).
    /// In at-least-once mode the push also releases the request, in one
    /// atomic step.
    async fn push_reply(&self, response_queue: &str, reply: &[u8], request: &[u8]) -> Result<()> {
        let mut pause = REPLY_BACKOFF;
        let mut attempts_left = REPLY_ATTEMPTS;
        loop {
            attempts_left -= 1;
            let pushed = match &self.held {
                None => self.backend.rpush_expire(response_queue, reply, self.reply_ttl).await,
                Some(keys) => {
                    let reply = HeldReply {
                        queue: response_queue,
                        reply,
                        ttl: self.reply_ttl,
                    };
                    self.backend.release_held(keys, request, Some(reply)).await
                }
            };
            match pushed {
                Err(error) if error.is_connection() && attempts_left > 0 => {
                    tracing::warn!(queue = %self.queue, %response_queue, %error, "retrying a reply push");
                    tokio::time::sleep(pause.next_pause()).await;
                }
                result => return result,
            }
        }
    }
}

/// How often a reply push is tried when the connection keeps breaking,
/// pausing by [`REPLY_BACKOFF`] in between: 20, 80, 320 ms.
const REPLY_ATTEMPTS: u32 = 4;

const REPLY_BACKOFF: Backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(320)).with_factor(4);

fn panicked(method: &str, panic: &(dyn std::any::Any + Send)) -> CallError {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_string());
    tracing::error!(%method, panic = %what, "a handler panicked");
    CallError::new(CallErrorKind::Panicked, format!("{method}() panicked: {what}"))
}
