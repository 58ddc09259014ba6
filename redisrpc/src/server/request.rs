//! One request's way through a server: decoded and checked, run under its
//! deadline and its caller's cancellation, its outcome counted and traced,
//! and its answer handed to `replies.rs`.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;

use futures::FutureExt;
use tokio::time::Instant;
use tracing::Instrument;

use super::replies::Replies;
use super::{Cancellation, Counters, metrics};
use crate::Result;
use crate::backend::{HeldKeys, SharedBackend, Taken};
use crate::describe::DESCRIBE_METHOD;
use crate::protocol::{self, Incoming, JsonText, RequestError};
use crate::service::{CallContext, CallError, CallErrorKind, Service};
use crate::telemetry::{self, ServerSpan};
use crate::throttle::Throttle;

/// What every call needs, shared by the serving loop and the calls.
pub(super) struct Context {
    /// At least once: this server's held list and its companions.
    pub(super) held: Option<HeldKeys>,
    pub(super) max_deliveries: u64,
    pub(super) backend: SharedBackend,
    pub(super) queue: String,
    pub(super) reply_prefix: String,
    pub(super) service: Arc<dyn Service>,
    pub(super) reply_ttl: Duration,
    pub(super) cancellation: Cancellation,
    pub(super) max_request_size: usize,
    pub(super) stats: Arc<Counters>,
    /// The calls running now, by reply queue, so that a caller's notice
    /// that it gave up reaches its call.
    pub(super) running: Mutex<HashMap<String, CallContext>>,
    pub(super) warnings: Warnings,
    pub(super) metrics: Arc<metrics::Metrics>,
    /// The answers waiting to be pushed (`replies.rs`).
    pub(super) replies: Replies,
}

/// The warnings a client can provoke, each limited (see [`Throttle`]).
#[derive(Default)]
pub(super) struct Warnings {
    malformed: Throttle,
    refused: Throttle,
    expired: Throttle,
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
    /// When this process's clock was read to place the deadline: the
    /// call's start, so that the clock is read once for both.
    read_at: Option<Instant>,
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
    pub(super) async fn take(&self, max: usize) -> Result<Vec<Taken>> {
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
    /// times, this one included) and answers it: hands its reply over to
    /// be pushed (in at-least-once mode releasing the request with it), or
    /// releases the request unanswered when there is nobody to answer.
    pub(super) async fn handle(&self, taken: Taken) {
        match self.answer(&taken).await {
            Some((response_queue, outcome)) => self.reply(response_queue, outcome, taken).await,
            None => self.release_unanswered(&taken).await,
        }
    }

    /// What to answer to `taken`, and where; `None` when nobody is to be
    /// answered. The call counts as in flight until it has its answer.
    async fn answer(&self, taken: &Taken) -> Option<(String, Result<JsonText, CallError>)> {
        self.stats.in_flight.fetch_add(1, Ordering::Relaxed);
        let _done = InFlightCall(&self.stats);
        if taken.delivery > 1 {
            self.stats.redelivered.fetch_add(1, Ordering::Relaxed);
        }
        let request = match self.decode(&taken.request) {
            Ok(request) => request,
            Err(answer) => return answer.map(|(response_queue, error)| (response_queue, Err(error))),
        };
        let span = ServerSpan::start(
            &self.queue,
            &request.method,
            &request.response_queue,
            taken.delivery,
            request.traceparent,
        );
        let run = self.run(request, taken.delivery, &span);
        run.instrument(span.span.clone()).await
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
        let Timing {
            deadline,
            waited,
            read_at,
        } = self.timing(deadline, sent, &method, span).await?;
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
        let call = CallContext::new(deadline, delivery, span.context);
        let started = read_at.unwrap_or_else(Instant::now);
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
        // Most calls finish at their first poll. Only a call still running
        // after it needs to hear that its caller gave up, or to watch its
        // deadline.
        let finished = match futures::poll!(run.as_mut()) {
            Poll::Ready(finished) => finished,
            Poll::Pending => {
                self.running
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(response_queue.clone(), call.clone());
                let _running = Running {
                    context: self,
                    response_queue: &response_queue,
                };
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
                match self.cancellation {
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
                }
            }
        };
        let outcome = finished.unwrap_or_else(|panic| Err(panicked(&method, panic.as_ref())));
        let took = started.elapsed();
        let ended = outcome.as_ref().map(drop).map_err(CallError::kind);
        self.metrics
            .ran(&method, took, waited, ended.map_err(telemetry::kind_name));
        span.finish(ended, took);
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
            read_at: None,
        };
        if deadline.is_none() && sent.is_none() {
            return Some(untimed);
        }
        let read = match self.backend.now_known(&self.queue) {
            Some(now) => Ok(now),
            None => self.backend.now(&self.queue).await,
        };
        let now = match read {
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
            return Some(Timing {
                deadline: None,
                waited,
                read_at: None,
            });
        };
        match deadline.checked_sub(now) {
            Some(left) if !left.is_zero() => {
                let here = Instant::now();
                Some(Timing {
                    deadline: Some(here + left),
                    waited,
                    read_at: Some(here),
                })
            }
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
}

fn panicked(method: &str, panic: &(dyn std::any::Any + Send)) -> CallError {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_string());
    tracing::error!(%method, panic = %what, "a handler panicked");
    CallError::new(CallErrorKind::Panicked, format!("{method}() panicked: {what}"))
}
