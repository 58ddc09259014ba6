//! Per-method figures a server keeps and puts in its liveness record, in a
//! form that can be merged across servers: counts, and latency histograms
//! with the same buckets everywhere, so that `redisrpc stats` shows a
//! service's p99, not only each server's.
//!
//! Bucket `i` holds durations from 2^(i/4) µs up to 2^((i+1)/4) µs (about
//! 19 % wide), `i` from 0 (≤ 1 µs) to 127 (about 71 minutes and more). The
//! record's `methods` field is JSON:
//! `{"add": {"calls": 12, "errors": 1, "buckets": {"40": 3, "41": 9}}}`.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Map, Value, json};

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
#[derive(Debug, Clone, Default)]
struct Figures {
    calls: u64,
    errors: u64,
    buckets: BTreeMap<usize, u64>,
}

/// Every method's figures, for one server.
#[derive(Debug, Default)]
pub(super) struct Metrics {
    methods: Mutex<BTreeMap<String, Figures>>,
}

impl Metrics {
    /// Counts one call of `method` that took `took`.
    pub(super) fn record(&self, method: &str, took: Duration, failed: bool) {
        let mut methods = self.methods.lock().unwrap_or_else(PoisonError::into_inner);
        let figures = match methods.get_mut(method) {
            Some(figures) => figures,
            None => methods.entry(method.to_owned()).or_default(),
        };
        figures.calls += 1;
        figures.errors += u64::from(failed);
        *figures.buckets.entry(bucket(took)).or_default() += 1;
    }

    /// The `methods` field of the liveness record.
    pub(super) fn to_json(&self) -> String {
        let methods = self.methods.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = Map::new();
        for (name, figures) in methods.iter() {
            let buckets: Map<String, Value> = figures
                .buckets
                .iter()
                .map(|(index, count)| (index.to_string(), json!(count)))
                .collect();
            out.insert(
                name.clone(),
                json!({"calls": figures.calls, "errors": figures.errors, "buckets": buckets}),
            );
        }
        Value::Object(out).to_string()
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
        let metrics = Metrics::default();
        metrics.record("add", Duration::from_micros(1024), false);
        metrics.record("add", Duration::from_micros(1030), true);
        let json: Value = serde_json::from_str(&metrics.to_json()).unwrap();
        assert_eq!(json, json!({"add": {"calls": 2, "errors": 1, "buckets": {"40": 2}}}));
    }
}
