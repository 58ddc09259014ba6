//! Per-method figures a server keeps and puts in its liveness record, in a
//! form that can be merged across servers: counts, and latency histograms
//! with the same buckets everywhere, so that `redisrpc stats` shows a
//! service's p99, not only each server's.
//!
//! Bucket `i` holds durations from 2^(i/4) µs up to 2^((i+1)/4) µs (about
//! 19 % wide), `i` from 0 (≤ 1 µs) to 127 (about 71 minutes and more). The
//! record's `methods` field is JSON:
//!
//! ```json
//! {"add": {"calls": 12, "errors": 1, "errors_by_kind": {"failed": 1},
//!          "expired": 0, "cancelled": 0, "redelivered": 0,
//!          "buckets": {"40": 3, "41": 9}, "wait_buckets": {"30": 12}}}
//! ```
//!
//! `buckets` are how long calls ran, `wait_buckets` how long requests
//! waited in the queue. The same figures go through the `metrics` facade
//! (see [`telemetry`](crate::telemetry)).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use metrics::{Counter, Histogram};
use serde_json::{Map, Value, json};

use crate::telemetry;

/// How many buckets a histogram has.
pub const BUCKETS: usize = 128;

/// The bucket of `duration`.
pub fn bucket(duration: Duration) -> usize {
    let micros = duration.as_secs_f64() * 1e6;
    if micros <= 1.0 {
        return 0;
    }
    ((micros.log2() * 4.0).floor() as usize).min(BUCKETS - 1)
}

/// The upper bound of bucket `index`.
pub fn bucket_ceiling(index: usize) -> Duration {
    Duration::from_secs_f64(2f64.powf((index as f64 + 1.0) / 4.0) / 1e6)
}

/// One method's figures.
#[derive(Debug, Default)]
struct Figures {
    calls: u64,
    errors: u64,
    errors_by_kind: BTreeMap<&'static str, u64>,
    expired: u64,
    cancelled: u64,
    redelivered: u64,
    buckets: BTreeMap<usize, u64>,
    wait_buckets: BTreeMap<usize, u64>,
    /// The same figures through the `metrics` facade, when telemetry is on.
    exported: Option<Exported>,
}

/// One method's handles in the `metrics` facade's recorder, bound once:
/// recording through them costs no lookup.
#[derive(Debug)]
struct Exported {
    labels: [(&'static str, String); 2],
    calls: Counter,
    errors: Vec<(&'static str, Counter)>,
    expired: Counter,
    cancelled: Counter,
    redelivered: Counter,
    duration: Histogram,
    queue_wait: Histogram,
}

impl Exported {
    fn new(queue: &str, method: &str) -> Exported {
        let labels = [("queue", queue.to_owned()), ("method", method.to_owned())];
        Exported {
            calls: metrics::counter!("redisrpc_calls_total", &labels),
            errors: Vec::new(),
            expired: metrics::counter!("redisrpc_expired_total", &labels),
            cancelled: metrics::counter!("redisrpc_cancelled_total", &labels),
            redelivered: metrics::counter!("redisrpc_redelivered_total", &labels),
            duration: metrics::histogram!("redisrpc_call_duration_seconds", &labels),
            queue_wait: metrics::histogram!("redisrpc_queue_wait_seconds", &labels),
            labels,
        }
    }

    fn error(&mut self, kind: &'static str) {
        if let Some((_, counter)) = self.errors.iter().find(|(known, _)| *known == kind) {
            counter.increment(1);
            return;
        }
        let [queue, method] = self.labels.clone();
        let counter = metrics::counter!("redisrpc_errors_total", &[queue, method, ("kind", kind.to_owned())]);
        counter.increment(1);
        self.errors.push((kind, counter));
    }
}

/// Every method's figures, for one server.
#[derive(Debug)]
pub(super) struct Metrics {
    queue: String,
    /// The service's methods. Any other name a request gives is counted as
    /// [`UNKNOWN_METHOD`], so that no client can grow the figures, or a
    /// metrics back end's label sets, without bound.
    known: HashSet<String>,
    methods: Mutex<BTreeMap<String, Figures>>,
}

/// The method under which requests for methods the service lacks count.
pub const UNKNOWN_METHOD: &str = "(unknown)";

impl Metrics {
    /// The figures of a server of `queue` whose methods are `known`; says
    /// what each exported one means to the facade's recorder.
    pub(super) fn new(queue: &str, known: impl IntoIterator<Item = String>) -> Metrics {
        if telemetry::enabled() {
            describe();
        }
        Metrics {
            queue: queue.to_owned(),
            known: known.into_iter().collect(),
            methods: Mutex::default(),
        }
    }

    /// Counts one call of `method` that ran for `took`, and how it ended
    /// (`Err`: the exception's kind), after it `waited` in the queue.
    pub(super) fn ran(
        &self,
        method: &str,
        took: Duration,
        waited: Option<Duration>,
        outcome: Result<(), &'static str>,
    ) {
        self.with(method, waited, |figures| {
            figures.calls += 1;
            *figures.buckets.entry(bucket(took)).or_default() += 1;
            if let Err(kind) = outcome {
                figures.errors += 1;
                *figures.errors_by_kind.entry(kind).or_default() += 1;
            }
            if let Some(exported) = &mut figures.exported {
                exported.calls.increment(1);
                exported.duration.record(took.as_secs_f64());
                if let Err(kind) = outcome {
                    exported.error(kind);
                }
            }
        });
    }

    /// Counts a request of `method` dropped unstarted past its deadline,
    /// after it `waited` in the queue.
    pub(super) fn expired(&self, method: &str, waited: Option<Duration>) {
        self.with(method, waited, |figures| {
            figures.expired += 1;
            if let Some(exported) = &figures.exported {
                exported.expired.increment(1);
            }
        });
    }

    /// Counts a call of `method` dropped unfinished when its caller gave up,
    /// after it `waited` in the queue.
    pub(super) fn cancelled(&self, method: &str, waited: Option<Duration>) {
        self.with(method, waited, |figures| {
            figures.cancelled += 1;
            if let Some(exported) = &figures.exported {
                exported.cancelled.increment(1);
            }
        });
    }

    /// Counts a request of `method` taken again after its server died.
    pub(super) fn redelivered(&self, method: &str) {
        self.with(method, None, |figures| {
            figures.redelivered += 1;
            if let Some(exported) = &figures.exported {
                exported.redelivered.increment(1);
            }
        });
    }

    /// Records into `method`'s figures under one lock, with the request's
    /// wait in the queue, when it said when it was sent.
    fn with(&self, method: &str, waited: Option<Duration>, record: impl FnOnce(&mut Figures)) {
        let method = if self.known.contains(method) {
            method
        } else {
            UNKNOWN_METHOD
        };
        let mut methods = self.methods.lock().unwrap_or_else(PoisonError::into_inner);
        let figures = match methods.get_mut(method) {
            Some(figures) => figures,
            None => methods.entry(method.to_owned()).or_insert_with(|| Figures {
                exported: telemetry::enabled().then(|| Exported::new(&self.queue, method)),
                ..Figures::default()
            }),
        };
        if let Some(wait) = waited {
            *figures.wait_buckets.entry(bucket(wait)).or_default() += 1;
            if let Some(exported) = &figures.exported {
                exported.queue_wait.record(wait.as_secs_f64());
            }
        }
        record(figures);
    }

    /// The `methods` field of the liveness record.
    pub(super) fn to_json(&self) -> String {
        let methods = self.methods.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = Map::new();
        for (name, figures) in methods.iter() {
            let errors_by_kind: Map<String, Value> = figures
                .errors_by_kind
                .iter()
                .map(|(kind, count)| ((*kind).to_owned(), json!(count)))
                .collect();
            out.insert(
                name.clone(),
                json!({
                    "calls": figures.calls,
                    "errors": figures.errors,
                    "errors_by_kind": errors_by_kind,
                    "expired": figures.expired,
                    "cancelled": figures.cancelled,
                    "redelivered": figures.redelivered,
                    "buckets": buckets_json(&figures.buckets),
                    "wait_buckets": buckets_json(&figures.wait_buckets),
                }),
            );
        }
        Value::Object(out).to_string()
    }
}

fn buckets_json(buckets: &BTreeMap<usize, u64>) -> Map<String, Value> {
    buckets
        .iter()
        .map(|(index, count)| (index.to_string(), json!(count)))
        .collect()
}

/// Tells the facade's recorder what each metric of [`telemetry::METRICS`] is.
fn describe() {
    for &(name, kind, what) in telemetry::METRICS {
        let unit = name.ends_with("_seconds").then_some(metrics::Unit::Seconds);
        match (kind, unit) {
            ("histogram", Some(unit)) => metrics::describe_histogram!(name, unit, what),
            ("histogram", None) => metrics::describe_histogram!(name, what),
            _ => metrics::describe_counter!(name, what),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_grow_by_a_fourth_octave_and_cover_a_duration() {
        assert_eq!(bucket(Duration::from_nanos(500)), 0);
        assert_eq!(bucket(Duration::from_micros(2)), 4);
        assert_eq!(bucket(Duration::from_micros(1024)), 40);
        assert_eq!(bucket(Duration::from_secs(100_000)), BUCKETS - 1);
        for micros in [3, 100, 12_345, 1_000_000] {
            let duration = Duration::from_micros(micros);
            assert!(bucket_ceiling(bucket(duration)) >= duration, "{micros} µs");
        }
    }

    #[test]
    fn figures_are_recorded_per_method_as_json() {
        let metrics = Metrics::new("calc", ["add".to_owned(), "div".to_owned()]);
        metrics.ran("add", Duration::from_micros(1024), None, Ok(()));
        metrics.ran(
            "add",
            Duration::from_micros(1030),
            Some(Duration::from_micros(2)),
            Err("failed"),
        );
        metrics.expired("add", Some(Duration::from_micros(1024)));
        metrics.cancelled("div", None);
        metrics.redelivered("div");
        metrics.ran("pow", Duration::from_micros(2), None, Err("unknown_method"));
        metrics.ran("^%$#", Duration::from_micros(2), None, Err("unknown_method"));
        let json: Value = serde_json::from_str(&metrics.to_json()).unwrap();
        assert_eq!(
            json,
            json!({
                "add": {"calls": 2, "errors": 1, "errors_by_kind": {"failed": 1}, "expired": 1,
                        "cancelled": 0, "redelivered": 0, "buckets": {"40": 2}, "wait_buckets": {"4": 1, "40": 1}},
                "div": {"calls": 0, "errors": 0, "errors_by_kind": {}, "expired": 0,
                        "cancelled": 1, "redelivered": 1, "buckets": {}, "wait_buckets": {}},
                "(unknown)": {"calls": 2, "errors": 2, "errors_by_kind": {"unknown_method": 2}, "expired": 0,
                        "cancelled": 0, "redelivered": 0, "buckets": {"4": 2}, "wait_buckets": {}},
            })
        );
    }
}
