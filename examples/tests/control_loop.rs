//! `control-loop` runs its plain-thread loop embedded and over Redis, and
//! ends with its achieved rate and call latencies. (The rate is read by
//! people, not asserted: the machines are shared.)

use std::process::Command;

use redisrpc_testkit::RedisServer;

/// Runs `control-loop` with `args`; returns its last line.
fn control_loop(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_control-loop"))
        .args(args)
        .output()
        .expect("control-loop runs");
    let stdout = String::from_utf8(output.stdout).unwrap();
    eprintln!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "control-loop {args:?} failed");
    let last = stdout.lines().last().unwrap_or_default().to_owned();
    assert!(
        last.starts_with("control loop: ") && last.contains(" Hz") && last.contains("p50") && last.contains("p99"),
        "{last}"
    );
    let served: u64 = stdout
        .split("the arm served ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the served count");
    assert!(served > 10, "the loop called the arm: {stdout}");
    last
}

#[test]
fn runs_embedded() {
    control_loop(&["--seconds", "1.5"]);
}

#[test]
#[redisrpc_testkit::needs(redis)]
fn runs_over_redis() {
    let Some(redis) = RedisServer::start() else { return };
    control_loop(&["--redis", &redis.url(), "--seconds", "1.5"]);
}
