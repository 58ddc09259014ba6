//! `stats`: calls/s, errors/s (and by kind), p50/p99 latency, queue wait,
//! expired, cancelled and redelivered requests per method, merged over
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
    errors_by_kind: BTreeMap<String, u64>,
    expired: u64,
    cancelled: u64,
    redelivered: u64,
    /// How long calls ran.
    latency: Buckets,
    /// How long requests waited in the queue.
    wait: Buckets,
}

impl Figures {
    fn add(&mut self, other: &Figures) {
        self.calls += other.calls;
        self.errors += other.errors;
        for (kind, count) in &other.errors_by_kind {
            *self.errors_by_kind.entry(kind.clone()).or_default() += count;
        }
        self.expired += other.expired;
        self.cancelled += other.cancelled;
        self.redelivered += other.redelivered;
        self.latency.add(&other.latency);
        self.wait.add(&other.wait);
    }

    /// What happened between `earlier` and `self`.
    fn since(&self, earlier: &Figures) -> Figures {
        let errors_by_kind = self
            .errors_by_kind
            .iter()
            .map(|(kind, count)| {
                let before = earlier.errors_by_kind.get(kind).copied().unwrap_or(0);
                (kind.clone(), count.saturating_sub(before))
            })
            .filter(|(_, count)| *count > 0)
            .collect();
        Figures {
            calls: self.calls.saturating_sub(earlier.calls),
            errors: self.errors.saturating_sub(earlier.errors),
            errors_by_kind,
            expired: self.expired.saturating_sub(earlier.expired),
            cancelled: self.cancelled.saturating_sub(earlier.cancelled),
            redelivered: self.redelivered.saturating_sub(earlier.redelivered),
            latency: self.latency.since(&earlier.latency),
            wait: self.wait.since(&earlier.wait),
        }
    }
}

/// A mergeable histogram: counts in the servers' shared buckets.
#[derive(Debug, Clone, Default)]
struct Buckets(Vec<u64>);

impl Buckets {
    /// The `"buckets"`-shaped member `name` of a record's figures.
    fn read(figures: &Value, name: &str) -> Buckets {
        let mut buckets = vec![0; BUCKETS];
        if let Some(Value::Object(counts)) = figures.get(name) {
            for (index, count) in counts {
                if let (Ok(index), Some(count)) = (index.parse::<usize>(), count.as_u64())
                    && index < BUCKETS
                {
                    buckets[index] = count;
                }
            }
        }
        Buckets(buckets)
    }

    fn add(&mut self, other: &Buckets) {
        self.0.resize(BUCKETS, 0);
        for (mine, theirs) in self.0.iter_mut().zip(&other.0) {
            *mine += theirs;
        }
    }

    fn since(&self, earlier: &Buckets) -> Buckets {
        let mut buckets = self.0.clone();
        buckets.resize(BUCKETS, 0);
        for (now, then) in buckets.iter_mut().zip(&earlier.0) {
            *now = now.saturating_sub(*then);
        }
        Buckets(buckets)
    }

    /// The duration below which fraction `q` of the counted ones fell, at
    /// the resolution of the buckets (their upper bound).
    fn quantile(&self, q: f64) -> Option<Duration> {
        let total: u64 = self.0.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (index, count) in self.0.iter().enumerate() {
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
                    "errors_by_kind": f.errors_by_kind,
                    "expired": f.expired, "cancelled": f.cancelled, "redelivered": f.redelivered,
                    "p50_us": micros(f.latency.quantile(0.5)), "p99_us": micros(f.latency.quantile(0.99)),
                    "queue_wait_p50_us": micros(f.wait.quantile(0.5)),
                    "queue_wait_p99_us": micros(f.wait.quantile(0.99)),
                })
            })
            .collect();
        println!("{}", Value::Array(rows));
        return;
    }
    if methods.is_empty() {
        println!("no calls yet");
        return;
    }
    let latency = |d: Option<Duration>| match d {
        Some(d) if d < Duration::from_millis(1) => format!("{:.0} µs", d.as_secs_f64() * 1e6),
        Some(d) => format!("{:.1} ms", d.as_secs_f64() * 1e3),
        None => "-".to_owned(),
    };
    let count = |n: u64| match interval {
        Some(_) => format!("{:.1}", rate(n).unwrap_or(0.0)),
        None => n.to_string(),
    };
    let header = match interval {
        Some(_) => [
            "METHOD",
            "CALLS/S",
            "ERRORS/S",
            "P50",
            "P99",
            "WAIT P99",
            "EXPIRED/S",
            "CANCELLED/S",
            "REDELIVERED/S",
        ],
        None => [
            "METHOD",
            "CALLS",
            "ERRORS",
            "P50",
            "P99",
            "WAIT P99",
            "EXPIRED",
            "CANCELLED",
            "REDELIVERED",
        ],
    };
    let mut table = vec![header.map(String::from).to_vec()];
    for (method, f) in methods {
        table.push(vec![
            method.clone(),
            count(f.calls),
            count(f.errors),
            latency(f.latency.quantile(0.5)),
            latency(f.latency.quantile(0.99)),
            latency(f.wait.quantile(0.99)),
            count(f.expired),
            count(f.cancelled),
            count(f.redelivered),
        ]);
    }
    print_table(&table);
    let kinds: Vec<String> = methods
        .iter()
        .flat_map(|(method, f)| {
            f.errors_by_kind
                .iter()
                .map(move |(kind, n)| format!("{method}: {} {kind}", count(*n)))
        })
        .collect();
    if !kinds.is_empty() {
        println!("errors by kind: {}", kinds.join(", "));
    }
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
            let number = |name: &str| figures.get(name).and_then(Value::as_u64).unwrap_or(0);
            let errors_by_kind = match figures.get("errors_by_kind") {
                Some(Value::Object(kinds)) => kinds
                    .iter()
                    .filter_map(|(kind, count)| Some((kind.clone(), count.as_u64()?)))
                    .collect(),
                _ => BTreeMap::new(),
            };
            server.insert(
                method,
                Figures {
                    calls: number("calls"),
                    errors: number("errors"),
                    errors_by_kind,
                    expired: number("expired"),
                    cancelled: number("cancelled"),
                    redelivered: number("redelivered"),
                    latency: Buckets::read(&figures, "buckets"),
                    wait: Buckets::read(&figures, "wait_buckets"),
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
            latency: Buckets(buckets),
            ..Figures::default()
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
        assert_eq!(service.latency.quantile(0.5), Some(bucket_ceiling(40)));
        assert_eq!(
            service.latency.quantile(0.99),
            Some(bucket_ceiling(60)),
            "the slow server shows in the service's p99"
        );
        let later = figures(95, &[(40, 95)]);
        let delta = later.since(&a);
        assert_eq!(
            (delta.calls, delta.latency.quantile(0.5)),
            (5, Some(bucket_ceiling(40)))
        );
    }

    #[test]
    fn errors_by_kind_queue_wait_and_counts_merge_and_subtract() {
        let record: Value = json!({"errors": 3, "errors_by_kind": {"failed": 2, "panicked": 1},
                                   "expired": 4, "cancelled": 1, "redelivered": 2, "wait_buckets": {"30": 5}});
        let one = Figures {
            errors: 3,
            errors_by_kind: [("failed".to_owned(), 2), ("panicked".to_owned(), 1)].into(),
            expired: 4,
            cancelled: 1,
            redelivered: 2,
            wait: Buckets::read(&record, "wait_buckets"),
            ..Figures::default()
        };
        let mut service = Figures::default();
        service.add(&one);
        service.add(&one);
        assert_eq!(service.errors_by_kind["failed"], 4);
        assert_eq!((service.expired, service.cancelled, service.redelivered), (8, 2, 4));
        assert_eq!(service.wait.quantile(0.99), Some(bucket_ceiling(30)));
        let delta = service.since(&one);
        assert_eq!(delta.errors_by_kind, one.errors_by_kind);
        assert_eq!((delta.expired, delta.wait.quantile(0.5)), (4, Some(bucket_ceiling(30))));
        assert!(
            one.since(&one).errors_by_kind.is_empty(),
            "kinds with nothing new are left out"
        );
    }
}
