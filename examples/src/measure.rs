//! What the benchmarks share: running an operation from many tasks at once,
//! and recording how long each took.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Durations recorded to 3 significant digits, from 1 ns to an hour.
#[derive(Debug, Clone)]
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Latencies(Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid bounds"))
    }
}

impl Latencies {
    /// Records one duration (clamped to the histogram's range).
    pub fn record(&mut self, duration: Duration) {
        self.0.saturating_record(nanos(duration));
    }

    /// Adds every duration `other` recorded.
    pub fn merge(&mut self, other: &Latencies) {
        self.0.add(&other.0).expect("histograms of the same bounds");
    }

    /// How many durations were recorded.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The duration at percentile `p` (0–1), in microseconds.
    pub fn percentile_us(&self, p: f64) -> f64 {
        self.0.value_at_quantile(p) as f64 / 1e3
    }

    /// The longest duration, in microseconds.
    pub fn max_us(&self) -> f64 {
        self.0.max() as f64 / 1e3
    }
}

/// A duration in nanoseconds, as the histograms count them.
fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// A run of many operations: its wall time and each operation's duration.
#[derive(Debug)]
pub struct Run {
    /// From the first operation's start to the last one's end.
    pub elapsed: Duration,
    /// Each operation's duration.
    pub latencies: Latencies,
}

impl Run {
    /// Operations per second.
    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs `ops` operations `op(task, n)` from `concurrency` tasks that each
/// take the next as soon as their last is done; `n` counts each task's
/// operations from 1.
pub async fn spread<F, Fut, E>(ops: usize, concurrency: usize, op: F) -> Result<Run, E>
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
    E: Send + 'static,
{
    let op = Arc::new(op);
    let remaining = Arc::new(AtomicUsize::new(ops));
    // Each task notes its durations in a list made before the clock
    // starts; the histogram is built once it has stopped. The run measures
    // the operations, not the harness: recording into a histogram of its
    // own per task cost a few percent of an embedded call.
    let per_task = ops / concurrency.max(1) + 1;
    let notes: Vec<Vec<u64>> = (0..concurrency.max(1)).map(|_| Vec::with_capacity(per_task)).collect();
    let started = Instant::now();
    let tasks: Vec<_> = notes
        .into_iter()
        .enumerate()
        .map(|(task, mut durations)| {
            let (op, remaining) = (op.clone(), remaining.clone());
            tokio::spawn(async move {
                let mut count = 0;
                while remaining
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
                {
                    count += 1;
                    let op_started = Instant::now();
                    op(task, count).await?;
                    durations.push(nanos(op_started.elapsed()));
                }
                Ok(durations)
            })
        })
        .collect();
    let mut finished = Vec::with_capacity(tasks.len());
    for task in tasks {
        finished.push(task.await.expect("a benchmark task panicked"));
    }
    let elapsed = started.elapsed();
    let mut latencies = Latencies::default();
    for durations in finished {
        for nanos in durations? {
            latencies.0.saturating_record(nanos);
        }
    }
    Ok(Run { elapsed, latencies })
}
