//! The example binaries as a user runs them: the embedded calculator, and
//! `calc-server` with `calc-client` and `redis-cli` over a private Redis.

mod support;

use std::process::Command;

use redisrpc_testkit::{RedisCluster, RedisServer};
use serde_json::json;
use support::{ServerProcess, raw_call, run};

#[test]
fn the_embedded_calculator_passes_its_checks() {
    let output = run(&mut Command::new(env!("CARGO_BIN_EXE_calculator")));
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("val        -> 4"), "{stdout}");
    assert!(stdout.contains("calculator: all checks passed"), "{stdout}");
}

#[test]
#[redisrpc_testkit::needs(redis)]
fn calc_server_and_calc_client_talk_over_redis() {
    let Some(redis) = RedisServer::start() else { return };
    let server = ServerProcess::start(env!("CARGO_BIN_EXE_calc-server"), &redis.url(), "calc");

    let output = run(Command::new(env!("CARGO_BIN_EXE_calc-client")).args(["--redis", &redis.url()]));
    assert!(output.status.success(), "calc-client failed");
    assert!(String::from_utf8_lossy(&output.stdout).contains("all checks passed"));

    // Raw requests, as any peer or a person with redis-cli would push them.
    let clr = raw_call(
        &redis,
        "calc",
        r#"{"function_call":{"name":"clr"},"response_queue":"calc:rpc:CLI00001"}"#,
        "calc:rpc:CLI00001",
    );
    assert_eq!(clr, json!({"return_value": null}));
    let named = raw_call(
        &redis,
        "calc",
        r#"{"function_call": {"name": "add", "kwargs": {"number": 2.5}}, "response_queue": "calc:rpc:CLI00002"}"#,
        "calc:rpc:CLI00002",
    );
    assert_eq!(named, json!({"return_value": 2.5}));
    let unknown = raw_call(
        &redis,
        "calc",
        r#"{"function_call":{"name":"pow","args":[2]},"response_queue":"calc:rpc:CLI00003"}"#,
        "calc:rpc:CLI00003",
    );
    assert!(
        unknown["exception"].as_str().unwrap().contains("unknown method `pow`"),
        "{unknown}"
    );
    let by_zero = raw_call(
        &redis,
        "calc",
        r#"{"function_call":{"name":"div","args":[0]},"response_queue":"calc:rpc:CLI00004"}"#,
        "calc:rpc:CLI00004",
    );
    assert_eq!(by_zero, json!({"exception": "float division by zero"}));
    redis.cli(&["RPUSH", "calc", "this is not json"]);
    let after_garbage = raw_call(
        &redis,
        "calc",
        r#"{"function_call":{"name":"val","args":[]},"response_queue":"calc:rpc:CLI00005"}"#,
        "calc:rpc:CLI00005",
    );
    assert_eq!(
        after_garbage,
        json!({"return_value": 2.5}),
        "the server survives garbage"
    );

    let status = server.interrupt();
    assert!(status.success(), "calc-server exits cleanly on SIGINT: {status}");
}

#[test]
#[redisrpc_testkit::needs(redis)]
fn calc_server_and_calc_client_talk_over_a_cluster_from_one_seed() {
    let Some(cluster) = RedisCluster::start() else { return };
    // A seed that does not own `calc`: both follow the cluster's redirects.
    let owner = cluster.owner_of(cluster.slot_of("calc"));
    let seed = &cluster.nodes()[(owner + 1) % 3];
    let url = format!("redis+cluster://127.0.0.1:{}", seed.port());
    let server = ServerProcess::start(env!("CARGO_BIN_EXE_calc-server"), &url, "calc");
    let output = run(Command::new(env!("CARGO_BIN_EXE_calc-client")).args(["--redis", &url]));
    assert!(output.status.success(), "calc-client failed");
    assert!(String::from_utf8_lossy(&output.stdout).contains("all checks passed"));
    let status = server.interrupt();
    assert!(status.success(), "calc-server exits cleanly on SIGINT: {status}");
}

#[test]
#[redisrpc_testkit::needs(redis)]
fn calc_client_fails_loudly_when_nobody_serves() {
    let Some(redis) = RedisServer::start() else { return };
    let output =
        run(Command::new(env!("CARGO_BIN_EXE_calc-client")).args(["--redis", &redis.url(), "--timeout", "0.3"]));
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("timed out"));
    assert_eq!(
        redis.cli(&["LLEN", "calc"]).trim(),
        "0",
        "the timed-out request was withdrawn"
    );
}

#[test]
fn calc_client_reports_an_unreachable_redis() {
    let output = run(Command::new(env!("CARGO_BIN_EXE_calc-client")).args(["--redis", "redis://127.0.0.1:1"]));
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("FAILED"));
}
