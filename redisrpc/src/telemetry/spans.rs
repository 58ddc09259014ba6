//! The span of a call on each side, and the trace context that joins them.

use std::time::Duration;

use tracing::Span;
use tracing::field::{Empty, display};

use super::{TraceContext, enabled};
use crate::Error;
use crate::service::{CallContext, CallErrorKind};

/// A client's call: its span, and the context its request carries.
pub(crate) struct ClientSpan {
    pub(crate) span: Span,
    /// `None` when telemetry is off: the request then carries none.
    pub(crate) context: Option<TraceContext>,
}

impl ClientSpan {
    pub(crate) fn start(queue: &str, method: &str, timeout: Option<Duration>) -> ClientSpan {
        if !enabled() {
            return ClientSpan {
                span: Span::none(),
                context: None,
            };
        }
        let span = tracing::info_span!(
            target: "redisrpc",
            "rpc.call",
            otel.name = %format_args!("{queue}/{method}"),
            otel.kind = "client",
            otel.status_code = Empty,
            rpc.system = "redisrpc",
            rpc.service = %queue,
            rpc.method = %method,
            timeout_ms = timeout.map(|timeout| u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX)),
            call_id = Empty,
            trace_id = Empty,
            span_id = Empty,
            parent_span_id = Empty,
            outcome = Empty,
        );
        // A call a handler makes continues its caller's trace.
        let parent = CallContext::current().and_then(|call| call.trace());
        let context = place_in_trace(&span, parent);
        ClientSpan {
            span,
            context: Some(context),
        }
    }

    /// Records the call's id: the random part of its reply queue.
    pub(crate) fn record_call_id(&self, response_queue: &str) {
        if !self.span.is_disabled() {
            self.span.record("call_id", call_id(response_queue));
        }
    }

    /// Records how the call ended.
    pub(crate) fn finish<T>(&self, result: &crate::Result<T>) {
        if self.span.is_disabled() {
            return;
        }
        let outcome = match result {
            Ok(_) => "ok",
            Err(Error::Remote { .. }) => "exception",
            Err(Error::Timeout { .. }) => "timeout",
            Err(Error::Interrupted { .. } | Error::Connection { .. }) => "interrupted",
            Err(Error::Decode { .. } | Error::MalformedReply { .. }) => "undecodable_reply",
            Err(Error::Encode { .. }) => "unencodable_arguments",
            Err(_) => "error",
        };
        self.span.record("outcome", outcome);
        if result.is_err() {
            self.span.record("otel.status_code", "ERROR");
        }
    }
}

/// A server's run of one request: its span, and its place in the trace.
pub(crate) struct ServerSpan {
    pub(crate) span: Span,
    /// `None` when telemetry is off.
    pub(crate) context: Option<TraceContext>,
}

impl ServerSpan {
    /// The span of a request for `method` on `queue`, answered on
    /// `response_queue`, its `delivery`-th, below the caller's `parent`.
    pub(crate) fn start(
        queue: &str,
        method: &str,
        response_queue: &str,
        delivery: u64,
        parent: Option<TraceContext>,
    ) -> ServerSpan {
        if !enabled() {
            return ServerSpan {
                span: Span::none(),
                context: None,
            };
        }
        let span = tracing::info_span!(
            target: "redisrpc",
            "rpc.serve",
            otel.name = %format_args!("{queue}/{method}"),
            otel.kind = "server",
            otel.status_code = Empty,
            rpc.system = "redisrpc",
            rpc.service = %queue,
            rpc.method = %method,
            call_id = call_id(response_queue),
            delivery,
            trace_id = Empty,
            span_id = Empty,
            parent_span_id = Empty,
            outcome = Empty,
            duration_us = Empty,
            queue_wait_us = Empty,
        );
        #[cfg(feature = "opentelemetry")]
        if let Some(parent) = parent {
            super::otel::set_parent(&span, parent);
        }
        let context = place_in_trace(&span, parent);
        ServerSpan {
            span,
            context: Some(context),
        }
    }

    pub(crate) fn record_queue_wait(&self, wait: Duration) {
        self.span.record("queue_wait_us", micros(wait));
    }

    /// Records how the run ended: `Ok` or the exception's kind, after `took`.
    pub(crate) fn finish(&self, outcome: Result<(), CallErrorKind>, took: Duration) {
        self.span.record("duration_us", micros(took));
        match outcome {
            Ok(()) => self.record_outcome("ok"),
            Err(kind) => {
                self.record_outcome(kind_name(kind));
                self.span.record("otel.status_code", "ERROR");
            }
        }
    }

    /// Records an outcome that is not a run: `expired`, `cancelled`, `poisoned`.
    pub(crate) fn record_outcome(&self, outcome: &'static str) {
        self.span.record("outcome", outcome);
    }
}

/// The name of an exception's kind, in spans and metrics.
pub(crate) fn kind_name(kind: CallErrorKind) -> &'static str {
    match kind {
        CallErrorKind::UnknownMethod => "unknown_method",
        CallErrorKind::InvalidArguments => "invalid_arguments",
        CallErrorKind::Failed => "failed",
        CallErrorKind::Panicked => "panicked",
        CallErrorKind::BadRequest => "bad_request",
        CallErrorKind::Unrepresentable => "unrepresentable",
    }
}

/// The span's place in its trace, recorded in its fields: its
/// OpenTelemetry context when a layer follows it, or else a child of
/// `parent`, or else the root of a new trace.
fn place_in_trace(span: &Span, parent: Option<TraceContext>) -> TraceContext {
    let context = own_context(span).unwrap_or_else(|| match parent {
        Some(parent) => parent.child(),
        None => TraceContext::new_root(),
    });
    if !span.is_disabled() {
        span.record("trace_id", display(context.trace_id_hex()));
        span.record("span_id", display(context.span_id_hex()));
        if let Some(parent) = parent.filter(|parent| parent.trace_id == context.trace_id) {
            span.record("parent_span_id", display(parent.span_id_hex()));
        }
    }
    context
}

/// The span's own place in an OpenTelemetry trace, when an OpenTelemetry
/// layer follows it.
fn own_context(span: &Span) -> Option<TraceContext> {
    #[cfg(feature = "opentelemetry")]
    {
        super::otel::context_of(span)
    }
    #[cfg(not(feature = "opentelemetry"))]
    {
        let _ = span;
        None
    }
}

/// A call's id: what follows `:rpc:` in its reply queue (without our hash
/// tag), or the whole name for a queue of another shape.
fn call_id(response_queue: &str) -> &str {
    let id = response_queue.rsplit_once(":rpc:").map_or(response_queue, |(_, id)| id);
    id.rsplit_once('}').map_or(id, |(_, id)| id)
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_id_is_the_random_part_of_its_reply_queue() {
        assert_eq!(call_id("calc:rpc:{calc}0f3a"), "0f3a");
        assert_eq!(call_id("calc:rpc:7b2c"), "7b2c");
        assert_eq!(call_id("odd"), "odd");
    }
}
