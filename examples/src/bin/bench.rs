//! Measures calls per second and latency.
//!
//! ```text
//! cargo run --release -p redisrpc-examples --bin bench -- --backend memory --calls 200000 --concurrency 64
//! cargo run --release -p redisrpc-examples --bin bench -- --redis redis://127.0.0.1:6379 --calls 20000 --concurrency 1
//! cargo run --release -p redisrpc-examples --bin bench -- --redis redis://127.0.0.1:6379 --queue calc --no-server
//! ```
//!
//! It starts its own server of an `echo` method on the chosen backend,
//! unless `--no-server` points it at an external one (then it calls the
//! calculator's `add`). It prints the figures, then one JSON line of them.
//!
//! `--bare` also makes the same calls with the redis crate alone, the
//! wire protocol's own cost, and prints them beside ours (`bench_bare`).
//!
//! `--suite state` measures the shared state instead (`--calls` small
//! operations per figure): small-value get and set with 1 and 32 tasks,
//! 640x480x3 frame set and get, and publish-to-mirror latency.
//!
//! ```text
//! cargo run --release -p redisrpc-examples --bin bench -- --suite state --redis redis://127.0.0.1:6379 --calls 100000
//! ```
//!
//! `--redis` may be given more than once, with `--rounds`: the RPC suite
//! then runs on each URL in turn, round after round, so that a cluster and
//! a single node (its anchor) are measured side by side on the same busy
//! machine:
//!
//! ```text
//! cargo run --release -p redisrpc-examples --bin bench -- --redis redis://127.0.0.1:6379 \
//!     --redis redis+cluster://127.0.0.1:7000 --rounds 3 --concurrency 64 --calls 100000
//! ```
//!
//! `--suite memory` measures a server's memory peak while it decodes one
//! request of `--calls` numbers (5,000,000 make 10 MB), beside the same
//! request decoded through `serde_json::Value`, on the embedded backend.
//!
//! `--suite telemetry` measures what spans and metrics cost: `--rounds`
//! rounds (at least 3) of `--calls` calls with telemetry off, on with no
//! subscriber, and on with every span exported through OpenTelemetry and
//! every metric recorded (see `bench_telemetry`):
//!
//! ```text
//! cargo run --release -p redisrpc-examples --bin bench -- --suite telemetry --concurrency 64 --calls 100000 --rounds 5
//! ```

use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use redisrpc::backend::{IntoBackend, Memory, Redis, SharedBackend};
use redisrpc::{Client, Delivery, Server};
use redisrpc_examples::{bench_anchors, bench_bare, bench_server, measure};

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum BackendKind {
    /// The embedded in-process backend.
    Memory,
    /// A Redis server (see --redis).
    Redis,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum Suite {
    /// RPC calls.
    Rpc,
    /// The shared state.
    State,
    /// A server's memory while it decodes one big request (Linux).
    Memory,
    /// RPC calls with telemetry off, on without a subscriber, and exported.
    Telemetry,
}

/// Benchmarks redisrpc calls.
#[derive(Parser)]
struct Options {
    /// What to measure.
    #[arg(long, value_enum, default_value = "rpc")]
    suite: Suite,
    /// Which backend to run on; giving --redis implies `redis`.
    #[arg(long, value_enum)]
    backend: Option<BackendKind>,
    /// Redis URL; give it more than once to measure each in turn (the RPC
    /// suite).
    #[arg(long, value_name = "URL", env = "REDISRPC_URL")]
    redis: Vec<String>,
    /// How many times to measure each --redis URL, in turn.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// How many calls to make in all.
    #[arg(long, default_value_t = 20_000)]
    calls: usize,
    /// How many calls are in flight at once.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// The service queue.
    #[arg(long, default_value = "bench")]
    queue: String,
    /// Call an external calculator server on --queue instead of starting one.
    #[arg(long)]
    no_server: bool,
    /// Run the server in a process of its own (this program again), as a
    /// deployment would, instead of in the bench's process (Redis only).
    #[arg(long, conflicts_with = "no_server")]
    server_process: bool,
    /// Only serve --queue on --redis until standard input closes: the
    /// server process of --server-process.
    #[arg(long, hide = true)]
    serve: bool,
    /// Calls without a timeout, so their requests carry no deadline (for
    /// comparison: by default every call has a 30 s timeout and deadline).
    #[arg(long)]
    no_deadline: bool,
    /// Also make the same calls, one at a time, through the blocking API
    /// from a plain thread, and print them beside the async figures.
    #[arg(long)]
    blocking: bool,
    /// Also make the same calls through a bare protocol loop, the redis
    /// crate alone with its server placed as ours is, and print them
    /// beside ours (see `bench_bare`; Redis only).
    #[arg(long, conflicts_with = "no_server")]
    bare: bool,
    /// The server's delivery mode: `at-most-once` or `at-least-once`.
    #[arg(long, default_value = "at-most-once", value_name = "MODE")]
    delivery: Delivery,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let kind = options.backend.unwrap_or(if options.redis.is_empty() {
        BackendKind::Memory
    } else {
        BackendKind::Redis
    });
    let urls: Vec<String> = match (kind, options.redis.is_empty()) {
        (BackendKind::Memory, _) => vec![String::new()],
        (BackendKind::Redis, true) => vec!["redis://127.0.0.1:6379".to_owned()],
        (BackendKind::Redis, false) => options.redis.clone(),
    };
    if options.serve && options.bare {
        return bench_bare::serve_until_stdin_closes(&urls[0], &options.queue).await;
    }
    if options.serve {
        let backend = connect(kind, &urls[0], &options).await?;
        let server = bench_server::echo(
            backend,
            &options.queue,
            options.concurrency.max(1) * 2,
            options.delivery,
        );
        return bench_server::serve_until_stdin_closes(server).await;
    }
    if options.suite != Suite::Rpc && urls.len() > 1 {
        bail!("several --redis URLs are for the RPC suite");
    }
    // The telemetry suite makes its rounds itself.
    let rounds = if options.suite == Suite::Telemetry {
        1
    } else {
        options.rounds.max(1)
    };
    for _ in 0..rounds {
        for url in &urls {
            let backend = connect(kind, url, &options).await?;
            match options.suite {
                Suite::Memory => {
                    // `--calls` numbers in one request: 5,000,000 make about 10 MB.
                    let figures = redisrpc_examples::bench_memory::run(options.calls).await?;
                    println!("{figures}");
                }
                Suite::State => {
                    println!("backend:                     {kind:?}");
                    let state = redisrpc::state::State::new(backend);
                    // The anchor of the frame figures: the same bytes written
                    // with a plain `HSET`, through the redis crate.
                    let raw = match kind {
                        BackendKind::Memory => None,
                        BackendKind::Redis => Some(Redis::connect(url).await?.connection()),
                    };
                    let figures = redisrpc_examples::bench_state::run(&state, raw, options.calls).await?;
                    let mut json = figures.to_json();
                    json["backend"] = format!("{kind:?}").to_lowercase().into();
                    println!("{json}");
                }
                Suite::Rpc => rpc(&options, kind, url, backend).await?,
                Suite::Telemetry => telemetry(&options, kind, url, &backend).await?,
            }
        }
    }
    Ok(())
}

async fn connect(kind: BackendKind, url: &str, options: &Options) -> anyhow::Result<SharedBackend> {
    Ok(match kind {
        BackendKind::Memory if options.no_server => bail!("--no-server needs a Redis backend"),
        BackendKind::Memory if options.server_process => bail!("--server-process needs a Redis backend"),
        BackendKind::Memory => Memory::new().into_backend(),
        BackendKind::Redis => Redis::connect(url)
            .await
            .with_context(|| format!("connecting to {url}"))?
            .into_backend(),
    })
}

/// One run of the RPC suite on `backend` (at `url`, for the report).
async fn rpc(options: &Options, kind: BackendKind, url: &str, backend: SharedBackend) -> anyhow::Result<()> {
    let in_process = !options.no_server && !options.server_process;
    let server = in_process.then(|| {
        bench_server::echo(
            backend.clone(),
            &options.queue,
            options.concurrency.max(1) * 2,
            options.delivery,
        )
    });
    let handle = server.as_ref().map(Server::handle);
    let serving = server.map(|server| tokio::spawn(server.run()));
    let server_process = if options.server_process {
        let mut args: Vec<String> = ["--serve", "--redis", url, "--queue", &options.queue]
            .map(str::to_owned)
            .into();
        args.extend(["--concurrency".to_owned(), options.concurrency.to_string()]);
        args.extend(["--delivery".to_owned(), options.delivery.name().to_owned()]);
        Some(bench_server::ServerProcess::start(&args)?)
    } else {
        None
    };

    let timeout = (!options.no_deadline).then_some(Duration::from_secs(30));
    let client = Client::new(backend.clone(), options.queue.clone()).with_timeout(timeout);
    // Warm up: connections, allocations, caches.
    for _ in 0..options.calls.min(1_000) / 10 {
        client.call::<f64>("add", (1,)).await.context("warm-up call")?;
    }
    let run = bench_server::call_echo(client, options.calls, options.concurrency).await?;
    let blocking = if options.blocking {
        Some(redisrpc_examples::bench_blocking::run(backend.clone(), &options.queue, timeout, options.calls).await?)
    } else {
        None
    };

    let bare = match (options.bare, kind) {
        (false, _) => None,
        (true, BackendKind::Memory) => bail!("--bare needs a Redis backend"),
        (true, BackendKind::Redis) => Some(bare(options, url).await?),
    };
    let anchor = match kind {
        BackendKind::Memory => Anchor::None,
        BackendKind::Redis => anchor(url, options).await?,
    };
    if let (Some(handle), Some(serving)) = (handle, serving) {
        handle.shutdown();
        serving.await??;
    }
    drop(server_process);
    let latencies = &run.latencies;
    let calls_per_second = run.rate();
    let (p50, p99, max) = (
        latencies.percentile_us(0.50),
        latencies.percentile_us(0.99),
        latencies.max_us(),
    );
    println!(
        "backend:      {kind:?}{}{}",
        if url.is_empty() {
            String::new()
        } else {
            format!(" {url}")
        },
        if options.no_server {
            " (external server)"
        } else if options.server_process {
            " (server in a process of its own)"
        } else {
            ""
        }
    );
    println!(
        "calls:        {} with {} in flight, {}",
        latencies.len(),
        options.concurrency,
        if options.no_deadline {
            "no deadline"
        } else {
            "with deadlines"
        }
    );
    println!("throughput:   {calls_per_second:.0} calls/s");
    println!("latency:      p50 {p50:.1} µs, p99 {p99:.1} µs, max {max:.1} µs");
    let mut anchors = serde_json::Map::new();
    match anchor {
        Anchor::None => {}
        Anchor::Pings(pings) => {
            let ping = pings.percentile_us(0.50);
            println!(
                "anchor:       PING p50 {ping:.1} µs in the same run: a call's p50 is {:.2}x two PING round trips",
                p50 / (2.0 * ping)
            );
            anchors.insert("ping_p50_us".into(), ((ping * 10.0).round() / 10.0).into());
            anchors.insert(
                "of_two_pings".into(),
                ((p50 / (2.0 * ping) * 100.0).round() / 100.0).into(),
            );
        }
        Anchor::RedisBenchmark(rate) => {
            println!(
                "anchor:       redis-benchmark -c {} -t rpush {rate:.0} requests/s in the same run: calls/s are {:.2}x that",
                options.concurrency,
                calls_per_second / rate
            );
            anchors.insert("redis_benchmark_rpush".into(), rate.round().into());
            anchors.insert(
                "of_redis_benchmark".into(),
                ((calls_per_second / rate * 100.0).round() / 100.0).into(),
            );
        }
        Anchor::Unavailable(why) => println!("anchor:       none ({why})"),
    }
    if let Some(bare) = &bare {
        let rate = bare.rate();
        println!(
            "bare loop:    {rate:.0} calls/s, p50 {:.1} µs, with the redis crate alone in the same run: calls/s are {:.2}x that",
            bare.latencies.percentile_us(0.50),
            calls_per_second / rate
        );
        anchors.insert("bare_calls_per_second".into(), rate.round().into());
        anchors.insert(
            "of_bare".into(),
            ((calls_per_second / rate * 100.0).round() / 100.0).into(),
        );
    }
    if let Some(figures) = &blocking {
        print_blocking(kind, url, figures);
    }
    let mut json = serde_json::json!({
        "backend": format!("{kind:?}").to_lowercase(),
        "url": url,
        "server": if options.no_server { "external" } else if options.server_process { "process" } else { "in-process" },
        "calls": latencies.len(),
        "concurrency": options.concurrency,
        "deadlines": !options.no_deadline,
        "delivery": options.delivery.name(),
        "calls_per_second": calls_per_second.round(),
        "p50_us": (p50 * 10.0).round() / 10.0,
        "p99_us": (p99 * 10.0).round() / 10.0,
        "max_us": (max * 10.0).round() / 10.0,
    });
    if let Some(object) = json.as_object_mut() {
        object.extend(anchors);
    }
    println!("{json}");
    Ok(())
}

/// The same calls through the bare protocol loop (`bench_bare`), on a
/// queue of its own, its server in this process or, with
/// --server-process, in one of its own.
async fn bare(options: &Options, url: &str) -> anyhow::Result<measure::Run> {
    let queue = format!("{}-bare", options.queue);
    let (serving, process) = if options.server_process {
        let args = ["--serve", "--bare", "--redis", url, "--queue", &queue].map(str::to_owned);
        (None, Some(bench_server::ServerProcess::start(&args)?))
    } else {
        let (url, queue) = (url.to_owned(), queue.clone());
        (
            Some(tokio::spawn(async move { bench_bare::serve(&url, &queue).await })),
            None,
        )
    };
    // Warm up, as for ours.
    bench_bare::call(url, &queue, options.calls.min(1_000) / 10, options.concurrency).await?;
    let run = bench_bare::call(url, &queue, options.calls, options.concurrency).await;
    if let Some(serving) = serving {
        serving.abort();
    }
    drop(process);
    run
}

/// The telemetry suite on `backend` (at `url`, for the report).
async fn telemetry(options: &Options, kind: BackendKind, url: &str, backend: &SharedBackend) -> anyhow::Result<()> {
    if options.no_server || options.server_process {
        bail!("the telemetry suite runs its own server in its process");
    }
    let figures = redisrpc_examples::bench_telemetry::run(
        backend,
        &options.queue,
        options.calls,
        options.concurrency,
        options.rounds,
    )
    .await?;
    println!(
        "backend:      {kind:?}{}",
        if url.is_empty() {
            String::new()
        } else {
            format!(" {url}")
        }
    );
    println!(
        "calls:        {} a round with {} in flight, {} rounds of each figure",
        options.calls,
        options.concurrency,
        options.rounds.max(3)
    );
    println!(
        "telemetry:    off {:.0} calls/s, on with no subscriber {:.0} calls/s ({:+.1}% cost)",
        figures.off,
        figures.bare,
        figures.bare_cost()
    );
    println!(
        "              off {:.0} calls/s, spans exported and metrics recorded {:.0} calls/s ({:+.1}% cost)",
        figures.off_beside_exported,
        figures.exported,
        figures.exported_cost()
    );
    println!(
        "              {} spans exported and {} calls counted by the recorder, of {} calls",
        figures.spans_exported, figures.calls_recorded, figures.exported_calls
    );
    let round = |x: f64| x.round();
    println!(
        "{}",
        serde_json::json!({
            "suite": "telemetry",
            "backend": format!("{kind:?}").to_lowercase(),
            "url": url,
            "calls": options.calls,
            "concurrency": options.concurrency,
            "off_calls_per_second": round(figures.off),
            "bare_calls_per_second": round(figures.bare),
            "bare_cost_percent": (figures.bare_cost() * 10.0).round() / 10.0,
            "off_beside_exported_calls_per_second": round(figures.off_beside_exported),
            "exported_calls_per_second": round(figures.exported),
            "exported_cost_percent": (figures.exported_cost() * 10.0).round() / 10.0,
            "spans_exported": figures.spans_exported,
            "calls_recorded": figures.calls_recorded,
            "exported_calls": figures.exported_calls,
        })
    );
    Ok(())
}

/// What the run's figures are held against (see `bench_anchors`).
enum Anchor {
    None,
    Pings(measure::Latencies),
    RedisBenchmark(f64),
    Unavailable(String),
}

/// The anchor of a run on `url`: PINGs for sequential calls,
/// `redis-benchmark` for calls in flight.
async fn anchor(url: &str, options: &Options) -> anyhow::Result<Anchor> {
    if options.concurrency <= 1 {
        let mut conn = Redis::connect(url).await?.connection();
        let samples = options.calls.clamp(100, 5_000);
        return Ok(Anchor::Pings(bench_anchors::pings(&mut conn, samples).await?));
    }
    let requests = options.calls.max(100_000);
    Ok(
        match bench_anchors::redis_benchmark_rpush(url, options.concurrency, requests) {
            Some(rate) => Anchor::RedisBenchmark(rate?),
            None => Anchor::Unavailable("redis-benchmark needs one server over TCP, and redis-tools".into()),
        },
    )
}

/// The blocking figures, beside the two async ones of the same rounds.
fn print_blocking(kind: BackendKind, url: &str, figures: &redisrpc_examples::bench_blocking::Figures) {
    let (blocking, beside, own) = (
        &figures.blocking,
        &figures.async_beside_server,
        &figures.async_own_thread,
    );
    let p50 = |latencies: &measure::Latencies| latencies.percentile_us(0.50);
    let p99 = |latencies: &measure::Latencies| latencies.percentile_us(0.99);
    let against = |anchor: &measure::Latencies| (p50(blocking) / p50(anchor) - 1.0) * 100.0;
    println!(
        "blocking:     p50 {:.1} µs, p99 {:.1} µs, one at a time from a plain thread; in the same rounds:",
        p50(blocking),
        p99(blocking)
    );
    println!(
        "  async, from a thread of its own:       p50 {:.1} µs, p99 {:.1} µs (blocking {:+.1}% at p50)",
        p50(own),
        p99(own),
        against(own)
    );
    println!(
        "  async, from the runtime that serves:   p50 {:.1} µs, p99 {:.1} µs (blocking {:+.1}% at p50)",
        p50(beside),
        p99(beside),
        against(beside)
    );
    let round = |x: f64| (x * 10.0).round() / 10.0;
    println!(
        "{}",
        serde_json::json!({
            "api": "blocking",
            "backend": format!("{kind:?}").to_lowercase(),
            "url": url,
            "calls": blocking.len(),
            "p50_us": round(p50(blocking)),
            "p99_us": round(p99(blocking)),
            "async_own_thread_p50_us": round(p50(own)),
            "async_own_thread_p99_us": round(p99(own)),
            "async_beside_server_p50_us": round(p50(beside)),
            "async_beside_server_p99_us": round(p99(beside)),
        })
    );
}
