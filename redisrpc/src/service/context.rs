//! What a running call knows about itself: its deadline, whether its
//! caller gave up, and its place in the caller's trace.
//!
//! The server runs every call inside a task-local [`CallContext`]; a method
//! reads it with [`CallContext::current`], so deadlines need no parameter
//! in the method's signature and work the same for `#[rpc]` traits and
//! [`Methods`](super::Methods) closures. Called outside a server (a unit
//! test calling the implementation directly), there is none.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::telemetry::TraceContext;

tokio::task_local! {
    static CURRENT: CallContext;
}

/// The context of the call a server is running.
///
/// ```
/// use redisrpc::service::CallContext;
///
/// async fn plan_path(goal: (f64, f64)) -> Result<Vec<(f64, f64)>, String> {
///     let context = CallContext::current();
///     let mut path = vec![goal];
///     while !context.as_ref().is_some_and(CallContext::is_cancelled) {
///         // ... refine the path until the caller's deadline …
/// #       break;
///     }
///     Ok(path)
/// }
/// ```
#[derive(Debug, Clone)]
pub struct CallContext {
    /// Shared by every clone: one allocation per call, clones are counts.
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    deadline: Option<Instant>,
    attempt: u64,
    trace: Option<TraceContext>,
    cancelled: AtomicBool,
    /// Wakes the waiters of [`CallContext::cancelled`].
    cancelling: Notify,
}

impl CallContext {
    pub(crate) fn new(deadline: Option<Instant>, attempt: u64, trace: Option<TraceContext>) -> Self {
        CallContext {
            shared: Arc::new(Shared {
                deadline,
                attempt,
                trace,
                cancelled: AtomicBool::new(false),
                cancelling: Notify::new(),
            }),
        }
    }

    /// The server span's place in the caller's trace (`None` when telemetry
    /// is off): its `trace_id` ties the method's own log lines to the call.
    /// Calls the method makes continue this trace.
    pub fn trace(&self) -> Option<TraceContext> {
        self.shared.trace
    }

    /// Which delivery of its request this is: 1, or more when servers
    /// running it before died ([`Delivery::AtLeastOnce`](crate::Delivery::AtLeastOnce)).
    pub fn attempt(&self) -> u64 {
        self.shared.attempt
    }

    /// The context of the call running on this task, if a server is
    /// running one.
    pub fn current() -> Option<CallContext> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// When the caller stops waiting, on this process's clock; `None` when
    /// the caller sent no deadline (a peer's client, or no timeout).
    pub fn deadline(&self) -> Option<Instant> {
        self.shared.deadline
    }

    /// How long until the deadline (zero once it passed).
    pub fn remaining(&self) -> Option<Duration> {
        self.shared
            .deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// True once the caller gave up: its deadline passed, or it dropped the
    /// call or timed out and said so.
    pub fn is_cancelled(&self) -> bool {
        self.shared.cancelled.load(Ordering::Acquire)
    }

    /// Completes when the caller gives up (see [`is_cancelled`](Self::is_cancelled)).
    pub async fn cancelled(&self) {
        loop {
            let notified = self.shared.cancelling.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the flag is read, so a cancel in between
            // still wakes this waiter.
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }

    pub(crate) fn cancel(&self) {
        self.shared.cancelled.store(true, Ordering::Release);
        self.shared.cancelling.notify_waiters();
    }

    /// Runs `future` with this context as the current one.
    pub(crate) async fn scope<F: Future>(self, future: F) -> F::Output {
        CURRENT.scope(self, future).await
    }
}
