//! What telemetry costs, for `bench --suite telemetry`: calls per second
//! at the same load with telemetry off, on with neither a subscriber nor a
//! recorder ("bare"), and on with every span exported through
//! OpenTelemetry and every metric kept by a Prometheus recorder.
//!
//! A subscriber and a recorder are global and stay once installed, so the
//! run has two halves: rounds alternating off and bare, then, with both
//! installed, rounds alternating off and exported. Each figure is held
//! against the off rounds of its own half (medians), so that both are
//! measured side by side on the same busy machine.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use redisrpc::backend::SharedBackend;
use redisrpc::{Client, Delivery, telemetry};
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::bench_server;

/// The medians of a run, in calls per second.
#[derive(Debug)]
pub struct Figures {
    /// Telemetry off, in the first half.
    pub off: f64,
    /// On, with no subscriber and no recorder.
    pub bare: f64,
    /// Telemetry off, in the second half (subscriber and recorder installed).
    pub off_beside_exported: f64,
    /// On, every span exported and every metric recorded.
    pub exported: f64,
    /// Spans the exporter was handed, of the calls the exported rounds made
    /// (two spans a call, less what OpenTelemetry's batches dropped).
    pub spans_exported: u64,
    /// Calls the Prometheus recorder counted.
    pub calls_recorded: u64,
    /// Calls made in the exported rounds.
    pub exported_calls: u64,
}

impl Figures {
    /// The bare figure's cost, in percent of the off one.
    pub fn bare_cost(&self) -> f64 {
        (1.0 - self.bare / self.off) * 100.0
    }

    /// The exported figure's cost, in percent of the off one beside it.
    pub fn exported_cost(&self) -> f64 {
        (1.0 - self.exported / self.off_beside_exported) * 100.0
    }
}

/// Measures `rounds` rounds of each figure (at least 3), each of `calls`
/// calls with `concurrency` in flight to an echo server on `queue`.
/// Installs the global subscriber and recorder, so run it once a process.
pub async fn run(
    backend: &SharedBackend,
    queue: &str,
    calls: usize,
    concurrency: usize,
    rounds: usize,
) -> anyhow::Result<Figures> {
    let rounds = rounds.max(3);
    let (off, bare) = off_and_on(backend, queue, calls, concurrency, rounds).await?;

    let exporter = Discard::default();
    let exported_spans = exporter.spans.clone();
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).build();
    // At `INFO`, as a deployment would filter: our spans, no debug events.
    let spans = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("bench"))
        .with_filter(LevelFilter::INFO);
    tracing_subscriber::registry()
        .with(spans)
        .try_init()
        .context("installing the OpenTelemetry subscriber")?;
    let recorder = PrometheusBuilder::new()
        .install_recorder()
        .context("installing the Prometheus recorder")?;
    let (off_beside_exported, exported) = off_and_on(backend, queue, calls, concurrency, rounds).await?;
    provider.force_flush().context("flushing the spans")?;
    Ok(Figures {
        off: median(off),
        bare: median(bare),
        off_beside_exported: median(off_beside_exported),
        exported: median(exported),
        spans_exported: exported_spans.load(Ordering::Relaxed),
        calls_recorded: calls_counted(&recorder),
        // Each round also makes its warm-up calls.
        exported_calls: (rounds * (calls + WARM_UP)) as u64,
    })
}

/// Calls each round makes before it measures.
const WARM_UP: usize = 100;

/// `rounds` rounds with telemetry off, each followed by one with it on:
/// the calls per second of each.
async fn off_and_on(
    backend: &SharedBackend,
    queue: &str,
    calls: usize,
    concurrency: usize,
    rounds: usize,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        telemetry::set_enabled(false);
        off.push(calls_per_second(backend, queue, calls, concurrency).await?);
        telemetry::set_enabled(true);
        on.push(calls_per_second(backend, queue, calls, concurrency).await?);
    }
    Ok((off, on))
}

/// One round: a server of its own, warmed up, then `calls` calls.
async fn calls_per_second(
    backend: &SharedBackend,
    queue: &str,
    calls: usize,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let server = bench_server::echo(backend.clone(), queue, concurrency.max(1) * 2, Delivery::AtMostOnce);
    let handle = server.handle();
    let serving = tokio::spawn(server.run());
    let client = Client::new(backend.clone(), queue.to_owned()).with_timeout(Some(Duration::from_secs(30)));
    for _ in 0..WARM_UP {
        client.call::<f64>("add", (1,)).await.context("warm-up call")?;
    }
    let run = bench_server::call_echo(client, calls, concurrency).await?;
    handle.shutdown();
    serving.await??;
    Ok(run.rate())
}

fn median(mut figures: Vec<f64>) -> f64 {
    figures.sort_by(f64::total_cmp);
    figures[figures.len() / 2]
}

/// The sum of the recorder's `redisrpc_calls_total` counters.
fn calls_counted(recorder: &PrometheusHandle) -> u64 {
    recorder
        .render()
        .lines()
        .filter(|line| line.starts_with("redisrpc_calls_total"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// An exporter that counts the spans it is handed and drops them: the cost
/// of making and batching spans, without a collector's.
#[derive(Debug, Default)]
struct Discard {
    spans: Arc<AtomicU64>,
}

impl SpanExporter for Discard {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        self.spans.fetch_add(batch.len() as u64, Ordering::Relaxed);
        std::future::ready(Ok(()))
    }
}
