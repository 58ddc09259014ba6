//! `stats`: calls/s, errors/s and p50/p99 latency per method, merged over
//! every live server of a queue from their liveness records (see
//! `redisrpc::metrics`), as `redis-cli --stat` shows Redis's.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redisrpc::backend::RedisConnection;
use redisrpc::layout;
use redisrpc::metrics::{BUCKETS, bucket_ceiling};
use serde_json::{Value, json};

use crate::Options;
use crate::failure::Outcome;
use crate::servers::print_table;

/// One method's figures, summed over servers.
#[derive(Debug, Clone, Default)]
struct Figures {
    calls: u64,
    errors: u64,
    buckets: Vec<u64>,
}

impl Figures {
    fn add(&mut self, other: &Figures) {
        self.calls += other.calls;
        self.errors += other.errors;
        self.buckets.resize(BUCKETS, 0);
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
    }

    /// What happened between `earlier` and `self`.
    fn since(&self, earlier: &Figures) -> Figures {
        let mut buckets = self.buckets.clone();
        buckets.resize(BUCKETS, 0);
        for (now, then) in buckets.iter_mut().zip(&earlier.buckets) {
            *now = now.saturating_sub(*then);
        }
        Figures {
            calls: self.calls.saturating_sub(earlier.calls),
            errors: self.errors.saturating_sub(earlier.errors),
            buckets,
        }
    }

    /// The latency below which fraction `q` of the calls took, at the
    /// resolution of the buckets (their upper bound).
    fn quantile(&self, q: f64) -> Option<Duration> {
        let total: u64 = self.buckets.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (index, count) in self.buckets.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(bucket_ceiling(index));
            }
        }
        None
    }
}

/// Each live server's figures by method, by instance.
type Snapshot = BTreeMap<String, BTreeMap<String, Figures>>;

/// `redisrpc stats QUEUE [--watch]`.
pub(crate) async fn stats(
    options: &Options,
    queue: &str,
    watch: bool,
    interval: Duration,
    count: Option<u64>,
) -> Outcome {
    let mut redis = options.connection().await?;
    let mut previous = snapshot(&mut redis, queue).await?;
    if !watch {
        print(options, &merged(&previous, &Snapshot::new()), None);
        return Ok(());
    }
    let mut printed = 0;
    let mut last = Instant::now();
    while count.is_none_or(|count| printed < count) {
        tokio::time::sleep(interval).await;
        let now = snapshot(&mut redis, queue).await?;
        let elapsed = last.elapsed();
        last = Instant::now();
        print(options, &merged(&now, &previous), Some(elapsed));
        previous = now;
        printed += 1;
    }
    Ok(())
}

/// Each method's figures summed over servers, less what `earlier` had
/// (servers that appeared since count from zero).
fn merged(now: &Snapshot, earlier: &Snapshot) -> BTreeMap<String, Figures> {
    let mut methods: BTreeMap<String, Figures> = BTreeMap::new();
    let nothing = BTreeMap::new();
    for (instance, server) in now {
        let before = earlier.get(instance).unwrap_or(&nothing);
        for (method, figures) in server {
            let delta = figures.since(before.get(method).unwrap_or(&Figures::default()));
            methods.entry(method.clone()).or_default().add(&delta);
        }
    }
    methods
}

fn print(options: &Options, methods: &BTreeMap<String, Figures>, interval: Option<Duration>) {
    let rate = |n: u64| interval.map(|interval| n as f64 / interval.as_secs_f64());
    let micros = |d: Option<Duration>| d.map(|d| (d.as_secs_f64() * 1e7).round() / 10.0);
    if options.json {
        let rows: Vec<Value> = methods
            .iter()
            .map(|(method, f)| {
                json!({
                    "method": method, "calls": f.calls, "errors": f.errors,
                    "calls_per_second": rate(f.calls), "errors_per_second": rate(f.errors),
                    "p50_us": micros(f.quantile(0.5)), "p99_us": micros(f.quantile(0.99)),
                })
            })
            .collect();
        println!("{}", Value::Array(rows));
        return;
    }
    let latency = |d: Option<Duration>| match d {
        Some(d) if d < Duration::from_millis(1) => format!("{:.0} µs", d.as_secs_f64() * 1e6),
        Some(d) => format!("{:.1} ms", d.as_secs_f64() * 1e3),
        None => "-".to_owned(),
    };
    let header = match interval {
        Some(_) => ["METHOD", "CALLS/S", "ERRORS/S", "P50", "P99"],
        None => ["METHOD", "CALLS", "ERRORS", "P50", "P99"],
    };
    let mut table = vec![header.map(String::from).to_vec()];
    for (method, f) in methods {
        let (calls, errors) = match interval {
            Some(_) => (
                format!("{:.1}", rate(f.calls).unwrap_or(0.0)),
                format!("{:.1}", rate(f.errors).unwrap_or(0.0)),
            ),
            None => (f.calls.to_string(), f.errors.to_string()),
        };
        table.push(vec![
            method.clone(),
            calls,
            errors,
            latency(f.quantile(0.5)),
            latency(f.quantile(0.99)),
        ]);
    }
    if methods.is_empty() {
        println!("no calls yet");
        return;
    }
    print_table(&table);
    if interval.is_some() {
        println!();
    }
}

/// The figures in every live server's record of `queue`.
async fn snapshot(redis: &mut RedisConnection, queue: &str) -> Outcome<Snapshot> {
    let mut snapshot = Snapshot::new();
    let instances: Vec<String> = redis.hkeys(layout::servers(queue)).await?;
    for instance in instances {
        let methods: Option<String> = redis.hget(layout::liveness(queue, &instance), "methods").await?;
        let Some(Ok(Value::Object(methods))) = methods.map(|text| serde_json::from_str::<Value>(&text)) else {
            continue;
        };
        let mut server = BTreeMap::new();
        for (method, figures) in methods {
            let mut buckets = vec![0; BUCKETS];
            if let Some(Value::Object(counts)) = figures.get("buckets") {
                for (index, count) in counts {
                    if let (Ok(index), Some(count)) = (index.parse::<usize>(), count.as_u64())
                        && index < BUCKETS
                    {
                        buckets[index] = count;
                    }
                }
            }
            let number = |name: &str| figures.get(name).and_then(Value::as_u64).unwrap_or(0);
            server.insert(
                method,
                Figures {
                    calls: number("calls"),
                    errors: number("errors"),
                    buckets,
                },
            );
        }
        snapshot.insert(instance, server);
    }
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(calls: u64, at: &[(usize, u64)]) -> Figures {
        let mut buckets = vec![0; BUCKETS];
        for &(index, count) in at {
            buckets[index] = count;
        }
        Figures {
            calls,
            errors: 0,
            buckets,
        }
    }

    #[test]
    fn servers_merge_and_intervals_subtract() {
        let a = figures(90, &[(40, 90)]);
        let b = figures(10, &[(60, 10)]);
        let mut service = Figures::default();
        service.add(&a);
        service.add(&b);
        assert_eq!(service.calls, 100);
        assert_eq!(service.quantile(0.5), Some(bucket_ceiling(40)));
        assert_eq!(
            service.quantile(0.99),
            Some(bucket_ceiling(60)),
            "the slow server shows in the service's p99"
        );
        let later = figures(95, &[(40, 95)]);
        let delta = later.since(&a);
        assert_eq!((delta.calls, delta.quantile(0.5)), (5, Some(bucket_ceiling(40))));
    }
}
