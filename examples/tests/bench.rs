//! `bench` runs on both backends and ends with one JSON line of figures.
//! (The figures themselves are read by people, not asserted.)

mod support;

use std::process::Command;

use redisrpc_testkit::{RedisCluster, RedisServer};
use serde_json::Value;
use support::ServerProcess;

/// Runs `bench`; returns its output and the figures of its last line.
fn run(args: &[&str]) -> (String, Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(args)
        .output()
        .expect("bench runs");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "bench {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let figures = serde_json::from_str(stdout.lines().last().unwrap()).expect("a JSON last line");
    (stdout, figures)
}

fn bench(args: &[&str]) -> Value {
    let (stdout, figures) = run(args);
    assert!(stdout.contains("calls/s") && stdout.contains("p99"), "{stdout}");
    for field in ["calls_per_second", "p50_us", "p99_us", "max_us"] {
        assert!(figures[field].as_f64().is_some_and(|x| x > 0.0), "{field} in {figures}");
    }
    figures
}

#[test]
fn bench_measures_the_embedded_backend() {
    let figures = bench(&["--backend", "memory", "--calls", "2000", "--concurrency", "8"]);
    assert_eq!(figures["calls"], 2000);
    assert_eq!(figures["backend"], "memory");
}

#[test]
#[redisrpc_testkit::needs(redis)]
fn bench_measures_redis_with_its_own_server_or_an_external_one() {
    let Some(redis) = RedisServer::start() else { return };
    let url = redis.url();
    let figures = bench(&["--redis", &url, "--calls", "300", "--concurrency", "4"]);
    assert_eq!(
        (figures["calls"].as_u64(), figures["backend"].as_str()),
        (Some(300), Some("redis"))
    );

    assert!(
        figures["of_redis_benchmark"].as_f64().is_some_and(|x| x > 0.0),
        "calls in flight beside redis-benchmark: {figures}"
    );
    let sequential = bench(&["--redis", &url, "--calls", "300"]);
    assert!(
        sequential["of_two_pings"].as_f64().is_some_and(|x| x > 0.0),
        "sequential calls beside PINGs: {sequential}"
    );

    // Its server in a process of its own, which ends with the bench.
    let figures = bench(&[
        "--redis",
        &url,
        "--calls",
        "300",
        "--concurrency",
        "4",
        "--server-process",
    ]);
    assert_eq!(
        (figures["calls"].as_u64(), figures["server"].as_str()),
        (Some(300), Some("process"))
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !redis.cli(&["KEYS", "__rpc__:{bench}:server:*"]).trim().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the server process ends with the bench"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    // An external calculator server on `calc`.
    let server = ServerProcess::start(env!("CARGO_BIN_EXE_calc-server"), &url, "calc");
    let figures = bench(&["--redis", &url, "--queue", "calc", "--no-server", "--calls", "300"]);
    assert_eq!(figures["calls"], 300);
    assert!(server.interrupt().success());
}

/// `--bare` makes the same calls with the redis crate alone and prints
/// them beside ours, its server placed as ours is; a bare server process
/// ends with the bench, and every bare reply was taken.
#[test]
#[redisrpc_testkit::needs(redis)]
fn bench_puts_a_bare_protocol_loop_beside_its_calls() {
    let Some(redis) = RedisServer::start() else { return };
    let url = redis.url();
    for placement in [None, Some("--server-process")] {
        let mut args = vec!["--redis", &url, "--calls", "300", "--concurrency", "4", "--bare"];
        args.extend(placement);
        let (stdout, figures) = run(&args);
        assert!(stdout.contains("bare loop:"), "{stdout}");
        for field in ["calls_per_second", "bare_calls_per_second", "of_bare"] {
            assert!(figures[field].as_f64().is_some_and(|x| x > 0.0), "{field} in {figures}");
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while redis.cli(&["CLIENT", "LIST"]).contains("cmd=blmpop") {
            assert!(
                std::time::Instant::now() < deadline,
                "the bare server ends with the bench ({placement:?})"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert_eq!(redis.cli(&["KEYS", "bench-bare*"]).trim(), "", "{placement:?}");
    }
}

#[test]
#[redisrpc_testkit::needs(redis)]
fn bench_measures_the_shared_state_on_both_backends() {
    let Some(redis) = RedisServer::start() else { return };
    let url = redis.url();
    for args in [
        vec!["--suite", "state", "--calls", "500"],
        vec!["--suite", "state", "--calls", "500", "--redis", &url],
    ] {
        let (_, figures) = run(&args);
        let on_redis = args.contains(&"--redis");
        assert_eq!(
            figures["frame_set_raw_HSET"].as_f64().is_some_and(|x| x > 0.0),
            on_redis,
            "the raw anchor, on Redis only: {figures}"
        );
        for field in [
            "get_small_x1",
            "get_small_x32",
            "set_small_x1",
            "set_small_x32",
            "frame_set_640x480x3",
            "frame_get_640x480x3",
        ] {
            assert!(figures[field].as_f64().is_some_and(|x| x > 0.0), "{field} in {figures}");
        }
        assert!(
            figures["publish_to_mirror"]["p99_us"].as_f64().is_some_and(|x| x > 0.0),
            "{figures}"
        );
    }
}

#[test]
#[redisrpc_testkit::needs(redis)]
fn bench_measures_a_cluster_beside_a_single_node() {
    let Some(redis) = RedisServer::start() else { return };
    let Some(cluster) = RedisCluster::start() else { return };
    let (single, clustered) = (redis.url(), cluster.url());
    let (stdout, _) = run(&[
        "--redis",
        &single,
        "--redis",
        &clustered,
        "--rounds",
        "2",
        "--calls",
        "200",
        "--concurrency",
        "4",
    ]);
    let figures: Vec<Value> = stdout
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let urls: Vec<&str> = figures.iter().map(|f| f["url"].as_str().unwrap()).collect();
    assert_eq!(
        urls,
        [&*single, &*clustered, &*single, &*clustered],
        "each in turn, round after round"
    );
    assert!(
        figures
            .iter()
            .all(|f| f["calls_per_second"].as_f64().is_some_and(|x| x > 0.0))
    );
}

#[test]
fn bench_puts_blocking_calls_beside_async_ones() {
    let (stdout, figures) = run(&["--backend", "memory", "--calls", "500", "--blocking"]);
    assert_eq!(figures["backend"], "memory", "the async figures come last");
    let blocking: Value = stdout
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|figures| figures["api"] == "blocking")
        .expect("a line of blocking figures");
    assert_eq!(blocking["calls"], 500);
    for figure in ["p50_us", "async_own_thread_p50_us", "async_beside_server_p50_us"] {
        assert!(
            blocking[figure].as_f64().is_some_and(|x| x > 0.0),
            "{figure}: {blocking}"
        );
    }
    assert!(stdout.contains("async, from a thread of its own"), "{stdout}");
    assert!(stdout.contains("async, from the runtime that serves"), "{stdout}");
}

#[test]
fn bench_puts_the_cost_of_telemetry_beside_telemetry_off() {
    let (stdout, figures) = run(&[
        "--suite",
        "telemetry",
        "--calls",
        "500",
        "--concurrency",
        "8",
        "--rounds",
        "3",
    ]);
    assert!(
        stdout.contains("no subscriber") && stdout.contains("exported"),
        "{stdout}"
    );
    for field in [
        "off_calls_per_second",
        "bare_calls_per_second",
        "off_beside_exported_calls_per_second",
        "exported_calls_per_second",
    ] {
        assert!(figures[field].as_f64().is_some_and(|x| x > 0.0), "{field} in {figures}");
    }
    // Three exported rounds of 500 calls, each after 100 warm-up calls: the
    // recorder counts each once, and the exporter gets both spans of each.
    assert_eq!(figures["exported_calls"], 1800, "{figures}");
    assert_eq!(figures["calls_recorded"], 1800, "{figures}");
    assert_eq!(figures["spans_exported"], 3600, "{figures}");
}
