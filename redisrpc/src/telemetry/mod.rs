//! What a call leaves for whoever watches the system: a `tracing` span on
//! each side, joined into one trace, and per-method metrics.
//!
//! * **Spans.** A client's call is an `rpc.call` span (method, queue, call
//!   id, timeout, outcome); a server's run of it an `rpc.serve` span
//!   (method, queue, call id, delivery attempt, outcome, duration, time
//!   spent waiting in the queue). Both are at the `INFO` level under the
//!   `redisrpc` target, so a subscriber's filter chooses them like any
//!   other span.
//! * **One trace.** The request carries the client span's W3C trace context
//!   in the optional member `"traceparent"` ([`TraceContext`]); peers ignore
//!   it. The server's span is that span's child, and calls a handler makes
//!   continue the same trace. Both spans record `trace_id` and `span_id`
//!   (the server's also `parent_span_id`), so log lines of one call can be
//!   found across processes without any exporter. With the `opentelemetry`
//!   feature the spans are OpenTelemetry spans of that trace too, exported
//!   with [`otlp`].
//! * **Metrics.** Every server records, per queue and method, through the
//!   [`metrics`] facade: the figures of [`METRICS`]. The same figures go into
//!   the server's liveness record, where `redisrpc stats` merges them across
//!   servers. Install the recorder before serving: a server binds its
//!   figures to the recorder there is when a method is first called.
//!
//! [`set_enabled`] turns it all off for the process: no spans, no
//! `traceparent`, nothing through the facade (the liveness records still
//! count). It is on by default; without a subscriber or a recorder it costs
//! little (see the README's performance section).

mod context;
#[cfg(feature = "opentelemetry")]
mod otel;
mod spans;

use std::sync::atomic::{AtomicBool, Ordering};

pub(crate) use context::TRACEPARENT_LEN;
pub use context::TraceContext;
#[cfg(feature = "opentelemetry")]
pub use otel::otlp;
pub(crate) use spans::{ClientSpan, ServerSpan, kind_name};

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns spans, trace context and facade metrics on or off for this
/// process (on by default). Calls and servers started afterwards follow.
pub fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether spans, trace context and facade metrics are on ([`set_enabled`]).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The metrics every server records through the [`metrics`] facade, each
/// labelled with `queue` and `method`: name, kind, and what it counts.
pub const METRICS: &[(&str, &str, &str)] = &[
    (
        "redisrpc_calls_total",
        "counter",
        "calls run to an outcome, failed ones included",
    ),
    (
        "redisrpc_errors_total",
        "counter",
        "calls answered with an exception; label `kind`: unknown_method, invalid_arguments, failed, panicked, bad_request, unrepresentable, poisoned",
    ),
    (
        "redisrpc_expired_total",
        "counter",
        "requests dropped unstarted, their deadline passed",
    ),
    (
        "redisrpc_cancelled_total",
        "counter",
        "calls dropped unfinished when their caller gave up",
    ),
    (
        "redisrpc_redelivered_total",
        "counter",
        "requests taken again after their server died",
    ),
    (
        "redisrpc_call_duration_seconds",
        "histogram",
        "how long calls ran, from start to outcome",
    ),
    (
        "redisrpc_queue_wait_seconds",
        "histogram",
        "how long requests waited in the queue, by the store's clock (requests with a deadline)",
    ),
];
