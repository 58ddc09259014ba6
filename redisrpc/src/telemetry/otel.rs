//! The `opentelemetry` feature: a call's spans as OpenTelemetry spans of
//! one trace, and their export over OTLP.
//!
//! Our spans are plain `tracing` spans; `tracing-opentelemetry`'s layer
//! makes them OpenTelemetry spans. What this adds is the link across
//! processes: the client's `traceparent` is its OpenTelemetry span's
//! context, and the server's span takes the request's as its remote parent.
//! Without that layer in the subscriber, both sides fall back to trace
//! context of their own (see the module above).

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::TraceContext;

/// The span's context in its OpenTelemetry trace, when a layer follows it.
pub(super) fn context_of(span: &Span) -> Option<TraceContext> {
    if span.is_disabled() {
        return None;
    }
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| TraceContext {
        trace_id: u128::from_be_bytes(span_context.trace_id().to_bytes()),
        span_id: u64::from_be_bytes(span_context.span_id().to_bytes()),
        sampled: span_context.is_sampled(),
    })
}

/// Makes the request's context the span's remote parent.
pub(super) fn set_parent(span: &Span, parent: TraceContext) {
    if span.is_disabled() {
        return;
    }
    let flags = if parent.sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    let remote = SpanContext::new(
        TraceId::from_bytes(parent.trace_id.to_be_bytes()),
        SpanId::from_bytes(parent.span_id.to_be_bytes()),
        flags,
        true,
        TraceState::default(),
    );
    // Only fails without an OpenTelemetry layer, which then has no use for it.
    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
}

pub mod otlp {
    //! Exporting spans to an OpenTelemetry collector over OTLP/HTTP.
    //!
    //! ```no_run
    //! use tracing_subscriber::layer::SubscriberExt;
    //! use tracing_subscriber::util::SubscriberInitExt;
    //!
    //! # fn main() -> redisrpc::Result<()> {
    //! let (spans, export) = redisrpc::telemetry::otlp::layer("http://127.0.0.1:4318/v1/traces", "calc-server")?;
    //! tracing_subscriber::registry().with(spans).init();
    //! // … serve; dropping `export` sends what is still buffered.
    //! # drop(export);
    //! # Ok(()) }
    //! ```

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig;
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter, Tracer};
    use tracing_opentelemetry::OpenTelemetryLayer;
    use tracing_subscriber::registry::LookupSpan;

    use crate::{Error, Result};

    /// The export running behind a layer: dropping it sends the spans still
    /// buffered and stops.
    #[derive(Debug)]
    pub struct Export {
        provider: SdkTracerProvider,
    }

    impl Export {
        /// Sends the spans buffered so far, and waits until they are sent.
        pub fn flush(&self) -> Result<()> {
            self.provider
                .force_flush()
                .map_err(|error| Error::Config(format!("cannot export spans: {error}")))
        }
    }

    impl Drop for Export {
        fn drop(&mut self) {
            if let Err(error) = self.provider.shutdown() {
                tracing::debug!(%error, "cannot stop the span export");
            }
        }
    }

    /// A layer sending every span, in batches, to the OTLP/HTTP `endpoint`
    /// (the full URL, e.g. `http://127.0.0.1:4318/v1/traces`), as spans of
    /// the service `service_name`.
    pub fn layer<S>(endpoint: &str, service_name: &str) -> Result<(OpenTelemetryLayer<S, Tracer>, Export)>
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint)
            .build()
            .map_err(|error| Error::Config(format!("cannot export spans to {endpoint}: {error}")))?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name(service_name.to_owned()).build())
            .build();
        Ok(layer_of(provider))
    }

    /// A layer handing every span, as it ends, to `exporter` (any
    /// OpenTelemetry exporter: an in-memory one in tests, another protocol).
    pub fn layer_exporting_to<S, E>(exporter: E, service_name: &str) -> (OpenTelemetryLayer<S, Tracer>, Export)
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span>,
        E: SpanExporter + 'static,
    {
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter)
            .with_resource(Resource::builder().with_service_name(service_name.to_owned()).build())
            .build();
        layer_of(provider)
    }

    fn layer_of<S>(provider: SdkTracerProvider) -> (OpenTelemetryLayer<S, Tracer>, Export)
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    {
        let tracer = provider.tracer("redisrpc");
        (tracing_opentelemetry::layer().with_tracer(tracer), Export { provider })
    }
}
