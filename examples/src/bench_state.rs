//! The shared-state suite of `bench`: small-value get and set, camera
//! frames, and publish-to-mirror latency.

use std::time::{Duration, Instant};

use anyhow::ensure;
use redisrpc::backend::RedisConnection;
use redisrpc::state::{NdArray, State};
use serde_json::{Value, json};

use crate::measure::{self, Latencies};

/// The figures of one run.
#[derive(Debug, Default)]
pub struct Figures {
    rows: Vec<(String, String)>,
    json: serde_json::Map<String, Value>,
}

impl Figures {
    fn add(&mut self, name: &str, text: String, value: Value) {
        println!("{name:<28} {text}");
        self.rows.push((name.into(), text));
        self.json.insert(name.replace(' ', "_"), value);
    }

    /// All figures as one JSON object.
    pub fn to_json(&self) -> Value {
        Value::Object(self.json.clone())
    }
}

fn tenths(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Runs `ops` calls of `op(task, n)` from `concurrency` tasks (see
/// [`measure::spread`]); returns ops per second.
async fn throughput<F, Fut>(ops: usize, concurrency: usize, op: F) -> anyhow::Result<f64>
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = redisrpc::Result<()>> + Send,
{
    Ok(measure::spread(ops, concurrency, op).await?.rate())
}

/// Runs the suite with `ops` small operations per measurement; `raw`, a
/// connection to the same Redis, measures the frame figures' anchor.
pub async fn run(state: &State, raw: Option<RedisConnection>, ops: usize) -> anyhow::Result<Figures> {
    let mut figures = Figures::default();
    for task in 0..32 {
        state
            .set(format!("bench{task}"), &json!({"pose": {"x": 0.5, "y": 1.5}, "n": 0}))
            .await?;
    }
    for concurrency in [1, 32] {
        let reader = state.clone();
        let rate = throughput(ops, concurrency, move |task, _| {
            let state = reader.clone();
            async move { state.get::<f64>(format!("bench{task}.pose.x")).await.map(drop) }
        })
        .await?;
        figures.add(
            &format!("get small x{concurrency}"),
            format!("{rate:.0} ops/s"),
            json!(rate.round()),
        );
        let writer = state.clone();
        let rate = throughput(ops, concurrency, move |task, n| {
            let state = writer.clone();
            // A new value every time: writing the value already there is not a write.
            async move { state.set(format!("bench{task}.pose.x"), &(n as f64 * 0.1)).await }
        })
        .await?;
        figures.add(
            &format!("set small x{concurrency}"),
            format!("{rate:.0} ops/s"),
            json!(rate.round()),
        );
    }

    let pixels: Vec<u8> = (0..480 * 640 * 3).map(|i| (i % 251) as u8).collect();
    let frame = NdArray::from_elements(vec![480, 640, 3], &pixels)?;
    let rounds = (ops / 100).clamp(10, 200);
    let megabytes = (frame.bytes().len() * rounds) as f64 / 1e6;
    // Ours and the anchor take turns, frame by frame, so that both see the
    // same moments of a busy machine.
    let (mut ours, mut anchor) = (Duration::ZERO, Duration::ZERO);
    let mut raw = raw;
    for _ in 0..rounds {
        let started = Instant::now();
        state.set_array("bench_camera.frame", &frame).await?;
        ours += started.elapsed();
        if let Some(raw) = raw.as_mut() {
            let started = Instant::now();
            raw_hset(raw, frame.bytes()).await?;
            anchor += started.elapsed();
        }
    }
    let rate = megabytes / ours.as_secs_f64();
    figures.add("frame set 640x480x3", format!("{rate:.0} MB/s"), json!(rate.round()));
    if let Some(mut raw) = raw {
        let anchor = megabytes / anchor.as_secs_f64();
        let _: () = redis::cmd("DEL").arg("bench_camera_raw").query_async(&mut raw).await?;
        figures.add(
            "frame set raw HSET",
            format!("{anchor:.0} MB/s (frame set is {:.2}x this)", rate / anchor),
            json!(anchor.round()),
        );
    }
    let started = Instant::now();
    for _ in 0..rounds {
        let back = state.get_array("bench_camera.frame").await?;
        ensure!(back.bytes().len() == frame.bytes().len(), "short frame");
    }
    let rate = megabytes / started.elapsed().as_secs_f64();
    figures.add("frame get 640x480x3", format!("{rate:.0} MB/s"), json!(rate.round()));

    // Measured on a runtime worker, as the throughput figures are (the
    // main thread's wake-ups cost extra).
    let (state, ops) = (state.clone(), ops);
    figures = tokio::spawn(async move { latency(&state, ops, figures).await }).await??;
    Ok(figures)
}

/// The anchor of the frame figures: the frame's bytes written with a plain
/// `HSET`, through the redis crate, with the fields `set_array` writes.
async fn raw_hset(raw: &mut RedisConnection, bytes: &[u8]) -> redis::RedisResult<()> {
    redis::cmd("HSET")
        .arg("bench_camera_raw")
        .arg("arr")
        .arg(bytes)
        .arg("dtype")
        .arg("uint8")
        .arg("shape")
        .arg("(480, 640, 3)")
        .query_async(raw)
        .await
}

/// Adds the read round trip and publish-to-mirror latencies to `figures`.
async fn latency(state: &State, ops: usize, mut figures: Figures) -> anyhow::Result<Figures> {
    // A read of a tiny document: one round trip, the unit of comparison.
    let samples = (ops / 10).clamp(100, 2_000);
    let mut round_trips = Latencies::default();
    for _ in 0..samples {
        let started = Instant::now();
        state.get::<f64>("bench0.pose.y").await?;
        round_trips.record(started.elapsed());
    }
    let round_trip = round_trips.percentile_us(0.5);
    figures.add(
        "read round trip p50",
        format!("{round_trip:.1} µs"),
        json!(tenths(round_trip)),
    );

    let mut mirror = state.mirror("bench_pub").await?;
    let mut latencies = Latencies::default();
    for seq in 0..samples as u64 {
        let started = Instant::now();
        state.publish("bench_pub.seq", &seq).await?;
        while mirror.get::<u64>("bench_pub.seq").ok() != Some(seq) {
            tokio::time::timeout(Duration::from_secs(5), mirror.changed()).await??;
        }
        latencies.record(started.elapsed());
    }
    let (p50, p99) = (latencies.percentile_us(0.5), latencies.percentile_us(0.99));
    figures.add(
        "publish to mirror",
        format!(
            "p50 {p50:.1} µs, p99 {p99:.1} µs ({:.1}x a round trip)",
            p50 / round_trip
        ),
        json!({"p50_us": tenths(p50), "p99_us": tenths(p99), "round_trips": tenths(p50 / round_trip)}),
    );
    Ok(figures)
}
